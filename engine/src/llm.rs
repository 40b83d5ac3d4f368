//! Calling models: one canonical request (messages of content blocks, tools) streamed from
//! Anthropic Messages or OpenAI Chat Completions as canonical events. Before the first
//! output a failed call is retried (honouring Retry-After) and then the next fallback model
//! is tried; once any output has been streamed nothing is retried or switched silently: the
//! stream ends with the error. Connect, first-output and idle-gap timeouts apply.

mod anthropic;
mod openai;
pub mod sse;

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use model::chat::{Message, StreamEvent, ToolSpec};
use model::providers::ProviderKind;

use crate::Engine;
use crate::auth::CurrentUser;
use crate::providers::ProviderSecrets;
use crate::providers::probe::{chain, endpoint, read_capped};

/// One call to a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f64>,
    pub max_tokens: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The provider answered with an error status before streaming.
    #[error("the provider answered HTTP {status}: {message}")]
    Http { status: u16, message: String, retry_after: Option<Duration> },
    #[error("cannot reach the provider: {0}")]
    Connect(String),
    #[error("the provider sent nothing for {0} s")]
    FirstOutputTimeout(u64),
    #[error("the provider's stream stalled for {0} s")]
    Idle(u64),
    /// An error event in the stream.
    #[error("the provider reported an error: {0}")]
    Upstream(String),
    #[error("the provider's stream broke off: {0}")]
    Broken(String),
    #[error("the provider sent something unreadable: {0}")]
    Protocol(String),
    #[error("the provider connection is not usable: {0}")]
    Provider(String),
}

impl LlmError {
    /// Worth trying again (the same model, after a pause).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Http { status, .. } => matches!(status, 408 | 409 | 429) || *status >= 500,
            Self::Connect(_) | Self::FirstOutputTimeout(_) | Self::Upstream(_) | Self::Broken(_) | Self::Idle(_) => {
                true
            }
            Self::Protocol(_) | Self::Provider(_) => false,
        }
    }

    /// Another model on the same connection will not do better (the key or the address is wrong).
    fn hopeless(&self) -> bool {
        matches!(self, Self::Http { status: 401 | 403, .. } | Self::Provider(_))
    }
}

/// Timeouts and retries.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub connect: Duration,
    /// From sending the request to the first output (text or a tool call).
    pub first_output: Duration,
    /// The longest gap between two events once output has begun.
    pub idle: Duration,
    /// Retries of one model before the next fallback (so attempts = retries + 1).
    pub retries: u32,
    /// The first backoff; it doubles per retry up to `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// A Retry-After longer than this is not waited for (the next model is tried).
    pub retry_after_max: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_output: Duration::from_secs(120),
            idle: Duration::from_secs(90),
            retries: 2,
            backoff: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            retry_after_max: Duration::from_secs(60),
        }
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// The most of an error body we read.
const MAX_ERROR_BODY: usize = 64 * 1024;

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok());
    get("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
        .or_else(|| get("retry-after").map(|s| Duration::from_secs_f64(s.max(0.0))))
}

fn error_message(body: &[u8]) -> String {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("message").or(Some(e)).and_then(|m| m.as_str()).map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    text.chars().take(500).collect()
}

enum Wire {
    Anthropic(anthropic::Decoder),
    Openai(openai::Decoder),
}

impl Wire {
    fn on_event(&mut self, ev: sse::Event) -> Result<Vec<StreamEvent>, LlmError> {
        match self {
            Self::Anthropic(d) => d.on_event(ev),
            Self::Openai(d) => d.on_event(ev),
        }
    }

    fn done(&self) -> bool {
        match self {
            Self::Anthropic(d) => d.done,
            Self::Openai(d) => d.done,
        }
    }

    /// The body ended: the closing events, or the error of a stream cut short.
    fn end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        match self {
            _ if self.done() => Ok(Vec::new()),
            Self::Openai(d) if d.finished() => Ok(d.finish()),
            _ => Err(LlmError::Broken("the stream ended before the answer did".into())),
        }
    }
}

/// Sends one request and returns its events (no retries, no timeouts past connecting).
async fn open(client: &reqwest::Client, secrets: &ProviderSecrets, req: &ChatRequest) -> Result<Events, LlmError> {
    let (url, body, wire) = match secrets.kind {
        ProviderKind::Anthropic => (
            endpoint(secrets.kind, &secrets.base_url, "messages"),
            anthropic::body(req),
            Wire::Anthropic(anthropic::Decoder::default()),
        ),
        ProviderKind::Openai => (
            endpoint(secrets.kind, &secrets.base_url, "chat/completions"),
            openai::body(req),
            Wire::Openai(openai::Decoder::default()),
        ),
    };
    let res = secrets
        .request(client, reqwest::Method::POST, &url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body)
        .send()
        .await
        .map_err(|e| LlmError::Connect(secrets.scrub(&chain(&e))))?;
    let status = res.status();
    if !status.is_success() {
        let retry_after = retry_after(res.headers());
        let body = read_capped(res, MAX_ERROR_BODY).await.unwrap_or_default();
        return Err(LlmError::Http {
            status: status.as_u16(),
            message: secrets.scrub(&error_message(&body)),
            retry_after,
        });
    }
    Ok(Events {
        bytes: Box::pin(res.bytes_stream()),
        sse: sse::Decoder::default(),
        wire,
        queue: std::collections::VecDeque::new(),
        over: false,
        scrub: secrets.clone(),
        idle: None,
    })
}

/// A call's events as they are read: SSE events decoded from the body's bytes, then
/// decoded by the wire format into canonical events. Once the first output has come,
/// [`Events::idle_after`] arms the idle timeout. One stream by hand, not combinators: it
/// is polled at every token.
struct Events {
    bytes: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    sse: sse::Decoder,
    wire: Wire,
    /// Decoded and not yet taken; an error is the last thing queued.
    queue: std::collections::VecDeque<Result<StreamEvent, LlmError>>,
    /// The body has ended or failed: nothing more is read.
    over: bool,
    /// The secrets go along once, to scrub a transport error; nothing is cloned per chunk.
    scrub: ProviderSecrets,
    idle: Option<Idle>,
}

/// Fails the stream with [`LlmError::Idle`] when no event comes within `after`. One timer,
/// moved on only when it fires before `after` has passed since the last event (not at
/// every event: that was a timer-wheel update per token).
struct Idle {
    timer: Pin<Box<tokio::time::Sleep>>,
    after: Duration,
    last: tokio::time::Instant,
}

impl Events {
    /// Arms the idle timeout, with `before` (what was read while waiting for the first
    /// output) to be taken first.
    fn idle_after(mut self, after: Duration, before: Vec<StreamEvent>) -> Self {
        let now = tokio::time::Instant::now();
        self.idle = Some(Idle { timer: Box::pin(tokio::time::sleep_until(now + after)), after, last: now });
        for ev in before.into_iter().rev() {
            self.queue.push_front(Ok(ev));
        }
        self
    }

    /// Decodes a chunk of the body into the queue; an error ends the stream after the
    /// events before it.
    fn decode(&mut self, chunk: &[u8]) {
        let evs = match self.sse.push(chunk) {
            Ok(evs) => evs,
            Err(e) => return self.fail(LlmError::Protocol(e)),
        };
        for ev in evs {
            match self.wire.on_event(ev) {
                Ok(out) => self.queue.extend(out.into_iter().map(Ok)),
                Err(e) => return self.fail(e),
            }
        }
    }

    fn fail(&mut self, e: LlmError) {
        self.over = true;
        self.queue.push_back(Err(e));
    }
}

impl Stream for Events {
    type Item = Result<StreamEvent, LlmError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            if let Some(ev) = this.queue.pop_front() {
                if let Some(idle) = &mut this.idle {
                    idle.last = tokio::time::Instant::now();
                }
                return Poll::Ready(Some(ev));
            }
            if this.over || this.wire.done() {
                return Poll::Ready(None);
            }
            match this.bytes.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.decode(&chunk),
                Poll::Ready(Some(Err(e))) => this.fail(LlmError::Broken(this.scrub.scrub(&chain(&e)))),
                Poll::Ready(None) => {
                    this.over = true;
                    match this.wire.end() {
                        Ok(evs) => this.queue.extend(evs.into_iter().map(Ok)),
                        Err(e) => this.queue.push_back(Err(e)),
                    }
                }
                Poll::Pending => break,
            }
        }
        if let Some(idle) = &mut this.idle {
            while idle.timer.as_mut().poll(cx).is_ready() {
                let due = idle.last + idle.after;
                if tokio::time::Instant::now() >= due {
                    let secs = idle.after.as_secs().max(1);
                    this.over = true;
                    this.idle = None;
                    return Poll::Ready(Some(Err(LlmError::Idle(secs))));
                }
                idle.timer.as_mut().reset(due);
            }
        }
        Poll::Pending
    }
}

/// A started call: the model that answered and its events (the ones read while waiting for
/// the first output come first).
pub struct Started {
    pub model: String,
    pub events: EventStream,
    /// The failures before this one succeeded (retries and fallbacks), for the record.
    pub failures: Vec<(String, LlmError)>,
}

/// Tries `req.model`, then each of `fallbacks`, each with retries, until one streams its
/// first output. The error of the last attempt is returned when none does.
pub async fn start(
    client: &reqwest::Client,
    secrets: &ProviderSecrets,
    req: &ChatRequest,
    fallbacks: &[String],
    policy: Policy,
) -> StartResult {
    let mut failures: Vec<(String, LlmError)> = Vec::new();
    let models = std::iter::once(req.model.clone()).chain(fallbacks.iter().cloned());
    for model in models {
        let mut attempt = 0u32;
        loop {
            let req = ChatRequest { model: model.clone(), ..req.clone() };
            let err = match first_output(client, secrets, &req, policy).await {
                Ok(events) => return Ok(Started { model, events, failures }),
                Err(e) => e,
            };
            tracing::warn!(model = %model, attempt, error = %err, "model call failed before any output");
            let wait = match &err {
                LlmError::Http { retry_after: Some(d), .. } => Some(*d).filter(|d| *d <= policy.retry_after_max),
                _ => Some(policy.backoff.saturating_mul(2u32.saturating_pow(attempt)).min(policy.backoff_max)),
            };
            let hopeless = err.hopeless();
            let again = err.retryable() && attempt < policy.retries && wait.is_some();
            failures.push((model.clone(), err));
            if hopeless {
                let last = failures.pop().map(|(_, e)| e).unwrap_or(LlmError::Provider("no attempt".into()));
                return Err((last, failures));
            }
            if !again {
                break;
            }
            tokio::time::sleep(wait.unwrap_or_default()).await;
            attempt += 1;
        }
    }
    let last = failures.pop().map(|(_, e)| e).unwrap_or(LlmError::Provider("no model to call".into()));
    Err((last, failures))
}

/// One attempt: sends the request and waits (at most `first_output`) for the first text or
/// tool call. What came before it (usage) is kept and replayed.
async fn first_output(
    client: &reqwest::Client,
    secrets: &ProviderSecrets,
    req: &ChatRequest,
    policy: Policy,
) -> Result<EventStream, LlmError> {
    let deadline = tokio::time::Instant::now() + policy.first_output;
    let secs = policy.first_output.as_secs().max(1);
    let mut events = tokio::time::timeout_at(deadline, open(client, secrets, req))
        .await
        .map_err(|_| LlmError::FirstOutputTimeout(secs))??;
    let mut before = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Err(_) => return Err(LlmError::FirstOutputTimeout(secs)),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(ev))) => {
                let output = ev.is_output() || matches!(ev, StreamEvent::Stop { .. });
                before.push(ev);
                if output {
                    break;
                }
            }
        }
    }
    Ok(Box::pin(events.idle_after(policy.idle, before)))
}

/// A started call, or the last attempt's error with the failures before it.
pub type StartResult = Result<Started, (LlmError, Vec<(String, LlmError)>)>;

/// What a run calls models through: one implementation per kind of backend. The one
/// that ships speaks HTTP to a provider connection ([`HttpModel`]), whichever wire format
/// it has; tests reach it through the fake upstream over real HTTP.
pub trait ModelClient: Send + Sync {
    /// Starts `req` (then each of `fallbacks` in turn), with `policy`'s retries and
    /// timeouts, until one streams its first output.
    fn start<'a>(
        &'a self,
        req: &'a ChatRequest,
        fallbacks: &'a [String],
        policy: Policy,
    ) -> futures::future::BoxFuture<'a, StartResult>;
}

/// A provider connection over HTTP.
pub struct HttpModel {
    client: reqwest::Client,
    secrets: ProviderSecrets,
}

impl ModelClient for HttpModel {
    fn start<'a>(
        &'a self,
        req: &'a ChatRequest,
        fallbacks: &'a [String],
        policy: Policy,
    ) -> futures::future::BoxFuture<'a, StartResult> {
        Box::pin(start(&self.client, &self.secrets, req, fallbacks, policy))
    }
}

impl Engine {
    /// The model client for a run of `user`'s on the connection `provider_id`.
    pub async fn model_for(&self, user: &CurrentUser, provider_id: &str) -> Result<Box<dyn ModelClient>, LlmError> {
        let (client, secrets) = self.model_client(user, provider_id).await?;
        Ok(Box::new(HttpModel { client, secrets }))
    }

    /// A client for calling the connection's models: guarded like "test connection"
    /// (private addresses only for connections an admin made or uses), no overall deadline.
    pub async fn model_client(
        &self,
        user: &CurrentUser,
        provider_id: &str,
    ) -> Result<(reqwest::Client, ProviderSecrets), LlmError> {
        let secrets = self.provider_secrets(user, provider_id).await.map_err(|e| LlmError::Provider(e.to_string()))?;
        let admin_made = secrets.shared || user.is_admin;
        let guard = self.guard(admin_made);
        let url = reqwest::Url::parse(&secrets.base_url).map_err(|e| LlmError::Provider(e.to_string()))?;
        guard.check_url(&url).map_err(LlmError::Provider)?;
        let slot = &self.model_http[usize::from(admin_made)];
        let client = match slot.get() {
            Some(c) => c.clone(),
            None => {
                let c = guard.pooled_streaming_client().map_err(LlmError::Provider)?;
                slot.get_or_init(|| c).clone()
            }
        };
        Ok((client, secrets))
    }
}
