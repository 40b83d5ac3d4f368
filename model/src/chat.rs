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

impl Role {
    /// The name stored and sent to providers (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
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
    /// An image a person attached (base64 of its bytes), for a vision model.
    Image {
        media_type: String,
        data: String,
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

/// Where a run (an assistant message) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Paused until the user answers a tool call the policy marks "ask".
    Waiting,
    Done,
    /// The user stopped it; what it produced is kept.
    Stopped,
    /// It broke off (the provider failed after output began, or a limit was hit); what it
    /// produced is kept.
    Incomplete,
    /// The server went down while it ran; what it produced is kept.
    Interrupted,
    /// Nothing came (the provider failed before any output).
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Stopped => "stopped",
            Self::Incomplete => "incomplete",
            Self::Interrupted => "interrupted",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "running" => Self::Running,
            "waiting" => Self::Waiting,
            "stopped" => Self::Stopped,
            "incomplete" => Self::Incomplete,
            "interrupted" => Self::Interrupted,
            "failed" => Self::Failed,
            _ => Self::Done,
        }
    }

    /// It will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Running | Self::Waiting)
    }
}

/// What happened to a tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// The model is still writing its input.
    Writing,
    /// Waiting for the user to allow or deny it.
    Asking,
    Running,
    Done,
    Failed,
    Denied,
}

impl CallState {
    /// The name serde writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Writing => "writing",
            Self::Asking => "asking",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Denied => "denied",
        }
    }
}

/// One tool call in a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    /// The name the model used.
    pub name: String,
    /// What it is, for people: `server/tool` or a skill tool.
    #[serde(default)]
    pub label: String,
    pub input: Value,
    pub state: CallState,
    #[serde(default)]
    pub result: String,
}

/// A piece of an assistant message as people see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    Tool {
        call: ToolCall,
    },
    /// A model call ended and the next one begins (after tool results).
    Turn,
    /// Older messages were summarised or left out here to fit the model's context window.
    Context {
        cut: ContextCut,
    },
}

/// Where a run shortened the conversation it sends to fit the model's context window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextCut {
    /// How many messages (a person's, or an answer with its tool calls) were left out.
    pub dropped: u32,
    /// The newest message left out: later answers start after it.
    pub through: String,
    /// What the model wrote about them (empty: they were dropped).
    #[serde(default)]
    pub summary: String,
    /// The model's window, in tokens.
    pub window: u64,
}

/// One event of a run. Every event has a sequence number; folding them in order gives the
/// transcript, on the server and in the browser alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    Text {
        text: String,
    },
    ToolStart {
        id: String,
        name: String,
        label: String,
    },
    /// The call's complete input; `asking`: the policy wants the user's answer first.
    ToolCall {
        id: String,
        input: Value,
        asking: bool,
    },
    ToolRunning {
        id: String,
    },
    ToolResult {
        id: String,
        content: String,
        state: CallState,
        /// How long the call took, in milliseconds (0 when it never ran).
        #[serde(default)]
        ms: u64,
    },
    /// Someone allowed or declined the call `id` (the name they go by).
    Answered {
        id: String,
        allow: bool,
        by: String,
    },
    /// One model call ended (or failed): what it cost and how it went, for the trace.
    ModelCall(ModelCall),
    Turn,
    /// Tokens and cost of the run so far (replaces any earlier figures).
    Usage {
        input_tokens: u64,
        output_tokens: u64,
        cost_micros: u64,
        model: String,
    },
    /// Older messages were summarised or left out to fit the model's context window.
    Context(ContextCut),
    /// The run carries on an earlier one that ended incomplete (`from`, its id): the
    /// answer starts with what that one wrote, and the model continues from there.
    Continues {
        from: String,
        parts: Vec<Part>,
    },
    Status {
        status: RunStatus,
        error: String,
        /// The run ended at one of its limits (output tokens, turns, size), not because
        /// something failed: an API answer then finishes as `length`, not as an error.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        limit: bool,
    },
}

/// One model call's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    /// The model that answered (a fallback, when the agent's own failed).
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
    /// From sending the request to its first output, retries included.
    pub ttft_ms: u64,
    pub ms: u64,
    /// `end_turn`, `tool_use`, `max_tokens`, what the provider said, `stopped`, `limit` or
    /// `error`.
    pub stop: String,
    /// The attempts that failed before it, `model: error`, in order (retries and
    /// fallbacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeqEvent {
    pub seq: u64,
    pub event: RunEvent,
}

/// An assistant message being built from its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub parts: Vec<Part>,
    pub status: RunStatus,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cost_micros: u64,
    /// The sequence number of the last event applied (0: none).
    #[serde(default)]
    pub seq: u64,
    /// It ended at a limit (see [`RunEvent::Status`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_limit: bool,
}

impl Default for Transcript {
    fn default() -> Self {
        Self {
            parts: Vec::new(),
            status: RunStatus::Running,
            error: String::new(),
            model: String::new(),
            input_tokens: 0,
            output_tokens: 0,
            cost_micros: 0,
            seq: 0,
            at_limit: false,
        }
    }
}

impl Transcript {
    fn call_mut(&mut self, id: &str) -> Option<&mut ToolCall> {
        self.parts.iter_mut().rev().find_map(|p| match p {
            Part::Tool { call } if call.id == id => Some(call),
            _ => None,
        })
    }

    /// Applies one event; an event already applied (by sequence number) is skipped, so a
    /// resumed stream that overlaps changes nothing.
    pub fn apply(&mut self, e: &SeqEvent) {
        if e.seq <= self.seq {
            return;
        }
        self.seq = e.seq;
        match &e.event {
            RunEvent::Text { text } => match self.parts.last_mut() {
                Some(Part::Text { text: t }) => t.push_str(text),
                _ => self.parts.push(Part::Text { text: text.clone() }),
            },
            RunEvent::ToolStart { id, name, label } => self.parts.push(Part::Tool {
                call: ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    label: label.clone(),
                    input: Value::Null,
                    state: CallState::Writing,
                    result: String::new(),
                },
            }),
            RunEvent::ToolCall { id, input, asking } => {
                if let Some(c) = self.call_mut(id) {
                    c.input = input.clone();
                    c.state = if *asking { CallState::Asking } else { CallState::Running };
                }
            }
            RunEvent::ToolRunning { id } => {
                if let Some(c) = self.call_mut(id) {
                    c.state = CallState::Running;
                }
            }
            RunEvent::ToolResult { id, content, state, .. } => {
                if let Some(c) = self.call_mut(id) {
                    c.result = content.clone();
                    c.state = *state;
                }
            }
            RunEvent::Turn => self.parts.push(Part::Turn),
            RunEvent::Continues { parts, .. } => self.parts.extend(parts.iter().cloned()),
            RunEvent::Context(cut) => self.parts.push(Part::Context { cut: cut.clone() }),
            // For the trace only.
            RunEvent::Answered { .. } | RunEvent::ModelCall(_) => {}
            RunEvent::Usage { input_tokens, output_tokens, cost_micros, model } => {
                self.input_tokens = *input_tokens;
                self.output_tokens = *output_tokens;
                self.cost_micros = *cost_micros;
                self.model = model.clone();
            }
            RunEvent::Status { status, error, limit } => {
                self.status = *status;
                self.error = error.clone();
                self.at_limit = *limit;
            }
        }
    }

    /// The text of the answer (all text parts).
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The transcript as model messages: each turn's text and calls as an assistant
    /// message, the calls' results as the user message after it.
    pub fn to_messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        let mut blocks = Vec::new();
        let mut results = Vec::new();
        let flush = |blocks: &mut Vec<Block>, results: &mut Vec<Block>, out: &mut Vec<Message>| {
            if !blocks.is_empty() {
                out.push(Message { role: Role::Assistant, content: std::mem::take(blocks) });
            }
            if !results.is_empty() {
                out.push(Message { role: Role::User, content: std::mem::take(results) });
            }
        };
        for p in &self.parts {
            match p {
                Part::Text { text } if !text.is_empty() => blocks.push(Block::Text { text: text.clone() }),
                Part::Text { .. } => {}
                Part::Tool { call } => {
                    blocks.push(Block::ToolUse {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        input: call.input.clone(),
                    });
                    let done = matches!(call.state, CallState::Done | CallState::Failed | CallState::Denied);
                    results.push(Block::ToolResult {
                        tool_use_id: call.id.clone(),
                        content: if done { call.result.clone() } else { "The call did not finish.".into() },
                        is_error: call.state != CallState::Done,
                    });
                }
                Part::Turn => flush(&mut blocks, &mut results, &mut out),
                Part::Context { .. } => {}
            }
        }
        flush(&mut blocks, &mut results, &mut out);
        out
    }
}

/// The longest message a person may send.
pub const MESSAGE_MAX: usize = 100_000;
pub const TITLE_MAX: usize = 200;

/// One row of a conversations list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    pub agent_id: String,
    pub agent_name: String,
    pub updated_at: i64,
    /// Pinned conversations head the list.
    #[serde(default)]
    pub pinned: bool,
}

/// A conversation's branch shown, whole: what an export holds and what a share link shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationExport {
    pub title: String,
    pub agent_name: String,
    /// When it was exported, or shared.
    pub at: i64,
    pub messages: Vec<ExportedMessage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedMessage {
    pub role: Role,
    pub created_at: i64,
    /// The person's message, or the answer's text.
    pub text: String,
    /// An answer's tool calls, in order (a share link shows their names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ExportedTool>,
    /// How an answer ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedTool {
    /// `server/tool` or the skill tool, as the conversation shows it.
    pub name: String,
    pub state: CallState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

impl ConversationExport {
    /// The conversation as Markdown: a heading per message with who wrote it and when,
    /// the text as written (it is Markdown already), tool calls as quoted lines.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n\n", one_line(&self.title));
        out.push_str(&format!("{} · {}\n", one_line(&self.agent_name), crate::fields::format_utc(self.at)));
        for m in &self.messages {
            let who = match m.role {
                Role::User => "You",
                Role::Assistant => self.agent_name.as_str(),
            };
            out.push_str(&format!("\n## {} · {}\n\n", one_line(who), crate::fields::format_utc(m.created_at)));
            for t in &m.tools {
                out.push_str(&format!("> Tool `{}` ({})\n", t.name.replace('`', "'"), t.state.as_str()));
                if let Some(input) = &t.input {
                    out.push_str(&format!("> input: `{}`\n", input.to_string().replace('`', "'")));
                }
                if let Some(result) = t.result.as_deref().filter(|r| !r.is_empty()) {
                    for line in result.lines() {
                        out.push_str(&format!("> {line}\n"));
                    }
                }
                out.push('\n');
            }
            out.push_str(m.text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `s` on one line (a heading cannot span lines).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A share link of a conversation, as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareView {
    /// The path of the read-only page: `/s/<token>`.
    pub path: String,
    pub created_at: i64,
}

/// The conversations a sidebar shows, with the server's clock to group them by day (so
/// the page groups alike on the server and once hydrated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SidebarList {
    pub now_ms: i64,
    pub page: crate::Page<ConversationSummary>,
}

/// A message on the branch shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: String,
    pub parent_id: Option<String>,
    pub role: Role,
    /// A person's message.
    pub text: String,
    /// An assistant message (a run).
    pub transcript: Option<Transcript>,
    /// The run that wrote an assistant message.
    #[serde(default)]
    pub run_id: Option<String>,
    pub created_at: i64,
    /// This message and its siblings (other answers or edits), oldest first.
    pub siblings: Vec<String>,
    /// The person's rating of an answer.
    #[serde(default)]
    pub rating: Option<Rating>,
    /// The files a person's message carries.
    #[serde(default)]
    pub attachments: Vec<crate::attachments::AttachmentView>,
}

/// A person's rating of an answer: up or down, with an optional note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub up: bool,
    pub note: String,
}

/// The longest note a rating may carry, in characters.
pub const RATING_NOTE_MAX: usize = 2_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationView {
    pub id: String,
    pub title: String,
    pub agent_id: String,
    pub agent_name: String,
    /// The branch shown, from the first message to the newest (a window of it).
    pub messages: Vec<MessageView>,
    /// Older messages exist before the window: ask for those before this id.
    #[serde(default)]
    pub earlier: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

/// What sending (or regenerating) started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub conversation_id: String,
    pub user_message_id: String,
    pub assistant_message_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, event: RunEvent) -> SeqEvent {
        SeqEvent { seq, event }
    }

    #[test]
    fn a_role_is_named_as_serde_names_it() {
        for role in [Role::User, Role::Assistant] {
            assert_eq!(serde_json::to_value(role).ok(), Some(serde_json::json!(role.as_str())));
        }
    }

    #[test]
    fn a_transcript_folds_events_once_and_turns_into_model_messages() {
        let events = [
            ev(1, RunEvent::Text { text: "Let me ".into() }),
            ev(2, RunEvent::Text { text: "add.".into() }),
            ev(3, RunEvent::ToolStart { id: "c1".into(), name: "fx__add".into(), label: "fx/add".into() }),
            ev(4, RunEvent::ToolCall { id: "c1".into(), input: serde_json::json!({"a": 1}), asking: false }),
            ev(5, RunEvent::ToolResult { id: "c1".into(), content: "3".into(), state: CallState::Done, ms: 2 }),
            ev(6, RunEvent::Turn),
            ev(7, RunEvent::Text { text: "It is 3.".into() }),
            ev(8, RunEvent::Status { status: RunStatus::Done, error: String::new(), limit: false }),
        ];
        let mut t = Transcript::default();
        for e in &events {
            t.apply(e);
        }
        // Replaying an overlap changes nothing.
        let again = t.clone();
        for e in &events[3..] {
            t.apply(e);
        }
        assert_eq!(t, again);
        assert_eq!(t.text(), "Let me add.It is 3.");
        assert_eq!(t.status, RunStatus::Done);
        let m = t.to_messages();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].role, Role::Assistant);
        assert!(matches!(&m[1].content[0], Block::ToolResult { content, is_error: false, .. } if content == "3"));
        assert_eq!(m[2].text(), "It is 3.");
    }
}
