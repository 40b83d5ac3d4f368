//! `GET /skills/{id}/files/{*path}`: one file of a skill, as a download. Served with the
//! strict default CSP and `nosniff`, and as an attachment, so an uploaded HTML or SVG file
//! can never run as a page of this site.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::CurrentUser;

use crate::ssr::AppState;

#[derive(serde::Deserialize)]
pub struct Version {
    v: Option<i64>,
}

pub async fn skill_file(
    State(state): State<AppState>,
    user: Option<axum::Extension<CurrentUser>>,
    Path((id, path)): Path<(String, String)>,
    Query(q): Query<Version>,
) -> Response {
    let Some(axum::Extension(user)) = user else { return StatusCode::UNAUTHORIZED.into_response() };
    match state.engine.skill_file(&user, &id, q.v, &path).await {
        Ok(bytes) => {
            let file = path.rsplit('/').next().unwrap_or("file");
            let safe: String =
                file.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            let kind = if path.ends_with(".md") || path.ends_with(".txt") || path.ends_with(".py") {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(kind)), (header::CONTENT_DISPOSITION, disposition)],
                bytes,
            )
                .into_response()
        }
        Err(engine::skills::SkillError::NotFound | engine::skills::SkillError::FileNotFound) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "skill file");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
