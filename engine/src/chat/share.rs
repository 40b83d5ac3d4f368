//! A conversation taken out of Agentry: exported whole (Markdown or JSON) by its owner, or
//! shown read-only to anyone holding a share link. A link shows the branch as it was when
//! shared, text and tool names only; revoking it ends it at once.

use model::chat::{ConversationExport, ExportedMessage, ExportedTool, Part, Role, ShareView};
use sqlx::Row;

use super::{ChatError, StoredMessage};
use crate::Engine;
use crate::auth::{CurrentUser, hash_token};
use crate::infra::secrets;
use crate::infra::store::{new_id, now_ms};

/// What a share link's token is derived for.
const SHARE_CONTEXT: &str = "conversation share";

/// How much of an answer's tool calls a reader gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// The owner's export: inputs and results too.
    Whole,
    /// A share link: the tools' names and how they ended.
    NamesOnly,
}

impl Engine {
    /// The conversation's branch shown, every message of it, for its owner to download.
    pub async fn export_conversation(&self, user: &CurrentUser, id: &str) -> Result<ConversationExport, ChatError> {
        let (agent_id, leaf) = self.conversation(user, id).await?;
        let title: String = sqlx::query_scalar("SELECT title FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_one(&self.store.pool)
            .await?;
        let agent_name = self.get_agent(user, &agent_id).await.map(|a| a.spec.name).unwrap_or_default();
        let messages = match leaf {
            Some(leaf) => self.path_to(id, &leaf).await?,
            None => Vec::new(),
        };
        Ok(self.exported(title, agent_name, messages, Detail::Whole))
    }

    /// The conversation's share link, made on first asking: anyone with it may read the
    /// branch shown now (later messages stay private), until it is revoked.
    pub async fn share_conversation(&self, user: &CurrentUser, id: &str) -> Result<ShareView, ChatError> {
        let (_, leaf) = self.conversation(user, id).await?;
        let Some(leaf) = leaf else {
            return Err(super::invalid("id", "empty", None));
        };
        if let Some(share) = self.current_share(user, id).await? {
            return Ok(share);
        }
        let share_id = new_id();
        let token = secrets::token_for(&self.keys, SHARE_CONTEXT, &share_id);
        let at = now_ms();
        sqlx::query(
            "INSERT INTO conversation_shares (id, token_hash, conversation_id, owner_id, leaf_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&share_id)
        .bind(hash_token(&token))
        .bind(id)
        .bind(&user.id)
        .bind(&leaf)
        .bind(at)
        .execute(&self.store.pool)
        .await?;
        crate::audit::record(self, Some(&user.id), "conversation.share", id, serde_json::json!({}), "").await;
        Ok(ShareView { path: format!("/s/{token}"), created_at: at })
    }

    /// The conversation's live share link, if it has one.
    pub async fn current_share(&self, user: &CurrentUser, id: &str) -> Result<Option<ShareView>, ChatError> {
        self.conversation(user, id).await?;
        let row = sqlx::query(
            "SELECT id, created_at FROM conversation_shares \
             WHERE conversation_id = $1 AND owner_id = $2 AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .bind(id)
        .bind(&user.id)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(match row {
            Some(r) => {
                let share_id: String = r.try_get("id")?;
                let token = secrets::token_for(&self.keys, SHARE_CONTEXT, &share_id);
                Some(ShareView { path: format!("/s/{token}"), created_at: r.try_get("created_at")? })
            }
            None => None,
        })
    }

    /// Ends the conversation's share link; reading it gives "not found" from now on.
    pub async fn unshare_conversation(&self, user: &CurrentUser, id: &str) -> Result<(), ChatError> {
        self.conversation(user, id).await?;
        sqlx::query(
            "UPDATE conversation_shares SET revoked_at = $3 \
             WHERE conversation_id = $1 AND owner_id = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(&user.id)
        .bind(now_ms())
        .execute(&self.store.pool)
        .await?;
        crate::audit::record(self, Some(&user.id), "conversation.unshare", id, serde_json::json!({}), "").await;
        Ok(())
    }

    /// What the share link `token` shows, to anyone: the shared branch, text and tool
    /// names. A token that is malformed, unknown or revoked is not found, alike.
    pub async fn shared_conversation(&self, token: &str) -> Result<ConversationExport, ChatError> {
        let well_formed =
            token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(ChatError::ShareNotFound);
        }
        let row = sqlx::query(
            "SELECT s.conversation_id, s.leaf_id, s.created_at, c.title, c.agent_id, c.owner_id \
             FROM conversation_shares s JOIN conversations c ON c.id = s.conversation_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(ChatError::ShareNotFound)?;
        let conversation_id: String = row.try_get("conversation_id")?;
        let leaf: String = row.try_get("leaf_id")?;
        let agent_name =
            self.agent_name(&row.try_get::<String, _>("owner_id")?, &row.try_get::<String, _>("agent_id")?).await;
        let messages = self.path_to(&conversation_id, &leaf).await?;
        let mut shown = self.exported(row.try_get("title")?, agent_name, messages, Detail::NamesOnly);
        shown.at = row.try_get("created_at")?;
        Ok(shown)
    }

    fn exported(
        &self,
        title: String,
        agent_name: String,
        messages: Vec<StoredMessage>,
        detail: Detail,
    ) -> ConversationExport {
        let messages = messages
            .into_iter()
            .map(|m| match m.role {
                Role::User => ExportedMessage {
                    role: Role::User,
                    created_at: m.created_at,
                    text: m.text(),
                    tools: Vec::new(),
                    status: None,
                },
                Role::Assistant => {
                    let mut tr = m.transcript();
                    if let Some(live) = m.run_id.as_deref().and_then(|r| self.runs.live(r)) {
                        tr = live.transcript();
                    }
                    let tools = tr
                        .parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Tool { call } => Some(ExportedTool {
                                name: if call.label.is_empty() { call.name.clone() } else { call.label.clone() },
                                state: call.state,
                                input: (detail == Detail::Whole).then(|| call.input.clone()),
                                result: (detail == Detail::Whole).then(|| call.result.clone()),
                            }),
                            _ => None,
                        })
                        .collect();
                    ExportedMessage {
                        role: Role::Assistant,
                        created_at: m.created_at,
                        text: tr.text(),
                        tools,
                        status: Some(tr.status),
                    }
                }
            })
            .collect();
        ConversationExport { title, agent_name, at: now_ms(), messages }
    }
}
