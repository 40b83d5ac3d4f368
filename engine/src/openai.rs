//! The engine side of the OpenAI-compatible API: the caller's agents as models, and a
//! chat completion as a run of the agent named by its slug. The request's messages
//! become a stored conversation (it shows in the chat list like any other), the last
//! one a person's; the answer is an ordinary run that the HTTP layer follows. "Ask"
//! tools are refused over the API (nobody is there to answer).

use model::chat::{MESSAGE_MAX, Role, RunStatus, Sent, Transcript};

use crate::Engine;
use crate::auth::CurrentUser;
use crate::chat::{ChatError, invalid, title_from};
use crate::store::now_ms;

/// Messages one request may carry.
pub const MESSAGES_MAX: usize = 1_000;

/// One message of a request, its text parts joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    pub text: String,
}

impl Engine {
    /// The caller's agents as `(slug, created_at)`, by slug.
    pub async fn agent_models(&self, user: &CurrentUser) -> Result<Vec<(String, i64)>, ChatError> {
        Ok(sqlx::query_as("SELECT slug, created_at FROM agents WHERE owner_id = $1 ORDER BY slug")
            .bind(&user.id)
            .fetch_all(&self.store.pool)
            .await?)
    }

    /// Starts the agent `slug` on `messages`: a new conversation holding them, and a run
    /// answering the last (a person's) message. System and developer messages go before
    /// the first person's message as context (the agent keeps its own system prompt).
    #[tracing::instrument(skip_all, fields(user = %user.id, agent = slug))]
    pub async fn api_chat(
        &self,
        user: &CurrentUser,
        slug: &str,
        messages: &[ApiMessage],
    ) -> Result<(Sent, futures::stream::BoxStream<'static, model::chat::SeqEvent>), ChatError> {
        let agent_id: String = sqlx::query_scalar("SELECT id FROM agents WHERE owner_id = $1 AND slug = $2")
            .bind(&user.id)
            .bind(slug)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or_else(|| invalid("model", "not_found", None))?;
        if messages.is_empty() {
            return Err(invalid("messages", "required", None));
        }
        if messages.len() > MESSAGES_MAX {
            return Err(invalid("messages", "too_many", Some(MESSAGES_MAX)));
        }
        let mut context = String::new();
        let mut turns: Vec<(Role, String)> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let field = format!("messages[{i}].content");
            if model::fields::char_len(&m.text) > MESSAGE_MAX {
                return Err(invalid(&field, "too_long", Some(MESSAGE_MAX)));
            }
            if m.text.contains('\0') {
                return Err(invalid(&field, "control_chars", None));
            }
            match m.role.as_str() {
                "system" | "developer" => {
                    context.push_str(&m.text);
                    context.push_str("\n\n");
                }
                "user" => turns.push((Role::User, m.text.clone())),
                "assistant" => turns.push((Role::Assistant, m.text.clone())),
                _ => return Err(invalid(&format!("messages[{i}].role"), "invalid", None)),
            }
        }
        let Some((Role::User, last)) = turns.last().cloned() else {
            return Err(invalid("messages", "last_not_user", None));
        };
        if last.trim().is_empty() {
            return Err(invalid(&format!("messages[{}].content", messages.len() - 1), "required", None));
        }
        if !context.is_empty()
            && let Some((_, first)) = turns.iter_mut().find(|(r, _)| *r == Role::User)
        {
            *first = format!("{context}{first}");
        }
        let now = now_ms();
        let (mut tx, turn) = self.store.begin().await?;
        let conversation_id = Self::insert_conversation(&mut tx, user, &agent_id, &title_from(&last), now).await?;
        let mut parent: Option<String> = None;
        for (role, text) in &turns {
            let content = match role {
                Role::User => serde_json::to_string(text).unwrap_or_default(),
                Role::Assistant => {
                    let mut t = Transcript { status: RunStatus::Done, ..Transcript::default() };
                    t.parts.push(model::chat::Part::Text { text: text.clone() });
                    serde_json::to_string(&t).unwrap_or_default()
                }
            };
            let id =
                Self::insert_message(&mut tx, &conversation_id, parent.as_deref(), *role, &content, now, None).await?;
            parent = Some(id);
        }
        let user_message_id = parent.unwrap_or_default();
        let assistant_message_id =
            self.answer(user, (tx, turn), &conversation_id, &agent_id, &user_message_id, false).await?;
        let events = self.run_events(&assistant_message_id, 0);
        Ok((Sent { conversation_id, user_message_id, assistant_message_id }, events))
    }
}
