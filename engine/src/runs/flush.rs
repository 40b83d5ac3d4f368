//! Storing what runs produce: one task per engine writes every run's new events in one
//! transaction at least every 100 ms, not one transaction per run, so a thousand runs cost
//! ten commits a second, not ten thousand. The same transaction writes the rows of runs
//! that just started without one (an API request's, with its conversation). A run's new
//! events go in as one row (a batch), not one row each. Its row (the folded transcript,
//! status and totals) is rewritten when its status changes, when it ends, and otherwise
//! about once a second: whoever reads a stored transcript of a running run replays the
//! stored events after its `seq`. Events are read from each run's log in memory, which
//! keeps them until they are stored.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use model::chat::{RunStatus, SeqEvent, Transcript};

use super::{Deferred, FLUSH_EVERY, Live, Row, RunHead};
use crate::infra::store::{Rows, StoreError, now_ms};
use crate::{Engine, Inner};

/// A run's store writes that keep failing are given up after this many rounds, about five
/// seconds (the store gone for longer, or the run's row deleted under it); until
/// then its events wait in memory and go in whole once the store answers again.
const TRIES: u32 = 50;

/// With at least [`SHARED_FROM`] runs live, small rounds (of runs that just ended) start at
/// most this often, so that ends close together share one transaction: with a thousand
/// streams some 800 answers end a second, and a commit each took a tenth of the server's
/// CPU (4% less per token, and a steadier cadence, with the ends shared). An answer's last
/// chunk waits for its end to be stored, so fewer runs (where ends are rare and a round
/// has one anyway) do not wait.
const SMALL_EVERY: Duration = Duration::from_millis(5);

/// See [`SMALL_EVERY`].
const SHARED_FROM: usize = 100;

/// Runs prepared between two yields to the scheduler.
const YIELD_EVERY: usize = 32;

/// A running answer's stored transcript is rewritten at least this often while it changes.
const TRANSCRIPT_EVERY_MS: i64 = 1_000;

/// What one run has to store this round.
struct Pending {
    run_id: String,
    live: Arc<Live>,
    /// Its row, when it is yet to be written, and its subject's rows.
    create: Option<(RunHead, Option<Deferred>)>,
    /// The events after the stored ones, numbered `first..`; none when only the
    /// transcript is due.
    events: Vec<SeqEvent>,
    /// The row's figures, when they are due.
    transcript: Option<Figures>,
    upto: u64,
}

/// What a run's row says of it, from its live state.
pub(super) struct Figures {
    pub transcript: Transcript,
    pub agent_version: i64,
    pub limits: model::runs::RunLimits,
}

impl Pending {
    fn stored(&self, wrote: &mut HashMap<String, Wrote>, now: i64) {
        if self.create.is_some()
            && let Ok(mut s) = self.live.state.lock()
        {
            s.row = Row::Ready;
        }
        self.live.stored.send_replace(self.upto);
        self.live.failures.store(0, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = &self.transcript {
            let t = &t.transcript;
            wrote.insert(self.run_id.clone(), Wrote { at: now, status: t.status, seq: t.seq });
        }
    }
}

/// The transcript of a run as last stored.
struct Wrote {
    at: i64,
    status: RunStatus,
    seq: u64,
}

impl Wrote {
    /// Whether `t` should be stored now.
    fn due(this: Option<&Self>, t: &Transcript, now: i64) -> bool {
        match this {
            None => true,
            Some(w) => {
                t.seq > w.seq && (t.status != w.status || t.status.is_final() || now - w.at >= TRANSCRIPT_EVERY_MS)
            }
        }
    }
}

/// The flusher: a round every [`FLUSH_EVERY`] while runs are live, for all of them, and
/// sleep while there are none. A run that ends is stored at once (within [`SMALL_EVERY`]
/// when many run), in a small round of the runs that ended, so that whoever waits for its
/// end (an API answer's last chunk does) does not wait for the next round. (A round of
/// every run at each start and end was one round per token or so with a thousand streams:
/// a batch row per event; a small round per start halved the API's answers per second.)
pub(crate) fn spawn_flusher(engine: Weak<Inner>) {
    tokio::spawn(async move {
        // What each live run's stored transcript is (a run seen for the first time has
        // the one written with its row, or none: it is stored at its first events).
        let mut wrote: HashMap<String, Wrote> = HashMap::new();
        let mut next = tokio::time::Instant::now();
        let mut last_small = next;
        loop {
            let (wake, live) = match engine.upgrade() {
                Some(inner) => (inner.runs.flush_now.clone(), inner.runs.count()),
                None => return,
            };
            let busy = live > 0;
            if busy {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = wake.notified() => {}
                }
            } else {
                wake.notified().await;
            }
            let mut now = tokio::time::Instant::now();
            if live >= SHARED_FROM && now < next && now < last_small + SMALL_EVERY {
                tokio::time::sleep_until((last_small + SMALL_EVERY).min(next)).await;
                now = tokio::time::Instant::now();
            }
            let Some(inner) = engine.upgrade() else { return };
            // Woken from sleep (runs started) or due: every run.
            let all = !busy || now >= next;
            if all {
                next = now + FLUSH_EVERY;
            } else {
                last_small = now;
            }
            flush(&Engine(inner), &mut wrote, all).await;
        }
    });
}

/// Stores what every run (or, unless `all`, every run whose store is due at once) produced
/// since the last round.
async fn flush(engine: &Engine, wrote: &mut HashMap<String, Wrote>, all: bool) {
    let started = std::time::Instant::now();
    let now = now_ms();
    let due = engine.runs.take_due();
    let runs = if all { engine.runs.all_named() } else { due };
    // Forget the runs that are over.
    if all && wrote.len() > runs.len() {
        let live: std::collections::HashSet<&str> = runs.iter().map(|(id, _)| id.as_str()).collect();
        wrote.retain(|id, _| live.contains(id.as_str()));
    }
    let mut work = Vec::new();
    for (i, (run_id, live)) in runs.into_iter().enumerate() {
        // With a thousand runs this loop is long: let the streams on this thread go on.
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        let Ok(s) = live.state.lock() else { continue };
        let stored = *live.stored.borrow();
        let upto = s.log.len() as u64;
        let create = match &s.row {
            Row::Insert(d) => Some((live.head.clone(), d.clone())),
            Row::Gone => {
                drop(s);
                live.stored.send_replace(upto);
                continue;
            }
            Row::Ready => None,
        };
        let transcript = Wrote::due(wrote.get(&run_id), &s.transcript, now).then(|| Figures {
            transcript: s.transcript.clone(),
            agent_version: s.agent_version,
            limits: s.limits,
        });
        if upto <= stored && transcript.is_none() && create.is_none() {
            continue;
        }
        let events = s.log[stored as usize..].to_vec();
        drop(s);
        work.push(Pending { run_id, live, create, events, transcript, upto });
    }
    if work.is_empty() {
        return;
    }
    let prepared = started.elapsed();
    if store(engine, &work, now).await.is_ok() {
        work.iter().for_each(|p| p.stored(wrote, now));
        tracing::debug!(
            runs = work.len(),
            events = work.iter().map(|p| p.events.len()).sum::<usize>(),
            created = work.iter().filter(|p| p.create.is_some()).count(),
            transcripts = work.iter().filter(|p| p.transcript.is_some()).count(),
            prepare_us = prepared.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "stored run events"
        );
        return;
    }
    // One run's trouble must not hold back the others: each on its own.
    for p in work {
        match store(engine, std::slice::from_ref(&p), now).await {
            Ok(()) => p.stored(wrote, now),
            // Its row cannot be written: the run ends, its events unstored.
            Err(e) if p.create.is_some() => {
                tracing::error!(error = %e, run = %p.run_id, "could not store a run's row");
                if let Ok(mut s) = p.live.state.lock() {
                    s.row = Row::Gone;
                }
                p.live.stored.send_replace(p.upto);
                p.live.fail(RunStatus::Failed, &format!("The run could not be stored: {e}"));
            }
            Err(e) => {
                // Tried again next round, 100 ms on.
                let tries = p.live.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if tries >= TRIES {
                    tracing::error!(error = %e, tries, run = %p.run_id, "gave up storing run events");
                    p.live.stored.send_replace(p.upto);
                } else {
                    tracing::warn!(error = %e, tries, run = %p.run_id, "could not store run events");
                }
            }
        }
    }
}

/// New events, a batch per run. A batch tried again (its transaction failed as far as this
/// side knows) starts at the same event and holds at least as many.
static BATCHES: Rows = Rows::new(
    "INSERT INTO run_events (run_id, first_seq, last_seq, events, created_at) VALUES ",
    5,
    " ON CONFLICT (run_id, first_seq) DO UPDATE SET last_seq = excluded.last_seq, \
     events = excluded.events WHERE run_events.last_seq < excluded.last_seq",
);

/// Runs' rows from their transcripts, many in one statement (`columnN` names the values'
/// columns on both backends). A final status also ends the run.
static FIGURES: Rows = Rows::new(
    "UPDATE runs SET transcript = v.column2, status = v.column3, error = v.column4, model = v.column5, \
     input_tokens = v.column6, output_tokens = v.column7, cost_micros = v.column8, updated_at = v.column9, \
     agent_version = v.column10, limits = v.column11, \
     ended_at = CASE WHEN v.column3 IN ('running', 'waiting') THEN NULL ELSE v.column9 END \
     FROM (VALUES ",
    11,
    ") AS v WHERE runs.id = v.column1",
);

/// `events` (numbered in order, none missing) as one JSON array.
pub(super) fn batch_json(events: &[SeqEvent]) -> String {
    let mut out = String::with_capacity(events.len() * 48 + 2);
    out.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&e.event).unwrap_or_else(|_| "null".into()));
    }
    out.push(']');
    out
}

/// One transaction: the rows of runs that start here and their subjects' rows, every
/// run's new events (one row each), then the rows due; each kind in a few multi-row
/// statements.
async fn store(engine: &Engine, work: &[Pending], now: i64) -> Result<(), StoreError> {
    let heads: Vec<&RunHead> = work.iter().filter_map(|p| Some(&p.create.as_ref()?.0)).collect();
    let batches: Vec<&Pending> = work.iter().filter(|p| !p.events.is_empty()).collect();
    let figures: Vec<(&str, &Figures)> =
        work.iter().filter_map(|p| Some((p.run_id.as_str(), p.transcript.as_ref()?))).collect();
    let (mut tx, turn) = engine.store.begin().await?;
    engine.insert_runs(&mut tx, &heads).await?;
    // Subjects' rows, a writer at a time with all of its rows.
    let mut deferred: Vec<&Deferred> = work.iter().filter_map(|p| p.create.as_ref()?.1.as_ref()).collect();
    while let Some(first) = deferred.first().map(|d| d.writer) {
        let same = |d: &&Deferred| std::ptr::addr_eq(d.writer, first);
        let rows: Vec<&(dyn std::any::Any + Send + Sync)> =
            deferred.iter().filter(|d| same(d)).map(|d| &*d.rows).collect();
        first.write(engine, &mut tx, rows).await?;
        deferred.retain(|d| !same(d));
    }
    BATCHES
        .run(&mut tx, &batches, |q, p| {
            let (first, last) = (p.events[0].seq, p.events[p.events.len() - 1].seq);
            q.bind(&p.run_id).bind(first as i64).bind(last as i64).bind(batch_json(&p.events)).bind(now)
        })
        .await?;
    write_figures(&mut tx, &figures, now).await?;
    tx.commit().await?;
    drop(turn);
    Ok(())
}

/// Stores runs' transcripts and the columns read from them.
pub(super) async fn write_figures(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    runs: &[(&str, &Figures)],
    now: i64,
) -> Result<(), sqlx::Error> {
    FIGURES
        .run(tx, runs, |q, (id, f)| {
            let t = &f.transcript;
            q.bind(*id)
                .bind(serde_json::to_string(t).unwrap_or_default())
                .bind(t.status.as_str())
                .bind(&t.error)
                .bind(&t.model)
                .bind(t.input_tokens as i64)
                .bind(t.output_tokens as i64)
                .bind(t.cost_micros as i64)
                .bind(now)
                .bind(f.agent_version)
                .bind(serde_json::to_string(&f.limits).unwrap_or_default())
        })
        .await
}
