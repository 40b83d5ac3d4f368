//! Usage over a period: every answer of the user's conversations added up per UTC day,
//! agent and model. One grouped query; the period is a few days' rows per agent and model.

use std::collections::{BTreeSet, HashMap};

use model::usage::{PERIODS, Tally, UsageReport, UsageRow};
use sqlx::Row;

use crate::Engine;
use crate::auth::CurrentUser;
use crate::chat::{ChatError, invalid};
use crate::store::now_ms;

const DAY_MS: i64 = 86_400_000;

impl Engine {
    /// The user's usage over the last `days` days (today included, UTC).
    pub async fn usage(&self, user: &CurrentUser, days: u32) -> Result<UsageReport, ChatError> {
        if !PERIODS.contains(&days) {
            return Err(invalid("days", "invalid", None));
        }
        let today = now_ms().div_euclid(DAY_MS);
        let first = today - i64::from(days) + 1;
        let rows = sqlx::query(
            "SELECT c.agent_id AS agent_id, COALESCE(a.name, '') AS agent_name, m.model AS model, \
             m.created_at / 86400000 AS day, COUNT(*) AS answers, \
             CAST(COALESCE(SUM(m.input_tokens), 0) AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(m.output_tokens), 0) AS BIGINT) AS output_tokens, \
             CAST(COALESCE(SUM(m.cost_micros), 0) AS BIGINT) AS cost_micros \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             LEFT JOIN agents a ON a.id = c.agent_id \
             WHERE c.owner_id = $1 AND m.role = 'assistant' AND m.created_at >= $2 \
             GROUP BY c.agent_id, a.name, m.model, m.created_at / 86400000",
        )
        .bind(&user.id)
        .bind(first * DAY_MS)
        .fetch_all(&self.store.pool)
        .await?;

        let mut report = UsageReport { days, ..UsageReport::default() };
        let mut by_day: Vec<Tally> = vec![Tally::default(); days as usize];
        let mut agents: HashMap<String, UsageRow> = HashMap::new();
        let mut models: HashMap<String, UsageRow> = HashMap::new();
        let mut unpriced = BTreeSet::new();
        for r in rows {
            let n = |c: &str| r.try_get::<i64, _>(c).map(|v| v.max(0) as u64);
            let tally = Tally {
                answers: n("answers")?,
                input_tokens: n("input_tokens")?,
                output_tokens: n("output_tokens")?,
                cost_micros: n("cost_micros")?,
            };
            let (agent_id, agent_name): (String, String) = (r.try_get("agent_id")?, r.try_get("agent_name")?);
            let model: String = r.try_get("model")?;
            let day: i64 = r.try_get("day")?;
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
