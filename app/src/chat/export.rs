//! `GET /chat/{id}/export?format=md|json`: the conversation's branch shown, every message
//! of it, as a download for its owner. Another person's conversation is not found.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::CurrentUser;

use crate::ssr::AppState;

#[derive(serde::Deserialize)]
pub struct Format {
    format: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    user: Option<axum::Extension<CurrentUser>>,
    Path(id): Path<String>,
    Query(q): Query<Format>,
) -> Response {
    let Some(axum::Extension(user)) = user else { return StatusCode::UNAUTHORIZED.into_response() };
    let json = match q.format.as_deref() {
        None | Some("md") => false,
        Some("json") => true,
        Some(_) => {
            return (StatusCode::BAD_REQUEST, "format: use md or json\n").into_response();
        }
    };
    match state.engine.export_conversation(&user, &id).await {
        Ok(c) => {
            let stem: String = c
                .title
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '-' })
                .collect::<String>()
                .split('-')
                .filter(|p| !p.is_empty())
                .take(8)
                .collect::<Vec<_>>()
                .join("-");
            let stem = if stem.is_empty() { "conversation".to_owned() } else { stem };
            let (body, kind, ext) = if json {
                (serde_json::to_string_pretty(&c).unwrap_or_default(), "application/json", "json")
            } else {
                (c.to_markdown(), "text/markdown; charset=utf-8", "md")
            };
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{stem}.{ext}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            ([(header::CONTENT_TYPE, HeaderValue::from_static(kind)), (header::CONTENT_DISPOSITION, disposition)], body)
                .into_response()
        }
        Err(engine::chat::ChatError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "export");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
