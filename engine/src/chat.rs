//! Conversations with an agent: sending starts a run (see `runs`), the answer being its
//! subject; messages form a tree so regenerating and editing make siblings, and the
//! conversation remembers which branch is shown. Lists search titles and message text.
//!
//! An answer's message points at its run (`messages.run_id`), whose row holds the
//! transcript, status and totals: chat reads them with its messages.

use model::chat::{
    ConversationSummary, ConversationView, MESSAGE_MAX, Message, MessageView, Part, RATING_NOTE_MAX, Rating, Role,
    RunStatus, Sent, TITLE_MAX, Transcript,
};
use model::{FieldError, FieldErrors, Page};
use std::collections::HashMap;

use sqlx::Row;

use crate::agents::AgentError;
use crate::auth::CurrentUser;
use crate::infra::store::{Arg, List, StoreError, like_pattern, new_id, now_ms};
use crate::runs::{Input, NewRun, RunError, RunHead, Subject, Turn};
use crate::{Engine, audit};

pub mod attachments;
pub mod share;
pub mod v1;

/// Conversations per list page.
pub const PER_PAGE: u32 = 30;
/// Messages a conversation page shows at once (older ones a window at a time).
pub const WINDOW: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("conversation or message not found")]
    NotFound,
    /// A share link that is malformed, unknown or revoked.
    #[error("share link not found")]
    ShareNotFound,
    /// The message's run is not running (nothing to stop or answer).
    #[error("this answer is not running")]
    NotRunning,
    #[error("attachment not found")]
    AttachmentNotFound,
    #[error("the file was refused: {0}")]
    Attachment(model::attachments::AttachmentProblem),
    /// The upload would take the user past `limits.storage_per_user_bytes`.
    #[error("the upload ({upload} bytes) would pass the storage quota of {quota} bytes ({used} used)")]
    Quota { upload: u64, used: u64, quota: u64 },
    #[error("file storage failed: {0}")]
    Blobs(String),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RunError> for ChatError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Invalid(f) => Self::Invalid(f),
            RunError::NotFound => Self::NotFound,
            RunError::Ended => Self::NotRunning,
            RunError::Store(e) => Self::Store(e),
        }
    }
}

impl From<sqlx::Error> for ChatError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

pub(crate) fn invalid(field: &str, rule: &str, limit: Option<usize>) -> ChatError {
    let e = match limit {
        Some(n) => FieldError::with_limit(field, rule, n as u64),
        None => FieldError::new(field, rule),
    };
    ChatError::Invalid(FieldErrors(vec![e]))
}

fn check_text(text: &str) -> Result<(), ChatError> {
    if text.trim().is_empty() {
        return Err(invalid("text", "required", None));
    }
    if model::fields::char_len(text) > MESSAGE_MAX {
        return Err(invalid("text", "too_long", Some(MESSAGE_MAX)));
    }
    if text.contains('\0') {
        return Err(invalid("text", "control_chars", None));
    }
    Ok(())
}

/// A title from the first message: its first line, cut at a word near 60 characters.
pub fn title_from(text: &str) -> String {
    // Code is not a title: lines in a fenced block are skipped.
    let mut fenced = false;
    let line = text
        .lines()
        .filter(|l| {
            let fence = l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~");
            fenced ^= fence;
            !fence && !fenced
        })
        .map(plain)
        .find(|l| !l.is_empty())
        .unwrap_or_else(|| "New conversation".to_owned());
    if line.chars().count() <= 60 {
        return line;
    }
    let cut: String = line.chars().take(60).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a).trim_end();
    format!("{cut}…")
}

/// One line of Markdown as plain words: no heading, quote or list marks, no emphasis or
/// code marks, links and images as their text.
fn plain(line: &str) -> String {
    let mut l = line.trim();
    l = l.trim_start_matches(['#', '>', ' ']);
    for mark in ["- [ ] ", "- [x] ", "* ", "- ", "+ "] {
        l = l.strip_prefix(mark).unwrap_or(l);
    }
    if let Some((n, rest)) = l.split_once(". ")
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
    {
        l = rest;
    }
    let mut out = String::with_capacity(l.len());
    let mut chars = l.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' | '`' | '~' => {}
            // Emphasis, not a snake_case name.
            '_' if out.chars().last().is_none_or(|p| !p.is_alphanumeric())
                || chars.peek().is_none_or(|n| !n.is_alphanumeric()) => {}
            '!' if chars.peek() == Some(&'[') => {}
            '[' => {
                let label: String = chars.by_ref().take_while(|c| *c != ']').collect();
                out.push_str(&label);
                if chars.peek() == Some(&'(') {
                    chars.by_ref().take_while(|c| *c != ')').for_each(drop);
                }
            }
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A stored message row, as the branch walk needs it.
pub(crate) struct StoredMessage {
    pub id: String,
    pub parent_id: Option<String>,
    pub run_id: Option<String>,
    pub role: Role,
    pub content: String,
    pub status: String,
    pub error: String,
    pub created_at: i64,
}

fn stored(r: &sqlx::any::AnyRow) -> Result<StoredMessage, ChatError> {
    Ok(StoredMessage {
        id: r.try_get("id")?,
        parent_id: r.try_get("parent_id")?,
        run_id: r.try_get("run_id")?,
        role: if r.try_get::<String, _>("role")? == "user" { Role::User } else { Role::Assistant },
        content: r.try_get("content")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
    })
}

impl StoredMessage {
    pub fn transcript(&self) -> Transcript {
        let mut t: Transcript = serde_json::from_str(&self.content).unwrap_or_default();
        // The columns are the truth for how it ended (recovery sets them).
        t.status = RunStatus::parse(&self.status);
        if !self.error.is_empty() {
            t.error = self.error.clone();
        }
        t
    }

    pub fn text(&self) -> String {
        serde_json::from_str::<String>(&self.content).unwrap_or_default()
    }
}

/// A message a person sends.
pub struct Outgoing<'a> {
    /// The agent to answer (empty: the conversation's).
    pub agent_id: &'a str,
    pub conversation_id: Option<&'a str>,
    /// An edit of this message of the conversation.
    pub parent_id: Option<&'a str>,
    pub text: &'a str,
    /// Unsent attachments of the sender's.
    pub attachments: &'a [String],
}

/// A message to insert.
pub(crate) struct NewMessage<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub role: Role,
    /// JSON: the text of a person's message, the transcript of an answer.
    pub content: &'a str,
    pub at: i64,
    /// The run writing it, for an answer.
    pub run_id: Option<&'a str>,
}

/// A message's columns with its run's transcript, status and error (`m`: messages, `r`:
/// runs joined on the message's run).
const MESSAGE: &str = "m.id, m.parent_id, m.run_id, m.role, COALESCE(r.transcript, m.content) AS content, \
     COALESCE(r.status, 'done') AS status, COALESCE(r.error, '') AS error, m.created_at";

impl Engine {
    /// The conversation's `(agent_id, leaf_id)`, if the user owns it.
    async fn conversation(&self, user: &CurrentUser, id: &str) -> Result<(String, Option<String>), ChatError> {
        let row = sqlx::query("SELECT agent_id, leaf_id FROM conversations WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(ChatError::NotFound)?;
        Ok((row.try_get("agent_id")?, row.try_get("leaf_id")?))
    }

    /// Refuses `adding` more messages to a conversation that would then hold more than
    /// `limits.messages_per_conversation`.
    async fn check_room(&self, conversation_id: &str, adding: i64) -> Result<(), ChatError> {
        let limit = self.settings.limits.messages_per_conversation;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = $1")
            .bind(conversation_id)
            .fetch_one(&self.store.pool)
            .await?;
        if n + adding > i64::from(limit) {
            return Err(invalid("conversation_id", "full", Some(limit as usize)));
        }
        Ok(())
    }

    /// The path from the first message to `leaf`, whole, read by walking up from `leaf`:
    /// only the messages on it are read, however many other branches the conversation has.
    pub(crate) async fn path_to(&self, conversation_id: &str, leaf: &str) -> Result<Vec<StoredMessage>, ChatError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE path (id, parent_id, depth) AS ( \
               SELECT id, parent_id, 0 FROM messages WHERE id = $1 AND conversation_id = $2 \
               UNION ALL \
               SELECT m.id, m.parent_id, p.depth + 1 FROM messages m JOIN path p ON m.id = p.parent_id \
               WHERE m.conversation_id = $2 AND p.depth < 1000000 \
             ) \
             SELECT {MESSAGE} FROM path p JOIN messages m ON m.id = p.id LEFT JOIN runs r ON r.id = m.run_id \
             ORDER BY p.depth DESC"
        )))
        .bind(leaf)
        .bind(conversation_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(stored).collect()
    }

    /// A message of a conversation, whole.
    async fn message_in(&self, conversation_id: &str, id: &str) -> Result<StoredMessage, ChatError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE} FROM messages m LEFT JOIN runs r ON r.id = m.run_id \
             WHERE m.id = $1 AND m.conversation_id = $2"
        )))
        .bind(id)
        .bind(conversation_id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(ChatError::NotFound)?;
        stored(&row)
    }

    /// The messages `ids` of a conversation, whole, in the order given.
    async fn messages_by_id(&self, conversation_id: &str, ids: &[&str]) -> Result<Vec<StoredMessage>, ChatError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {MESSAGE} FROM messages m LEFT JOIN runs r ON r.id = m.run_id \
                 WHERE m.conversation_id = $1 AND m.id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(conversation_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.store.pool).await? {
                out.push(stored(&r)?);
            }
        }
        let rank: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        out.sort_by_key(|m| rank.get(m.id.as_str()).copied().unwrap_or(usize::MAX));
        Ok(out)
    }

    /// A new conversation `id` of `user` with `agent_id`.
    pub(crate) async fn insert_conversation(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
        user: &CurrentUser,
        agent_id: &str,
        title: &str,
        at: i64,
    ) -> Result<(), ChatError> {
        sqlx::query(
            "INSERT INTO conversations (id, owner_id, agent_id, title, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(id)
        .bind(&user.id)
        .bind(agent_id)
        .bind(title)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(crate) async fn insert_message(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        m: &NewMessage<'_>,
    ) -> Result<(), ChatError> {
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, updated_at, run_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(m.id)
        .bind(m.conversation_id)
        .bind(m.parent_id)
        .bind(m.role.as_str())
        .bind(m.content)
        .bind(m.at)
        .bind(m.run_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Sends a message to an agent and starts its answer. With no `conversation_id` a new
    /// conversation begins; `parent_id` (a message of the conversation) makes the message a
    /// sibling of that one's children, i.e. an edit; by default it follows the branch shown.
    pub async fn send_message(
        &self,
        user: &CurrentUser,
        agent_id: &str,
        conversation_id: Option<&str>,
        parent_id: Option<&str>,
        text: &str,
    ) -> Result<Sent, ChatError> {
        self.send(user, Outgoing { agent_id, conversation_id, parent_id, text, attachments: &[] }).await
    }

    /// Sends a message, with the unsent attachments it names, and starts its answer (see
    /// [`Engine::send_message`]). The text may be empty when files go with it.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn send(&self, user: &CurrentUser, out: Outgoing<'_>) -> Result<Sent, ChatError> {
        let Outgoing { agent_id, conversation_id, parent_id, text, attachments } = out;
        if attachments.is_empty() || !text.trim().is_empty() {
            check_text(text)?;
        }
        let now = now_ms();
        let (conversation_id, parent, agent_id) = match conversation_id {
            Some(id) => {
                let (agent, leaf) = self.conversation(user, id).await?;
                let parent = match parent_id {
                    Some(p) => {
                        let m = self.message_in(id, p).await?;
                        // An edit replaces a person's message, never an answer.
                        if m.role != Role::User {
                            return Err(invalid("parent_id", "invalid", None));
                        }
                        m.parent_id
                    }
                    None => leaf,
                };
                // Another agent picked in the composer answers from now on.
                let agent = if agent_id.is_empty() { agent } else { agent_id.to_owned() };
                self.check_agent(user, &agent).await?;
                self.check_room(id, 2).await?;
                (id.to_owned(), parent, agent)
            }
            None => {
                self.check_agent(user, agent_id).await?;
                (String::new(), None, agent_id.to_owned())
            }
        };
        let files = if attachments.is_empty() {
            Vec::new()
        } else {
            let spec = self.get_agent(user, &agent_id).await?.spec;
            let models: Vec<&str> =
                std::iter::once(spec.model.as_str()).chain(spec.fallback_models.iter().map(String::as_str)).collect();
            self.unsent_attachments(user, attachments, &models).await?
        };
        let (mut tx, turn) = self.store.begin().await?;
        let conversation_id = if conversation_id.is_empty() {
            let id = new_id();
            let title = match files.first() {
                Some(f) if text.trim().is_empty() => f.name.clone(),
                _ => title_from(text),
            };
            Self::insert_conversation(&mut tx, &id, user, &agent_id, &title, now).await?;
            id
        } else {
            conversation_id
        };
        let content = serde_json::to_string(text.trim_end()).unwrap_or_default();
        let user_message_id = new_id();
        let question = NewMessage {
            id: &user_message_id,
            conversation_id: &conversation_id,
            parent_id: parent.as_deref(),
            role: Role::User,
            content: &content,
            at: now,
            run_id: None,
        };
        Self::insert_message(&mut tx, &question).await?;
        Self::take_attachments(&mut tx, &user.id, attachments, &user_message_id).await?;
        let assistant_message_id =
            self.answer(user, (tx, turn), &conversation_id, &agent_id, &user_message_id, None).await?;
        Ok(Sent { conversation_id, user_message_id, assistant_message_id })
    }

    /// Adds the answer to `question_id` and its (running) run, shows its branch, commits
    /// `tx` and starts the run. Returns the answer's id.
    async fn answer(
        &self,
        user: &CurrentUser,
        (mut tx, turn): (sqlx::Transaction<'static, sqlx::Any>, crate::infra::store::WriteTurn),
        conversation_id: &str,
        agent_id: &str,
        question_id: &str,
        continues: Option<(String, Vec<Part>)>,
    ) -> Result<String, ChatError> {
        let now = now_ms();
        let id = new_id();
        let head = RunHead::new(model::runs::RunKind::Chat, user, agent_id, &id, conversation_id);
        self.insert_runs(&mut tx, &[&head]).await?;
        let answer = NewMessage {
            id: &id,
            conversation_id,
            parent_id: Some(question_id),
            role: Role::Assistant,
            content: "",
            at: now,
            run_id: Some(&head.id),
        };
        Self::insert_message(&mut tx, &answer).await?;
        // The agent answering is the conversation's agent from now on.
        sqlx::query("UPDATE conversations SET leaf_id = $2, updated_at = $3, agent_id = $4 WHERE id = $1")
            .bind(conversation_id)
            .bind(&id)
            .bind(now)
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(turn);
        let subject =
            Answer { conversation_id: conversation_id.to_owned(), message_id: id.clone(), owner: user.id.clone() };
        let run = NewRun {
            head,
            interactive: true,
            input: Input::Load(Box::new(subject)),
            limits: None,
            deferred: None,
            continues,
        };
        self.start_run(user, run);
        Ok(id)
    }

    /// Answers the person's message again: a sibling of the answer `message_id`.
    #[tracing::instrument(skip_all, fields(user = %user.id, message = message_id))]
    pub async fn regenerate(&self, user: &CurrentUser, message_id: &str) -> Result<Sent, ChatError> {
        let conversation_id = self.message_conversation(user, message_id).await?;
        let m = self.message_in(&conversation_id, message_id).await?;
        let (Role::Assistant, Some(parent)) = (m.role, m.parent_id) else {
            return Err(invalid("message_id", "invalid", None));
        };
        let (agent_id, _) = self.conversation(user, &conversation_id).await?;
        self.check_room(&conversation_id, 1).await?;
        let (tx, turn) = self.store.begin().await?;
        let assistant_message_id = self.answer(user, (tx, turn), &conversation_id, &agent_id, &parent, None).await?;
        Ok(Sent { conversation_id, user_message_id: parent, assistant_message_id })
    }

    /// Carries on the answer `message_id`, which ended before it was done (incomplete,
    /// stopped or interrupted): a sibling answer that starts with everything that one
    /// wrote, the model continuing from there. The first stays as the other version.
    #[tracing::instrument(skip_all, fields(user = %user.id, message = message_id))]
    pub async fn continue_answer(&self, user: &CurrentUser, message_id: &str) -> Result<Sent, ChatError> {
        let conversation_id = self.message_conversation(user, message_id).await?;
        let m = self.message_in(&conversation_id, message_id).await?;
        let (Role::Assistant, Some(parent), Some(run_id)) = (m.role, m.parent_id.clone(), m.run_id.clone()) else {
            return Err(invalid("message_id", "invalid", None));
        };
        // A run that just ended may not have its last events stored yet.
        let transcript = self.runs.live(&run_id).map_or_else(|| m.transcript(), |l| l.transcript());
        let unfinished =
            matches!(transcript.status, RunStatus::Incomplete | RunStatus::Stopped | RunStatus::Interrupted);
        if !unfinished || transcript.parts.is_empty() {
            return Err(invalid("message_id", "not_continuable", None));
        }
        let (agent_id, _) = self.conversation(user, &conversation_id).await?;
        self.check_room(&conversation_id, 1).await?;
        let (tx, turn) = self.store.begin().await?;
        let continues = Some((run_id, transcript.parts));
        let assistant_message_id =
            self.answer(user, (tx, turn), &conversation_id, &agent_id, &parent, continues).await?;
        Ok(Sent { conversation_id, user_message_id: parent, assistant_message_id })
    }

    /// Rates the answer `message_id` up or down with an optional note (`None` takes the
    /// rating back). One rating per answer; rating again replaces it.
    #[tracing::instrument(skip_all, fields(user = %user.id, message = message_id))]
    pub async fn rate_answer(
        &self,
        user: &CurrentUser,
        message_id: &str,
        rating: Option<Rating>,
    ) -> Result<(), ChatError> {
        if let Some(r) = &rating {
            if model::fields::char_len(&r.note) > RATING_NOTE_MAX {
                return Err(invalid("note", "too_long", Some(RATING_NOTE_MAX)));
            }
            if r.note.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
                return Err(invalid("note", "control_chars", None));
            }
        }
        let conversation_id = self.message_conversation(user, message_id).await?;
        let m = self.message_in(&conversation_id, message_id).await?;
        if m.role != Role::Assistant {
            return Err(invalid("message_id", "invalid", None));
        }
        let Some(r) = rating else {
            sqlx::query("DELETE FROM message_ratings WHERE message_id = $1")
                .bind(message_id)
                .execute(&self.store.pool)
                .await?;
            return Ok(());
        };
        let (agent_id, _) = self.conversation(user, &conversation_id).await?;
        let run_agent: Option<String> = match m.run_id.as_deref() {
            Some(run) => {
                sqlx::query_scalar("SELECT agent_id FROM runs WHERE id = $1")
                    .bind(run)
                    .fetch_optional(&self.store.pool)
                    .await?
            }
            None => None,
        };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO message_ratings (message_id, owner_id, agent_id, run_id, rating, note, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (message_id) DO UPDATE SET rating = $5, note = $6, updated_at = $7",
        )
        .bind(message_id)
        .bind(&user.id)
        .bind(run_agent.unwrap_or(agent_id))
        .bind(m.run_id.as_deref())
        .bind(if r.up { 1_i64 } else { -1_i64 })
        .bind(r.note.trim())
        .bind(now)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// The ratings of the answers `ids` (of a conversation the caller has checked).
    async fn ratings(&self, ids: &[&str]) -> Result<HashMap<String, Rating>, ChatError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(100) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT message_id, rating, note FROM message_ratings WHERE message_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.store.pool).await? {
                let up = r.try_get::<i64, _>("rating")? > 0;
                out.insert(r.try_get("message_id")?, Rating { up, note: r.try_get("note")? });
            }
        }
        Ok(out)
    }

    /// The run writing the answer `message_id`, if the user owns it.
    pub async fn answer_run(&self, user: &CurrentUser, message_id: &str) -> Result<String, ChatError> {
        let run: Option<Option<String>> = sqlx::query_scalar(
            "SELECT m.run_id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.id = $1 AND c.owner_id = $2",
        )
        .bind(message_id)
        .bind(&user.id)
        .fetch_optional(&self.store.pool)
        .await?;
        run.flatten().ok_or(ChatError::NotFound)
    }

    /// Stops the answer `message_id`; what it wrote so far is kept.
    pub async fn stop_answer(&self, user: &CurrentUser, message_id: &str) -> Result<(), ChatError> {
        let run = self.answer_run(user, message_id).await?;
        Ok(self.stop_run(user, &run).await?)
    }

    /// Allows or denies a tool call the answer `message_id` waits on.
    pub async fn answer_tool(
        &self,
        user: &CurrentUser,
        message_id: &str,
        call_id: &str,
        allow: bool,
    ) -> Result<(), ChatError> {
        let run = self.answer_run(user, message_id).await?;
        Ok(self.answer_call(user, &run, call_id, allow).await?)
    }

    /// The events of the answer `message_id` after `from`, live until it ends.
    pub async fn subscribe_answer(
        &self,
        user: &CurrentUser,
        message_id: &str,
        from: u64,
    ) -> Result<futures::stream::BoxStream<'static, model::chat::SeqEvent>, ChatError> {
        let run = self.answer_run(user, message_id).await?;
        Ok(self.subscribe_run(user, &run, from).await?)
    }

    /// The conversation that holds the answer `message_id`, if the user owns it.
    pub async fn answer_conversation(&self, user: &CurrentUser, message_id: &str) -> Result<String, ChatError> {
        self.message_conversation(user, message_id).await
    }

    /// The conversation a message belongs to, if the user owns it.
    pub(crate) async fn message_conversation(&self, user: &CurrentUser, message_id: &str) -> Result<String, ChatError> {
        sqlx::query_scalar(
            "SELECT m.conversation_id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.id = $1 AND c.owner_id = $2",
        )
        .bind(message_id)
        .bind(&user.id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(ChatError::NotFound)
    }

    pub async fn get_conversation(&self, user: &CurrentUser, id: &str) -> Result<ConversationView, ChatError> {
        self.conversation_window(user, id, None).await
    }

    /// The shown branch's newest `WINDOW` messages, or those just before the message
    /// `before`; `earlier` says where the previous window ends. Only the window's messages
    /// are read whole, so a conversation of any length opens as fast as a short one.
    pub async fn conversation_window(
        &self,
        user: &CurrentUser,
        id: &str,
        before: Option<&str>,
    ) -> Result<ConversationView, ChatError> {
        let row = sqlx::query("SELECT title, agent_id, leaf_id FROM conversations WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(ChatError::NotFound)?;
        let agent_id: String = row.try_get("agent_id")?;
        let leaf: Option<String> = row.try_get("leaf_id")?;
        let agent_name = self.get_agent(user, &agent_id).await.map(|a| a.spec.name).unwrap_or_default();
        let tree: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT id, parent_id FROM messages WHERE conversation_id = $1 ORDER BY created_at, id")
                .bind(id)
                .fetch_all(&self.store.pool)
                .await?;
        let parent_of: HashMap<&str, Option<&str>> = tree.iter().map(|(id, p)| (id.as_str(), p.as_deref())).collect();
        let mut children: HashMap<Option<&str>, Vec<String>> = HashMap::new();
        for (id, p) in &tree {
            children.entry(p.as_deref()).or_default().push(id.clone());
        }
        let mut branch = Vec::new();
        let mut cur = leaf.as_deref().filter(|l| parent_of.contains_key(l));
        while let Some(m) = cur {
            branch.push(m);
            cur = parent_of.get(m).copied().flatten();
            if branch.len() > tree.len() {
                break; // a cycle cannot be stored, but never loop on one
            }
        }
        branch.reverse();
        let end = before.and_then(|b| branch.iter().position(|m| *m == b)).unwrap_or(branch.len());
        let start = end.saturating_sub(WINDOW);
        let shown = &branch[start..end];
        let (input_tokens, output_tokens, cost_micros) = self.scope_totals(id).await?;
        let mut view = ConversationView {
            id: id.to_owned(),
            title: row.try_get("title")?,
            agent_id,
            agent_name,
            messages: Vec::new(),
            earlier: (start > 0).then(|| shown.first().map(|m| (*m).to_owned())).flatten(),
            input_tokens: input_tokens as u64,
            output_tokens: output_tokens as u64,
            cost_micros: cost_micros as u64,
        };
        let mut ratings = self.ratings(shown).await?;
        let mut files = self.attachments_of(shown).await?;
        for m in self.messages_by_id(id, shown).await? {
            let siblings = children.get(&m.parent_id.as_deref()).cloned().unwrap_or_default();
            let mut transcript = (m.role == Role::Assistant).then(|| m.transcript());
            // A live run's newest state, not the last flush.
            if let Some(t) = transcript.as_mut()
                && let Some(live) = m.run_id.as_deref().and_then(|r| self.runs.live(r))
            {
                *t = live.transcript();
            }
            view.messages.push(MessageView {
                id: m.id.clone(),
                parent_id: m.parent_id.clone(),
                role: m.role,
                text: if m.role == Role::User { m.text() } else { String::new() },
                transcript,
                run_id: m.run_id.clone(),
                created_at: m.created_at,
                siblings,
                rating: ratings.remove(&m.id),
                attachments: files.remove(&m.id).unwrap_or_default(),
            });
        }
        Ok(view)
    }

    /// Shows the branch through `message_id` (down to its newest descendant).
    pub async fn switch_branch(&self, user: &CurrentUser, message_id: &str) -> Result<(), ChatError> {
        let conversation_id = self.message_conversation(user, message_id).await?;
        // Only the tree's ids: each message's newest child, then down from `message_id`.
        let tree: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT id, parent_id FROM messages WHERE conversation_id = $1 ORDER BY created_at, id")
                .bind(&conversation_id)
                .fetch_all(&self.store.pool)
                .await?;
        let newest_child: HashMap<&str, &str> =
            tree.iter().filter_map(|(id, p)| Some((p.as_deref()?, id.as_str()))).collect();
        let mut leaf = message_id;
        let mut steps = 0;
        while let Some(child) = newest_child.get(leaf) {
            leaf = child;
            steps += 1;
            if steps > tree.len() {
                break; // a cycle cannot be stored, but never loop on one
            }
        }
        sqlx::query("UPDATE conversations SET leaf_id = $2 WHERE id = $1 AND owner_id = $3")
            .bind(&conversation_id)
            .bind(leaf)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// The user's conversations, pinned ones first, then newest first, optionally for one
    /// agent and matching `q` in the title or any message.
    pub async fn list_conversations(
        &self,
        user: &CurrentUser,
        agent_id: Option<&str>,
        q: &str,
        page: u32,
    ) -> Result<Page<ConversationSummary>, ChatError> {
        static LIST: List = List {
            columns: "c.id, c.title, c.agent_id, COALESCE(a.name, '') AS agent_name, c.updated_at, c.pinned_at",
            from: "conversations c LEFT JOIN agents a ON a.id = c.agent_id AND a.owner_id = c.owner_id",
            filter: "c.owner_id = $1 AND ($2 = '' OR c.agent_id = $2) AND (LOWER(c.title) LIKE $3 ESCAPE '\\' \
                     OR EXISTS (SELECT 1 FROM messages m LEFT JOIN runs r ON r.id = m.run_id \
                     WHERE m.conversation_id = c.id \
                     AND LOWER(COALESCE(r.transcript, m.content)) LIKE $3 ESCAPE '\\'))",
            // Pinned first (the latest pin on top), then the most recently active.
            order: "CASE WHEN c.pinned_at IS NULL THEN 1 ELSE 0 END, c.pinned_at DESC, c.updated_at DESC, c.id DESC",
            per_page: PER_PAGE,
        };
        let pattern = like_pattern(q);
        let args = [Arg::Text(&user.id), Arg::Text(agent_id.unwrap_or_default()), Arg::Text(&pattern)];
        LIST.page(&self.store.pool, &args, page, |r| {
            Ok::<_, ChatError>(ConversationSummary {
                id: r.try_get("id")?,
                title: r.try_get("title")?,
                agent_id: r.try_get("agent_id")?,
                agent_name: r.try_get("agent_name")?,
                updated_at: r.try_get("updated_at")?,
                pinned: r.try_get::<Option<i64>, _>("pinned_at")?.is_some(),
            })
        })
        .await
    }

    /// Pins a conversation to the top of the list, or unpins it.
    pub async fn pin_conversation(&self, user: &CurrentUser, id: &str, pinned: bool) -> Result<(), ChatError> {
        self.conversation(user, id).await?;
        sqlx::query("UPDATE conversations SET pinned_at = $3 WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .bind(pinned.then(now_ms))
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    pub async fn rename_conversation(&self, user: &CurrentUser, id: &str, title: &str) -> Result<(), ChatError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(invalid("title", "required", None));
        }
        if title.chars().count() > TITLE_MAX {
            return Err(invalid("title", "too_long", Some(TITLE_MAX)));
        }
        if title.chars().any(char::is_control) {
            return Err(invalid("title", "control_chars", None));
        }
        self.conversation(user, id).await?;
        sqlx::query("UPDATE conversations SET title = $3 WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .bind(title)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Deletes a conversation; its running answers are stopped first (also those another
    /// instance drives). Their runs keep what they cost, not what they said.
    pub async fn delete_conversation(&self, user: &CurrentUser, id: &str) -> Result<(), ChatError> {
        self.conversation(user, id).await?;
        self.stop_scope(user, id).await?;
        let files = self.conversation_attachments(id).await?;
        let (mut tx, turn) = self.store.begin().await?;
        self.forget_scope(&mut tx, id).await?;
        sqlx::query("DELETE FROM conversations WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(turn);
        self.delete_attachment_blobs(&user.id, &files).await;
        audit::record(self, Some(&user.id), "conversation.delete", id, serde_json::json!({}), "").await;
        Ok(())
    }
}

/// A chat answer as a run's subject: its history is the conversation's branch up to the
/// answer's question.
struct Answer {
    conversation_id: String,
    message_id: String,
    /// Whose attachments the conversation's messages carry.
    owner: String,
}

impl Subject for Answer {
    fn history<'a>(&'a self, engine: &'a Engine) -> futures::future::BoxFuture<'a, Result<Vec<Turn>, String>> {
        Box::pin(async move {
            // The path to this answer only (the answer itself is its last step, empty).
            let path = engine
                .path_to(&self.conversation_id, &self.message_id)
                .await
                .map_err(|e| format!("The conversation could not be read: {e}"))?;
            let path: Vec<&StoredMessage> = path.iter().filter(|m| m.id != self.message_id).collect();
            let mut turns: Vec<Turn> = Vec::with_capacity(path.len());
            let mut cuts = Vec::new();
            let asked: Vec<&str> = path.iter().filter(|m| m.role == Role::User).map(|m| m.id.as_str()).collect();
            let unreadable = |e: ChatError| format!("The attached files could not be read: {e}");
            let mut files = engine.attachments_of(&asked).await.map_err(unreadable)?;
            for m in &path {
                match m.role {
                    Role::User => {
                        let message = match files.remove(&m.id) {
                            Some(f) => {
                                let owner = &self.owner;
                                engine.message_with_attachments(owner, &m.text(), &f).await.map_err(unreadable)?
                            }
                            None => Message::user(&m.text()),
                        };
                        turns.push(Turn::new(m.id.clone(), vec![message]));
                    }
                    Role::Assistant => {
                        // A run that just ended may not have its last events stored yet;
                        // while it is still live here, its log is the truth.
                        let t = match m.run_id.as_deref().and_then(|r| engine.runs.live(r)) {
                            Some(live) => live.transcript(),
                            None => m.transcript(),
                        };
                        cuts.extend(t.parts.iter().filter_map(|p| match p {
                            Part::Context { cut } => Some((turns.len(), cut.clone())),
                            _ => None,
                        }));
                        turns.push(Turn::new(m.id.clone(), t.to_messages()));
                    }
                }
            }
            // The newest cut on the branch stands for everything through the message it
            // names: the conversation is not shortened again from the start.
            let newest = cuts.into_iter().rev().find_map(|(at, cut)| {
                let end = turns[..at].iter().position(|t| t.id == cut.through)?;
                Some((end, cut))
            });
            if let Some((end, cut)) = newest {
                turns.drain(..=end);
                turns.insert(0, Turn::lead(&cut));
            }
            Ok(turns)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::title_from;

    #[test]
    fn titles_are_the_first_words_without_markdown() {
        for (text, title) in [
            ("# Plan **my** week", "Plan my week"),
            ("```rust\nfn main() {}\n```\nWhy does `main` fail?", "Why does main fail?"),
            ("> quoted _idea_ about my_var", "quoted idea about my_var"),
            ("- [ ] a task", "a task"),
            ("1. first step", "first step"),
            ("See [the docs](https://example.com) and ![logo](x.png)", "See the docs and logo"),
            ("   \n\n", "New conversation"),
        ] {
            assert_eq!(title_from(text), title, "{text:?}");
        }
    }

    #[test]
    fn titles_come_from_the_first_line_cut_at_a_word() {
        assert_eq!(title_from("\n  Hello there\nmore"), "Hello there");
        let long = "word ".repeat(30);
        let t = title_from(&long);
        assert!(t.ends_with('…') && t.chars().count() <= 61, "{t}");
    }
}
