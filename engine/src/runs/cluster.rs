//! Several processes on one PostgreSQL. A run belongs to the instance that drives it
//! (`runs.instance_id`); instances beat a heartbeat every [`BEAT_EVERY`], so a run
//! whose instance has been silent for [`STALE_AFTER`] is known dead and is marked
//! interrupted by whoever notices — never the run of a live instance. Another instance
//! follows a run by reading its stored events (the owner flushes at least every 100 ms)
//! and stops or answers it through `run_controls`, which the owner polls while it has runs.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use futures::Stream;
use model::chat::{RunEvent, RunStatus, SeqEvent, Transcript};
use sqlx::Row;

use super::RunError;
use crate::infra::store::{new_id, now_ms};
use crate::{Engine, Inner};

const BEAT_EVERY: Duration = Duration::from_secs(2);
/// An instance silent this long is taken for dead and its runs for interrupted.
const STALE_AFTER: Duration = Duration::from_secs(15);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often a follower on another instance looks for new events, and the owner for controls.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Controls nobody picked up (their instance died) are dropped after this.
const CONTROL_TTL: Duration = Duration::from_secs(60);

const INTERRUPTED: &str = "The server stopped while this run was under way.";

/// The instance's background upkeep: heartbeat, controls for its runs, the sweep for runs
/// of dead instances. Ends when the engine is dropped or its pool closed.
pub(crate) fn spawn_upkeep(engine: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut beat_at, mut sweep_at) = (tokio::time::Instant::now(), tokio::time::Instant::now() + SWEEP_EVERY);
        let mut prune_at = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let Some(inner) = engine.upgrade() else { return };
            let engine = Engine(inner);
            if engine.store.pool.is_closed() {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= beat_at {
                beat_at = now + BEAT_EVERY;
                if let Err(e) = engine.beat().await {
                    tracing::warn!(error = %e, "could not record this instance's heartbeat");
                }
            }
            if engine.runs.count() > 0
                && let Err(e) = engine.apply_controls().await
            {
                tracing::warn!(error = %e, "could not read run controls");
            }
            if now >= prune_at {
                prune_at = now + PRUNE_EVERY;
                engine.prune().await;
            }
            if now >= sweep_at {
                sweep_at = now + SWEEP_EVERY;
                if let Err(e) = engine.recover_runs().await {
                    tracing::warn!(error = %e, "could not look for runs of stopped instances");
                }
            }
        }
    });
}

fn is_active(status: &str) -> bool {
    matches!(RunStatus::parse(status), RunStatus::Running | RunStatus::Waiting)
}

/// How often rows that only age (spent refresh tokens, old idempotency keys) are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

impl Engine {
    /// Deletes what has aged out; any instance may, and a failure waits for the next turn.
    pub async fn prune(&self) {
        match self.prune_sessions().await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned refresh tokens and ended sessions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune refresh tokens"),
        }
        match self.prune_idempotency().await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned idempotency keys"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune idempotency keys"),
        }
    }

    /// This process's id among the instances sharing the store.
    pub fn instance_id(&self) -> &str {
        &self.runs.instance
    }

    pub(crate) async fn beat(&self) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2",
        )
        .bind(self.instance_id())
        .bind(now)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Leaves the cluster on a clean shutdown (its runs are all stored by then).
    pub(crate) async fn leave(&self) {
        let _ =
            sqlx::query("DELETE FROM instances WHERE id = $1").bind(self.instance_id()).execute(&self.store.pool).await;
    }

    /// Runs left running or waiting by an instance that is gone — killed, or stopped
    /// without its heartbeat row being removed — are marked interrupted, their content
    /// kept; runs of live instances are left alone. At start and every few seconds.
    /// Returns how many.
    pub async fn recover_runs(&self) -> Result<u64, RunError> {
        let alive_since = now_ms() - STALE_AFTER.as_millis() as i64;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status IN ('running', 'waiting') AND (instance_id IS NULL OR \
             (instance_id <> $1 AND instance_id NOT IN (SELECT id FROM instances WHERE heartbeat_at >= $2)))",
        )
        .bind(self.instance_id())
        .bind(alive_since)
        .fetch_all(&self.store.pool)
        .await?;
        let mut marked = 0;
        for id in &ids {
            marked += self.mark_interrupted(id).await?;
        }
        if marked > 0 {
            tracing::warn!(count = marked, "runs of a stopped server were marked interrupted");
        }
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(alive_since - STALE_AFTER.as_millis() as i64)
            .execute(&self.store.pool)
            .await?;
        sqlx::query("DELETE FROM run_controls WHERE created_at < $1")
            .bind(now_ms() - CONTROL_TTL.as_millis() as i64)
            .execute(&self.store.pool)
            .await?;
        Ok(marked)
    }

    /// Ends one orphaned run as interrupted: its stored transcript brought up to its last
    /// stored event, then a final status event after that one, all together. Another
    /// instance doing the same at once changes nothing.
    async fn mark_interrupted(&self, id: &str) -> Result<u64, RunError> {
        let (mut tx, turn) = self.store.begin().await?;
        let updated = sqlx::query(
            "UPDATE runs SET status = 'interrupted', error = $2, ended_at = $3 \
             WHERE id = $1 AND status IN ('running', 'waiting')",
        )
        .bind(id)
        .bind(INTERRUPTED)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(0);
        }
        let (content, agent_version, limits): (String, i64, String) =
            sqlx::query_as("SELECT transcript, agent_version, limits FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        // The transcript is stored about once a second, the events every 100 ms.
        let mut transcript: Transcript = serde_json::from_str(&content).unwrap_or_default();
        let batches: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT first_seq, last_seq, events FROM run_events WHERE run_id = $1 AND last_seq > $2 \
             ORDER BY first_seq",
        )
        .bind(id)
        .bind(transcript.seq as i64)
        .fetch_all(&mut *tx)
        .await?;
        let last = batches.iter().map(|b| b.1 as u64).max().unwrap_or(0).max(transcript.seq);
        for e in unbatch(batches.into_iter().map(|(first, _, raw)| (first, raw))) {
            transcript.apply(&e);
        }
        let end = SeqEvent {
            seq: last + 1,
            event: RunEvent::Status { status: RunStatus::Interrupted, error: INTERRUPTED.into(), limit: false },
        };
        transcript.apply(&end);
        let now = now_ms();
        sqlx::query(
            "INSERT INTO run_events (run_id, first_seq, last_seq, events, created_at) \
             VALUES ($1, $2, $2, $3, $4) ON CONFLICT (run_id, first_seq) DO NOTHING",
        )
        .bind(id)
        .bind(end.seq as i64)
        .bind(super::flush::batch_json(std::slice::from_ref(&end)))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let limits = serde_json::from_str(&limits).unwrap_or_default();
        let figures = super::flush::Figures { transcript, agent_version, limits };
        super::flush::write_figures(&mut tx, &[(id, &figures)], now).await?;
        tx.commit().await?;
        drop(turn);
        Ok(1)
    }

    /// A run's `(status, instance)` as stored.
    async fn run_row(&self, run_id: &str) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
        let row = sqlx::query("SELECT status, instance_id FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| Ok((r.try_get("status")?, r.try_get("instance_id")?))).transpose()
    }

    /// Asks the instance driving `run_id` (not this one) to stop it or answer a call (as
    /// `by`). `Err(Ended)` when the store says the run is over.
    pub(crate) async fn send_control(
        &self,
        run_id: &str,
        kind: &str,
        call_id: &str,
        allow: bool,
        by: &str,
    ) -> Result<(), RunError> {
        let Some((status, Some(instance))) = self.run_row(run_id).await? else {
            return Err(RunError::Ended);
        };
        if !is_active(&status) || (kind == "answer" && RunStatus::parse(&status) != RunStatus::Waiting) {
            return Err(RunError::Ended);
        }
        let beat: Option<i64> = sqlx::query_scalar("SELECT heartbeat_at FROM instances WHERE id = $1")
            .bind(&instance)
            .fetch_optional(&self.store.pool)
            .await?;
        if beat.is_none_or(|at| at < now_ms() - STALE_AFTER.as_millis() as i64) {
            // Nobody drives it any more: it ends here, as the sweep would end it.
            self.mark_interrupted(run_id).await?;
            return Err(RunError::Ended);
        }
        sqlx::query(
            "INSERT INTO run_controls (id, instance_id, run_id, kind, call_id, allow, by_user, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(instance)
        .bind(run_id)
        .bind(kind)
        .bind(call_id)
        .bind(i64::from(allow))
        .bind(by)
        .bind(now_ms())
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Waits (up to `limit`) until the store says the run is over.
    pub(crate) async fn wait_stored_end(&self, run_id: &str, limit: Duration) -> Result<(), RunError> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            match self.run_row(run_id).await? {
                Some((status, _)) if is_active(&status) => tokio::time::sleep(POLL_EVERY).await,
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Applies the controls other instances left for this one's runs.
    async fn apply_controls(&self) -> Result<(), sqlx::Error> {
        let rows =
            sqlx::query("SELECT id, run_id, kind, call_id, allow, by_user FROM run_controls WHERE instance_id = $1")
                .bind(self.instance_id())
                .fetch_all(&self.store.pool)
                .await?;
        for r in rows {
            let id: String = r.try_get("id")?;
            let run_id: String = r.try_get("run_id")?;
            if let Some(live) = self.runs.live(&run_id) {
                match r.try_get::<String, _>("kind")?.as_str() {
                    "stop" => live.cancel(RunStatus::Stopped),
                    "answer" => {
                        let allow = r.try_get::<i64, _>("allow")? != 0;
                        live.answer(&r.try_get::<String, _>("call_id")?, allow, &r.try_get::<String, _>("by_user")?);
                    }
                    other => tracing::warn!(kind = other, "unknown run control"),
                }
            }
            sqlx::query("DELETE FROM run_controls WHERE id = $1").bind(&id).execute(&self.store.pool).await?;
        }
        Ok(())
    }

    /// Asks every run of `user_id` on other instances to stop (the user was disabled).
    pub(crate) async fn stop_user_runs_elsewhere(&self, user_id: &str) -> Result<(), RunError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE owner_id = $1 AND status IN ('running', 'waiting') AND instance_id <> $2",
        )
        .bind(user_id)
        .bind(self.instance_id())
        .fetch_all(&self.store.pool)
        .await?;
        for id in ids {
            match self.send_control(&id, "stop", "", false, "").await {
                Ok(()) | Err(RunError::Ended) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The events of a run driven by another instance, from the store: those after `from`,
    /// then new ones as the owner flushes them, until the run's final status.
    pub(crate) fn follow_stored(&self, run_id: &str, from: u64) -> impl Stream<Item = SeqEvent> + Send + 'static {
        struct Follow {
            engine: Engine,
            id: String,
            last: u64,
            pending: VecDeque<SeqEvent>,
            over: bool,
            idle: u32,
        }
        let start = Follow {
            engine: self.clone(),
            id: run_id.to_owned(),
            last: from,
            pending: VecDeque::new(),
            over: false,
            idle: 0,
        };
        futures::stream::unfold(start, |mut f| async move {
            loop {
                if let Some(e) = f.pending.pop_front() {
                    if e.seq <= f.last {
                        continue;
                    }
                    f.last = e.seq;
                    if matches!(&e.event, RunEvent::Status { status, .. } if status.is_final()) {
                        f.over = true;
                        f.pending.clear();
                    }
                    return Some((e, f));
                }
                if f.over {
                    return None;
                }
                match f.engine.stored_events(&f.id, f.last).await {
                    Ok(events) if !events.is_empty() => {
                        f.idle = 0;
                        f.pending.extend(events);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, run = %f.id, "could not read run events"),
                }
                f.idle += 1;
                // At once and then now and then, make sure there is still something to wait
                // for: a run whose row says it is over (or is gone) has all its events stored.
                if f.idle % 10 == 1 {
                    match f.engine.run_row(&f.id).await {
                        Ok(Some((status, _))) if is_active(&status) => {}
                        Ok(_) => {
                            f.over = true;
                            if let Ok(events) = f.engine.stored_events(&f.id, f.last).await {
                                f.pending.extend(events);
                            }
                            continue;
                        }
                        Err(e) => tracing::warn!(error = %e, run = %f.id, "could not read a run"),
                    }
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        })
    }

    /// A run's stored events after `from`, in order.
    pub(crate) async fn stored_events(&self, run_id: &str, from: u64) -> Result<Vec<SeqEvent>, sqlx::Error> {
        let batches: Vec<(i64, String)> = sqlx::query_as(
            "SELECT first_seq, events FROM run_events WHERE run_id = $1 AND last_seq > $2 ORDER BY first_seq",
        )
        .bind(run_id)
        .bind(from as i64)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(unbatch(batches).filter(|e| e.seq > from).collect())
    }
}

/// The events of stored batches (`first_seq`, JSON array), numbered; an event that cannot
/// be read is skipped (its number is not reused).
fn unbatch(batches: impl IntoIterator<Item = (i64, String)>) -> impl Iterator<Item = SeqEvent> {
    batches.into_iter().flat_map(|(first, raw)| {
        let events: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap_or_default();
        events.into_iter().enumerate().filter_map(move |(i, v)| {
            Some(SeqEvent { seq: first as u64 + i as u64, event: serde_json::from_value(v).ok()? })
        })
    })
}
