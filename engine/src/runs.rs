//! Runs: every piece of agent work, as a background task that no HTTP connection owns. A
//! run has a `runs` row (kind, owner, agent and version, subject, parent, instance,
//! status, limits, totals) and numbered events. The loop ([`drive`]) calls the model with
//! the agent's tools, streams, runs the tool calls (allow / ask / deny), feeds the results
//! back, and repeats until the model stops or a limit is hit. Every event gets a sequence
//! number, goes into the run's log in memory and to live subscribers at once, and into the
//! store at least every 100 ms ([`flush`] writes all runs in one transaction).
//! Subscribers start from any sequence number, so a reload or a second tab picks up
//! without gaps or repeats.
//!
//! What a run works for is its *subject* (a chat answer, an API answer; later a build, a
//! team member's task, an evaluation case). Subjects start runs through [`NewRun`]: they
//! give the run its input ([`Input`], possibly loaded by a [`Subject`] once the run is
//! under way) and, when their own rows are to be written with the run's first events, a
//! [`Deferred`] write. This module imports none of them.

mod cluster;
pub mod context;
mod drive;
mod flush;
mod list;
pub mod meter;
mod tools;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use model::agents::AgentView;
use model::chat::{Part, RunEvent, RunStatus, SeqEvent, Transcript};
use model::runs::{RunKind, RunLimits};
use tokio::sync::{Notify, oneshot, watch};

use crate::Engine;
use crate::auth::CurrentUser;
use crate::infra::store::{Rows, StoreError, new_id, now_ms};

pub(crate) use cluster::spawn_upkeep;
pub use context::Turn;
pub(crate) use flush::spawn_flusher;

/// How often the store gets what a run produced.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What one answer may hold (its text, tool inputs and tool results together), in bytes.
/// Past it the run ends as incomplete and keeps what it has: a provider that ignores its
/// token limit cannot fill the store or this process's memory.
pub const ANSWER_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Events one run may append (each text delta is one): its log stays in memory while it
/// runs, so it is bounded too.
pub const RUN_MAX_EVENTS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid input")]
    Invalid(model::FieldErrors),
    #[error("run not found")]
    NotFound,
    /// The run is not running (nothing to stop or answer).
    #[error("this run has already ended")]
    Ended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RunError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The runs of this process.
pub struct Runs {
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Model call timeouts and retries (tests shorten them).
    pub policy: Mutex<crate::llm::Policy>,
    /// Asked before every model call and tool call.
    pub meter: Mutex<Arc<dyn meter::Meter>>,
    /// This process among the instances sharing the store (new at every start).
    instance: String,
    /// Wakes the flusher: a run started (it sleeps while none runs) or ended.
    flush_now: Arc<Notify>,
    /// The runs the flusher stores without waiting for its next round: those whose final
    /// status is in their log.
    due: Mutex<Vec<String>>,
}

impl Default for Runs {
    fn default() -> Self {
        Self {
            live: Mutex::default(),
            policy: Mutex::default(),
            meter: Mutex::new(Arc::new(meter::Usage)),
            instance: new_id(),
            flush_now: Arc::default(),
            due: Mutex::default(),
        }
    }
}

impl Runs {
    pub fn live(&self, run_id: &str) -> Option<Arc<Live>> {
        self.live.lock().ok()?.get(run_id).cloned()
    }

    pub fn count(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or_default()
    }

    fn all(&self) -> Vec<Arc<Live>> {
        self.live.lock().map(|l| l.values().cloned().collect()).unwrap_or_default()
    }

    fn all_named(&self) -> Vec<(String, Arc<Live>)> {
        self.live.lock().map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    /// The live run working for `subject_id`, if there is one here (one pass over the
    /// live runs).
    pub fn live_for(&self, subject_id: &str) -> Option<Arc<Live>> {
        let live = self.live.lock().ok()?;
        live.values().find(|l| l.head.subject_id == subject_id).cloned()
    }

    /// The live runs whose parent is `run_id`.
    fn children(&self, run_id: &str) -> Vec<Arc<Live>> {
        self.live
            .lock()
            .map(|l| l.values().filter(|x| x.head.parent_id.as_deref() == Some(run_id)).cloned().collect())
            .unwrap_or_default()
    }

    /// The store of the run `run_id` is due at once.
    fn due(&self, run_id: &str) {
        if let Ok(mut d) = self.due.lock() {
            d.push(run_id.to_owned());
        }
        self.flush_now.notify_one();
    }

    /// The runs whose store became due since the last call (those still live).
    fn take_due(&self) -> Vec<(String, Arc<Live>)> {
        let mut due = self.due.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        // Each once, however often it was made due (its row must be written once).
        due.sort_unstable();
        due.dedup();
        let Ok(live) = self.live.lock() else { return Vec::new() };
        due.into_iter().filter_map(|id| live.get(&id).cloned().map(|l| (id, l))).collect()
    }
}

/// What a run is, as its row says from the start.
#[derive(Clone, Debug)]
pub struct RunHead {
    pub id: String,
    pub kind: RunKind,
    pub owner: String,
    pub agent_id: String,
    /// What it works for (a chat or API answer's message).
    pub subject_id: String,
    /// What the subject belongs to (the answer's conversation): its runs' totals are
    /// added up by it.
    pub scope_id: String,
    pub parent_id: Option<String>,
    pub started_at: i64,
}

impl RunHead {
    pub fn new(kind: RunKind, owner: &CurrentUser, agent_id: &str, subject_id: &str, scope_id: &str) -> Self {
        Self {
            id: new_id(),
            kind,
            owner: owner.id.clone(),
            agent_id: agent_id.to_owned(),
            subject_id: subject_id.to_owned(),
            scope_id: scope_id.to_owned(),
            parent_id: None,
            started_at: now_ms(),
        }
    }
}

/// A subject's own rows, written by the flusher in the transaction that stores the run's
/// row and first events (an API request's conversation): the request is answered without
/// waiting for a commit of its own. Rows of one kind are written together.
pub struct Deferred {
    pub writer: &'static dyn SubjectWriter,
    pub rows: Arc<dyn Any + Send + Sync>,
}

impl Clone for Deferred {
    fn clone(&self) -> Self {
        Self { writer: self.writer, rows: self.rows.clone() }
    }
}

/// Writes deferred subject rows of one kind.
pub trait SubjectWriter: Sync {
    fn write<'a>(
        &'a self,
        engine: &'a Engine,
        tx: &'a mut sqlx::Transaction<'static, sqlx::Any>,
        rows: Vec<&'a (dyn Any + Send + Sync)>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Loads what a run starts from, once it is under way (so that starting it answers at
/// once): for a chat answer, the conversation up to its question.
pub trait Subject: Send + Sync {
    fn history<'a>(&'a self, engine: &'a Engine) -> BoxFuture<'a, Result<Vec<Turn>, String>>;
}

/// What a run starts from.
pub enum Input {
    /// The caller has it already (the API has the whole conversation in its request).
    Ready { agent: Box<AgentView>, history: Vec<Turn> },
    /// The agent is loaded and the subject asked for the history when the run starts.
    Load(Box<dyn Subject>),
}

/// Whether a run's row is in the store, so its events can be.
#[derive(Clone)]
pub(crate) enum Row {
    /// To be written by the flusher's next round with the subject's rows and the run's
    /// first events; until then they wait in the log.
    Insert(Option<Deferred>),
    Ready,
    /// It could not be written: the run's events go to its subscribers only.
    Gone,
}

/// A run to start.
pub struct NewRun {
    pub head: RunHead,
    /// Someone can answer "ask" tool calls.
    pub interactive: bool,
    pub input: Input,
    /// Limits imposed from outside (a parent's remaining ones); the agent's own apply too.
    pub limits: Option<RunLimits>,
    /// `None`: the caller has written the run's row ([`Engine::insert_run`]); otherwise
    /// the flusher writes it, with these subject rows.
    pub deferred: Option<Option<Deferred>>,
    /// The run carries on an earlier one (its id) and starts with what it wrote.
    pub continues: Option<(String, Vec<Part>)>,
}

struct LiveState {
    log: Vec<SeqEvent>,
    /// Bytes of content in the log (see [`ANSWER_MAX_BYTES`]).
    bytes: usize,
    transcript: Transcript,
    row: Row,
    agent_version: i64,
    limits: RunLimits,
    /// Subscribers waiting for the next event (a live subscriber reads the log itself).
    waiting: Vec<std::task::Waker>,
}

/// A run in progress.
pub struct Live {
    head: RunHead,
    /// Someone can answer "ask" tool calls (the chat page); over the API nobody can, so
    /// such calls are refused.
    interactive: bool,
    state: Mutex<LiveState>,
    /// How far the log is in the store.
    stored: watch::Sender<u64>,
    /// Store writes that failed in a row.
    failures: AtomicU32,
    cancel: watch::Sender<Option<End>>,
    answers: Mutex<HashMap<String, oneshot::Sender<(bool, String)>>>,
    done: watch::Sender<bool>,
    started: tokio::time::Instant,
    /// Model calls and tool calls made so far (for a child's inherited limits).
    turns: AtomicU32,
    tool_calls: AtomicU32,
}

impl Live {
    /// Appends an event: numbered, in the log (which the flusher stores and subscribers
    /// read), and wakes the subscribers waiting for it. One lock for all of it. Says
    /// whether the run is still within [`ANSWER_MAX_BYTES`] and [`RUN_MAX_EVENTS`].
    fn emit(&self, event: RunEvent) -> bool {
        // Measured before the lock: a tool call's input is serialized to be measured.
        let bytes = match &event {
            RunEvent::Text { text } => text.len(),
            RunEvent::ToolCall { input, .. } => input.to_string().len(),
            RunEvent::ToolResult { content, .. } => content.len(),
            RunEvent::Continues { parts, .. } => serde_json::to_string(parts).map_or(0, |s| s.len()),
            _ => 0,
        };
        let Ok(mut s) = self.state.lock() else { return false };
        s.bytes += bytes;
        let e = SeqEvent { seq: s.log.len() as u64 + 1, event };
        s.transcript.apply(&e);
        s.log.push(e);
        // Waking only queues the task: nothing runs under the lock.
        s.waiting.drain(..).for_each(std::task::Waker::wake);
        s.bytes <= ANSWER_MAX_BYTES && s.log.len() < RUN_MAX_EVENTS
    }

    pub fn id(&self) -> &str {
        &self.head.id
    }

    pub fn transcript(&self) -> Transcript {
        self.state.lock().map(|s| s.transcript.clone()).unwrap_or_default()
    }

    /// Ends the run as `status` (stopped by the user, or interrupted by shutdown).
    pub fn cancel(&self, status: RunStatus) {
        self.fail(status, "");
    }

    /// Ends the run as `status` with `error` shown.
    pub(crate) fn fail(&self, status: RunStatus, error: &str) {
        // `send_replace`: kept even while nobody listens (the run may not have started).
        self.cancel.send_replace(Some(End::new(status, error)));
    }

    /// Answers the "ask" call `call_id` the run waits on, as `by`; false when it waits on
    /// no such call.
    fn answer(&self, call_id: &str, allow: bool, by: &str) -> bool {
        let answer = self.answers.lock().ok().and_then(|mut a| a.remove(call_id));
        answer.is_some_and(|tx| tx.send((allow, by.to_owned())).is_ok())
    }

    /// Waits until the run has ended and its last events are stored.
    pub async fn finished(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// The run's limits (the agent's and the server's until it has loaded its agent).
    pub fn limits(&self) -> RunLimits {
        self.state.lock().map(|s| s.limits).unwrap_or_default()
    }

    /// The run's parent, if it is a child run.
    pub fn parent_id(&self) -> Option<&str> {
        self.head.parent_id.as_deref()
    }

    /// What the run has left of its limits, for a child run.
    pub fn remaining(&self) -> RunLimits {
        let limits = self.state.lock().map(|s| s.limits).unwrap_or_default();
        let used = |n: &AtomicU32| n.load(std::sync::atomic::Ordering::Relaxed);
        RunLimits {
            max_turns: limits.max_turns.saturating_sub(used(&self.turns)),
            max_output_tokens: limits.max_output_tokens,
            wall_secs: limits.wall_secs.saturating_sub(self.started.elapsed().as_secs()),
            max_tool_calls: limits.max_tool_calls.saturating_sub(used(&self.tool_calls)),
        }
    }
}

/// How a run ended, when not by finishing its answer.
#[derive(Clone)]
struct End {
    status: RunStatus,
    error: String,
    /// Ended at a limit, not by a failure.
    limit: bool,
}

impl End {
    fn new(status: RunStatus, error: impl Into<String>) -> Self {
        Self { status, error: error.into(), limit: false }
    }

    /// An incomplete answer that reached one of its limits; `error` says which.
    fn limit(error: impl Into<String>) -> Self {
        Self { status: RunStatus::Incomplete, error: error.into(), limit: true }
    }
}

/// Runs' rows as they start, many in one statement.
static RUN_ROWS: Rows = Rows::new(
    "INSERT INTO runs (id, kind, owner_id, agent_id, subject_id, scope_id, parent_id, instance_id, status, \
     transcript, started_at, updated_at) VALUES ",
    12,
    "",
);

impl Engine {
    /// Writes the rows of runs about to start, in the caller's transaction (a chat answer's
    /// run with its message).
    pub(crate) async fn insert_runs(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        heads: &[&RunHead],
    ) -> Result<(), sqlx::Error> {
        let empty = serde_json::to_string(&Transcript::default()).unwrap_or_default();
        let instance = self.instance_id();
        RUN_ROWS
            .run(tx, heads, |q, h| {
                q.bind(&h.id)
                    .bind(h.kind.as_str())
                    .bind(&h.owner)
                    .bind(&h.agent_id)
                    .bind(&h.subject_id)
                    .bind(&h.scope_id)
                    .bind(h.parent_id.as_deref())
                    .bind(instance)
                    .bind(RunStatus::Running.as_str())
                    .bind(&empty)
                    .bind(h.started_at)
                    .bind(h.started_at)
            })
            .await
    }

    /// Starts a run; returns it live.
    pub fn start_run(&self, user: &CurrentUser, run: NewRun) -> Arc<Live> {
        let NewRun { head, interactive, input, limits, deferred, continues } = run;
        let row = match deferred {
            Some(d) => Row::Insert(d),
            None => Row::Ready,
        };
        let live = Arc::new(Live {
            head,
            interactive,
            state: Mutex::new(LiveState {
                log: Vec::new(),
                bytes: 0,
                transcript: Transcript::default(),
                row,
                agent_version: 0,
                limits: limits.unwrap_or(RunLimits {
                    max_turns: u32::MAX,
                    max_output_tokens: u32::MAX,
                    wall_secs: u64::MAX,
                    max_tool_calls: u32::MAX,
                }),
                waiting: Vec::new(),
            }),
            stored: watch::channel(0).0,
            failures: AtomicU32::new(0),
            cancel: watch::channel(None).0,
            answers: Mutex::default(),
            done: watch::channel(false).0,
            started: tokio::time::Instant::now(),
            turns: AtomicU32::new(0),
            tool_calls: AtomicU32::new(0),
        });
        if let Some((from, parts)) = continues {
            live.emit(RunEvent::Continues { from, parts });
        }
        let id = live.head.id.clone();
        if let Ok(mut l) = self.runs.live.lock() {
            l.insert(id.clone(), live.clone());
        }
        // It may wake the flusher, which sleeps while no run is live.
        self.runs.flush_now.notify_one();
        let (engine, user, handle) = (self.clone(), user.clone(), live.clone());
        tokio::spawn(async move {
            let end = drive::drive(&engine, &user, input, limits, &live).await;
            let (status, error, limit) = match end {
                Ok(()) => (RunStatus::Done, String::new(), false),
                Err(e) => (e.status, e.error, e.limit),
            };
            live.emit(RunEvent::Status { status, error, limit });
            // Its children end with it.
            for child in engine.runs.children(&id) {
                child.cancel(RunStatus::Stopped);
            }
            // Its end stored before it counts as finished.
            let last = live.state.lock().map(|s| s.log.len() as u64).unwrap_or_default();
            engine.runs.due(&id);
            let _ = live.stored.subscribe().wait_for(|s| *s >= last).await;
            if let Ok(mut l) = engine.runs.live.lock() {
                l.remove(&id);
            }
            // Kept for whoever asks later (`send` drops the value when nobody listens).
            live.done.send_replace(true);
        });
        handle
    }

    /// Starts a run as a child of the live run `parent_id` (a team member's task, a step of
    /// a build): it gets the least of its own limits and what the parent has left, and it
    /// stops when the parent does. Its row is written with its first events.
    pub fn start_child(
        &self,
        user: &CurrentUser,
        parent_id: &str,
        mut head: RunHead,
        input: Input,
    ) -> Result<Arc<Live>, RunError> {
        let parent = self.runs.live(parent_id).filter(|p| p.head.owner == user.id).ok_or(RunError::NotFound)?;
        if parent.cancel.borrow().is_some() {
            return Err(RunError::Ended);
        }
        head.parent_id = Some(parent_id.to_owned());
        let run = NewRun {
            head,
            interactive: parent.interactive,
            input,
            limits: Some(parent.remaining()),
            deferred: Some(None),
            continues: None,
        };
        Ok(self.start_run(user, run))
    }

    /// Stops every run of a user (when the user is disabled), on every instance: their
    /// streams end with them.
    pub(crate) async fn stop_user_runs(&self, user_id: &str) -> Result<(), RunError> {
        let lives: Vec<Arc<Live>> = self
            .runs
            .live
            .lock()
            .map(|l| l.values().filter(|x| x.head.owner == user_id).cloned().collect())
            .unwrap_or_default();
        for l in lives {
            l.cancel(RunStatus::Stopped);
        }
        self.stop_user_runs_elsewhere(user_id).await
    }

    /// Stops a run (its owner, or an admin); what it produced so far is kept, marked
    /// stopped, and its children stop with it. A run another instance drives is asked to
    /// stop, and waited for a few seconds. `Err(Ended)` when it had already ended.
    #[tracing::instrument(skip_all, fields(user = %user.id, run = run_id))]
    pub async fn stop_run(&self, user: &CurrentUser, run_id: &str) -> Result<(), RunError> {
        let (owner, status) = self.run_owner_status(user, run_id, true).await?;
        match self.runs.live(run_id) {
            Some(live) if live.head.owner == owner => {
                live.cancel(RunStatus::Stopped);
                live.finished().await;
            }
            _ if status.is_final() => return Err(RunError::Ended),
            _ => {
                self.send_control(run_id, "stop", "", false, "").await?;
                self.wait_stored_end(run_id, Duration::from_secs(5)).await?;
            }
        }
        Ok(())
    }

    /// Allows or denies a tool call the run is waiting on (its owner only).
    pub async fn answer_call(
        &self,
        user: &CurrentUser,
        run_id: &str,
        call_id: &str,
        allow: bool,
    ) -> Result<(), RunError> {
        let (owner, _) = self.run_owner_status(user, run_id, false).await?;
        let by = if user.display_name.is_empty() { &user.email } else { &user.display_name };
        match self.runs.live(run_id).filter(|l| l.head.owner == owner) {
            Some(live) if live.answer(call_id, allow, by) => Ok(()),
            Some(_) => Err(RunError::Ended),
            None => self.send_control(run_id, "answer", call_id, allow, by).await,
        }
    }

    /// The run's events from `from` (exclusive) on: those already there, then live ones
    /// until the run ends. Works the same for a finished run (from the store). Its owner's,
    /// or any for an admin.
    pub async fn subscribe_run(
        &self,
        user: &CurrentUser,
        run_id: &str,
        from: u64,
    ) -> Result<futures::stream::BoxStream<'static, SeqEvent>, RunError> {
        self.run_owner_status(user, run_id, true).await?;
        Ok(self.run_events(run_id, from))
    }

    /// A run's events from `from` on, for a caller that has checked ownership.
    pub(crate) fn run_events(&self, run_id: &str, from: u64) -> futures::stream::BoxStream<'static, SeqEvent> {
        if let Some(live) = self.runs.live(run_id) {
            return LiveEvents { live, ready: VecDeque::new(), last: from, over: false }.boxed();
        }
        // Driven by another instance (or over): from the store, as long as it runs.
        self.follow_stored(run_id, from).boxed()
    }

    /// On shutdown: lets runs finish for up to `grace`, then ends the rest as interrupted
    /// (their content stored).
    pub async fn drain_runs(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.runs.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rest = self.runs.all();
        for live in &rest {
            live.cancel(RunStatus::Interrupted);
        }
        for live in rest {
            live.finished().await;
        }
        self.leave().await;
    }
}

/// A live run's events after `last`, read from its log (every event from the first is
/// there while the run is live), until its final status. By hand rather than over a
/// channel: the log's lock is the only one taken per event, and nothing is allocated to
/// wait for the next.
struct LiveEvents {
    live: Arc<Live>,
    /// Read from the log, not yet taken.
    ready: VecDeque<SeqEvent>,
    last: u64,
    over: bool,
}

impl Stream for LiveEvents {
    type Item = SeqEvent;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<SeqEvent>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        if this.ready.is_empty() {
            let Ok(mut s) = this.live.state.lock() else { return Poll::Ready(None) };
            let from = (this.last as usize).min(s.log.len());
            if from == s.log.len() {
                if !s.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    s.waiting.push(cx.waker().clone());
                }
                return Poll::Pending;
            }
            this.ready.extend(s.log[from..].iter().cloned());
        }
        let Some(e) = this.ready.pop_front() else { return Poll::Pending };
        this.last = e.seq;
        this.over = matches!(&e.event, RunEvent::Status { status, .. } if status.is_final());
        Poll::Ready(Some(e))
    }
}
