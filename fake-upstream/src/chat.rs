//! Scripted chat replies in both wire formats: Anthropic Messages (`POST /v1/messages`,
//! `event:` + `data:` SSE) and OpenAI Chat Completions (`POST /v1/chat/completions`,
//! `data:` chunks ending in `[DONE]`). A reply is a list of steps (text deltas, tool calls,
//! pauses, a mid-stream error, a dropped connection) or an HTTP error before any output.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One step of a streamed reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// One text delta.
    Text(String),
    /// A tool call; its input is streamed in a few fragments.
    ToolCall { id: String, name: String, input: Value },
    /// Sends nothing for this long (a stall, or a slow cadence).
    SleepMs(u64),
    /// A mid-stream error event, then the stream ends.
    Error(String),
    /// The connection breaks off here: no closing events.
    Drop,
}

/// What the fake answers one chat request with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// Only for requests naming this model (any request when `None`).
    pub model: Option<String>,
    /// Answer with this HTTP error status instead of a stream (429, 500, 529…).
    pub status: Option<u16>,
    /// With `status`: the `retry-after-ms` / `retry-after` headers to send.
    pub retry_after_ms: Option<u64>,
    /// With `status`: the error message.
    pub message: String,
    pub steps: Vec<Step>,
    /// A pause before every step (a slow cadence).
    pub cadence_ms: u64,
    /// Reported input tokens (0: a count from the request's size).
    pub input_tokens: u64,
    /// Reported output tokens (0: one per text delta plus ten per tool call).
    pub output_tokens: u64,
    /// The stop reason in Anthropic terms (`end_turn`, `tool_use`, `max_tokens`); by default
    /// `tool_use` when there is a tool call, else `end_turn`.
    pub stop: Option<String>,
}

impl Reply {
    /// A text answer streamed a word at a time.
    pub fn text(text: &str) -> Self {
        Self { steps: words(text).into_iter().map(Step::Text).collect(), ..Self::default() }
    }

    /// A single tool call.
    pub fn tool_call(id: &str, name: &str, input: Value) -> Self {
        Self { steps: vec![Step::ToolCall { id: id.into(), name: name.into(), input }], ..Self::default() }
    }

    /// An HTTP error before any output.
    pub fn error(status: u16, message: &str) -> Self {
        Self { status: Some(status), message: message.into(), ..Self::default() }
    }

    pub fn for_model(mut self, model: &str) -> Self {
        self.model = Some(model.into());
        self
    }

    fn stop_reason(&self) -> String {
        self.stop.clone().unwrap_or_else(|| {
            if self.steps.iter().any(|s| matches!(s, Step::ToolCall { .. })) { "tool_use" } else { "end_turn" }
                .to_owned()
        })
    }

    fn usage(&self, request: &Value) -> (u64, u64) {
        let input =
            if self.input_tokens > 0 { self.input_tokens } else { (request.to_string().len() as u64 / 4).max(1) };
        let output = if self.output_tokens > 0 {
            self.output_tokens
        } else {
            self.steps
                .iter()
                .map(|s| match s {
                    Step::Text(_) => 1,
                    Step::ToolCall { .. } => 10,
                    _ => 0,
                })
                .sum()
        };
        (input, output)
    }
}

/// Splits text into word-sized deltas, each keeping its following space.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if c == ' ' || c == '\n' {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The reply when nothing is scripted: it quotes the last user message.
pub fn default_reply(request: &Value, wire: Wire) -> Reply {
    let last = last_user_text(request, wire);
    Reply::text(&format!("Hello from the fake model. You said: {last}"))
}

/// The text of the last user message (text parts joined), in either format.
pub fn last_user_text(request: &Value, _wire: Wire) -> String {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let Some(m) = messages.iter().rev().find(|m| m["role"] == "user") else { return String::new() };
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    Openai,
}

/// What the stream sends: bytes, a pause, or a break.
enum Frame {
    Bytes(String),
    Sleep(u64),
    Drop,
}

/// The HTTP error before any output, in the format's own error shape.
pub fn error_response(reply: &Reply, wire: Wire) -> Response {
    let status = StatusCode::from_u16(reply.status.unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match wire {
        Wire::Anthropic => {
            let kind = match status.as_u16() {
                401 => "authentication_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400 => "invalid_request_error",
                _ => "api_error",
            };
            json!({ "type": "error", "error": { "type": kind, "message": reply.message } })
        }
        Wire::Openai => {
            let code = if status.as_u16() == 429 { json!("rate_limit_exceeded") } else { Value::Null };
            json!({ "error": { "message": reply.message, "type": "server_error", "param": null, "code": code } })
        }
    };
    let mut res = (status, axum::Json(body)).into_response();
    if let Some(ms) = reply.retry_after_ms {
        let h = res.headers_mut();
        h.insert("retry-after-ms", HeaderValue::from(ms));
        h.insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    }
    res
}

/// Where the gaps between paced steps go when they are timed.
pub type SentGaps = Arc<Mutex<Vec<Duration>>>;

/// A streamed reply's frames and, when timed, when its last paced step went out and the
/// gaps so far (handed to the shared list once, at the end).
struct Sending {
    frames: std::vec::IntoIter<Frame>,
    timed: Option<(SentGaps, Vec<Duration>)>,
    last: Option<Instant>,
    paused: bool,
}

impl Sending {
    /// Notes a step's bytes going out. Only paced steps (sent after a pause) count, each
    /// from the one before, as a client counts gaps between tokens.
    fn sent(&mut self) {
        if let Some((_, gaps)) = &mut self.timed
            && self.paused
        {
            let now = Instant::now();
            if let Some(last) = self.last {
                gaps.push(now - last);
            }
            self.last = Some(now);
        }
        self.paused = false;
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        if let Some((shared, gaps)) = self.timed.take()
            && let Ok(mut all) = shared.lock()
        {
            all.extend(gaps);
        }
    }
}

/// The streamed reply; with `timed`, the gaps between its paced steps are added there.
pub fn stream_response(reply: Reply, request: &Value, wire: Wire, timed: Option<SentGaps>) -> Response {
    let model = request["model"].as_str().unwrap_or("fake").to_owned();
    let frames = match wire {
        Wire::Anthropic => anthropic_frames(&reply, request, &model),
        Wire::Openai => openai_frames(&reply, request, &model),
    };
    let sending =
        Sending { frames: frames.into_iter(), timed: timed.map(|t| (t, Vec::new())), last: None, paused: false };
    let stream = futures_util::stream::unfold(sending, |mut s| async move {
        loop {
            match s.frames.next()? {
                Frame::Sleep(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    s.paused = true;
                }
                Frame::Bytes(b) => {
                    s.sent();
                    return Some((Ok::<_, std::io::Error>(Bytes::from(b)), s));
                }
                Frame::Drop => {
                    // Let what was sent reach the client first, as when a real upstream dies.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Some((Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "dropped")), s));
                }
            }
        }
    });
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn sse(event: Option<&str>, data: &Value) -> Frame {
    Frame::Bytes(match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    })
}

/// A tool input's JSON in three fragments (the first empty, as the real APIs do).
fn fragments(input: &Value) -> Vec<String> {
    let s = input.to_string();
    let mid = s.char_indices().map(|(i, _)| i).nth(s.chars().count() / 2).unwrap_or(0);
    vec![String::new(), s[..mid].to_owned(), s[mid..].to_owned()]
}

fn anthropic_frames(reply: &Reply, request: &Value, model: &str) -> Vec<Frame> {
    let (input, output) = reply.usage(request);
    let mut f = vec![sse(
        Some("message_start"),
        &json!({ "type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": input, "output_tokens": 1 } } }),
    )];
    f.push(sse(Some("ping"), &json!({ "type": "ping" })));
    let mut index = 0usize;
    let mut text_open = false;
    let close = |f: &mut Vec<Frame>, index: &mut usize| {
        f.push(sse(Some("content_block_stop"), &json!({ "type": "content_block_stop", "index": *index })));
        *index += 1;
    };
    for step in &reply.steps {
        if reply.cadence_ms > 0 {
            f.push(Frame::Sleep(reply.cadence_ms));
        }
        match step {
            Step::Text(t) => {
                if !text_open {
                    f.push(sse(
                        Some("content_block_start"),
                        &json!({ "type": "content_block_start", "index": index,
                                 "content_block": { "type": "text", "text": "" } }),
                    ));
                    text_open = true;
                }
                f.push(sse(
                    Some("content_block_delta"),
                    &json!({ "type": "content_block_delta", "index": index,
                             "delta": { "type": "text_delta", "text": t } }),
                ));
            }
            Step::ToolCall { id, name, input } => {
                if text_open {
                    close(&mut f, &mut index);
                    text_open = false;
                }
                f.push(sse(
                    Some("content_block_start"),
                    &json!({ "type": "content_block_start", "index": index,
                             "content_block": { "type": "tool_use", "id": id, "name": name, "input": {} } }),
                ));
                for part in fragments(input) {
                    f.push(sse(
                        Some("content_block_delta"),
                        &json!({ "type": "content_block_delta", "index": index,
                                 "delta": { "type": "input_json_delta", "partial_json": part } }),
                    ));
                }
                close(&mut f, &mut index);
            }
            Step::SleepMs(ms) => f.push(Frame::Sleep(*ms)),
            Step::Error(m) => {
                f.push(sse(
                    Some("error"),
                    &json!({ "type": "error", "error": { "type": "overloaded_error", "message": m } }),
                ));
                return f;
            }
            Step::Drop => {
                f.push(Frame::Drop);
                return f;
            }
        }
    }
    if text_open {
        close(&mut f, &mut index);
    }
    f.push(sse(
        Some("message_delta"),
        &json!({ "type": "message_delta", "delta": { "stop_reason": reply.stop_reason(), "stop_sequence": null },
                 "usage": { "output_tokens": output } }),
    ));
    f.push(sse(Some("message_stop"), &json!({ "type": "message_stop" })));
    f
}

fn openai_frames(reply: &Reply, request: &Value, model: &str) -> Vec<Frame> {
    let (input, output) = reply.usage(request);
    let chunk = |choices: Value| {
        json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": model, "choices": choices })
    };
    let delta =
        |d: Value, finish: Value| chunk(json!([{ "index": 0, "delta": d, "logprobs": null, "finish_reason": finish }]));
    let mut f = vec![sse(None, &delta(json!({ "role": "assistant", "content": "" }), Value::Null))];
    let mut tool_index = 0usize;
    for step in &reply.steps {
        if reply.cadence_ms > 0 {
            f.push(Frame::Sleep(reply.cadence_ms));
        }
        match step {
            Step::Text(t) => f.push(sse(None, &delta(json!({ "content": t }), Value::Null))),
            Step::ToolCall { id, name, input } => {
                f.push(sse(
                    None,
                    &delta(
                        json!({ "tool_calls": [{ "index": tool_index, "id": id, "type": "function",
                                                 "function": { "name": name, "arguments": "" } }] }),
                        Value::Null,
                    ),
                ));
                for part in fragments(input).into_iter().skip(1) {
                    f.push(sse(
                        None,
                        &delta(
                            json!({ "tool_calls": [{ "index": tool_index, "function": { "arguments": part } }] }),
                            Value::Null,
                        ),
                    ));
                }
                tool_index += 1;
            }
            Step::SleepMs(ms) => f.push(Frame::Sleep(*ms)),
            Step::Error(m) => {
                f.push(sse(
                    None,
                    &json!({ "error": { "message": m, "type": "server_error", "param": null, "code": null } }),
                ));
                return f;
            }
            Step::Drop => {
                f.push(Frame::Drop);
                return f;
            }
        }
    }
    let finish = match reply.stop_reason().as_str() {
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        _ => "stop",
    };
    f.push(sse(None, &delta(json!({}), json!(finish))));
    if request["stream_options"]["include_usage"] == true {
        let mut usage = chunk(json!([]));
        usage["usage"] = json!({ "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output });
        f.push(sse(None, &usage));
    }
    f.push(Frame::Bytes("data: [DONE]\n\n".into()));
    f
}
