//! OpenAI Chat Completions (and the many servers compatible with it): the request body,
//! and the `data:` chunks (content deltas, tool call fragments by index, `finish_reason`,
//! the usage chunk, `[DONE]`) into canonical events.

use std::collections::BTreeMap;

use model::chat::{Block, Role, StopReason, StreamEvent, Usage};
use serde_json::{Value, json};

use super::{ChatRequest, LlmError, sse};

pub fn body(req: &ChatRequest) -> Value {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({ "role": "system", "content": req.system }));
    }
    for m in &req.messages {
        match m.role {
            Role::User => {
                // Tool results are messages of their own, right after the call.
                for b in &m.content {
                    if let Block::ToolResult { tool_use_id, content, .. } = b {
                        messages.push(json!({ "role": "tool", "tool_call_id": tool_use_id, "content": content }));
                    }
                }
                let text = m.text();
                if !text.is_empty() {
                    messages.push(json!({ "role": "user", "content": text }));
                }
            }
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolUse { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": { "name": name, "arguments": input.to_string() }
                        })),
                        _ => None,
                    })
                    .collect();
                let text = m.text();
                let mut msg =
                    json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) } });
                if !calls.is_empty() {
                    msg["tool_calls"] = json!(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        // `max_tokens`, not `max_completion_tokens`: every compatible server knows it.
        "max_tokens": req.max_tokens,
    });
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({ "type": "function", "function": { "name": t.name, "description": t.description, "parameters": t.schema } }))
            .collect();
    }
    body
}

struct Call {
    id: String,
    name: String,
    args: String,
}

#[derive(Default)]
pub struct Decoder {
    calls: BTreeMap<u64, Call>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    pub done: bool,
}

impl Decoder {
    pub fn on_event(&mut self, ev: sse::Event) -> Result<Vec<StreamEvent>, LlmError> {
        if ev.data.trim() == "[DONE]" {
            return Ok(self.finish());
        }
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|e| LlmError::Protocol(format!("a chunk that is not JSON ({e})")))?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            let message = e["message"].as_str().map_or_else(|| e.to_string(), str::to_owned);
            return Err(LlmError::Upstream(message));
        }
        let mut out = Vec::new();
        if let Some(choice) = v["choices"].as_array().and_then(|c| c.first()) {
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text: text.to_owned() });
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap_or_default();
                let c = self.calls.entry(index).or_insert_with(|| {
                    let id = call["id"].as_str().map_or_else(|| format!("call_{index}"), str::to_owned);
                    let name = call["function"]["name"].as_str().unwrap_or_default().to_owned();
                    out.push(StreamEvent::ToolStart { id: id.clone(), name: name.clone() });
                    Call { id, name, args: String::new() }
                });
                if let Some(part) = call["function"]["arguments"].as_str()
                    && !part.is_empty()
                {
                    c.args.push_str(part);
                    out.push(StreamEvent::ToolDelta { id: c.id.clone(), json: part.to_owned() });
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.stop = Some(match reason {
                    "stop" => StopReason::EndTurn,
                    "tool_calls" | "function_call" => StopReason::ToolUse,
                    "length" => StopReason::MaxTokens,
                    other => StopReason::Other(other.to_owned()),
                });
                out.extend(self.end_calls()?);
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let usage =
                Usage { input_tokens: u["prompt_tokens"].as_u64(), output_tokens: u["completion_tokens"].as_u64() };
            self.usage = Some(usage);
            out.push(StreamEvent::Usage { usage });
        }
        Ok(out)
    }

    fn end_calls(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        std::mem::take(&mut self.calls)
            .into_values()
            .map(|c| {
                let input = if c.args.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&c.args).map_err(|e| {
                        LlmError::Protocol(format!("the arguments of tool call {} are not JSON ({e})", c.name))
                    })?
                };
                Ok(StreamEvent::ToolEnd { id: c.id, name: c.name, input })
            })
            .collect()
    }

    /// `[DONE]`, or the body ended after a finish reason (some servers omit `[DONE]`).
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = self.end_calls().unwrap_or_default();
        let reason = self.stop.take().unwrap_or(if out.is_empty() { StopReason::EndTurn } else { StopReason::ToolUse });
        out.push(StreamEvent::Stop { reason });
        out
    }

    /// Whether the stream has said how it ends (a finish reason), so a missing `[DONE]`
    /// is not a broken stream.
    pub fn finished(&self) -> bool {
        self.stop.is_some()
    }
}
