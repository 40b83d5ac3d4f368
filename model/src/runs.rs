//! Runs: every piece of agent work (a chat answer, an API answer, later a build, a team
//! member, an evaluation case, a triggered run), listed and traced.

use serde::{Deserialize, Serialize};

use crate::chat::{RunStatus, SeqEvent};
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
    fn ids_are_uuids() {
        assert!(is_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!is_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5"));
        assert!(!is_id("0193a1b2xc3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!is_id("../../etc/passwd"));
    }
}
