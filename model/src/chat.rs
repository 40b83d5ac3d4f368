//! The canonical conversation: messages made of content blocks (text, a tool call, a tool
//! result), the tools a model may call, and what a model's stream says. Provider adapters
//! translate to and from these; the runtime, the store and the pages only know these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    /// The model calls a tool.
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// A tool's answer (or its error), for the call `tool_use_id`.
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user(text: &str) -> Self {
        Self { role: Role::User, content: vec![Block::Text { text: text.to_owned() }] }
    }

    /// The text blocks joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A tool as the model is told about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by (letters, digits, `_` and `-`, at most 64).
    pub name: String,
    pub description: String,
    /// JSON schema of the input object.
    pub schema: Value,
}

/// Why a model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It ran into the output token limit.
    MaxTokens,
    /// Anything else the provider said (refusal, content filter…).
    Other(String),
}

/// Tokens one model call used; `None` where the provider did not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl Usage {
    /// Adds `other` to this (unknown stays unknown only when both are).
    pub fn add(&mut self, other: Usage) {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.input_tokens = sum(self.input_tokens, other.input_tokens);
        self.output_tokens = sum(self.output_tokens, other.output_tokens);
    }
}

/// What a model's stream says, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    TextDelta {
        text: String,
    },
    /// A tool call begins (its input follows as JSON fragments).
    ToolStart {
        id: String,
        name: String,
    },
    ToolDelta {
        id: String,
        json: String,
    },
    /// A tool call is complete, with its parsed input.
    ToolEnd {
        id: String,
        name: String,
        input: Value,
    },
    Usage {
        usage: Usage,
    },
    Stop {
        reason: StopReason,
    },
}

impl StreamEvent {
    /// Text or a tool call: output a user sees (after it, no silent retry or fallback).
    pub fn is_output(&self) -> bool {
        matches!(self, Self::TextDelta { .. } | Self::ToolStart { .. } | Self::ToolDelta { .. } | Self::ToolEnd { .. })
    }
}
