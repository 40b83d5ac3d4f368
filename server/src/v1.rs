//! The OpenAI-compatible API over agents, for any OpenAI client: `GET /v1/models` lists
//! the caller's agents by slug; `POST /v1/chat/completions` with `model` = an agent's
//! slug runs that agent, streamed as OpenAI chunks (`stream: true`, with a usage chunk
//! when `stream_options.include_usage`) or answered whole. The caller is the owner of a
//! personal API key (`Authorization: Bearer agk_…`); cookies play no part, so there is
//! nothing to forge cross-site. Errors have OpenAI's shape.

use std::convert::Infallible;

use app::ssr::AppState;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::auth::ClientInfo;
use engine::chat::ChatError;
use engine::chat::v1::ApiMessage;
use engine::infra::idempotency::Once;
use engine::infra::limits::RetryAfter;
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

fn too_many(wait: RetryAfter) -> Response {
    let mut res = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
        format!("Too many requests. Wait {} seconds, then try again.", wait.secs()),
    );
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.secs()));
    res
}

/// The key's owner, within the per-user request rate. Until its key proves who it is, a
/// request is anonymous and takes its turn from its address's allowance like any anonymous
/// request (taken before the key is looked up, so requests sent at once cannot all slip
/// through on the last one); a valid key's request gets it back.
async fn caller(engine: &Engine, headers: &HeaderMap, client: &ClientInfo) -> Result<CurrentUser, Response> {
    let address = format!("ip:{}", client.ip);
    engine.limits.requests.check(&address).map_err(too_many)?;
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
            engine.limits.requests.refund(&address);
            tracing::error!(error = %e, "API key check failed: the database is unavailable");
            let mut res = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Agentry cannot reach its database. Try again in a moment.",
            );
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Err(res);
        }
        Err(_) => return Err(error(StatusCode::UNAUTHORIZED, "invalid_api_key", "Invalid API key.")),
    };
    engine.limits.requests.refund(&address);
    engine.limits.requests.check(&format!("user:{}", user.id)).map_err(too_many)?;
    Ok(user)
}

fn model_object(slug: &str, created_ms: i64) -> Value {
    json!({ "id": slug, "object": "model", "created": created_ms / 1000, "owned_by": "agentry" })
}

pub async fn list_models(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    headers: HeaderMap,
) -> Response {
    let user = match caller(&state.engine, &headers, &client).await {
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

pub async fn get_model(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match caller(&state.engine, &headers, &client).await {
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
        ChatError::Invalid(fields)
            if fields.get(engine::infra::idempotency::FIELD).is_some_and(|f| f.rule == "reused") =>
        {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key: this key was used for a different request in the last 24 hours.",
            )
        }
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
        ChatError::NotFound | ChatError::ShareNotFound | ChatError::AttachmentNotFound => {
            error(StatusCode::NOT_FOUND, "not_found", "Not found.")
        }
        ChatError::Attachment(_) | ChatError::Quota { .. } => {
            error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
        }
        ChatError::NotRunning => error(StatusCode::CONFLICT, "not_running", "This answer is not running."),
        ChatError::Agent(e) => error(StatusCode::BAD_REQUEST, "agent_unusable", e.to_string()),
        ChatError::Store(_) | ChatError::Blobs(_) => {
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

/// An answer that ended at a limit finishes as `length`; every other finished one as `stop`.
fn finish_reason(at_limit: bool) -> &'static str {
    if at_limit { "length" } else { "stop" }
}

/// How an answer that did not finish is reported, the way OpenAI clients understand (they
/// raise on an error status, and on an `error` event inside a stream): `None` when it
/// finished, or stopped at one of its limits.
fn failure(status: RunStatus, at_limit: bool, error: &str) -> Option<(StatusCode, &'static str, String)> {
    let (code, name, fallback) = match status {
        RunStatus::Done | RunStatus::Running | RunStatus::Waiting => return None,
        RunStatus::Incomplete if at_limit => return None,
        RunStatus::Incomplete | RunStatus::Failed => {
            (StatusCode::BAD_GATEWAY, "upstream_failed", "The model's provider failed before the answer was complete.")
        }
        RunStatus::Interrupted => {
            (StatusCode::SERVICE_UNAVAILABLE, "interrupted", "The server stopped before the answer was complete.")
        }
        RunStatus::Stopped => {
            (StatusCode::CONFLICT, "answer_stopped", "The answer was stopped before it was complete.")
        }
    };
    Some((code, name, if error.is_empty() { fallback.to_owned() } else { error.to_owned() }))
}

fn usage(t: &Transcript) -> Value {
    json!({
        "prompt_tokens": t.input_tokens,
        "completion_tokens": t.output_tokens,
        "total_tokens": t.input_tokens + t.output_tokens,
    })
}

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let engine = state.engine;
    let user = match caller(&engine, &headers, &client).await {
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
    let key = match headers.get("idempotency-key").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key: use at most 255 visible ASCII characters.",
            );
        }
    };
    let hash = engine::infra::idempotency::fingerprint(&[&body]);
    let started = engine.once(&user, "v1.chat", key, &hash, || engine.api_chat(&user, &req.model, &messages)).await;
    let (sent, events) = match started {
        Ok(Once::First(sent, events)) => (sent, events),
        Ok(Once::Again(sent)) => match engine.replay_answer(&sent).await {
            Ok(events) => (sent, events),
            Err(e) => return chat_error(e),
        },
        Err(e) => return chat_error(e),
    };
    let id = format!("chatcmpl-{}", sent.assistant_message_id);
    let created = engine::infra::store::now_ms() / 1000;
    let model = req.model;
    if !req.stream {
        let mut t = Transcript::default();
        let mut events = std::pin::pin!(events);
        while let Some(e) = events.next().await {
            t.apply(&e);
        }
        if let Some((status, code, message)) = failure(t.status, t.at_limit, &t.error) {
            return error(status, code, message);
        }
        return Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": t.text(), "refusal": null },
                "finish_reason": finish_reason(t.at_limit),
                "logprobs": null,
            }],
            "usage": usage(&t),
        }))
        .into_response();
    }
    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    // The status line waits for the first text (for at most a keep-alive period): an answer
    // that fails before any output is an HTTP error, as clients expect, not a 200 stream.
    let mut events = events;
    let mut early = Vec::new();
    let waited = tokio::time::timeout(KEEP_ALIVE, async {
        while let Some(e) = events.next().await {
            let decisive = match &e.event {
                RunEvent::Text { .. } => true,
                RunEvent::Status { status, .. } => status.is_final(),
                _ => false,
            };
            early.push(e);
            if decisive {
                break;
            }
        }
    })
    .await;
    if waited.is_ok()
        && let Some(RunEvent::Status { status, error: text, limit }) = early.last().map(|e| &e.event)
        && let Some((status, code, message)) = failure(*status, *limit, text)
    {
        return error(status, code, message);
    }
    let body = Chunks::new(events, early, id, created, model, include_usage);
    let mut res = axum::body::Body::from_stream(body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    res
}

/// A comment line goes out after at least this long without an event (and at most twice
/// this), so that proxies keep an answer that waits (on a tool, say) open.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// A streamed answer as server-sent events of OpenAI chunks: the role chunk, a chunk per
/// text delta, the finish chunk (and the usage chunk when asked for), then `[DONE]`; a
/// keep-alive comment in long silences. One stream by hand, not a chain of combinators,
/// and a token's event is written straight into its buffer: this runs for every token.
struct Chunks {
    events: futures::stream::BoxStream<'static, model::chat::SeqEvent>,
    /// A text chunk is `head`, the text as a JSON string, then `tail`.
    head: String,
    tail: String,
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    /// Only the usage is kept from the events besides the text.
    usage: Transcript,
    /// Events written but not yet sent (the end's several).
    queue: std::collections::VecDeque<Bytes>,
    /// The events are over (`[DONE]` is queued).
    over: bool,
    /// Whether anything went out since the keep-alive timer last fired: the timer is
    /// reset only when it fires, not at every event (a timer-wheel update per token).
    sent: bool,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Chunks {
    /// `early`: events already taken from `events` (before the status line went out).
    fn new(
        events: futures::stream::BoxStream<'static, model::chat::SeqEvent>,
        early: Vec<model::chat::SeqEvent>,
        id: String,
        created: i64,
        model: String,
        include_usage: bool,
    ) -> Self {
        let mut this = Self {
            events,
            head: String::new(),
            tail: String::new(),
            id,
            created,
            model,
            include_usage,
            usage: Transcript::default(),
            queue: std::collections::VecDeque::with_capacity(4),
            over: false,
            sent: false,
            timer: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
        };
        // The text chunk's two halves, cut around a marker.
        let marker = serde_json::to_string("\u{1}").unwrap_or_default();
        let whole = this.chunk(json!({ "content": "\u{1}" }), None).to_string();
        let at = whole.find(&marker).unwrap_or(whole.len());
        this.head = whole[..at].to_owned();
        this.tail = whole.get(at + marker.len()..).unwrap_or_default().to_owned();
        let first = this.chunk(json!({ "role": "assistant", "content": "" }), None).to_string();
        this.queue.push_back(data_event(&first));
        for e in &early {
            if let Some(b) = this.on_event(e) {
                this.queue.push_back(b);
            }
        }
        this.over =
            early.last().is_some_and(|e| matches!(&e.event, RunEvent::Status { status, .. } if status.is_final()));
        if this.over {
            this.queue.push_back(data_event("[DONE]"));
        }
        this
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
        })
    }

    /// What `e` sends: a text chunk at once, the end's chunks queued; `None` for the rest.
    fn on_event(&mut self, e: &model::chat::SeqEvent) -> Option<Bytes> {
        match &e.event {
            RunEvent::Text { text } => {
                let mut out = Vec::with_capacity(self.head.len() + text.len() + self.tail.len() + 12);
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(self.head.as_bytes());
                // A string always serializes.
                let _ = serde_json::to_writer(&mut out, text);
                out.extend_from_slice(self.tail.as_bytes());
                out.extend_from_slice(b"\n\n");
                return Some(Bytes::from(out));
            }
            RunEvent::Usage { .. } => self.usage.apply(e),
            RunEvent::Status { status, error, limit } if status.is_final() => {
                if let Some((_, code, message)) = failure(*status, *limit, error) {
                    let line =
                        json!({ "error": { "message": message, "type": "api_error", "param": null, "code": code } });
                    self.queue.push_back(data_event(&line.to_string()));
                } else {
                    let finish = self.chunk(json!({}), Some(finish_reason(*limit)));
                    self.queue.push_back(data_event(&finish.to_string()));
                    if self.include_usage {
                        let mut u = self.chunk(json!({}), None);
                        u["choices"] = json!([]);
                        u["usage"] = usage(&self.usage);
                        self.queue.push_back(data_event(&u.to_string()));
                    }
                }
            }
            _ => {}
        }
        None
    }
}

impl futures::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            if let Some(b) = this.queue.pop_front() {
                this.sent = true;
                return Poll::Ready(Some(Ok(b)));
            }
            if this.over {
                return Poll::Ready(None);
            }
            match this.events.poll_next_unpin(cx) {
                Poll::Ready(Some(e)) => {
                    if let Some(b) = this.on_event(&e) {
                        this.sent = true;
                        return Poll::Ready(Some(Ok(b)));
                    }
                }
                Poll::Ready(None) => {
                    this.over = true;
                    this.queue.push_back(data_event("[DONE]"));
                }
                Poll::Pending => break,
            }
        }
        // Quiet: a comment when nothing went out for a whole period of the timer.
        while this.timer.as_mut().poll(cx).is_ready() {
            let quiet = !std::mem::take(&mut this.sent);
            this.timer.as_mut().reset(tokio::time::Instant::now() + KEEP_ALIVE);
            if quiet {
                return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
            }
        }
        Poll::Pending
    }
}

/// One event of one `data:` line (compact JSON has no line breaks), then a blank line.
fn data_event(data: &str) -> Bytes {
    debug_assert!(!data.contains('\n'));
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
