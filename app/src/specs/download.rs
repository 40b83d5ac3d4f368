//! `GET /specs/{id}/download[?v=N]`: a spec's text as a Markdown file, for its owner only.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::CurrentUser;
use engine::specs::SpecError;

use crate::ssr::AppState;

#[derive(serde::Deserialize)]
pub struct Version {
    v: Option<i64>,
}

pub async fn download(
    State(state): State<AppState>,
    user: Option<axum::Extension<CurrentUser>>,
    Path(id): Path<String>,
    Query(q): Query<Version>,
) -> Response {
    let Some(axum::Extension(user)) = user else { return StatusCode::UNAUTHORIZED.into_response() };
    match state.engine.get_spec(&user, &id, q.v).await {
        Ok(spec) => {
            let stem: String = spec
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '-' })
                .collect::<String>()
                .trim_matches('-')
                .chars()
                .take(80)
                .collect();
            let stem = if stem.is_empty() { "spec".to_owned() } else { stem };
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{stem}.md\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("text/markdown; charset=utf-8")),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                spec.body,
            )
                .into_response()
        }
        Err(SpecError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "spec download");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
