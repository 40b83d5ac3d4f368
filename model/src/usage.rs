//! What a user's agents cost: tokens and dollars per day, agent and model over a period.

use serde::{Deserialize, Serialize};

/// The periods the usage page offers, in days; [`DEFAULT_DAYS`] when none is asked for.
pub const PERIODS: [u32; 3] = [7, 30, 90];
pub const DEFAULT_DAYS: u32 = 30;

/// Answers, tokens and cost added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub answers: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.answers += o.answers;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_micros += o.cost_micros;
    }

    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// One line of a breakdown: an agent (`key` its id), a model or a day (`key` the date).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub key: String,
    pub label: String,
    pub tally: Tally,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The period, in days up to and including today (UTC).
    pub days: u32,
    pub total: Tally,
    /// Every day of the period, oldest first, empty days included; `key` is `YYYY-MM-DD`.
    pub by_day: Vec<UsageRow>,
    /// Agents, most expensive first (then most tokens).
    pub by_agent: Vec<UsageRow>,
    pub by_model: Vec<UsageRow>,
    /// Models used in the period that have no price in the pricing table (their cost shows 0).
    pub unpriced: Vec<String>,
}
