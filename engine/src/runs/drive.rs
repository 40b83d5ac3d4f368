//! The run loop: load what the run starts from, then call the model, stream, run the tool
//! calls by policy, and repeat until the model stops or a limit is hit. Every model call
//! and tool call is metered first and leaves a trace event after.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use model::agents::{AgentView, ToolPolicy};
use model::chat::{CallState, ContextCut, Message, ModelCall, RunEvent, RunStatus, StopReason, StreamEvent, Usage};
use model::runs::RunLimits;
use tokio::sync::{oneshot, watch};

use super::context::{self, Plan, Room, Turn};
use super::meter::{Asking, Call};
use super::{ANSWER_MAX_BYTES, End, Input, Live, RUN_MAX_EVENTS, tools};
use crate::Engine;
use crate::auth::CurrentUser;
use crate::llm::{ChatRequest, LlmError};

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

/// The run's limits: the agent's, the server's, and any imposed from outside (a parent's
/// remaining ones), the least of each.
fn limits_of(engine: &Engine, agent: &AgentView, imposed: Option<RunLimits>) -> RunLimits {
    let own = RunLimits {
        max_turns: agent.spec.max_turns.max(1),
        max_output_tokens: agent.spec.max_output_tokens,
        wall_secs: engine.settings.limits.run_wall_secs,
        max_tool_calls: engine.settings.limits.run_tool_calls,
    };
    imposed.map_or(own, |i| own.min(i))
}

/// The run itself. `Ok` when the model finished its answer.
pub(super) async fn drive(
    engine: &Engine,
    user: &CurrentUser,
    input: Input,
    imposed: Option<RunLimits>,
    live: &Live,
) -> Result<(), End> {
    let mut cancel = live.cancel.subscribe();
    let (agent, history) = match input {
        Input::Ready { agent, history } => (*agent, history),
        Input::Load(subject) => {
            let agent = engine
                .agent_for_run(user, &live.head.agent_id)
                .await
                .map_err(|e| End::new(RunStatus::Failed, format!("The agent could not be loaded: {e}")))?;
            let history = subject.history(engine).await.map_err(|e| End::new(RunStatus::Failed, e))?;
            (agent, history)
        }
    };
    let limits = limits_of(engine, &agent, imposed);
    if let Ok(mut s) = live.state.lock() {
        s.limits = limits;
        s.agent_version = agent.version;
    }
    let mut toolbox = tools::Toolbox::build(engine, user, &agent).await;
    let wall = Duration::from_secs(limits.wall_secs);
    let turns = run_turns(engine, user, &agent, limits, history, &mut toolbox, live, &mut cancel);
    let result = match tokio::time::timeout(wall, turns).await {
        Ok(r) => r,
        Err(_) => Err(End::limit(format!(
            "The run passed its limit of {} and was ended there.",
            span_words(limits.wall_secs)
        ))),
    };
    toolbox.shutdown().await;
    result
}

/// One model call's figures for the trace.
struct CallRecord<'a> {
    model: &'a str,
    sent: Instant,
    ttft: Duration,
    failures: Vec<String>,
}

impl CallRecord<'_> {
    fn emit(self, engine: &Engine, live: &Live, usage: Usage, stop: &str, error: String) {
        live.emit(RunEvent::ModelCall(ModelCall {
            model: self.model.to_owned(),
            input_tokens: usage.input_tokens.unwrap_or(0),
            output_tokens: usage.output_tokens.unwrap_or(0),
            cost_micros: cost_micros(engine, self.model, usage),
            ttft_ms: self.ttft.as_millis() as u64,
            ms: self.sent.elapsed().as_millis() as u64,
            stop: stop.to_owned(),
            failures: self.failures,
            error,
        }));
    }
}

fn stop_name(stop: &StopReason) -> String {
    match stop {
        StopReason::EndTurn => "end_turn".into(),
        StopReason::ToolUse => "tool_use".into(),
        StopReason::MaxTokens => "max_tokens".into(),
        StopReason::Other(s) => s.clone(),
    }
}

/// Asks the meter about a call; a refusal ends the run.
async fn metered(engine: &Engine, live: &Live, call: Call<'_>) -> Result<(), End> {
    let meter = engine.runs.meter.lock().map(|m| m.clone()).ok();
    let Some(meter) = meter else { return Ok(()) };
    let cost_micros = live.state.lock().map(|s| s.transcript.cost_micros).unwrap_or_default();
    let asking = Asking { run_id: &live.head.id, owner: &live.head.owner, agent_id: &live.head.agent_id, cost_micros };
    meter.before(engine, asking, call).await.map_err(End::limit)
}

#[allow(clippy::too_many_arguments)]
async fn run_turns(
    engine: &Engine,
    user: &CurrentUser,
    agent: &AgentView,
    limits: RunLimits,
    mut history: Vec<Turn>,
    toolbox: &mut tools::Toolbox,
    live: &Live,
    cancel: &mut watch::Receiver<Option<End>>,
) -> Result<(), End> {
    let spec = &agent.spec;
    let model =
        engine.model_for(user, &spec.provider_id).await.map_err(|e| End::new(RunStatus::Failed, e.to_string()))?;
    let policy = engine.runs.policy.lock().map(|p| *p).unwrap_or_default();
    let mut total = Usage::default();
    let (system, tool_specs) = (toolbox.system_prompt(&spec.system_prompt), toolbox.specs());
    let fixed = context::estimate_text(&system)
        + tool_specs.iter().map(|t| context::estimate_text(&serde_json::to_string(t).unwrap_or_default())).sum::<u64>();
    let window = std::iter::once(&spec.model)
        .chain(&spec.fallback_models)
        .map(|m| engine.settings.context_window(m))
        .min()
        .unwrap_or(crate::settings::DEFAULT_CONTEXT_WINDOW);
    let room = Room::new(window, limits.max_output_tokens, fixed);
    for turn in 0..limits.max_turns {
        let own = live.transcript().to_messages();
        let fit = Fit { engine, live, model: &*model, agent, policy, room };
        fit.run(&mut history, &own, &mut total, cancel).await?;
        let mut messages = context::assemble(&history);
        messages.extend(own);
        let req = ChatRequest {
            model: spec.model.clone(),
            system: system.clone(),
            messages,
            tools: tool_specs.clone(),
            temperature: spec.temperature,
            max_tokens: room.max_tokens,
        };
        metered(engine, live, Call::Model { model: &spec.model }).await?;
        live.turns.fetch_add(1, Ordering::Relaxed);
        let has_output = || !live.transcript().parts.is_empty();
        let sent = Instant::now();
        let started = tokio::select! {
            s = model.start(&req, &spec.fallback_models, policy) => s,
            end = cancelled(cancel) => return Err(end),
        };
        let failed = |f: &[(String, LlmError)]| f.iter().map(|(m, e)| format!("{m}: {e}")).collect::<Vec<_>>();
        let started = match started {
            Ok(s) => s,
            Err((e, failures)) => {
                let record = CallRecord { model: &spec.model, sent, ttft: sent.elapsed(), failures: failed(&failures) };
                record.emit(engine, live, Usage::default(), "error", e.to_string());
                let status = if has_output() { RunStatus::Incomplete } else { RunStatus::Failed };
                return Err(End::new(status, e.to_string()));
            }
        };
        let model_used = started.model.clone();
        let record = CallRecord { model: &model_used, sent, ttft: sent.elapsed(), failures: failed(&started.failures) };
        let mut events = started.events;
        let mut received = Received::default();
        let mut calls = Vec::new();
        let mut call_usage = Usage::default();
        let mut stop = StopReason::EndTurn;
        // Ends the call: its usage added to the run's, its trace event emitted.
        let mut close = |engine: &Engine, usage: Usage, stop: &str, error: String, record: CallRecord<'_>| {
            add_usage(engine, live, &mut total, usage, &model_used);
            record.emit(engine, live, usage, stop, error);
        };
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
                        close(engine, call_usage, "stopped", String::new(), record);
                        return Err(end);
                    }
                };
                let end = live.cancel.borrow().clone();
                if let Some(end) = end {
                    close(engine, call_usage, "stopped", String::new(), record);
                    return Err(end);
                }
                match next {
                    None => break,
                    Some(Err(e)) => {
                        close(engine, call_usage, "error", e.to_string(), record);
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
                                let asking = policy == ToolPolicy::Ask && live.interactive;
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
                        let over_tokens = received.tokens() > output_allowance(limits.max_output_tokens);
                        if over_tokens || !within {
                            // Dropping the stream closes the connection: nothing more is read.
                            close(engine, call_usage, "limit", String::new(), record);
                            return Err(if over_tokens {
                                End::limit(format!(
                                    "The answer passed the agent's limit of {} output tokens and was cut off \
                                         there. Raise max output tokens to get more.",
                                    limits.max_output_tokens
                                ))
                            } else {
                                answer_full()
                            });
                        }
                    }
                }
            }
        }
        close(engine, call_usage, &stop_name(&stop), String::new(), record);
        if calls.is_empty() {
            return match stop {
                StopReason::MaxTokens => Err(End::limit(
                    "The answer reached the agent's limit of output tokens. Raise max output tokens to get more.",
                )),
                _ => Ok(()),
            };
        }
        for (id, name, input, policy) in calls {
            let (content, state, ms) = match policy {
                ToolPolicy::Deny => ("The agent's tool policy denies this tool.".to_owned(), CallState::Denied, 0),
                ToolPolicy::Ask if !live.interactive => (
                    "This tool needs the user's approval, which can only be given in Agentry's chat, not over the API."
                        .to_owned(),
                    CallState::Denied,
                    0,
                ),
                ToolPolicy::Ask => {
                    let (tx, rx) = oneshot::channel();
                    if let Ok(mut a) = live.answers.lock() {
                        a.insert(id.clone(), tx);
                    }
                    live.emit(RunEvent::Status { status: RunStatus::Waiting, error: String::new(), limit: false });
                    let wait = Duration::from_secs(engine.settings.limits.approval_timeout_secs);
                    let (allowed, by) = tokio::select! {
                        a = rx => a.unwrap_or((false, String::new())),
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
                    live.emit(RunEvent::Answered { id: id.clone(), allow: allowed, by });
                    live.emit(RunEvent::Status { status: RunStatus::Running, error: String::new(), limit: false });
                    if allowed {
                        live.emit(RunEvent::ToolRunning { id: id.clone() });
                        run_tool(toolbox, engine, user, live, limits, &name, input, cancel).await?
                    } else {
                        ("The user declined this tool call.".to_owned(), CallState::Denied, 0)
                    }
                }
                ToolPolicy::Allow => run_tool(toolbox, engine, user, live, limits, &name, input, cancel).await?,
            };
            if !live.emit(RunEvent::ToolResult { id, content, state, ms }) {
                return Err(answer_full());
            }
        }
        if turn + 1 >= limits.max_turns {
            return Err(End::limit(format!(
                "The agent used its {} turns. Raise max turns to let it go on.",
                limits.max_turns
            )));
        }
        live.emit(RunEvent::Turn);
    }
    Ok(())
}

/// Makes the next request fit the model's window (see [`context`]).
struct Fit<'a> {
    engine: &'a Engine,
    live: &'a Live,
    model: &'a dyn crate::llm::ModelClient,
    agent: &'a AgentView,
    policy: crate::llm::Policy,
    room: Room,
}

impl Fit<'_> {
    async fn run(
        &self,
        history: &mut Vec<Turn>,
        own: &[Message],
        total: &mut Usage,
        cancel: &mut watch::Receiver<Option<End>>,
    ) -> Result<(), End> {
        let (rule, window) = (self.agent.spec.context_rule, self.room.window);
        let drop = match context::plan(history, own, self.room, rule) {
            Plan::Fits => return Ok(()),
            Plan::Cut { drop } => drop,
            Plan::TooLong { need, refused: true } => {
                return Err(End::new(
                    RunStatus::Failed,
                    format!(
                        "This conversation needs about {need} tokens, more than the model's context window of \
                         {window} tokens leaves for it ({}), and the agent is set to refuse rather than leave \
                         older messages out. Start a new conversation, or change the agent's context rule.",
                        self.room.budget
                    ),
                ));
            }
            Plan::TooLong { need, refused: false } => {
                return Err(End::new(
                    RunStatus::Failed,
                    format!(
                        "The newest message and this answer need about {need} tokens, more than the model's \
                         context window of {window} tokens leaves for them ({}), even with every older message \
                         left out. Send a shorter message, or pick an agent whose model has a larger window.",
                        self.room.budget
                    ),
                ));
            }
        };
        let dropped: Vec<Turn> = history.drain(..drop).collect();
        let through = dropped.last().map(|t| t.id.clone()).unwrap_or_default();
        // A lead among them stands for the messages it replaced.
        let n = dropped.iter().map(|t| t.stands_for).sum();
        let summary = if rule == model::agents::ContextRule::Summarize {
            self.summarise(&dropped, total, cancel).await?
        } else {
            String::new()
        };
        let cut = ContextCut { dropped: n, through, summary, window };
        history.insert(0, Turn::lead(&cut));
        self.live.emit(RunEvent::Context(cut));
        Ok(())
    }

    /// The model's summary of `turns` (empty when it could not write one: the turns are
    /// then left out with a note instead). Metered and traced like any model call.
    async fn summarise(
        &self,
        turns: &[Turn],
        total: &mut Usage,
        cancel: &mut watch::Receiver<Option<End>>,
    ) -> Result<String, End> {
        let (engine, live, spec) = (self.engine, self.live, &self.agent.spec);
        // What the summary's own request may read: the window less the summary and the
        // instructions, at three bytes a token (the newest part when not all fits).
        let prompt = context::estimate_text(context::SUMMARY_PROMPT);
        let room = Room::new(self.room.window, context::SUMMARY_TOKENS, prompt + 16);
        let source = context::summary_source(turns, room.budget as usize * 3);
        let req = ChatRequest {
            model: spec.model.clone(),
            system: context::SUMMARY_PROMPT.to_owned(),
            messages: vec![Message::user(&source)],
            tools: Vec::new(),
            temperature: None,
            max_tokens: room.max_tokens,
        };
        metered(engine, live, Call::Model { model: &spec.model }).await?;
        let sent = Instant::now();
        let started = tokio::select! {
            s = self.model.start(&req, &spec.fallback_models, self.policy) => s,
            end = cancelled(cancel) => return Err(end),
        };
        let started = match started {
            Ok(s) => s,
            Err((e, _)) => {
                let record = CallRecord { model: &spec.model, sent, ttft: sent.elapsed(), failures: Vec::new() };
                record.emit(engine, live, Usage::default(), "error", format!("summary: {e}"));
                return Ok(String::new());
            }
        };
        let model_used = started.model.clone();
        let record = CallRecord { model: &model_used, sent, ttft: sent.elapsed(), failures: Vec::new() };
        let (mut text, mut usage, mut failed) = (String::new(), Usage::default(), String::new());
        let mut events = started.events;
        loop {
            let next = tokio::select! {
                n = events.next() => n,
                end = cancelled(cancel) => return Err(end),
            };
            match next {
                None => break,
                Some(Ok(StreamEvent::TextDelta { text: t })) if text.len() < 64 * 1024 => text.push_str(&t),
                Some(Ok(StreamEvent::Usage { usage: u })) => usage = u,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    failed = e.to_string();
                    break;
                }
            }
        }
        add_usage(engine, live, total, usage, &model_used);
        record.emit(engine, live, usage, "summary", failed.clone());
        // Held to its size whatever the provider sent.
        let most = context::SUMMARY_TOKENS as usize * 3;
        Ok(if failed.is_empty() { context::cut(text.trim(), most).to_owned() } else { String::new() })
    }
}

/// Runs one call the policy allows (or the user allowed): metered, counted against the
/// run's tool calls, timed.
#[allow(clippy::too_many_arguments)]
async fn run_tool(
    toolbox: &mut tools::Toolbox,
    engine: &Engine,
    user: &CurrentUser,
    live: &Live,
    limits: RunLimits,
    name: &str,
    input: serde_json::Value,
    cancel: &mut watch::Receiver<Option<End>>,
) -> Result<(String, CallState, u64), End> {
    let made = live.tool_calls.fetch_add(1, Ordering::Relaxed) + 1;
    if made > limits.max_tool_calls {
        return Err(End::limit(format!(
            "The run made the most tool calls it may ({}), so it ended here.",
            limits.max_tool_calls
        )));
    }
    metered(engine, live, Call::Tool { label: &toolbox.label(name) }).await?;
    let began = Instant::now();
    tokio::select! {
        r = toolbox.call(engine, user, name, input) => {
            let ms = began.elapsed().as_millis() as u64;
            Ok(match r {
                Ok(text) => (text, CallState::Done, ms),
                Err(text) => (text, CallState::Failed, ms),
            })
        }
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
