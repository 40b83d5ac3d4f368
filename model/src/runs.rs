//! Runs: every piece of agent work (a chat answer, an API answer, later a build, a team
//! member, an evaluation case, a triggered run), listed and traced.

use serde::{Deserialize, Serialize};

use crate::chat::{CallState, ModelCall, RunEvent, RunStatus, SeqEvent};
use crate::{FieldError, FieldErrors};

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// An answer in Agentry's chat.
    Chat,
    /// An answer to the OpenAI-compatible API.
    Api,
}

impl RunKind {
    pub const ALL: [RunKind; 2] = [Self::Chat, Self::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Api => "api",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// What one run may use. A child run gets the least of its own and what its parent has
/// left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLimits {
    /// Model calls.
    pub max_turns: u32,
    /// Output tokens per model call.
    pub max_output_tokens: u32,
    /// Wall-clock seconds from start to end.
    pub wall_secs: u64,
    /// Tool calls in all.
    pub max_tool_calls: u32,
}

impl RunLimits {
    /// The least of each.
    pub fn min(self, o: RunLimits) -> Self {
        Self {
            max_turns: self.max_turns.min(o.max_turns),
            max_output_tokens: self.max_output_tokens.min(o.max_output_tokens),
            wall_secs: self.wall_secs.min(o.wall_secs),
            max_tool_calls: self.max_tool_calls.min(o.max_tool_calls),
        }
    }
}

/// Statuses a list can be filtered by: a run's own, or `live` (running or waiting).
pub const STATUS_FILTERS: [&str; 8] =
    ["live", "running", "waiting", "done", "stopped", "incomplete", "interrupted", "failed"];

/// A run list's filters, as the page's query string carries them (empty: any).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub agent_id: String,
    /// Everyone's runs (admins only).
    #[serde(default)]
    pub everyone: bool,
    #[serde(default)]
    pub page: u32,
}

impl RunFilter {
    /// Checks each filter, naming the one that is not known.
    pub fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        if !self.status.is_empty() && !STATUS_FILTERS.contains(&self.status.as_str()) {
            errors.push(FieldError::new("status", "invalid"));
        }
        if !self.kind.is_empty() && RunKind::parse(&self.kind).is_none() {
            errors.push(FieldError::new("kind", "invalid"));
        }
        if !self.agent_id.is_empty() && !is_id(&self.agent_id) {
            errors.push(FieldError::new("agent_id", "invalid"));
        }
        if errors.is_empty() { Ok(()) } else { Err(FieldErrors(errors)) }
    }
}

/// Whether `raw` has the shape of an id Agentry makes (a UUID).
pub fn is_id(raw: &str) -> bool {
    raw.len() == 36
        && raw.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// One row of the runs list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub kind: RunKind,
    pub status: RunStatus,
    pub agent_id: String,
    /// Empty when the agent no longer exists.
    pub agent_name: String,
    pub agent_version: i64,
    /// Whose run it is (shown to admins looking at everyone's).
    pub owner_email: String,
    /// What it worked for: for chat and API runs the answer's message; empty once that is
    /// deleted.
    pub subject_id: String,
    pub parent_id: Option<String>,
    pub model: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// From start to end, or to now while it runs, in milliseconds.
    #[serde(default)]
    pub duration_ms: i64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
    pub error: String,
}

/// A run and its events, for the trace view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunSummary,
    pub limits: RunLimits,
    /// Every event so far, in order.
    pub events: Vec<SeqEvent>,
    /// The viewer may stop it (its owner, or an admin).
    pub can_stop: bool,
    /// It is the viewer's own (an admin may be looking at someone else's).
    pub own: bool,
}

/// One step of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// A model call: the text it wrote, and its figures once it ended (none while it
    /// streams).
    Model { text: String, call: Option<ModelCall> },
    Tool {
        id: String,
        label: String,
        input: serde_json::Value,
        state: CallState,
        result: String,
        ms: u64,
        /// Who allowed (true) or declined it, for calls that asked.
        answered: Option<(bool, String)>,
    },
    /// The run ended other than by finishing its answer.
    Status { status: RunStatus, error: String },
    /// The run carries on the run `from`, whose answer it starts with.
    Continues { from: String },
    /// Older messages were summarised or left out to fit the model's window.
    Context(crate::chat::ContextCut),
}

/// A run's events folded into its steps, in order; the same on the server and in the
/// browser (which folds live events as they come).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub steps: Vec<Step>,
    pub seq: u64,
}

impl Trace {
    pub fn of(events: &[SeqEvent]) -> Self {
        let mut t = Self::default();
        events.iter().for_each(|e| t.apply(e));
        t
    }

    /// The model call being streamed, started by the first output after the last one.
    fn open_call(&mut self) -> &mut Step {
        let open = matches!(
            self.steps.iter().rev().find(|s| matches!(s, Step::Model { .. })),
            Some(Step::Model { call: None, .. })
        ) && !matches!(self.steps.last(), Some(Step::Tool { .. } | Step::Status { .. }));
        if !open {
            self.steps.push(Step::Model { text: String::new(), call: None });
        }
        let i = self.steps.iter().rposition(|s| matches!(s, Step::Model { .. })).unwrap_or_default();
        &mut self.steps[i]
    }

    fn tool_mut(&mut self, id: &str) -> Option<&mut Step> {
        self.steps.iter_mut().rev().find(|s| matches!(s, Step::Tool { id: i, .. } if i == id))
    }

    /// Applies one event (an event already applied, by sequence number, is skipped).
    pub fn apply(&mut self, e: &SeqEvent) {
        if e.seq <= self.seq {
            return;
        }
        self.seq = e.seq;
        match &e.event {
            RunEvent::Text { text: piece } => {
                if let Step::Model { text, .. } = self.open_call() {
                    text.push_str(piece);
                }
            }
            RunEvent::ToolStart { id, label, name } => {
                // The call is output of the model call being streamed.
                self.open_call();
                let label = if label.is_empty() { name.clone() } else { label.clone() };
                self.steps.push(Step::Tool {
                    id: id.clone(),
                    label,
                    input: serde_json::Value::Null,
                    state: CallState::Writing,
                    result: String::new(),
                    ms: 0,
                    answered: None,
                });
            }
            RunEvent::ToolCall { id, input: i, asking } => {
                if let Some(Step::Tool { input, state, .. }) = self.tool_mut(id) {
                    *input = i.clone();
                    *state = if *asking { CallState::Asking } else { CallState::Running };
                }
            }
            RunEvent::ToolRunning { id } => {
                if let Some(Step::Tool { state, .. }) = self.tool_mut(id) {
                    *state = CallState::Running;
                }
            }
            RunEvent::Answered { id, allow, by } => {
                if let Some(Step::Tool { answered, .. }) = self.tool_mut(id) {
                    *answered = Some((*allow, by.clone()));
                }
            }
            RunEvent::ToolResult { id, content, state: s, ms: took } => {
                if let Some(Step::Tool { result, state, ms, .. }) = self.tool_mut(id) {
                    *result = content.clone();
                    *state = *s;
                    *ms = *took;
                }
            }
            RunEvent::ModelCall(figures) => {
                // The call that streamed, or (when it failed before any output) a new one.
                let streamed = matches!(
                    self.steps.iter().rev().find(|s| matches!(s, Step::Model { .. })),
                    Some(Step::Model { call: None, .. })
                );
                if !streamed {
                    self.steps.push(Step::Model { text: String::new(), call: None });
                }
                if let Some(Step::Model { call, .. }) =
                    self.steps.iter_mut().rev().find(|s| matches!(s, Step::Model { .. }))
                {
                    *call = Some(figures.clone());
                }
            }
            RunEvent::Status { status, error, .. } => {
                // A wait for approval shows on its tool call; the trace shows how it ended.
                let shown = status.is_final() && (*status != RunStatus::Done || !error.is_empty());
                if shown {
                    self.steps.push(Step::Status { status: *status, error: error.clone() });
                }
            }
            RunEvent::Continues { from, .. } => self.steps.push(Step::Continues { from: from.clone() }),
            RunEvent::Context(cut) => self.steps.push(Step::Context(cut.clone())),
            RunEvent::Turn | RunEvent::Usage { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_the_field_that_is_not_known() {
        assert!(RunFilter::default().check().is_ok());
        let f = RunFilter { status: "live".into(), kind: "chat".into(), ..RunFilter::default() };
        assert!(f.check().is_ok());
        let f = RunFilter { status: "sleeping".into(), kind: "x".into(), agent_id: "1'".into(), ..f };
        let fields: Vec<String> =
            f.check().err().map(|e| e.0.into_iter().map(|e| e.field).collect()).unwrap_or_default();
        assert_eq!(fields, ["status", "kind", "agent_id"]);
    }

    #[test]
    fn a_trace_has_each_model_call_and_tool_call_in_order() {
        let call = |model: &str, stop: &str| {
            RunEvent::ModelCall(ModelCall {
                model: model.into(),
                input_tokens: 10,
                output_tokens: 5,
                cost_micros: 7,
                ttft_ms: 12,
                ms: 40,
                stop: stop.into(),
                failures: vec!["big: 503".into()],
                error: String::new(),
            })
        };
        let events = [
            RunEvent::Text { text: "Let me ".into() },
            RunEvent::ToolStart { id: "c1".into(), name: "fx__add".into(), label: "fx/add".into() },
            RunEvent::ToolCall { id: "c1".into(), input: serde_json::json!({"a": 1}), asking: true },
            call("small", "tool_use"),
            RunEvent::Status { status: RunStatus::Waiting, error: String::new(), limit: false },
            RunEvent::Answered { id: "c1".into(), allow: true, by: "Ada".into() },
            RunEvent::Status { status: RunStatus::Running, error: String::new(), limit: false },
            RunEvent::ToolResult { id: "c1".into(), content: "2".into(), state: CallState::Done, ms: 3 },
            RunEvent::Turn,
            RunEvent::Text { text: "It is 2.".into() },
            call("small", "end_turn"),
            RunEvent::Status { status: RunStatus::Done, error: String::new(), limit: false },
        ];
        let events: Vec<SeqEvent> =
            events.into_iter().enumerate().map(|(i, event)| SeqEvent { seq: i as u64 + 1, event }).collect();
        let t = Trace::of(&events);
        let kinds: Vec<&str> = t
            .steps
            .iter()
            .map(|s| match s {
                Step::Model { .. } => "model",
                Step::Tool { .. } => "tool",
                Step::Status { .. } => "status",
                Step::Continues { .. } => "continues",
                Step::Context(_) => "context",
            })
            .collect();
        assert_eq!(kinds, ["model", "tool", "model"]);
        assert!(matches!(&t.steps[0], Step::Model { text, call: Some(c) }
            if text == "Let me " && c.stop == "tool_use" && c.failures.len() == 1));
        assert!(matches!(&t.steps[1], Step::Tool { result, ms: 3, answered: Some((true, by)), .. }
            if result == "2" && by == "Ada"));
        assert!(matches!(&t.steps[2], Step::Model { text, .. } if text == "It is 2."));
        // Folding again from any point changes nothing.
        let mut again = t.clone();
        events.iter().for_each(|e| again.apply(e));
        assert_eq!(again, t);
    }

    #[test]
    fn ids_are_uuids() {
        assert!(is_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!is_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5"));
        assert!(!is_id("0193a1b2xc3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!is_id("../../etc/passwd"));
    }
}
