//! Usage over a period: every run of the user added up per UTC day, agent and model. One
//! grouped query (the runs domain's); the period is a few days' rows per agent and model.

use std::collections::{BTreeSet, HashMap};

use model::usage::{PERIODS, Tally, UsageReport, UsageRow};

use crate::Engine;
use crate::auth::CurrentUser;
use crate::chat::{ChatError, invalid};
use crate::infra::store::now_ms;

const DAY_MS: i64 = 86_400_000;

impl Engine {
    /// The user's usage over the last `days` days (today included, UTC).
    pub async fn usage(&self, user: &CurrentUser, days: u32) -> Result<UsageReport, ChatError> {
        if !PERIODS.contains(&days) {
            return Err(invalid("days", "invalid", None));
        }
        let today = now_ms().div_euclid(DAY_MS);
        let first = today - i64::from(days) + 1;
        let rows = self.run_usage(&user.id, first * DAY_MS).await?;

        let mut report = UsageReport { days, ..UsageReport::default() };
        let mut by_day: Vec<Tally> = vec![Tally::default(); days as usize];
        let mut agents: HashMap<String, UsageRow> = HashMap::new();
        let mut models: HashMap<String, UsageRow> = HashMap::new();
        let mut unpriced = BTreeSet::new();
        for r in rows {
            let tally = Tally {
                answers: r.runs,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cost_micros: r.cost_micros,
            };
            let (agent_id, agent_name, model, day) = (r.agent_id, r.agent_name, r.model, r.day);
            if let Some(slot) = usize::try_from(day - first).ok().and_then(|i| by_day.get_mut(i)) {
                slot.add(&tally);
            }
            report.total.add(&tally);
            let a = agents.entry(agent_id.clone()).or_insert_with(|| UsageRow {
                key: agent_id,
                label: agent_name,
                tally: Tally::default(),
            });
            a.tally.add(&tally);
            if !model.is_empty() {
                if tally.tokens() > 0 && !self.settings.pricing.contains_key(&model) {
                    unpriced.insert(model.clone());
                }
                let m = models.entry(model.clone()).or_insert_with(|| UsageRow {
                    key: model.clone(),
                    label: model,
                    tally: Tally::default(),
                });
                m.tally.add(&tally);
            }
        }
        report.by_day = by_day
            .into_iter()
            .enumerate()
            .map(|(i, tally)| {
                let date = model::fields::format_day(first + i as i64);
                UsageRow { key: date.clone(), label: date, tally }
            })
            .collect();
        let ranked = |m: HashMap<String, UsageRow>| {
            let mut v: Vec<UsageRow> = m.into_values().collect();
            v.sort_by(|a, b| {
                (b.tally.cost_micros, b.tally.tokens(), &a.label).cmp(&(
                    a.tally.cost_micros,
                    a.tally.tokens(),
                    &b.label,
                ))
            });
            v
        };
        report.by_agent = ranked(agents);
        report.by_model = ranked(models);
        report.unpriced = unpriced.into_iter().collect();
        Ok(report)
    }
}
