//! Storing what runs produce: one task per engine writes every run's new events (and its
//! message's transcript) in one transaction at least every 100 ms, not one transaction per
//! run, so a thousand runs cost ten commits a second, not ten thousand. Events are read
//! from each run's log in memory, which keeps them until they are stored.

use std::sync::Weak;

use model::chat::{SeqEvent, Transcript};

use super::{FLUSH_EVERY, Live, Row};
use crate::store::now_ms;
use crate::{Engine, Inner};

/// A run's store writes that keep failing are given up after this many rounds, about five
/// seconds (the store gone for longer, or the run's conversation deleted under it); until
/// then its events wait in memory and go in whole once the store answers again.
const TRIES: u32 = 50;

/// Runs prepared between two yields to the scheduler.
const YIELD_EVERY: usize = 32;

/// Rows per multi-row insert, largest first: a few statement shapes, each prepared once.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// What one run has to store this round.
struct Pending {
    message_id: String,
    live: std::sync::Arc<Live>,
    events: Vec<SeqEvent>,
    transcript: Transcript,
    upto: u64,
}

impl Pending {
    fn stored(&self) {
        self.live.stored.send_replace(self.upto);
        self.live.failures.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The flusher: wakes every [`FLUSH_EVERY`] while runs are live (or at once when a run
/// ends, so its end is stored without waiting), and sleeps while there are none.
pub(crate) fn spawn_flusher(engine: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let (wake, busy) = match engine.upgrade() {
                Some(inner) => (inner.runs.flush_now.clone(), inner.runs.count() > 0),
                None => return,
            };
            if busy {
                tokio::select! {
                    _ = tokio::time::sleep(FLUSH_EVERY) => {}
                    _ = wake.notified() => {}
                }
            } else {
                wake.notified().await;
            }
            let Some(inner) = engine.upgrade() else { return };
            flush(&Engine(inner)).await;
        }
    });
}

/// Stores what every run produced since the last round.
async fn flush(engine: &Engine) {
    let mut work = Vec::new();
    for (i, (message_id, live)) in engine.runs.all_named().into_iter().enumerate() {
        // With a thousand runs this loop is long: let the streams on this thread go on.
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        let Ok(s) = live.state.lock() else { continue };
        let stored = *live.stored.borrow();
        let upto = s.log.len() as u64;
        match s.row {
            Row::Pending => continue,
            Row::Gone => {
                drop(s);
                live.stored.send_replace(upto);
                continue;
            }
            Row::Ready if upto <= stored => continue,
            Row::Ready => {}
        }
        let events = s.log[stored as usize..].to_vec();
        let transcript = s.transcript.clone();
        drop(s);
        work.push(Pending { message_id, live, events, transcript, upto });
    }
    if work.is_empty() {
        return;
    }
    if store(engine, &work).await.is_ok() {
        work.iter().for_each(Pending::stored);
        return;
    }
    // One run's trouble must not hold back the others: each on its own.
    for p in work {
        match store(engine, std::slice::from_ref(&p)).await {
            Ok(()) => p.stored(),
            Err(e) => {
                // Tried again next round, 100 ms on.
                let tries = p.live.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if tries >= TRIES {
                    tracing::error!(error = %e, tries, message = %p.message_id, "gave up storing run events");
                    p.live.stored.send_replace(p.upto);
                } else {
                    tracing::warn!(error = %e, tries, message = %p.message_id, "could not store run events");
                }
            }
        }
    }
}

/// The statement inserting `rows` events.
fn insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        CHUNKS
            .iter()
            .map(|&n| {
                let values: Vec<String> = (0..n)
                    .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                    .collect();
                format!(
                    "INSERT INTO run_events (message_id, seq, event, created_at) VALUES {} \
                     ON CONFLICT (message_id, seq) DO NOTHING",
                    values.join(", ")
                )
            })
            .collect()
    });
    let i = CHUNKS.iter().position(|&n| n == rows).unwrap_or(CHUNKS.len() - 1);
    &all[i]
}

/// One transaction: the events of every run in `work`, then each run's transcript.
async fn store(engine: &Engine, work: &[Pending]) -> Result<(), sqlx::Error> {
    let now = now_ms();
    // Serialized a chunk at a time, between the statements' awaits: no long stretch
    // without yielding to the streams sharing this thread.
    let rows: Vec<(&str, &SeqEvent)> =
        work.iter().flat_map(|p| p.events.iter().map(|e| (p.message_id.as_str(), e))).collect();
    let (mut tx, turn) = engine.store.begin().await?;
    let mut rest = &rows[..];
    while !rest.is_empty() {
        let n = CHUNKS.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(n);
        let mut q = sqlx::query(insert_sql(n));
        for (message_id, e) in chunk {
            let event = serde_json::to_string(&e.event).unwrap_or_default();
            q = q.bind(*message_id).bind(e.seq as i64).bind(event).bind(now);
        }
        q.execute(&mut *tx).await?;
        rest = tail;
    }
    for p in work {
        let t = &p.transcript;
        sqlx::query(
            "UPDATE messages SET content = $2, status = $3, error = $4, model = $5, input_tokens = $6, \
             output_tokens = $7, cost_micros = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&p.message_id)
        .bind(serde_json::to_string(t).unwrap_or_default())
        .bind(t.status.as_str())
        .bind(&t.error)
        .bind(&t.model)
        .bind(t.input_tokens as i64)
        .bind(t.output_tokens as i64)
        .bind(t.cost_micros as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    drop(turn);
    Ok(())
}
