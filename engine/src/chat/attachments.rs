//! Files attached to a person's message. An upload is checked (count, size, content
//! against name), counted against the owner's storage quota, kept as a blob
//! (`attachments/<owner>/<id>`) and recorded unsent; sending a message takes the unsent
//! attachments it names. A run reads them back into the message it sends the model:
//! images as image blocks, text files as text with their names.

use base64::Engine as _;
use model::attachments::{AttachmentKind, AttachmentProblem, AttachmentView, classify, clean_name};
use model::chat::{Block, Message};
use object_store::{ObjectStoreExt, PutPayload};
use sqlx::Row;

use super::ChatError;
use crate::Engine;
use crate::auth::CurrentUser;
use crate::infra::store::{new_id, now_ms};

/// An uploaded file, before it is checked.
pub struct NewFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn blob_key(owner: &str, id: &str) -> object_store::path::Path {
    crate::infra::storage::key(&["attachments", owner], id)
}

/// Bytes of attachments `owner` keeps (sent or not).
pub(crate) async fn bytes_kept<'e, E>(db: E, owner: &str) -> Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let n: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(size) AS BIGINT) FROM attachments WHERE owner_id = $1")
        .bind(owner)
        .fetch_one(db)
        .await?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

fn view(r: &sqlx::any::AnyRow) -> Result<AttachmentView, sqlx::Error> {
    Ok(AttachmentView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        media_type: r.try_get("media_type")?,
        kind: AttachmentKind::parse(&r.try_get::<String, _>("kind")?),
        size: r.try_get::<i64, _>("size")?.max(0) as u64,
    })
}

const COLUMNS: &str = "id, name, media_type, kind, size";

impl Engine {
    /// Checks and stores uploaded files as the user's unsent attachments. All or nothing: a
    /// file refused refuses the upload, naming it and why.
    #[tracing::instrument(skip_all, fields(user = %user.id, files = files.len()))]
    pub async fn upload_attachments(
        &self,
        user: &CurrentUser,
        files: Vec<NewFile>,
    ) -> Result<Vec<AttachmentView>, ChatError> {
        let limits = &self.settings.limits;
        if files.is_empty() {
            return Err(AttachmentProblem::Empty.into());
        }
        if files.len() > limits.attachments_per_message as usize {
            return Err(AttachmentProblem::TooMany(u64::from(limits.attachments_per_message)).into());
        }
        let mut checked = Vec::with_capacity(files.len());
        for f in files {
            let name = clean_name(&f.name);
            let size = f.bytes.len() as u64;
            if size > limits.attachment_max_bytes {
                return Err(AttachmentProblem::TooLarge { name, size, limit: limits.attachment_max_bytes }.into());
            }
            let (kind, media_type) = classify(&name, &f.bytes)?;
            let v = AttachmentView { id: new_id(), name, media_type: media_type.to_owned(), kind, size };
            checked.push((v, f.bytes));
        }
        let upload: u64 = checked.iter().map(|(v, _)| v.size).sum();
        self.check_quota(user, upload).await?;
        for (v, bytes) in &checked {
            self.blobs.put(&blob_key(&user.id, &v.id), PutPayload::from(bytes.clone())).await.map_err(blob_error)?;
        }
        let views: Vec<AttachmentView> = checked.into_iter().map(|(v, _)| v).collect();
        if let Err(e) = self.record_attachments(user, &views, upload).await {
            let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
            self.delete_attachment_blobs(&user.id, &ids).await;
            return Err(e);
        }
        Ok(views)
    }

    /// The quota with `upload` more bytes, before anything is written.
    async fn check_quota(&self, user: &CurrentUser, upload: u64) -> Result<(), ChatError> {
        let mut conn = self.store.pool.acquire().await?;
        let used = crate::quota::used(&mut conn, &user.id).await?;
        let quota = self.settings.limits.storage_per_user_bytes;
        if used.saturating_add(upload) > quota {
            return Err(ChatError::Quota { upload, used, quota });
        }
        Ok(())
    }

    async fn record_attachments(
        &self,
        user: &CurrentUser,
        views: &[AttachmentView],
        upload: u64,
    ) -> Result<(), ChatError> {
        let now = now_ms();
        let (mut tx, turn) = self.store.begin().await?;
        // The quota again, with the owner's row locked (see skills): uploads at once
        // cannot each pass it.
        self.lock_user(&mut tx, &user.id).await?;
        let used = crate::quota::used(&mut tx, &user.id).await?;
        let quota = self.settings.limits.storage_per_user_bytes;
        if used.saturating_add(upload) > quota {
            return Err(ChatError::Quota { upload, used, quota });
        }
        for v in views {
            sqlx::query(
                "INSERT INTO attachments (id, owner_id, name, media_type, kind, size, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&v.id)
            .bind(&user.id)
            .bind(&v.name)
            .bind(&v.media_type)
            .bind(v.kind.as_str())
            .bind(v.size as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        drop(turn);
        Ok(())
    }

    /// Removes an attachment that was uploaded but not sent (its chip's ×).
    pub async fn discard_attachment(&self, user: &CurrentUser, id: &str) -> Result<(), ChatError> {
        let gone = sqlx::query("DELETE FROM attachments WHERE id = $1 AND owner_id = $2 AND message_id IS NULL")
            .bind(id)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(ChatError::NotFound);
        }
        self.delete_attachment_blobs(&user.id, &[id.to_owned()]).await;
        Ok(())
    }

    /// The user's unsent attachments `ids`, checked for a message the agent `models` will
    /// read: each must exist and be unsent, at most the per-message count, and no image for
    /// a model that reads text only.
    pub(crate) async fn unsent_attachments(
        &self,
        user: &CurrentUser,
        ids: &[String],
        models: &[&str],
    ) -> Result<Vec<AttachmentView>, ChatError> {
        let most = self.settings.limits.attachments_per_message;
        if ids.len() > most as usize {
            return Err(AttachmentProblem::TooMany(u64::from(most)).into());
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM attachments WHERE id = $1 AND owner_id = $2 AND message_id IS NULL"
            )))
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or_else(|| super::invalid("attachments", "not_found", None))?;
            out.push(view(&row)?);
        }
        if out.iter().any(|a| a.kind == AttachmentKind::Image)
            && let Some(m) = models.iter().find(|m| !self.settings.vision(m))
        {
            return Err(AttachmentProblem::TextOnly { model: (*m).to_owned() }.into());
        }
        Ok(out)
    }

    /// Gives the attachments `ids` to the message `message_id`, in the transaction that
    /// stores it; an attachment sent meanwhile (another tab) fails the message.
    pub(crate) async fn take_attachments(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        owner: &str,
        ids: &[String],
        message_id: &str,
    ) -> Result<(), ChatError> {
        for id in ids {
            let taken = sqlx::query(
                "UPDATE attachments SET message_id = $1 WHERE id = $2 AND owner_id = $3 AND message_id IS NULL",
            )
            .bind(message_id)
            .bind(id)
            .bind(owner)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if taken == 0 {
                return Err(super::invalid("attachments", "not_found", None));
            }
        }
        Ok(())
    }

    /// The attachments of the messages `ids` (of a conversation the caller has checked),
    /// by message.
    pub(crate) async fn attachments_of(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<AttachmentView>>, ChatError> {
        let mut out: std::collections::HashMap<String, Vec<AttachmentView>> = Default::default();
        for chunk in ids.chunks(100) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT message_id, {COLUMNS} FROM attachments WHERE message_id IN ({}) ORDER BY created_at, id",
                marks.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.store.pool).await? {
                out.entry(r.try_get("message_id")?).or_default().push(view(&r)?);
            }
        }
        Ok(out)
    }

    /// An attachment and its bytes, for its owner.
    pub async fn attachment(&self, user: &CurrentUser, id: &str) -> Result<(AttachmentView, Vec<u8>), ChatError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM attachments WHERE id = $1 AND owner_id = $2"
        )))
        .bind(id)
        .bind(&user.id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(ChatError::AttachmentNotFound)?;
        let v = view(&row)?;
        let bytes = self.attachment_bytes(&user.id, &v.id).await?;
        Ok((v, bytes))
    }

    async fn attachment_bytes(&self, owner: &str, id: &str) -> Result<Vec<u8>, ChatError> {
        let got = self.blobs.get(&blob_key(owner, id)).await.map_err(blob_error)?;
        Ok(got.bytes().await.map_err(blob_error)?.to_vec())
    }

    /// A person's message as the model reads it: each text file with its name, then the
    /// images, then what they wrote.
    pub(crate) async fn message_with_attachments(
        &self,
        owner: &str,
        text: &str,
        attachments: &[AttachmentView],
    ) -> Result<Message, ChatError> {
        let mut content = Vec::with_capacity(attachments.len() + 1);
        for a in attachments.iter().filter(|a| a.kind == AttachmentKind::Text) {
            let body = String::from_utf8_lossy(&self.attachment_bytes(owner, &a.id).await?).into_owned();
            content.push(Block::Text { text: text_file(&a.name, &body) });
        }
        for a in attachments.iter().filter(|a| a.kind == AttachmentKind::Image) {
            let bytes = self.attachment_bytes(owner, &a.id).await?;
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            content.push(Block::Image { media_type: a.media_type.clone(), data });
        }
        if !text.is_empty() {
            content.push(Block::Text { text: text.to_owned() });
        }
        Ok(Message { role: model::chat::Role::User, content })
    }

    /// The blobs of the attachments of a conversation's messages, before it is deleted
    /// (their rows go with the messages).
    pub(crate) async fn conversation_attachments(&self, conversation_id: &str) -> Result<Vec<String>, ChatError> {
        Ok(sqlx::query_scalar(
            "SELECT a.id FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.conversation_id = $1",
        )
        .bind(conversation_id)
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// Best effort: removes attachments' blobs (a failed upload, a deleted conversation).
    pub(crate) async fn delete_attachment_blobs(&self, owner: &str, ids: &[String]) {
        for id in ids {
            if let Err(e) = self.blobs.delete(&blob_key(owner, id)).await {
                tracing::warn!(error = %e, "could not remove an attachment's blob");
            }
        }
    }
}

fn blob_error(e: object_store::Error) -> ChatError {
    ChatError::Blobs(e.to_string())
}

/// A text file as the model reads it: its name, then its content in a fence longer than
/// any run of backticks in it.
pub fn text_file(name: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("Attached file `{name}`:\n\n{fence}\n{body}\n{fence}")
}

impl From<AttachmentProblem> for ChatError {
    fn from(p: AttachmentProblem) -> Self {
        Self::Attachment(p)
    }
}
