//! Anthropic Messages: the request body, and the stream's events (`message_start`,
//! `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`) into canonical ones.

use std::collections::HashMap;

use model::chat::{Block, StopReason, StreamEvent, Usage};
use serde_json::{Value, json};

use super::{ChatRequest, LlmError, sse};

pub fn body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let content: Vec<Value> = m
                .content
                .iter()
                .map(|b| match b {
                    Block::Text { text } => json!({ "type": "text", "text": text }),
                    Block::ToolUse { id, name, input } => {
                        json!({ "type": "tool_use", "id": id, "name": name, "input": input })
                    }
                    Block::Image { media_type, data } => json!({
                        "type": "image", "source": { "type": "base64", "media_type": media_type, "data": data }
                    }),
                    Block::ToolResult { tool_use_id, content, is_error } => json!({
                        "type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error
                    }),
                })
                .collect();
            json!({ "role": m.role.as_str(), "content": content })
        })
        .collect();
    let mut messages = messages;
    // An answer being continued ends the request: Anthropic continues a final assistant
    // message, which must not end with white space.
    if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant")
        && let Some(Value::Array(blocks)) = last.get_mut("content")
        && let Some(text) = blocks.last_mut().filter(|b| b["type"] == "text").and_then(|b| b.get_mut("text"))
        && let Some(t) = text.as_str()
    {
        *text = json!(t.trim_end());
    }
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "stream": true,
        "messages": messages,
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    if let Some(t) = req.temperature {
        // Anthropic takes 0–1; agents allow up to 2 (OpenAI's range).
        body["temperature"] = json!(t.clamp(0.0, 1.0));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.schema }))
            .collect();
    }
    body
}

struct ToolBlock {
    id: String,
    name: String,
    json: String,
}

#[derive(Default)]
pub struct Decoder {
    tools: HashMap<u64, ToolBlock>,
    input_tokens: Option<u64>,
    stop: Option<StopReason>,
    pub done: bool,
}

fn stop_reason(raw: &str) -> StopReason {
    match raw {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_owned()),
    }
}

impl Decoder {
    pub fn on_event(&mut self, ev: sse::Event) -> Result<Vec<StreamEvent>, LlmError> {
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|e| LlmError::Protocol(format!("an event that is not JSON ({e})")))?;
        let kind = ev.event.as_deref().or(v["type"].as_str()).unwrap_or_default().to_owned();
        let index = v["index"].as_u64().unwrap_or_default();
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => self.input_tokens = v["message"]["usage"]["input_tokens"].as_u64(),
            "content_block_start" => {
                let block = &v["content_block"];
                if block["type"] == "tool_use" {
                    let id = block["id"].as_str().unwrap_or_default().to_owned();
                    let name = block["name"].as_str().unwrap_or_default().to_owned();
                    out.push(StreamEvent::ToolStart { id: id.clone(), name: name.clone() });
                    self.tools.insert(index, ToolBlock { id, name, json: String::new() });
                }
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = delta["text"].as_str().unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta { text: text.to_owned() });
                        }
                    }
                    Some("input_json_delta") => {
                        let part = delta["partial_json"].as_str().unwrap_or_default();
                        if let Some(t) = self.tools.get_mut(&index)
                            && !part.is_empty()
                        {
                            t.json.push_str(part);
                            out.push(StreamEvent::ToolDelta { id: t.id.clone(), json: part.to_owned() });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(t) = self.tools.remove(&index) {
                    let input = if t.json.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&t.json).map_err(|e| {
                            LlmError::Protocol(format!("the input of tool call {} is not JSON ({e})", t.name))
                        })?
                    };
                    out.push(StreamEvent::ToolEnd { id: t.id, name: t.name, input });
                }
            }
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop_reason(r));
                }
                let usage = &v["usage"];
                let input = usage["input_tokens"].as_u64().or(self.input_tokens);
                out.push(StreamEvent::Usage {
                    usage: Usage { input_tokens: input, output_tokens: usage["output_tokens"].as_u64() },
                });
            }
            "message_stop" => {
                self.done = true;
                out.push(StreamEvent::Stop { reason: self.stop.take().unwrap_or(StopReason::EndTurn) });
            }
            "error" => {
                let e = &v["error"];
                let message = e["message"].as_str().unwrap_or("unknown error");
                let kind = e["type"].as_str().unwrap_or("error");
                return Err(LlmError::Upstream(format!("{kind}: {message}")));
            }
            _ => {} // ping, and event types added later
        }
        Ok(out)
    }
}
