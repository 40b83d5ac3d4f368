//! A fake LLM provider for tests, the end-to-end suite and the benchmark: real HTTP on a
//! local port, answering like OpenAI's and Anthropic's APIs. Requests it receives are
//! recorded so tests can assert on what Agentry sent (keys included: that is the point).
//!
//! Chat requests take the next scripted [`Reply`] (for their model, or for any model) from
//! a queue; with none queued, the answer quotes the last user message. A test in another
//! process (the end-to-end suite) queues replies with `POST /__fake/replies` (a JSON array).
#![forbid(unsafe_code)]

mod chat;

pub use chat::{Reply, Step, Wire, words};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// What the fake answers with.
#[derive(Clone, Debug)]
pub struct Script {
    /// Model ids the models endpoint lists.
    pub models: Vec<String>,
    /// When set, requests must carry this key (`Authorization: Bearer` or `x-api-key`).
    pub api_key: Option<String>,
    /// When set, the models endpoint answers `302` to this URL.
    pub redirect_models_to: Option<String>,
    /// Replies to chat requests, taken in order (the first one for the request's model).
    pub replies: Vec<Reply>,
    /// The reply when none is queued (else one quoting the last user message).
    pub fallback: Option<Reply>,
    /// Keep every request for [`FakeUpstream::seen`] (a benchmark turns it off).
    pub record: bool,
    /// Keep the gaps between paced steps as they were sent, for [`FakeUpstream::take_sent_gaps`]
    /// (a benchmark compares them with the cadence its client saw).
    pub time_sends: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            models: vec!["fake-large".into(), "fake-small".into()],
            api_key: None,
            redirect_models_to: None,
            replies: Vec::new(),
            fallback: None,
            record: true,
            time_sends: false,
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    /// A chat request's JSON body.
    pub body: Option<Value>,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<Script>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The last chat request's body, always kept (one, so it never grows).
    last: Arc<Mutex<Option<Value>>>,
    sent_gaps: chat::SentGaps,
}

/// A running fake upstream.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    shared: Shared,
}

impl FakeUpstream {
    /// Starts on `bind` (`127.0.0.1:0` for any free port) in the current runtime.
    pub async fn start(bind: &str, script: Script) -> std::io::Result<Self> {
        let shared = Shared { script: Arc::new(Mutex::new(script)), ..Shared::default() };
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(nodelay(listener), app).await;
        });
        Ok(Self { addr, shared })
    }

    /// The OpenAI-style base URL (`http://127.0.0.1:port/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Anthropic-style base URL (no version segment).
    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Queues replies for the next chat requests.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        if let Ok(mut s) = self.shared.script.lock() {
            s.replies.extend(replies);
        }
    }

    /// The chat requests received so far (their bodies).
    pub fn chat_requests(&self) -> Vec<Value> {
        self.seen().into_iter().filter_map(|s| s.body).collect()
    }

    /// The gaps between paced steps sent since the last call (with `time_sends` on): each
    /// the time from one step's bytes being handed to the connection to the next one's,
    /// across the pause before it.
    pub fn take_sent_gaps(&self) -> Vec<std::time::Duration> {
        self.shared.sent_gaps.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default()
    }

    pub fn set_script(&self, script: Script) {
        if let Ok(mut s) = self.shared.script.lock() {
            *s = script;
        }
    }
}

/// Each token goes out as it is written, as with a real provider: without TCP_NODELAY,
/// Nagle's algorithm and the client's delayed ACK would hold every other one back 40 ms.
pub fn nodelay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

pub fn router_for_bin(script: Script) -> Router {
    router(Shared { script: Arc::new(Mutex::new(script)), ..Shared::default() })
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/messages", post(anthropic))
        .route("/v1/chat/completions", post(openai))
        .route("/__fake/replies", post(queue).delete(clear))
        .route("/__fake/last", get(last))
        .with_state(shared)
}

fn record(s: &Shared, path: &str, headers: &HeaderMap) {
    record_body(s, path, headers, None);
}

fn record_body(s: &Shared, path: &str, headers: &HeaderMap, body: Option<Value>) {
    if !s.script.lock().is_ok_and(|s| s.record) {
        return;
    }
    if let Ok(mut seen) = s.seen.lock() {
        seen.push(Seen { path: path.to_owned(), headers: headers.clone(), body });
    }
}

async fn queue(State(s): State<Shared>, axum::Json(replies): axum::Json<Vec<Reply>>) -> StatusCode {
    if let Ok(mut script) = s.script.lock() {
        script.replies.extend(replies);
    }
    StatusCode::NO_CONTENT
}

/// The last chat request's body (`null` before any), for end-to-end tests to check the
/// wire format.
async fn last(State(s): State<Shared>) -> axum::Json<Value> {
    axum::Json(s.last.lock().ok().and_then(|l| l.clone()).unwrap_or(Value::Null))
}

/// Forgets every queued reply (a test starts from a clean queue).
async fn clear(State(s): State<Shared>) -> StatusCode {
    if let Ok(mut script) = s.script.lock() {
        script.replies.clear();
    }
    StatusCode::NO_CONTENT
}

/// The next queued reply for `model`, taken off the queue, or the fallback.
fn next_reply(s: &Shared, model: &str) -> Option<Reply> {
    let mut script = s.script.lock().ok()?;
    match script.replies.iter().position(|r| r.model.as_deref().is_none_or(|m| m == model)) {
        Some(i) => Some(script.replies.remove(i)),
        None => script.fallback.clone(),
    }
}

async fn chat(s: Shared, headers: HeaderMap, body: Bytes, wire: Wire, path: &str) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")).into_response(),
    };
    record_body(&s, path, &headers, Some(request.clone()));
    if let Ok(mut last) = s.last.lock() {
        *last = Some(request.clone());
    }
    let key = s.script.lock().ok().and_then(|s| s.api_key.clone());
    if !authorized(key.as_deref(), &headers) {
        return unauthorized(&headers);
    }
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let reply = next_reply(&s, &model).unwrap_or_else(|| chat::default_reply(&request, wire));
    if reply.status.is_some() {
        return chat::error_response(&reply, wire);
    }
    let timed = s.script.lock().is_ok_and(|s| s.time_sends).then(|| s.sent_gaps.clone());
    chat::stream_response(reply, &request, wire, timed)
}

async fn anthropic(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    chat(s, headers, body, Wire::Anthropic, "/v1/messages").await
}

async fn openai(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    chat(s, headers, body, Wire::Openai, "/v1/chat/completions").await
}

fn script(s: &Shared) -> Script {
    s.script.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Whether the request carries the scripted key, if one is scripted.
fn authorized(key: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(key) = key else { return true };
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let x_api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer == Some(key) || x_api_key == Some(key)
}

/// Like some real providers, the refusal quotes the key it was given: Agentry must not
/// pass that on.
fn unauthorized(headers: &HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start_matches("Bearer ");
    let message = format!("Incorrect API key provided: {given}");
    let body = json!({ "error": { "type": "authentication_error", "message": message } });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

async fn models(State(s): State<Shared>, headers: HeaderMap) -> Response {
    record(&s, "/v1/models", &headers);
    let script = script(&s);
    if let Some(to) = script.redirect_models_to {
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    if !authorized(script.api_key.as_deref(), &headers) {
        return unauthorized(&headers);
    }
    let data: Vec<_> = script.models.iter().map(|m| json!({ "id": m, "object": "model", "type": "model" })).collect();
    axum::Json(json!({ "object": "list", "data": data, "has_more": false })).into_response()
}
