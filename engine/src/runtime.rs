//! Runs: an agent answering one message, as a background task that no HTTP connection
//! owns. The loop calls the model with the agent's tools, streams, runs the tool calls
//! (allow / ask / deny), feeds the results back, and repeats until the model stops or a
//! limit is hit. Every event gets a sequence number, goes into the run's log in memory and
//! to live subscribers at once, and into the store at least every 100 ms (with the
//! message's transcript; [`flush`] writes all runs in one transaction). Subscribers start from any sequence number, so a reload or a
//! second tab picks up without gaps or repeats.

mod cluster;
mod flush;
mod tools;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use model::agents::AgentView;
use model::chat::{Message, Role, RunEvent, RunStatus, SeqEvent, StopReason, StreamEvent, Transcript, Usage};
use tokio::sync::{Notify, oneshot, watch};

use crate::Engine;
use crate::auth::CurrentUser;
use crate::chat::ChatError;
use crate::llm::{self, ChatRequest, LlmError, Policy};

/// How often the store gets what a run produced.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What one answer may hold (its text, tool inputs and tool results together), in bytes.
/// Past it the run ends as incomplete and keeps what it has: a provider that ignores its
/// token limit cannot fill the store or this process's memory.
pub const ANSWER_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Events one run may append (each text delta is one): its log stays in memory while it
/// runs, so it is bounded too.
pub const RUN_MAX_EVENTS: usize = 100_000;

pub(crate) use cluster::spawn_upkeep;
pub(crate) use flush::spawn_flusher;

/// The runs of this process.
pub struct Runs {
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Model call timeouts and retries (tests shorten them).
    pub policy: Mutex<Policy>,
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
            instance: crate::store::new_id(),
            flush_now: Arc::default(),
            due: Mutex::default(),
        }
    }
}

impl Runs {
    pub fn live(&self, message_id: &str) -> Option<Arc<Live>> {
        self.live.lock().ok()?.get(message_id).cloned()
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

    /// The store of the run writing `message_id` is due at once.
    fn due(&self, message_id: &str) {
        if let Ok(mut d) = self.due.lock() {
            d.push(message_id.to_owned());
        }
        self.flush_now.notify_one();
    }

    /// The runs whose store became due since the last call (those still live).
    fn take_due(&self) -> Vec<(String, Arc<Live>)> {
        let mut due = self.due.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        // Each once, however often it was made due (its conversation must be written once).
        due.sort_unstable();
        due.dedup();
        let Ok(live) = self.live.lock() else { return Vec::new() };
        due.into_iter().filter_map(|id| live.get(&id).cloned().map(|l| (id, l))).collect()
    }
}

/// Whether a run's message row is in the store, so its events can be.
#[derive(Clone)]
pub(crate) enum Row {
    /// To be written by the flusher's next round (an API request's conversation), with
    /// the run's first events; until then they wait in the log.
    Create(Arc<crate::openai::NewApiConversation>),
    Ready,
    /// It could not be written: the run's events go to its subscribers only.
    Gone,
}

struct LiveState {
    log: Vec<SeqEvent>,
    /// Bytes of content in the log (see [`ANSWER_MAX_BYTES`]).
    bytes: usize,
    transcript: Transcript,
    row: Row,
    /// Subscribers waiting for the next event (a live subscriber reads the log itself).
    waiting: Vec<std::task::Waker>,
}

/// What a run starts from when the caller already has it (the OpenAI-compatible API has
/// the whole conversation in its request): the store is not read before the model call.
pub(crate) struct Prepared {
    pub agent: AgentView,
    pub history: Vec<Message>,
}

/// A run to start.
pub(crate) struct NewRun {
    pub conversation_id: String,
    pub message_id: String,
    pub agent_id: String,
    /// Someone can answer "ask" tool calls.
    pub interactive: bool,
    pub prepared: Option<Prepared>,
    pub row: Row,
}

/// A run in progress.
pub struct Live {
    owner: String,
    /// Someone can answer "ask" tool calls (the chat page); over the API nobody can, so
    /// such calls are refused.
    interactive: bool,
    state: Mutex<LiveState>,
    /// How far the log is in the store.
    stored: watch::Sender<u64>,
    /// Store writes that failed in a row.
    failures: AtomicU32,
    cancel: watch::Sender<Option<End>>,
    answers: Mutex<HashMap<String, oneshot::Sender<bool>>>,
    done: watch::Sender<bool>,
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

    /// Answers the "ask" call `call_id` the run waits on; false when it waits on no such call.
    fn answer(&self, call_id: &str, allow: bool) -> bool {
        let answer = self.answers.lock().ok().and_then(|mut a| a.remove(call_id));
        answer.is_some_and(|tx| tx.send(allow).is_ok())
    }

    /// Waits until the run has ended and its last events are stored.
    pub async fn finished(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
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

impl Engine {
    /// Starts the run that writes the answer `run.message_id`.
    pub(crate) fn start_run(&self, user: &CurrentUser, mut run: NewRun) -> Arc<Live> {
        let row = std::mem::replace(&mut run.row, Row::Ready);
        let live = Arc::new(Live {
            owner: user.id.clone(),
            interactive: run.interactive,
            state: Mutex::new(LiveState {
                log: Vec::new(),
                bytes: 0,
                transcript: Transcript::default(),
                row,
                waiting: Vec::new(),
            }),
            stored: watch::channel(0).0,
            failures: AtomicU32::new(0),
            cancel: watch::channel(None).0,
            answers: Mutex::default(),
            done: watch::channel(false).0,
        });
        if let Ok(mut l) = self.runs.live.lock() {
            l.insert(run.message_id.clone(), live.clone());
        }
        // It may wake the flusher, which sleeps while no run is live.
        self.runs.flush_now.notify_one();
        let (engine, user, handle) = (self.clone(), user.clone(), live.clone());
        tokio::spawn(async move {
            let end = drive(&engine, &user, &run, &live).await;
            let (status, error, limit) = match end {
                Ok(()) => (RunStatus::Done, String::new(), false),
                Err(e) => (e.status, e.error, e.limit),
            };
            live.emit(RunEvent::Status { status, error, limit });
            // Its end stored before it counts as finished.
            let last = live.state.lock().map(|s| s.log.len() as u64).unwrap_or_default();
            engine.runs.due(&run.message_id);
            let _ = live.stored.subscribe().wait_for(|s| *s >= last).await;
            if let Ok(mut l) = engine.runs.live.lock() {
                l.remove(&run.message_id);
            }
            // Kept for whoever asks later (`send` drops the value when nobody listens).
            live.done.send_replace(true);
        });
        handle
    }

    /// Stops every run of a user (when the user is disabled), on every instance: their
    /// streams end with them.
    pub(crate) async fn stop_user_runs(&self, user_id: &str) -> Result<(), ChatError> {
        let lives: Vec<Arc<Live>> = self
            .runs
            .live
            .lock()
            .map(|l| l.values().filter(|x| x.owner == user_id).cloned().collect())
            .unwrap_or_default();
        for l in lives {
            l.cancel(RunStatus::Stopped);
        }
        self.stop_user_runs_elsewhere(user_id).await
    }

    /// The owner's run writing `message_id`, if it is live in this process.
    async fn owned_live(&self, user: &CurrentUser, message_id: &str) -> Result<Option<Arc<Live>>, ChatError> {
        self.message_conversation(user, message_id).await?;
        Ok(self.runs.live(message_id).filter(|l| l.owner == user.id))
    }

    /// Stops a run; what it produced so far is kept, marked stopped. A run another instance
    /// drives is asked to stop, and waited for a few seconds.
    pub async fn stop_run(&self, user: &CurrentUser, message_id: &str) -> Result<(), ChatError> {
        match self.owned_live(user, message_id).await? {
            Some(live) => {
                live.cancel(RunStatus::Stopped);
                live.finished().await;
            }
            None => {
                self.send_control(message_id, "stop", "", false).await?;
                self.wait_stored_end(message_id, Duration::from_secs(5)).await?;
            }
        }
        Ok(())
    }

    /// Allows or denies a tool call the run is waiting on.
    pub async fn answer_tool(
        &self,
        user: &CurrentUser,
        message_id: &str,
        call_id: &str,
        allow: bool,
    ) -> Result<(), ChatError> {
        match self.owned_live(user, message_id).await? {
            Some(live) if live.answer(call_id, allow) => Ok(()),
            Some(_) => Err(ChatError::NotRunning),
            None => self.send_control(message_id, "answer", call_id, allow).await,
        }
    }

    /// The run's events from `from` (exclusive) on: those already there, then live ones
    /// until the run ends. Works the same for a finished run (from the store).
    pub async fn subscribe_run(
        &self,
        user: &CurrentUser,
        message_id: &str,
        from: u64,
    ) -> Result<impl Stream<Item = SeqEvent> + Send + 'static, ChatError> {
        self.message_conversation(user, message_id).await?;
        Ok(self.run_events(message_id, from))
    }

    /// A run's events from `from` on, for a caller that has checked ownership.
    pub(crate) fn run_events(&self, message_id: &str, from: u64) -> futures::stream::BoxStream<'static, SeqEvent> {
        if let Some(live) = self.runs.live(message_id) {
            return LiveEvents { live, ready: VecDeque::new(), last: from, over: false }.boxed();
        }
        // Driven by another instance (or over): from the store, as long as it runs.
        self.follow_stored(message_id, from).boxed()
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

/// Micro-dollars for `usage` of `model` by the pricing table (USD per million tokens, so
/// one unit of price is one micro-dollar per token).
fn cost_micros(engine: &Engine, model: &str, usage: Usage) -> u64 {
    let Some(p) = engine.settings.pricing.get(model) else { return 0 };
    let cost = usage.input_tokens.unwrap_or(0) as f64 * p.input_per_mtok
        + usage.output_tokens.unwrap_or(0) as f64 * p.output_per_mtok;
    cost.round().max(0.0) as u64
}

/// Waits for the cancel signal (stop or shutdown).
async fn cancelled(rx: &mut watch::Receiver<Option<End>>) -> End {
    loop {
        if let Some(end) = rx.borrow_and_update().clone() {
            return end;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The agent and the conversation so far (the branch up to this answer's question).
async fn load_run(engine: &Engine, user: &CurrentUser, run: &NewRun) -> Result<(AgentView, Vec<Message>), End> {
    let store_err = |e: ChatError| End::new(RunStatus::Failed, format!("The conversation could not be read: {e}"));
    // The path to this answer only (the answer itself is its last step, empty).
    let path = engine.path_to(&run.conversation_id, &run.message_id).await.map_err(store_err)?;
    let agent = engine
        .agent_for_run(user, &run.agent_id)
        .await
        .map_err(|e| End::new(RunStatus::Failed, format!("The agent could not be loaded: {e}")))?;
    let mut history = Vec::new();
    for m in path.iter().filter(|m| m.id != run.message_id) {
        match m.role {
            Role::User => history.push(Message::user(&m.text())),
            Role::Assistant => history.extend(m.transcript().to_messages()),
        }
    }
    Ok((agent, history))
}

/// The run itself. `Ok` when the model finished its answer.
async fn drive(engine: &Engine, user: &CurrentUser, run: &NewRun, live: &Live) -> Result<(), End> {
    let mut cancel = live.cancel.subscribe();
    let (agent, history) = match &run.prepared {
        Some(p) => (p.agent.clone(), p.history.clone()),
        None => load_run(engine, user, run).await?,
    };
    let mut toolbox = tools::Toolbox::build(engine, user, &agent).await;
    let result = run_turns(engine, user, &agent, history, &mut toolbox, live, &mut cancel).await;
    toolbox.shutdown().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_turns(
    engine: &Engine,
    user: &CurrentUser,
    agent: &model::agents::AgentView,
    history: Vec<Message>,
    toolbox: &mut tools::Toolbox,
    live: &Live,
    cancel: &mut watch::Receiver<Option<End>>,
) -> Result<(), End> {
    let spec = &agent.spec;
    let (client, secrets) =
        engine.model_client(user, &spec.provider_id).await.map_err(|e| End::new(RunStatus::Failed, e.to_string()))?;
    let policy = engine.runs.policy.lock().map(|p| *p).unwrap_or_default();
    let mut total = Usage::default();
    for turn in 0..spec.max_turns.max(1) {
        let mut messages = history.clone();
        messages.extend(live.transcript().to_messages());
        let req = ChatRequest {
            model: spec.model.clone(),
            system: toolbox.system_prompt(&spec.system_prompt),
            messages,
            tools: toolbox.specs(),
            temperature: spec.temperature,
            max_tokens: spec.max_output_tokens,
        };
        let has_output = || !live.transcript().parts.is_empty();
        let started = tokio::select! {
            s = llm::start(&client, &secrets, &req, &spec.fallback_models, policy) => s,
            end = cancelled(cancel) => return Err(end),
        };
        let started = match started {
            Ok(s) => s,
            Err((e, _)) => {
                let status = if has_output() { RunStatus::Incomplete } else { RunStatus::Failed };
                return Err(End::new(status, e.to_string()));
            }
        };
        let model_used = started.model.clone();
        let mut events = started.events;
        let mut received = Received::default();
        let mut calls = Vec::new();
        let mut call_usage = Usage::default();
        let mut stop = StopReason::EndTurn;
        // One wait on the cancel channel for the whole answer, not a new one per token,
        // and polled only when the model has nothing (`biased`): a token that is there is
        // taken without touching the channel's lock. A stop while tokens keep coming is
        // seen at the next token, from the value the stop left in `live.cancel`.
        {
            let stopped = cancelled(cancel);
            tokio::pin!(stopped);
            loop {
                let next = tokio::select! {
                    biased;
                    n = events.next() => n,
                    end = &mut stopped => {
                        add_usage(engine, live, &mut total, call_usage, &model_used);
                        return Err(end);
                    }
                };
                let end = live.cancel.borrow().clone();
                if let Some(end) = end {
                    add_usage(engine, live, &mut total, call_usage, &model_used);
                    return Err(end);
                }
                match next {
                    None => break,
                    Some(Err(e)) => {
                        add_usage(engine, live, &mut total, call_usage, &model_used);
                        return Err(End::new(RunStatus::Incomplete, incomplete_message(&e)));
                    }
                    Some(Ok(ev)) => {
                        let within = match ev {
                            StreamEvent::TextDelta { text } => {
                                received.add(&text);
                                live.emit(RunEvent::Text { text })
                            }
                            StreamEvent::ToolStart { id, name } => {
                                let label = toolbox.label(&name);
                                live.emit(RunEvent::ToolStart { id, name, label })
                            }
                            StreamEvent::ToolDelta { json, .. } => {
                                received.add(&json);
                                true
                            }
                            StreamEvent::ToolEnd { id, name, input } => {
                                let policy = toolbox.policy(&name);
                                let asking = policy == model::agents::ToolPolicy::Ask && live.interactive;
                                let within =
                                    live.emit(RunEvent::ToolCall { id: id.clone(), input: input.clone(), asking });
                                calls.push((id, name, input, policy));
                                within
                            }
                            StreamEvent::Usage { usage } => {
                                call_usage = usage;
                                true
                            }
                            StreamEvent::Stop { reason } => {
                                stop = reason;
                                true
                            }
                        };
                        let over_tokens = received.tokens() > output_allowance(spec.max_output_tokens);
                        if over_tokens || !within {
                            // Dropping the stream closes the connection: nothing more is read.
                            add_usage(engine, live, &mut total, call_usage, &model_used);
                            return Err(if over_tokens {
                                End::limit(format!(
                                    "The answer passed the agent's limit of {} output tokens and was cut off \
                                         there. Raise max output tokens to get more.",
                                    spec.max_output_tokens
                                ))
                            } else {
                                answer_full()
                            });
                        }
                    }
                }
            }
        }
        add_usage(engine, live, &mut total, call_usage, &model_used);
        if calls.is_empty() {
            return match stop {
                StopReason::MaxTokens => Err(End::limit(
                    "The answer reached the agent's limit of output tokens. Raise max output tokens to get more.",
                )),
                _ => Ok(()),
            };
        }
        for (id, name, input, policy) in calls {
            let (content, state) = match policy {
                model::agents::ToolPolicy::Deny => {
                    ("The agent's tool policy denies this tool.".to_owned(), model::chat::CallState::Denied)
                }
                model::agents::ToolPolicy::Ask if !live.interactive => (
                    "This tool needs the user's approval, which can only be given in Agentry's chat, not over the API."
                        .to_owned(),
                    model::chat::CallState::Denied,
                ),
                model::agents::ToolPolicy::Ask => {
                    let (tx, rx) = oneshot::channel();
                    if let Ok(mut a) = live.answers.lock() {
                        a.insert(id.clone(), tx);
                    }
                    live.emit(RunEvent::Status { status: RunStatus::Waiting, error: String::new(), limit: false });
                    let wait = Duration::from_secs(engine.settings.limits.approval_timeout_secs);
                    let allowed = tokio::select! {
                        a = rx => a.unwrap_or(false),
                        end = cancelled(cancel) => return Err(end),
                        () = tokio::time::sleep(wait) => {
                            if let Ok(mut a) = live.answers.lock() {
                                a.remove(&id);
                            }
                            return Err(End::new(RunStatus::Stopped, format!(
                                "Nobody allowed or declined {} within {}, so the answer stopped here. \
                                 Regenerate it to try again.",
                                toolbox.label(&name),
                                span_words(wait.as_secs()),
                            )));
                        }
                    };
                    live.emit(RunEvent::Status { status: RunStatus::Running, error: String::new(), limit: false });
                    if allowed {
                        live.emit(RunEvent::ToolRunning { id: id.clone() });
                        run_tool(toolbox, engine, user, &name, input, cancel).await?
                    } else {
                        ("The user declined this tool call.".to_owned(), model::chat::CallState::Denied)
                    }
                }
                model::agents::ToolPolicy::Allow => run_tool(toolbox, engine, user, &name, input, cancel).await?,
            };
            if !live.emit(RunEvent::ToolResult { id, content, state }) {
                return Err(answer_full());
            }
        }
        if turn + 1 >= spec.max_turns {
            return Err(End::limit(format!(
                "The agent used its {} turns. Raise max turns to let it go on.",
                spec.max_turns
            )));
        }
        live.emit(RunEvent::Turn);
    }
    Ok(())
}

async fn run_tool(
    toolbox: &mut tools::Toolbox,
    engine: &Engine,
    user: &CurrentUser,
    name: &str,
    input: serde_json::Value,
    cancel: &mut watch::Receiver<Option<End>>,
) -> Result<(String, model::chat::CallState), End> {
    tokio::select! {
        r = toolbox.call(engine, user, name, input) => Ok(match r {
            Ok(text) => (text, model::chat::CallState::Done),
            Err(text) => (text, model::chat::CallState::Failed),
        }),
        end = cancelled(cancel) => Err(end),
    }
}

fn add_usage(engine: &Engine, live: &Live, total: &mut Usage, call: Usage, model: &str) {
    if call == Usage::default() {
        return;
    }
    total.add(call);
    let input_tokens = total.input_tokens.unwrap_or(0);
    let output_tokens = total.output_tokens.unwrap_or(0);
    let t = live.transcript();
    let cost = t.cost_micros + cost_micros(engine, model, call);
    live.emit(RunEvent::Usage { input_tokens, output_tokens, cost_micros: cost, model: model.to_owned() });
}

/// A span of time for people: `24 hours`, `5 minutes`, `1 second`.
fn span_words(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The end of an answer that holds all an answer may.
fn answer_full() -> End {
    End::limit(format!(
        "The answer reached the most one answer may hold ({} MiB, {} events) and was cut off there.",
        ANSWER_MAX_BYTES / (1024 * 1024),
        RUN_MAX_EVENTS
    ))
}

/// What a model call has sent so far, to hold it to the agent's output limit whether or
/// not the provider honours `max_tokens`. Tokens are estimated, never undercounted by much:
/// at least one per delta, and at least one per four bytes.
#[derive(Default)]
struct Received {
    bytes: usize,
    deltas: usize,
}

impl Received {
    fn add(&mut self, piece: &str) {
        self.bytes += piece.len();
        self.deltas += 1;
    }

    fn tokens(&self) -> usize {
        self.deltas.max(self.bytes.div_ceil(4))
    }
}

/// The estimated tokens a call may send before it is cut off: the agent's limit, and a
/// little room for the estimate.
fn output_allowance(max_output_tokens: u32) -> usize {
    let n = max_output_tokens as usize;
    n + n / 10 + 4
}

fn incomplete_message(e: &LlmError) -> String {
    format!("{e}. The answer above is incomplete; regenerate to try again.")
}
