//! `GET /chat/attachments/{id}`: a file attached to a message, for its owner only (anyone
//! else gets 404). Images go out as what their content was checked to be (PNG, JPEG, GIF
//! or WebP, never SVG), text as plain text; with `nosniff` and the strict CSP on every
//! response, neither can run as a page of this site.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::CurrentUser;
use model::attachments::AttachmentKind;

use crate::ssr::AppState;

pub async fn attachment(
    State(state): State<AppState>,
    user: Option<axum::Extension<CurrentUser>>,
    Path(id): Path<String>,
) -> Response {
    let Some(axum::Extension(user)) = user else { return StatusCode::UNAUTHORIZED.into_response() };
    match state.engine.attachment(&user, &id).await {
        Ok((a, bytes)) => {
            let kind = match a.kind {
                AttachmentKind::Image => HeaderValue::from_str(&a.media_type)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
                AttachmentKind::Text => HeaderValue::from_static("text/plain; charset=utf-8"),
            };
            let safe: String =
                a.name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
            let disposition = HeaderValue::from_str(&format!("inline; filename=\"{safe}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("inline"));
            let private = HeaderValue::from_static("private, max-age=86400");
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CACHE_CONTROL, private),
                ],
                bytes,
            )
                .into_response()
        }
        Err(engine::chat::ChatError::AttachmentNotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "attachment");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
