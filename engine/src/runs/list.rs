//! Reading runs: who may see one, the runs list with its filters, one run's trace, and the
//! figures usage adds up.

use model::Page;
use model::chat::{RunStatus, SeqEvent};
use model::runs::{RunDetail, RunFilter, RunKind, RunLimits, RunSummary, is_id};
use sqlx::Row;

use super::RunError;
use crate::Engine;
use crate::auth::CurrentUser;
use crate::infra::store::{Arg, List};

/// Runs per list page.
pub const PER_PAGE: u32 = 50;

/// A run's columns, with its agent's name and its owner's email.
const COLUMNS: &str = "r.id, r.kind, r.status, r.agent_id, COALESCE(a.name, '') AS agent_name, r.agent_version, \
     COALESCE(u.email, '') AS owner_email, r.subject_id, r.parent_id, r.model, r.started_at, r.ended_at, \
     r.input_tokens, r.output_tokens, r.cost_micros, r.error, r.limits";
const FROM: &str = "runs r LEFT JOIN agents a ON a.id = r.agent_id LEFT JOIN users u ON u.id = r.owner_id";

fn invalid(field: &str) -> RunError {
    RunError::Invalid(model::FieldErrors(vec![model::FieldError::new(field, "invalid")]))
}

fn summary(r: &sqlx::any::AnyRow) -> Result<(RunSummary, RunLimits), sqlx::Error> {
    let n = |c: &str| r.try_get::<i64, _>(c).map(|v| v.max(0) as u64);
    let kind: String = r.try_get("kind")?;
    let limits: String = r.try_get("limits")?;
    let mut run = RunSummary {
        id: r.try_get("id")?,
        kind: RunKind::parse(&kind).unwrap_or(RunKind::Chat),
        status: RunStatus::parse(&r.try_get::<String, _>("status")?),
        agent_id: r.try_get("agent_id")?,
        agent_name: r.try_get("agent_name")?,
        agent_version: r.try_get("agent_version")?,
        owner_email: r.try_get("owner_email")?,
        subject_id: r.try_get("subject_id")?,
        parent_id: r.try_get("parent_id")?,
        model: r.try_get("model")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        duration_ms: 0,
        input_tokens: n("input_tokens")?,
        output_tokens: n("output_tokens")?,
        cost_micros: n("cost_micros")?,
        error: r.try_get("error")?,
    };
    run.duration_ms = run.ended_at.unwrap_or_else(crate::infra::store::now_ms) - run.started_at;
    Ok((run, serde_json::from_str(&limits).unwrap_or_default()))
}

impl Engine {
    /// The run's owner and stored status, if `user` may see it: its owner, or (with
    /// `admin_ok`) an admin. A malformed id is a field error; anyone else's run is not found.
    pub(crate) async fn run_owner_status(
        &self,
        user: &CurrentUser,
        run_id: &str,
        admin_ok: bool,
    ) -> Result<(String, RunStatus), RunError> {
        if !is_id(run_id) {
            return Err(invalid("run_id"));
        }
        // A run of this process is known before its row is stored.
        if let Some(live) = self.runs.live(run_id) {
            let owner = live.head.owner.clone();
            return if owner == user.id || (admin_ok && user.is_admin) {
                Ok((owner, live.transcript().status))
            } else {
                Err(RunError::NotFound)
            };
        }
        let row: Option<(String, String)> = sqlx::query_as("SELECT owner_id, status FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.store.pool)
            .await?;
        match row {
            Some((owner, status)) if owner == user.id || (admin_ok && user.is_admin) => {
                Ok((owner, RunStatus::parse(&status)))
            }
            _ => Err(RunError::NotFound),
        }
    }

    /// A page of runs, newest first: the user's, or everyone's for an admin who asks.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn list_runs(&self, user: &CurrentUser, filter: &RunFilter) -> Result<Page<RunSummary>, RunError> {
        filter.check().map_err(RunError::Invalid)?;
        static LIST: List = List {
            columns: COLUMNS,
            from: FROM,
            filter: "($1 = '' OR r.owner_id = $1) \
                     AND ($2 = '' OR r.status = $2 OR ($2 = 'live' AND r.status IN ('running', 'waiting'))) \
                     AND ($3 = '' OR r.kind = $3) AND ($4 = '' OR r.agent_id = $4)",
            order: "r.started_at DESC, r.id DESC",
            per_page: PER_PAGE,
        };
        let owner = if filter.everyone && user.is_admin { "" } else { user.id.as_str() };
        let args = [Arg::Text(owner), Arg::Text(&filter.status), Arg::Text(&filter.kind), Arg::Text(&filter.agent_id)];
        LIST.page(&self.store.pool, &args, filter.page, |r| {
            let (mut run, _) = summary(r)?;
            self.overlay_live(&mut run);
            Ok::<_, RunError>(run)
        })
        .await
    }

    /// A live run's newest figures over what was last stored.
    fn overlay_live(&self, run: &mut RunSummary) {
        if let Some(live) = self.runs.live(&run.id) {
            let (t, version) = live.state.lock().map(|s| (s.transcript.clone(), s.agent_version)).unwrap_or_default();
            run.status = t.status;
            run.agent_version = run.agent_version.max(version);
            run.input_tokens = t.input_tokens;
            run.output_tokens = t.output_tokens;
            run.cost_micros = t.cost_micros;
            if !t.model.is_empty() {
                run.model = t.model;
            }
        }
    }

    /// One run and its events so far (its owner's, or any for an admin).
    #[tracing::instrument(skip_all, fields(user = %user.id, run = run_id))]
    pub async fn get_run(&self, user: &CurrentUser, run_id: &str) -> Result<RunDetail, RunError> {
        let (owner, _) = self.run_owner_status(user, run_id, true).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1")))
            .bind(run_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(RunError::NotFound)?;
        let (mut run, mut limits) = summary(&row)?;
        let events: Vec<SeqEvent> = match self.runs.live(run_id) {
            Some(live) => {
                let s = live.state.lock().map(|s| (s.log.clone(), s.limits));
                if let Ok((log, l)) = s {
                    limits = l;
                    log
                } else {
                    Vec::new()
                }
            }
            None => self.stored_events(run_id, 0).await?,
        };
        self.overlay_live(&mut run);
        let can_stop = !run.status.is_final();
        Ok(RunDetail { run, limits, events, can_stop, own: owner == user.id })
    }

    /// Usage rows of an owner's runs started since `since`: per agent, model and UTC day,
    /// `(agent_id, agent_name, model, day, runs, input, output, cost)`.
    pub(crate) async fn run_usage(&self, owner: &str, since: i64) -> Result<Vec<UsageLine>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT r.agent_id AS agent_id, COALESCE(a.name, '') AS agent_name, r.model AS model, \
             r.started_at / 86400000 AS day, COUNT(*) AS runs, \
             CAST(COALESCE(SUM(r.input_tokens), 0) AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(r.output_tokens), 0) AS BIGINT) AS output_tokens, \
             CAST(COALESCE(SUM(r.cost_micros), 0) AS BIGINT) AS cost_micros \
             FROM runs r LEFT JOIN agents a ON a.id = r.agent_id \
             WHERE r.owner_id = $1 AND r.started_at >= $2 \
             GROUP BY r.agent_id, a.name, r.model, r.started_at / 86400000",
        )
        .bind(owner)
        .bind(since)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| r.try_get::<i64, _>(c).map(|v| v.max(0) as u64);
                Ok(UsageLine {
                    agent_id: r.try_get("agent_id")?,
                    agent_name: r.try_get("agent_name")?,
                    model: r.try_get("model")?,
                    day: r.try_get("day")?,
                    runs: n("runs")?,
                    input_tokens: n("input_tokens")?,
                    output_tokens: n("output_tokens")?,
                    cost_micros: n("cost_micros")?,
                })
            })
            .collect()
    }

    /// The tokens and cost of the runs in a scope (a conversation's answers), added up:
    /// `(input, output, cost)`.
    pub(crate) async fn scope_totals(&self, scope_id: &str) -> Result<(i64, i64, i64), sqlx::Error> {
        sqlx::query_as(
            // PostgreSQL sums BIGINT as NUMERIC: cast back so both stores answer alike.
            "SELECT CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM runs WHERE scope_id = $1",
        )
        .bind(scope_id)
        .fetch_one(&self.store.pool)
        .await
    }

    /// Stops every run of a scope that has not ended, also those another instance drives;
    /// this instance's are waited for.
    pub(crate) async fn stop_scope(&self, user: &CurrentUser, scope_id: &str) -> Result<(), RunError> {
        let runs: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM runs WHERE scope_id = $1")
            .bind(scope_id)
            .fetch_all(&self.store.pool)
            .await?;
        for (run_id, status) in &runs {
            if let Some(live) = self.runs.live(run_id) {
                live.cancel(RunStatus::Stopped);
                live.finished().await;
            } else if !RunStatus::parse(status).is_final() {
                match self.stop_run(user, run_id).await {
                    Ok(()) | Err(RunError::Ended) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The runs of a deleted scope (a conversation) keep their figures (what they cost
    /// stays counted) but lose what they said: their transcripts and events.
    pub(crate) async fn forget_scope(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        scope_id: &str,
    ) -> Result<(), sqlx::Error> {
        let empty = serde_json::to_string(&model::chat::Transcript::default()).unwrap_or_default();
        sqlx::query("DELETE FROM run_events WHERE run_id IN (SELECT id FROM runs WHERE scope_id = $1)")
            .bind(scope_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE runs SET transcript = $2, subject_id = '' WHERE scope_id = $1")
            .bind(scope_id)
            .bind(&empty)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// One line of [`Engine::run_usage`].
pub(crate) struct UsageLine {
    pub agent_id: String,
    pub agent_name: String,
    pub model: String,
    pub day: i64,
    pub runs: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}
