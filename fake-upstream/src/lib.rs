//! A fake LLM provider for tests, the end-to-end suite and the benchmark: real HTTP on a
//! local port, answering like OpenAI's and Anthropic's APIs. Requests it receives are
//! recorded so tests can assert on what Agentry sent (keys included: that is the point).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// What the fake answers with.
#[derive(Clone, Debug)]
pub struct Script {
    /// Model ids the models endpoint lists.
    pub models: Vec<String>,
    /// When set, requests must carry this key (`Authorization: Bearer` or `x-api-key`).
    pub api_key: Option<String>,
    /// When set, the models endpoint answers `302` to this URL.
    pub redirect_models_to: Option<String>,
}

impl Default for Script {
    fn default() -> Self {
        Self { models: vec!["fake-large".into(), "fake-small".into()], api_key: None, redirect_models_to: None }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<Script>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running fake upstream.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    shared: Shared,
}

impl FakeUpstream {
    /// Starts on `bind` (`127.0.0.1:0` for any free port) in the current runtime.
    pub async fn start(bind: &str, script: Script) -> std::io::Result<Self> {
        let shared = Shared { script: Arc::new(Mutex::new(script)), seen: Arc::default() };
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
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

    pub fn set_script(&self, script: Script) {
        if let Ok(mut s) = self.shared.script.lock() {
            *s = script;
        }
    }
}

pub fn router_for_bin(script: Script) -> Router {
    router(Shared { script: Arc::new(Mutex::new(script)), seen: Arc::default() })
}

fn router(shared: Shared) -> Router {
    Router::new().route("/v1/models", get(models)).with_state(shared)
}

fn record(s: &Shared, path: &str, headers: &HeaderMap) {
    if let Ok(mut seen) = s.seen.lock() {
        seen.push(Seen { path: path.to_owned(), headers: headers.clone() });
    }
}

fn script(s: &Shared) -> Script {
    s.script.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Whether the request carries the scripted key, if one is scripted.
fn authorized(script: &Script, headers: &HeaderMap) -> bool {
    let Some(key) = &script.api_key else { return true };
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
    if !authorized(&script, &headers) {
        return unauthorized(&headers);
    }
    let data: Vec<_> = script.models.iter().map(|m| json!({ "id": m, "object": "model", "type": "model" })).collect();
    axum::Json(json!({ "object": "list", "data": data, "has_more": false })).into_response()
}
