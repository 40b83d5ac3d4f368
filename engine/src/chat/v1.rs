//! The engine side of the OpenAI-compatible API: the caller's agents as models, and a
//! chat completion as a run of the agent named by its slug. The request's messages
//! become a stored conversation (it shows in the chat list like any other), the last
//! one a person's; the answer is an ordinary run that the HTTP layer follows. "Ask"
//! tools are refused over the API (nobody is there to answer).

use model::chat::{MESSAGE_MAX, Message, Role, RunStatus, Sent, Transcript};

use super::{ChatError, invalid, title_from};
use crate::Engine;
use crate::agents::AgentError;
use crate::auth::CurrentUser;
use crate::infra::store::{Rows, StoreError, new_id, now_ms};
use crate::runs::{Deferred, Input, NewRun, RunHead, SubjectWriter, Turn};

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
        Ok(self.agent_slugs(user).await?)
    }

    /// Starts the agent `slug` on `messages`: a new conversation holding them, and a run
    /// answering the last (a person's) message. System and developer messages go before
    /// the first person's message as context (the agent keeps its own system prompt).
    ///
    /// The run starts from the request's messages at once; the conversation is written
    /// beside the first model call, and the run's events are stored once it is (if it
    /// cannot be, the run ends as failed with the reason).
    #[tracing::instrument(skip_all, fields(user = %user.id, agent = slug))]
    pub async fn api_chat(
        &self,
        user: &CurrentUser,
        slug: &str,
        messages: &[ApiMessage],
    ) -> Result<(Sent, futures::stream::BoxStream<'static, model::chat::SeqEvent>), ChatError> {
        let turns = turns(messages)?;
        let agent = match self.agent_for_run_by_slug(user, slug).await {
            Err(AgentError::NotFound) => return Err(invalid("model", "not_found", None)),
            r => r?,
        };
        let now = now_ms();
        let conversation_id = new_id();
        let mut stored = Vec::with_capacity(turns.len() + 1);
        let mut history = Vec::with_capacity(turns.len());
        let mut parent: Option<String> = None;
        for (role, text) in &turns {
            let id = new_id();
            let content = match role {
                Role::User => {
                    history.push(Turn::new("", vec![Message::user(text)]));
                    serde_json::to_string(text).unwrap_or_default()
                }
                Role::Assistant => {
                    let mut t = Transcript { status: RunStatus::Done, ..Transcript::default() };
                    t.parts.push(model::chat::Part::Text { text: text.clone() });
                    history.push(Turn::new("", t.to_messages()));
                    serde_json::to_string(&t).unwrap_or_default()
                }
            };
            stored.push((id.clone(), parent.replace(id), *role, content));
        }
        let user_message_id = parent.unwrap_or_default();
        let assistant_message_id = new_id();
        stored.push((assistant_message_id.clone(), Some(user_message_id.clone()), Role::Assistant, String::new()));
        let title = turns.last().map(|(_, last)| title_from(last)).unwrap_or_default();
        let head = RunHead::new(model::runs::RunKind::Api, user, &agent.id, &assistant_message_id, &conversation_id);
        // The conversation and the run's row are written by the flusher's next round, in
        // one transaction with other runs' writes and this run's first events; they wait
        // in memory till then.
        let create = NewApiConversation {
            owner: user.clone(),
            conversation_id: conversation_id.clone(),
            agent_id: agent.id.clone(),
            title,
            messages: stored,
            run_id: head.id.clone(),
            at: now,
        };
        let deferred = Deferred { writer: &ApiConversations, rows: std::sync::Arc::new(create) };
        let run = NewRun {
            head,
            interactive: false,
            input: Input::Ready { agent: Box::new(agent), history },
            limits: None,
            deferred: Some(Some(deferred)),
            continues: None,
        };
        let live = self.start_run(user, run);
        let run_id = live.id().to_owned();
        // The answer's events end once its conversation and last event are stored: a
        // client that has the whole answer finds it among the conversations.
        use futures::StreamExt;
        let stored = futures::stream::once(async move { live.finished().await })
            .filter_map(|()| async { None::<model::chat::SeqEvent> });
        let events = self.run_events(&run_id, 0).chain(stored).boxed();
        Ok((Sent { conversation_id, user_message_id, assistant_message_id }, events))
    }

    /// The events of an answer the caller started before (an idempotent request sent
    /// again), from the first.
    pub async fn replay_answer(
        &self,
        sent: &Sent,
    ) -> Result<futures::stream::BoxStream<'static, model::chat::SeqEvent>, ChatError> {
        let message = &sent.assistant_message_id;
        let run = match self.runs.live_for(message) {
            Some(live) => live.id().to_owned(),
            None => sqlx::query_scalar::<_, Option<String>>("SELECT run_id FROM messages WHERE id = $1")
                .bind(message)
                .fetch_optional(&self.store.pool)
                .await?
                .flatten()
                .ok_or(ChatError::NotFound)?,
        };
        Ok(self.run_events(&run, 0))
    }
}

/// Writes API requests' conversations for the flusher.
struct ApiConversations;

impl SubjectWriter for ApiConversations {
    fn write<'a>(
        &'a self,
        engine: &'a Engine,
        tx: &'a mut sqlx::Transaction<'static, sqlx::Any>,
        rows: Vec<&'a (dyn std::any::Any + Send + Sync)>,
    ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let conversations: Vec<&NewApiConversation> = rows.into_iter().filter_map(|r| r.downcast_ref()).collect();
            engine.write_api_conversations(tx, &conversations).await.map_err(StoreError::from)
        })
    }
}

impl Engine {
    /// The conversations of API requests, each with its answer last (written by its run)
    /// and shown as its branch; in the caller's transaction.
    async fn write_api_conversations(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        conversations: &[&NewApiConversation],
    ) -> Result<(), sqlx::Error> {
        static CONVERSATIONS: Rows = Rows::new(
            "INSERT INTO conversations (id, owner_id, agent_id, title, leaf_id, created_at, updated_at) VALUES ",
            7,
            "",
        );
        static MESSAGES: Rows = Rows::new(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, updated_at, run_id) \
             VALUES ",
            8,
            "",
        );
        CONVERSATIONS
            .run(tx, conversations, |q, c| {
                let leaf = c.messages.last().map(|m| m.0.as_str());
                q.bind(&c.conversation_id)
                    .bind(&c.owner.id)
                    .bind(&c.agent_id)
                    .bind(&c.title)
                    .bind(leaf)
                    .bind(c.at)
                    .bind(c.at)
            })
            .await?;
        // Every message of every conversation; the last of each is its answer.
        let messages: Vec<(&NewApiConversation, usize)> =
            conversations.iter().flat_map(|c| (0..c.messages.len()).map(move |i| (*c, i))).collect();
        MESSAGES
            .run(tx, &messages, |q, (c, i)| {
                let (id, parent_id, role, content) = &c.messages[*i];
                let answer = *i + 1 == c.messages.len();
                q.bind(id)
                    .bind(&c.conversation_id)
                    .bind(parent_id.as_deref())
                    .bind(role.as_str())
                    .bind(content)
                    .bind(c.at)
                    .bind(c.at)
                    .bind(answer.then_some(c.run_id.as_str()))
            })
            .await?;
        Ok(())
    }
}

/// An API request's conversation as it is to be stored: its messages in order (id,
/// parent, role, content), the running answer last.
pub(crate) struct NewApiConversation {
    owner: CurrentUser,
    conversation_id: String,
    agent_id: String,
    title: String,
    messages: Vec<(String, Option<String>, Role, String)>,
    /// The run writing the answer.
    run_id: String,
    at: i64,
}

/// The request's messages checked and as turns: system and developer text goes before the
/// first person's message; the last must be a person's, not empty.
fn turns(messages: &[ApiMessage]) -> Result<Vec<(Role, String)>, ChatError> {
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
    let Some((Role::User, last)) = turns.last() else {
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
    Ok(turns)
}
