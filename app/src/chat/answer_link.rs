//! `GET /chat/answers/{id}`: the conversation that holds the answer `id`, at that answer
//! (how a run's trace links back to the answer it wrote). Another person's answer is
//! not found.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::CurrentUser;

use crate::ssr::AppState;

pub async fn answer_link(
    State(state): State<AppState>,
    user: Option<axum::Extension<CurrentUser>>,
    Path(id): Path<String>,
) -> Response {
    let Some(axum::Extension(user)) = user else { return StatusCode::UNAUTHORIZED.into_response() };
    match state.engine.answer_conversation(&user, &id).await {
        Ok(conversation) => {
            (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/chat/{conversation}#m-{id}"))]).into_response()
        }
        Err(engine::chat::ChatError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "answer link");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
