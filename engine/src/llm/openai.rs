//! OpenAI Chat Completions (and the many servers compatible with it): the request body,
//! and the `data:` chunks (content deltas, tool call fragments by index, `finish_reason`,
//! the usage chunk, `[DONE]`) into canonical events.

use std::borrow::Cow;
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
                let images = m.content.iter().any(|b| matches!(b, Block::Image { .. }));
                if images {
                    // Text and images as content parts, in order.
                    let parts: Vec<Value> = m
                        .content
                        .iter()
                        .filter_map(|b| match b {
                            Block::Text { text } => Some(json!({ "type": "text", "text": text })),
                            Block::Image { media_type, data } => Some(json!({
                                "type": "image_url", "image_url": { "url": format!("data:{media_type};base64,{data}") }
                            })),
                            _ => None,
                        })
                        .collect();
                    messages.push(json!({ "role": "user", "content": parts }));
                } else {
                    let text = m.text();
                    if !text.is_empty() {
                        messages.push(json!({ "role": "user", "content": text }));
                    }
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

/// One `data:` chunk, read into just the fields used (text borrowed where it has no
/// escapes): no map of every field per token.
#[derive(serde::Deserialize)]
struct Chunk<'a> {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
}

#[derive(serde::Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<CallDelta<'a>>>,
}

#[derive(serde::Deserialize)]
struct CallDelta<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(serde::Deserialize)]
struct FunctionDelta<'a> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl Decoder {
    pub fn on_event(&mut self, ev: sse::Event) -> Result<Vec<StreamEvent>, LlmError> {
        if ev.data.trim() == "[DONE]" {
            return Ok(self.finish());
        }
        let chunk: Chunk = serde_json::from_str(&ev.data)
            .map_err(|e| LlmError::Protocol(format!("a chunk that is not a chat completion chunk ({e})")))?;
        if let Some(e) = chunk.error.filter(|e| !e.is_null()) {
            let message = e["message"].as_str().map_or_else(|| e.to_string(), str::to_owned);
            return Err(LlmError::Upstream(message));
        }
        let mut out = Vec::new();
        if let Some(choice) = chunk.choices.into_iter().next() {
            let delta = choice.delta.unwrap_or(Delta { content: None, tool_calls: None });
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text: text.into_owned() });
            }
            for call in delta.tool_calls.unwrap_or_default() {
                let index = call.index.unwrap_or_default();
                let function = call.function.unwrap_or(FunctionDelta { name: None, arguments: None });
                let c = self.calls.entry(index).or_insert_with(|| {
                    let id = call.id.unwrap_or_else(|| format!("call_{index}"));
                    let name = function.name.unwrap_or_default();
                    out.push(StreamEvent::ToolStart { id: id.clone(), name: name.clone() });
                    Call { id, name, args: String::new() }
                });
                if let Some(part) = function.arguments.filter(|p| !p.is_empty()) {
                    c.args.push_str(&part);
                    out.push(StreamEvent::ToolDelta { id: c.id.clone(), json: part.into_owned() });
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.stop = Some(match reason.as_str() {
                    "stop" => StopReason::EndTurn,
                    "tool_calls" | "function_call" => StopReason::ToolUse,
                    "length" => StopReason::MaxTokens,
                    _ => StopReason::Other(reason),
                });
                out.extend(self.end_calls()?);
            }
        }
        if let Some(u) = chunk.usage {
            let usage = Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Decoder, data: &str) -> Result<Vec<StreamEvent>, LlmError> {
        d.on_event(sse::Event { event: None, data: data.into() })
    }

    #[test]
    fn chunks_become_canonical_events() {
        let mut d = Decoder::default();
        let text = |t: &str| StreamEvent::TextDelta { text: t.into() };
        // Every field a server sends that is not used is skipped; null or empty content is nothing.
        let first = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,
            "choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(feed(&mut d, first).ok(), Some(vec![]));
        assert_eq!(feed(&mut d, r#"{"choices":[{"delta":{"content":null}}],"usage":null}"#).ok(), Some(vec![]));
        assert_eq!(feed(&mut d, r#"{"choices":[{"delta":{"content":"Hi"}}]}"#).ok(), Some(vec![text("Hi")]));
        // Escapes are read (the text is not borrowed then).
        let escaped = r#"{"choices":[{"delta":{"content":"a\n\"b\" \u00e9"}}]}"#;
        assert_eq!(feed(&mut d, escaped).ok(), Some(vec![text("a\n\"b\" é")]));
        // A tool call in fragments, by index; its input whole at the finish reason.
        let start = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"add","arguments":""}}]}}]}"#;
        assert_eq!(
            feed(&mut d, start).ok(),
            Some(vec![StreamEvent::ToolStart { id: "call_a".into(), name: "add".into() }])
        );
        let part = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}"#;
        assert_eq!(
            feed(&mut d, part).ok(),
            Some(vec![StreamEvent::ToolDelta { id: "call_a".into(), json: r#"{"a":1}"#.into() }])
        );
        let end = r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#;
        assert_eq!(
            feed(&mut d, end).ok(),
            Some(vec![StreamEvent::ToolEnd { id: "call_a".into(), name: "add".into(), input: json!({"a": 1}) }])
        );
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let u = Usage { input_tokens: Some(12), output_tokens: Some(3) };
        assert_eq!(feed(&mut d, usage).ok(), Some(vec![StreamEvent::Usage { usage: u }]));
        assert!(d.finished() && !d.done);
        assert_eq!(feed(&mut d, " [DONE]\n").ok(), Some(vec![StreamEvent::Stop { reason: StopReason::ToolUse }]));
        assert!(d.done);
    }

    #[test]
    fn errors_and_broken_chunks_are_named() {
        let mut d = Decoder::default();
        let e = feed(&mut d, r#"{"error":{"message":"overloaded","type":"server_error"}}"#).err();
        assert_eq!(e, Some(LlmError::Upstream("overloaded".into())));
        let e = feed(&mut d, r#"{"error":"plain"}"#).err();
        assert_eq!(e, Some(LlmError::Upstream("\"plain\"".into())));
        assert_eq!(feed(&mut d, r#"{"error":null,"choices":[]}"#).ok(), Some(vec![]));
        assert!(
            matches!(feed(&mut d, "not json"), Err(LlmError::Protocol(m)) if m.contains("not a chat completion chunk"))
        );
        let end = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{oops"}}]},"finish_reason":"tool_calls"}]}"#;
        assert!(matches!(feed(&mut d, end), Err(LlmError::Protocol(m)) if m.contains("tool call f")));
        let mut d = Decoder::default();
        let other = r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"content_filter"}]}"#;
        assert_eq!(feed(&mut d, other).ok(), Some(vec![StreamEvent::TextDelta { text: "x".into() }]));
        assert_eq!(d.finish(), vec![StreamEvent::Stop { reason: StopReason::Other("content_filter".into()) }]);
    }
}
