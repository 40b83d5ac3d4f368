//! Server functions for chat. `run_events` streams a run's events as NDJSON (one
//! `SeqEvent` per line) from a sequence number: the page renders what is stored, then
//! follows the rest live; a reload or a second tab resumes where it was.

use leptos::prelude::*;
use leptos::server_fn::codec::{ByteStream, MultipartData, MultipartFormData, Streaming};
use model::Page;
use model::attachments::AttachmentView;
use model::chat::{ConversationExport, ConversationSummary, ConversationView, Sent, ShareView, SidebarList};

use crate::error::AppError;

#[cfg(feature = "ssr")]
fn opt(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

#[server(endpoint = "chat/list")]
pub async fn list_conversations(
    #[server(default)] agent_id: String,
    #[server(default)] q: String,
    #[server(default)] page: u32,
) -> Result<Page<ConversationSummary>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_conversations(&user, opt(&agent_id), &q, page).await?)
}

/// The first page of the caller's conversations matching `q`, for the sidebar.
#[server(endpoint = "chat/sidebar")]
pub async fn sidebar_conversations(#[server(default)] q: String) -> Result<SidebarList, AppError> {
    let user = crate::ssr::user()?;
    let page = crate::ssr::engine()?.list_conversations(&user, None, &q, 1).await?;
    Ok(SidebarList { now_ms: engine::infra::store::now_ms(), page })
}

/// The conversation's newest messages on the branch shown, or those just before the
/// message `before` (each page of a long conversation is a window of it).
#[server(endpoint = "chat/get")]
pub async fn get_conversation(id: String, #[server(default)] before: String) -> Result<ConversationView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.conversation_window(&user, &id, opt(&before)).await?)
}

/// Sends a message and starts the answer. Without `conversation_id` a new conversation
/// begins; with `parent_id` (a person's message) it is an edit of that message.
/// `attachments`: the ids of files uploaded with `chat/attach`, comma-separated.
#[server(endpoint = "chat/send")]
pub async fn send_message(
    agent_id: String,
    #[server(default)] conversation_id: String,
    #[server(default)] parent_id: String,
    #[server(default)] text: String,
    #[server(default)] attachments: String,
) -> Result<Sent, AppError> {
    use engine::infra::idempotency::{Once, fingerprint};
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    let key = crate::ssr::header("idempotency-key");
    let files: Vec<String> =
        attachments.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let hash = fingerprint(&[
        agent_id.as_bytes(),
        conversation_id.as_bytes(),
        parent_id.as_bytes(),
        text.as_bytes(),
        attachments.as_bytes(),
    ]);
    let start = || async {
        let out = engine::chat::Outgoing {
            agent_id: &agent_id,
            conversation_id: opt(&conversation_id),
            parent_id: opt(&parent_id),
            text: &text,
            attachments: &files,
        };
        let sent = engine.send(&user, out).await?;
        Ok::<_, engine::chat::ChatError>((sent, ()))
    };
    let sent = match engine.once(&user, "chat.send", key.as_deref(), &hash, start).await? {
        Once::First(sent, ()) | Once::Again(sent) => sent,
    };
    leptos_axum::redirect(&format!("/chat/{}", sent.conversation_id));
    Ok(sent)
}

/// Uploads files (`files`, multipart) to go with the next message: checked, counted
/// against the storage quota and kept unsent until a message names them.
#[server(endpoint = "chat/attach", input = MultipartFormData)]
pub async fn attach_files(data: MultipartData) -> Result<Vec<AttachmentView>, AppError> {
    use engine::chat::ChatError;
    use model::attachments::AttachmentProblem;
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    let limits = &engine.settings.limits;
    let broken = |e: &dyn std::fmt::Display| {
        AppError::new(crate::error::ErrorCode::BadRequest, format!("the upload broke off: {e}"))
    };
    let mut parts = data.into_inner().ok_or_else(|| AppError::from(ChatError::from(AttachmentProblem::Empty)))?;
    let mut files = Vec::new();
    while let Some(mut field) = parts.next_field().await.map_err(|e| broken(&e))? {
        let name = field.file_name().unwrap_or_default().to_owned();
        if field.name() != Some("files") || name.is_empty() {
            continue;
        }
        if files.len() >= limits.attachments_per_message as usize {
            let most = u64::from(limits.attachments_per_message);
            return Err(ChatError::from(AttachmentProblem::TooMany(most)).into());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| broken(&e))? {
            bytes.extend_from_slice(&chunk);
            // Refused as soon as it is too large, not once it is all in memory.
            if bytes.len() as u64 > limits.attachment_max_bytes {
                let (size, limit) = (bytes.len() as u64, limits.attachment_max_bytes);
                return Err(ChatError::from(AttachmentProblem::TooLarge { name, size, limit }).into());
            }
        }
        files.push(engine::chat::attachments::NewFile { name, bytes });
    }
    Ok(engine.upload_attachments(&user, files).await?)
}

/// Removes a file uploaded for the next message, before it is sent.
#[server(endpoint = "chat/detach")]
pub async fn discard_attachment(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.discard_attachment(&user, &id).await?)
}

/// Answers the question of the answer `message_id` again (a sibling answer).
#[server(endpoint = "chat/regenerate")]
pub async fn regenerate(message_id: String) -> Result<Sent, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.regenerate(&user, &message_id).await?)
}

/// Carries on an answer that ended before it was done (a sibling that starts with it).
#[server(endpoint = "chat/continue")]
pub async fn continue_answer(message_id: String) -> Result<Sent, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.continue_answer(&user, &message_id).await?)
}

/// Rates an answer: `rating` is `up`, `down`, or `none` to take it back; `note` is
/// optional.
#[server(endpoint = "chat/rate")]
pub async fn rate_answer(message_id: String, rating: String, #[server(default)] note: String) -> Result<(), AppError> {
    use model::chat::Rating;
    let user = crate::ssr::user()?;
    let rating = match rating.as_str() {
        "up" | "down" => Some(Rating { up: rating == "up", note }),
        "none" => None,
        _ => return Err(AppError::invalid(model::FieldErrors(vec![model::FieldError::new("rating", "invalid")]))),
    };
    Ok(crate::ssr::engine()?.rate_answer(&user, &message_id, rating).await?)
}

/// Shows the branch through `message_id`.
#[server(endpoint = "chat/switch")]
pub async fn switch_branch(message_id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.switch_branch(&user, &message_id).await?)
}

#[server(endpoint = "chat/stop")]
pub async fn stop_run(message_id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.stop_answer(&user, &message_id).await?)
}

/// Allows or denies a tool call the answer waits on.
#[server(endpoint = "chat/answer")]
pub async fn answer_tool(message_id: String, call_id: String, #[server(default)] allow: bool) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.answer_tool(&user, &message_id, &call_id, allow).await?)
}

#[server(endpoint = "chat/rename")]
pub async fn rename_conversation(id: String, title: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.rename_conversation(&user, &id, &title).await?)
}

/// Pins the conversation to the top of the list, or unpins it.
#[server(endpoint = "chat/pin")]
pub async fn pin_conversation(id: String, #[server(default)] pinned: bool) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.pin_conversation(&user, &id, pinned).await?)
}

/// Deletes the conversation, then goes to `back` (another conversation's page, when one
/// is deleted from its sidebar) or the conversations list.
#[server(endpoint = "chat/delete")]
pub async fn delete_conversation(id: String, #[server(default)] back: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.delete_conversation(&user, &id).await?;
    let back = back_within_chat(&back, &id);
    leptos_axum::redirect(&back);
    Ok(())
}

/// Where to go after deleting `deleted`: `back` if it is a page of chat other than the
/// deleted conversation's (never another site), else the list.
#[cfg(feature = "ssr")]
fn back_within_chat(back: &str, deleted: &str) -> String {
    let path_ok = back.starts_with("/chat/")
        && back[6..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && &back[6..] != deleted;
    if path_ok { back.to_owned() } else { "/chat".to_owned() }
}

/// The conversation's live share link, if any.
#[server(endpoint = "chat/share/get")]
pub async fn get_share(id: String) -> Result<Option<ShareView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.current_share(&user, &id).await?)
}

/// Makes (or returns) the conversation's read-only link to the branch shown now.
#[server(endpoint = "chat/share")]
pub async fn share_conversation(id: String) -> Result<ShareView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.share_conversation(&user, &id).await?)
}

/// Ends the conversation's share link.
#[server(endpoint = "chat/unshare")]
pub async fn unshare_conversation(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.unshare_conversation(&user, &id).await?)
}

/// What a share link shows; anyone may ask, signed in or not.
#[server(endpoint = "chat/shared")]
pub async fn shared_conversation(token: String) -> Result<ConversationExport, AppError> {
    Ok(crate::ssr::engine()?.shared_conversation(&token).await?)
}

/// The events of the run writing `message_id` after sequence number `after`, one JSON
/// object per line, until the run ends. Leaving does not stop the run.
#[server(endpoint = "chat/events", output = Streaming)]
pub async fn run_events(message_id: String, #[server(default)] after: u64) -> Result<ByteStream<AppError>, AppError> {
    let user = crate::ssr::user()?;
    let events = crate::ssr::engine()?.subscribe_answer(&user, &message_id, after).await?;
    Ok(crate::ssr::ndjson(events))
}
