//! The OpenAI-compatible API over agents, for any OpenAI client: `GET /v1/models` lists
//! the caller's agents by slug; `POST /v1/chat/completions` with `model` = an agent's
//! slug runs that agent, streamed as OpenAI chunks (`stream: true`, with a usage chunk
//! when `stream_options.include_usage`) or answered whole. The caller is the owner of a
//! personal API key (`Authorization: Bearer agk_…`); cookies play no part, so there is
//! nothing to forge cross-site. Errors have OpenAI's shape.

use std::convert::Infallible;

use app::ssr::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::chat::ChatError;
use engine::openai::ApiMessage;
use engine::{AuthError, CurrentUser, Engine};
use futures::StreamExt;
use model::chat::{RunEvent, RunStatus, Transcript};
use serde::Deserialize;
use serde_json::{Value, json};

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    let body = json!({ "error": { "message": message.into(), "type": kind, "param": null, "code": code } });
    (status, Json(body)).into_response()
}

/// The key's owner, within the per-user request rate.
async fn caller(engine: &Engine, headers: &HeaderMap) -> Result<CurrentUser, Response> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "Send a personal API key (Settings → API keys) as Authorization: Bearer agk_…",
        ));
    };
    let user = match engine.authenticate_api_key(key).await {
        Ok(u) => u,
        Err(AuthError::Disabled) => {
            return Err(error(StatusCode::FORBIDDEN, "account_disabled", "This account is disabled."));
        }
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "API key check failed");
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error."));
        }
        Err(_) => return Err(error(StatusCode::UNAUTHORIZED, "invalid_api_key", "Invalid API key.")),
    };
    if let Err(wait) = engine.limits.requests.check(&format!("user:{}", user.id)) {
        let mut res = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            format!("Too many requests. Wait {} seconds, then try again.", wait.secs()),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.secs().to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(res);
    }
    Ok(user)
}

fn model_object(slug: &str, created_ms: i64) -> Value {
    json!({ "id": slug, "object": "model", "created": created_ms / 1000, "owned_by": "agentry" })
}

pub async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let user = match caller(&state.engine, &headers).await {
        Ok(u) => u,
        Err(res) => return res,
    };
    match state.engine.agent_models(&user).await {
        Ok(models) => {
            let data: Vec<Value> = models.iter().map(|(slug, at)| model_object(slug, *at)).collect();
            Json(json!({ "object": "list", "data": data })).into_response()
        }
        Err(e) => chat_error(e),
    }
}

pub async fn get_model(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let user = match caller(&state.engine, &headers).await {
        Ok(u) => u,
        Err(res) => return res,
    };
    match state.engine.agent_models(&user).await {
        Ok(models) => match models.iter().find(|(slug, _)| *slug == id) {
            Some((slug, at)) => Json(model_object(slug, *at)).into_response(),
            None => error(StatusCode::NOT_FOUND, "model_not_found", format!("No agent with the slug {id:?}.")),
        },
        Err(e) => chat_error(e),
    }
}

fn chat_error(e: ChatError) -> Response {
    match e {
        ChatError::Invalid(fields) => {
            if fields.0.iter().any(|f| f.field == "model" && f.rule == "not_found") {
                return error(StatusCode::NOT_FOUND, "model_not_found", "No agent of yours has this slug.");
            }
            let text: Vec<String> = fields
                .0
                .iter()
                .map(|f| match f.limit {
                    Some(n) => format!("{}: {} (limit {n})", f.field, f.rule),
                    None => format!("{}: {}", f.field, f.rule),
                })
                .collect();
            error(StatusCode::BAD_REQUEST, "invalid_request", text.join("; "))
        }
        ChatError::NotFound => error(StatusCode::NOT_FOUND, "not_found", "Not found."),
        ChatError::NotRunning => error(StatusCode::CONFLICT, "not_running", "This answer is not running."),
        ChatError::Agent(e) => error(StatusCode::BAD_REQUEST, "agent_unusable", e.to_string()),
        ChatError::Store(e) => {
            tracing::error!(error = %e, "chat completion failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error.")
        }
    }
}

#[derive(Deserialize)]
struct CompletionRequest {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Content,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<InPart>),
    #[default]
    None,
}

#[derive(Deserialize)]
struct InPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

fn finish_reason(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Incomplete => "length",
        _ => "stop",
    }
}

fn usage(t: &Transcript) -> Value {
    json!({
        "prompt_tokens": t.input_tokens,
        "completion_tokens": t.output_tokens,
        "total_tokens": t.input_tokens + t.output_tokens,
    })
}

pub async fn chat_completions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let engine = state.engine;
    let user = match caller(&engine, &headers).await {
        Ok(u) => u,
        Err(res) => return res,
    };
    let req: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_json", format!("The request body: {e}")),
    };
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        let text = match m.content {
            Content::Text(t) => t,
            Content::None => String::new(),
            Content::Parts(parts) => {
                if let Some(p) = parts.iter().find(|p| p.kind != "text") {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "unsupported_content",
                        format!("messages[{i}].content: only text parts are supported, not {:?}.", p.kind),
                    );
                }
                parts.into_iter().map(|p| p.text).collect::<Vec<_>>().join("\n")
            }
        };
        messages.push(ApiMessage { role: m.role, text });
    }
    let (sent, events) = match engine.api_chat(&user, &req.model, &messages).await {
        Ok(s) => s,
        Err(e) => return chat_error(e),
    };
    let id = format!("chatcmpl-{}", sent.assistant_message_id);
    let created = engine::store::now_ms() / 1000;
    let model = req.model;
    if !req.stream {
        let mut t = Transcript::default();
        let mut events = std::pin::pin!(events);
        while let Some(e) = events.next().await {
            t.apply(&e);
        }
        if t.status == RunStatus::Failed {
            return error(StatusCode::BAD_GATEWAY, "upstream_failed", t.error);
        }
        return Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": t.text(), "refusal": null },
                "finish_reason": finish_reason(t.status),
                "logprobs": null,
            }],
            "usage": usage(&t),
        }))
        .into_response();
    }
    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
        })
    };
    // A token's chunk is this with its text (as a JSON string) in the middle: written once,
    // not built as a JSON tree per token.
    let (head, tail) = {
        let marker = "\u{1}";
        let whole = chunk(json!({ "content": marker }), None).to_string();
        let at = whole.find(&serde_json::to_string(marker).unwrap_or_default()).unwrap_or(whole.len());
        let (head, rest) = whole.split_at(at);
        (head.to_owned(), rest[serde_json::to_string(marker).unwrap_or_default().len()..].to_owned())
    };
    let first = chunk(json!({ "role": "assistant", "content": "" }), None).to_string();
    // Only the usage is needed from the events besides the text.
    let mut t = Transcript::default();
    let lines = events.flat_map(move |e| {
        let mut out: Vec<String> = Vec::new();
        match &e.event {
            RunEvent::Text { text } => {
                let text = serde_json::to_string(text).unwrap_or_default();
                let mut line = String::with_capacity(head.len() + text.len() + tail.len());
                line.push_str(&head);
                line.push_str(&text);
                line.push_str(&tail);
                out.push(line);
            }
            RunEvent::Usage { .. } => t.apply(&e),
            RunEvent::Status { status, error } if status.is_final() => {
                if *status == RunStatus::Failed {
                    out.push(
                        json!({ "error": { "message": error, "type": "api_error", "code": "upstream_failed" } })
                            .to_string(),
                    );
                } else {
                    out.push(chunk(json!({}), Some(finish_reason(*status))).to_string());
                    if include_usage {
                        let mut u = chunk(json!({}), None);
                        u["choices"] = json!([]);
                        u["usage"] = usage(&t);
                        out.push(u.to_string());
                    }
                }
            }
            _ => {}
        }
        futures::stream::iter(out)
    });
    let lines = futures::stream::iter([first]).chain(lines).chain(futures::stream::iter(["[DONE]".to_owned()]));
    let body = SseLines {
        lines: lines.boxed(),
        timer: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
        last: tokio::time::Instant::now(),
    };
    let mut res = axum::body::Body::from_stream(body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    res
}

/// A comment line goes out after this long without an event, so that proxies keep an
/// answer that waits (on a tool, say) open.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Server-sent events, one per line of `lines` (its `data`), and a keep-alive comment after
/// [`KEEP_ALIVE`] of silence. The timer is moved on only when it fires early, not at every
/// event (axum's `Sse` updates the timer wheel per token).
struct SseLines {
    lines: futures::stream::BoxStream<'static, String>,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    last: tokio::time::Instant,
}

impl futures::Stream for SseLines {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        match this.lines.poll_next_unpin(cx) {
            Poll::Ready(Some(line)) => {
                this.last = tokio::time::Instant::now();
                return Poll::Ready(Some(Ok(sse_event(&line))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let (due, now) = (this.last + KEEP_ALIVE, tokio::time::Instant::now());
            if now >= due {
                this.last = now;
                this.timer.as_mut().reset(now + KEEP_ALIVE);
                return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
            }
            this.timer.as_mut().reset(due);
        }
        Poll::Pending
    }
}

/// One event: a `data:` line per line of `data`, then a blank line.
fn sse_event(data: &str) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 8);
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    Bytes::from(out)
}
