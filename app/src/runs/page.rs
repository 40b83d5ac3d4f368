//! The runs list (`/runs`) and one run's trace (`/runs/:id`).
//!
//! The list filters by status, kind and agent with a GET form, so it works without
//! JavaScript; once hydrated it refreshes itself while a run on it is live. The trace
//! renders on the server as stored; hydrated, a live run's trace follows its events
//! (the same resumable stream as a chat answer), and without JavaScript a live run's page
//! reloads itself every few seconds.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use model::chat::{CallState, RunStatus};
use model::runs::{RunDetail, RunFilter, RunKind, RunSummary, STATUS_FILTERS, Step, Trace};

use super::api::{StopRun, get_run, list_runs, run_events};
use crate::agents::api::list_agents;
use crate::chat::{dollars, thousands};
use crate::components::{EmptyState, ErrorAlert, ListBody, Loaded, PageHeader, action_error, route_id};
use crate::error::AppError;
use crate::i18n::{Strings, t};
use crate::shell::layout::use_session;

/// The list's filters from the page's address.
fn filter_from_query() -> Memo<RunFilter> {
    let query = use_query_map();
    Memo::new(move |_| {
        let q = query.read();
        RunFilter {
            status: q.get("status").unwrap_or_default(),
            kind: q.get("kind").unwrap_or_default(),
            agent_id: q.get("agent").unwrap_or_default(),
            everyone: q.get("everyone").is_some_and(|v| v == "true"),
            page: q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
        }
    })
}

/// The filters as query parameters, for the pager's links.
fn filter_query(f: &RunFilter) -> String {
    let mut parts = Vec::new();
    for (k, v) in [("status", &f.status), ("kind", &f.kind), ("agent", &f.agent_id)] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", crate::components::encode(v)));
        }
    }
    if f.everyone {
        parts.push("everyone=true".into());
    }
    parts.join("&")
}

pub fn status_text(t: &'static Strings, s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => t.run_status_running,
        RunStatus::Waiting => t.run_status_waiting,
        RunStatus::Done => t.run_status_done,
        RunStatus::Stopped => t.run_status_stopped,
        RunStatus::Incomplete => t.run_status_incomplete,
        RunStatus::Interrupted => t.run_status_interrupted,
        RunStatus::Failed => t.run_status_failed,
    }
}

fn kind_text(t: &'static Strings, k: RunKind) -> &'static str {
    match k {
        RunKind::Chat => t.run_kind_chat,
        RunKind::Api => t.run_kind_api,
    }
}

fn status_badge(s: RunStatus) -> impl IntoView {
    let class = match s {
        RunStatus::Running | RunStatus::Waiting => "badge badge-live",
        RunStatus::Done => "badge badge-on",
        RunStatus::Stopped => "badge",
        RunStatus::Incomplete | RunStatus::Interrupted => "badge badge-warn",
        RunStatus::Failed => "badge badge-off",
    };
    view! { <span class=class data-status=s.as_str()>{status_text(t(), s)}</span> }
}

/// `1.2 s`, `3 min 4 s`, `2 h 5 min`.
fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        ms if ms % 3_600_000 < 60_000 => format!("{} h", ms / 3_600_000),
        ms => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// How long it took, or has been running so far (as of when the page was read).
fn run_duration(r: &RunSummary) -> String {
    let d = duration(r.duration_ms);
    if r.ended_at.is_some() { d } else { format!("{d}…") }
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let t = t();
    let filter = filter_from_query();
    let list = crate::data::load(move || filter.get(), list_runs);
    let agents = crate::data::load(|| (), |_| list_agents(String::new(), 1));
    let session = use_session();
    let is_admin = move || session.me.get().and_then(Result::ok).flatten().is_some_and(|m| m.is_admin);
    let stop = ServerAction::<StopRun>::new();
    // A stop changes the list; so does time while runs are live (hydrated only).
    Effect::new(move |_| {
        if stop.version().get() > 0 {
            list.refetch();
        }
    });
    refresh_while_live(list);
    let agent_options = move || {
        let chosen = filter.with(|f| f.agent_id.clone());
        agents.get().and_then(Result::ok).map(|p| {
            p.items
                .into_iter()
                .map(|a| {
                    let selected = a.id == chosen;
                    view! { <option value=a.id selected=selected>{a.name}</option> }
                })
                .collect_view()
        })
    };
    view! {
        <Title text=t.nav_runs />
        <PageHeader title=t.nav_runs lead=t.runs_lead />
        <ErrorAlert error=action_error(stop) />
        <form method="GET" action="/runs" class="filters card" aria-label=t.runs_filters>
            <div class="field">
                <label for="runs-status">{t.runs_status}</label>
                <select id="runs-status" name="status">
                    <option value="">{t.runs_any}</option>
                    {STATUS_FILTERS
                        .into_iter()
                        .map(|s| {
                            let label = if s == "live" { t.runs_live } else { status_text(t, RunStatus::parse(s)) };
                            let selected = move || filter.with(|f| f.status == s);
                            view! { <option value=s selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="runs-kind">{t.runs_kind}</label>
                <select id="runs-kind" name="kind">
                    <option value="">{t.runs_any}</option>
                    {RunKind::ALL
                        .into_iter()
                        .map(|k| {
                            let selected = move || filter.with(|f| f.kind == k.as_str());
                            view! { <option value=k.as_str() selected=selected>{kind_text(t, k)}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="runs-agent">{t.runs_agent}</label>
                <select id="runs-agent" name="agent">
                    <option value="">{t.runs_any}</option>
                    <Transition fallback=|| ()>{agent_options}</Transition>
                </select>
            </div>
            <Transition fallback=|| ()>
                {move || is_admin().then(|| view! {
                    <label class="check">
                        <input type="checkbox" name="everyone" value="true" checked=move || filter.with(|f| f.everyone) />
                        {t.runs_everyone}
                    </label>
                })}
            </Transition>
            <button type="submit" class="btn btn-secondary">{t.runs_filter}</button>
        </form>
        <ListBody
            list
            base="/runs"
            q=Signal::stored(String::new())
            filters=Signal::derive(move || filter.with(filter_query))
            no_match=t.runs_no_match
            empty={move || view! {
                <EmptyState icon="▶" title=t.runs_none_title body=t.runs_none_body>
                    <A href="/chat" attr:class="btn btn-primary">{t.chat_new}</A>
                </EmptyState>
            }}
            items={move |items: Vec<RunSummary>| {
                let everyone = filter.with_untracked(|f| f.everyone);
                view! {
                    <div class="table-wrap card">
                        <table class="runs-table" aria-label=t.nav_runs>
                            <thead>
                                <tr>
                                    <th scope="col">{t.runs_status}</th>
                                    <th scope="col">{t.runs_kind}</th>
                                    <th scope="col">{t.runs_agent}</th>
                                    {everyone.then(|| view! { <th scope="col">{t.runs_owner}</th> })}
                                    <th scope="col">{t.runs_started}</th>
                                    <th scope="col" class="num">{t.runs_duration}</th>
                                    <th scope="col" class="num">{t.runs_tokens}</th>
                                    <th scope="col" class="num">{t.usage_cost}</th>
                                    <th scope="col"><span class="visually-hidden">{t.runs_actions}</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                {items.into_iter().map(|r| view! { <RunRow r everyone stop /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
            }}
        />
    }
}

#[component]
fn RunRow(r: RunSummary, everyone: bool, stop: ServerAction<StopRun>) -> impl IntoView {
    let t = t();
    let agent = if r.agent_name.is_empty() {
        view! { <span class="muted">{t.usage_deleted_agent}</span> }.into_any()
    } else {
        let (href, name) = (format!("/agents/{}", r.agent_id), r.agent_name.clone());
        view! { <A href=href>{name}</A> }.into_any()
    };
    let version = (r.agent_version > 0).then(|| format!(" v{}", r.agent_version));
    let live = !r.status.is_final();
    let id = r.id.clone();
    view! {
        <tr data-testid="run-row" data-status=r.status.as_str()>
            <td>
                <A href=format!("/runs/{}", r.id) attr:aria-label=t.runs_open.replace("{id}", &r.id[..8])>
                    {status_badge(r.status)}
                </A>
            </td>
            <td>{kind_text(t, r.kind)}</td>
            <td>{agent}<span class="muted small">{version}</span></td>
            {everyone.then(|| view! { <td class="small">{r.owner_email.clone()}</td> })}
            <td class="small">
                <A href=format!("/runs/{}", r.id)>{model::fields::format_utc(r.started_at)}</A>
            </td>
            <td class="num">{run_duration(&r)}</td>
            <td class="num">{thousands(r.input_tokens + r.output_tokens)}</td>
            <td class="num">{dollars(r.cost_micros)}</td>
            <td>
                {live.then(|| view! {
                    <ActionForm action=stop attr:class="inline">
                        <input type="hidden" name="id" value=id.clone() />
                        <button type="submit" class="btn btn-secondary btn-small">"■ " {t.chat_stop}</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}

/// Refetches the list every few seconds while one of its runs is live (in the browser).
fn refresh_while_live(list: crate::data::Data<Result<model::Page<RunSummary>, AppError>>) {
    Effect::new(move |_| {
        let live = list.with(|r| {
            r.as_ref().and_then(|r| r.as_ref().ok()).is_some_and(|p| p.items.iter().any(|r| !r.status.is_final()))
        });
        if live {
            leptos::task::spawn_local_scoped_with_cancellation(async move {
                crate::stream::sleep_ms(2_000).await;
                list.refetch();
            });
        }
    });
}

#[component]
pub fn RunPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let run = crate::data::load(move || id.get(), get_run);
    let stop = ServerAction::<StopRun>::new();
    Effect::new(move |_| {
        if stop.version().get() > 0 {
            run.refetch();
        }
    });
    view! {
        <Title text=t.run_title />
        <nav class="crumbs" aria-label=t.runs_crumbs>
            <A href="/runs">{t.nav_runs}</A>
        </nav>
        <ErrorAlert error=action_error(stop) />
        <Loaded res=run lines=6 show={move |d: RunDetail| view! { <RunView d stop /> }} />
    }
}

#[component]
fn RunView(d: RunDetail, stop: ServerAction<StopRun>) -> impl IntoView {
    let t = t();
    let r = d.run.clone();
    let trace = RwSignal::new(Trace::of(&d.events));
    let status = RwSignal::new(r.status);
    let figures = RwSignal::new((r.input_tokens, r.output_tokens, r.cost_micros));
    if !r.status.is_final() {
        follow(r.id.clone(), trace, status, figures);
    }
    let live = move || !status.get().is_final();
    let answer_link = (d.own && !r.subject_id.is_empty())
        // A server redirect, not a page of the router: a plain link the router leaves alone.
        .then(|| view! { <a href=format!("/chat/answers/{}", r.subject_id) rel="external" class="btn btn-secondary">{t.run_open_answer}</a> });
    let agent = if r.agent_name.is_empty() {
        view! { <span class="muted">{t.usage_deleted_agent}</span> }.into_any()
    } else {
        let version = (r.agent_version > 0).then(|| format!(" · v{}", r.agent_version));
        let (href, name) = (format!("/agents/{}", r.agent_id), r.agent_name.clone());
        view! { <A href=href>{name}</A> {version} }.into_any()
    };
    let limits = d.limits;
    let limits_text = (limits.max_turns > 0).then(|| {
        t.run_limits_line
            .replace("{turns}", &limits.max_turns.to_string())
            .replace("{tokens}", &thousands(u64::from(limits.max_output_tokens)))
            .replace("{calls}", &limits.max_tool_calls.to_string())
            .replace("{wall}", &duration(limits.wall_secs.saturating_mul(1000).min(i64::MAX as u64) as i64))
    });
    let (id, stop_id) = (r.id.clone(), r.id.clone());
    let can_stop = d.can_stop;
    let steps = move || {
        let steps = trace.with(|tr| tr.steps.clone());
        if steps.is_empty() {
            return view! { <p class="empty">{t.run_no_steps}</p> }.into_any();
        }
        view! {
            <ol class="trace" aria-label=t.run_trace>
                {steps.into_iter().map(|s| view! { <StepView s /> }).collect_view()}
            </ol>
        }
        .into_any()
    };
    view! {
        {(!r.status.is_final()).then(|| view! { <noscript><meta http-equiv="refresh" content="3" /></noscript> })}
        <header class="page-header run-header">
            <h1>{t.run_title} " " <span class="run-status" data-testid="run-status">{move || status_badge(status.get())}</span></h1>
            <p class="muted small"><code>{id}</code></p>
        </header>
        <section class="card" aria-labelledby="run-facts">
            <h2 id="run-facts" class="visually-hidden">{t.run_facts}</h2>
            <dl class="facts">
                <div><dt>{t.runs_kind}</dt><dd>{kind_text(t, r.kind)}</dd></div>
                <div><dt>{t.runs_agent}</dt><dd>{agent}</dd></div>
                {(!r.model.is_empty()).then(|| view! { <div><dt>{t.run_model}</dt><dd><code>{r.model.clone()}</code></dd></div> })}
                {(!d.own).then(|| view! { <div><dt>{t.runs_owner}</dt><dd>{r.owner_email.clone()}</dd></div> })}
                <div><dt>{t.runs_started}</dt><dd>{model::fields::format_utc(r.started_at)}</dd></div>
                <div><dt>{t.runs_duration}</dt><dd>{run_duration(&r)}</dd></div>
                <div>
                    <dt>{t.runs_tokens}</dt>
                    <dd data-testid="run-tokens">{move || {
                        let (i, o, _) = figures.get();
                        t.chat_tokens.replace("{in}", &thousands(i)).replace("{out}", &thousands(o))
                    }}</dd>
                </div>
                <div><dt>{t.usage_cost}</dt><dd data-testid="run-cost">{move || dollars(figures.get().2)}</dd></div>
                {limits_text.map(|l| view! { <div><dt>{t.run_limits}</dt><dd class="small">{l}</dd></div> })}
            </dl>
            {(!r.error.is_empty() && r.status.is_final()).then(|| view! { <p class="notice notice-warn">{r.error.clone()}</p> })}
            <div class="actions">
                {answer_link}
                {move || (can_stop && live()).then(|| {
                    let stop_id = stop_id.clone();
                    view! {
                    <ActionForm action=stop attr:class="inline">
                        <input type="hidden" name="id" value=stop_id.clone() />
                        <button type="submit" class="btn btn-secondary" data-testid="run-stop">"■ " {t.chat_stop}</button>
                    </ActionForm>
                }})}
            </div>
        </section>
        <h2 class="section-title">{t.run_trace}</h2>
        {steps}
    }
}

#[component]
fn StepView(s: Step) -> impl IntoView {
    let t = t();
    match s {
        Step::Model { text, call } => {
            let model = call.as_ref().map(|c| c.model.clone()).unwrap_or_default();
            let figures = call.as_ref().map(|c| {
                t.run_call_figures
                    .replace("{in}", &thousands(c.input_tokens))
                    .replace("{out}", &thousands(c.output_tokens))
                    .replace("{ttft}", &duration(c.ttft_ms as i64))
                    .replace("{time}", &duration(c.ms as i64))
                    .replace("{cost}", &dollars(c.cost_micros))
            });
            let stop = match &call {
                Some(c) => view! { <span class="badge">{c.stop.clone()}</span> }.into_any(),
                None => view! { <span class="badge badge-live">{t.run_streaming}</span> }.into_any(),
            };
            let (failures, error) = call.map(|c| (c.failures, c.error)).unwrap_or_default();
            view! {
                <li class="step step-model" data-testid="step-model">
                    <p class="step-head">
                        <strong>{t.run_model_call}</strong> " "
                        {(!model.is_empty()).then(|| view! { <code>{model.clone()}</code> })} " " {stop}
                    </p>
                    {figures.map(|f| view! { <p class="small muted" data-testid="step-figures">{f}</p> })}
                    {(!failures.is_empty()).then(|| view! {
                        <details class="small">
                            <summary>{t.run_retries.replace("{n}", &failures.len().to_string())}</summary>
                            <ul>{failures.into_iter().map(|f| view! { <li><code>{f}</code></li> }).collect_view()}</ul>
                        </details>
                    })}
                    {(!error.is_empty()).then(|| view! { <p class="notice notice-error">{error}</p> })}
                    {(!text.is_empty()).then(|| view! { <pre class="step-text">{text}</pre> })}
                </li>
            }
            .into_any()
        }
        Step::Tool { label, input, state, result, ms, answered, .. } => {
            let failed = matches!(state, CallState::Failed | CallState::Denied);
            let state_text = match state {
                CallState::Writing => t.tool_writing,
                CallState::Asking => t.tool_asking,
                CallState::Running => t.tool_running,
                CallState::Done => t.tool_done,
                CallState::Failed => t.tool_failed,
                CallState::Denied => t.tool_denied,
            };
            let who = answered.map(|(allow, by)| {
                let text = if allow { t.run_allowed_by } else { t.run_declined_by };
                text.replace("{name}", &by)
            });
            let args = serde_json::to_string_pretty(&input).unwrap_or_default();
            view! {
                <li class="step step-tool" class:step-failed=failed data-testid="step-tool">
                    <p class="step-head">
                        <strong>{t.run_tool_call}</strong> " " <code>{label}</code> " "
                        <span class=if failed { "badge badge-off" } else { "badge" }>{state_text}</span>
                        {(ms > 0).then(|| view! { <span class="small muted">" " {duration(ms as i64)}</span> })}
                    </p>
                    {who.map(|w| view! { <p class="small" data-testid="step-approval">{w}</p> })}
                    <details>
                        <summary>{t.run_arguments}</summary>
                        <pre class="step-text">{args}</pre>
                    </details>
                    {(!result.is_empty()).then(|| view! {
                        <details open=failed>
                            <summary>{if failed { t.run_error } else { t.run_result }}</summary>
                            <pre class="step-text">{result}</pre>
                        </details>
                    })}
                </li>
            }
            .into_any()
        }
        Step::Continues { from } => view! {
            <li class="step step-status" data-testid="step-continues">
                <p class="step-head">
                    {t.run_continues} " " <A href=format!("/runs/{from}")><code>{from.clone()}</code></A>
                </p>
            </li>
        }
        .into_any(),
        Step::Context(cut) => view! {
            <li class="step step-status" data-testid="step-context">
                <p class="step-head"><strong>{t.run_context_cut}</strong></p>
                <p class="small muted">
                    {t.n(if cut.summary.is_empty() { t.chat_context_dropped } else { t.chat_context_summarised }, u64::from(cut.dropped))
                        .replace("{window}", &thousands(cut.window))}
                </p>
                {(!cut.summary.is_empty()).then(|| view! { <pre class="step-text">{cut.summary.clone()}</pre> })}
            </li>
        }
        .into_any(),
        Step::Status { status, error } => view! {
            <li class="step step-status" data-testid="step-status">
                <p class="step-head">{status_badge(status)} " " {error}</p>
            </li>
        }
        .into_any(),
    }
}

/// Follows a live run's events into its trace, status and figures.
fn follow(id: String, trace: RwSignal<Trace>, status: RwSignal<RunStatus>, figures: RwSignal<(u64, u64, u64)>) {
    Effect::new(move |_| {
        let id = id.clone();
        leptos::task::spawn_local_scoped_with_cancellation(async move {
            crate::stream::follow_events(
                |after| run_events(id.clone(), after),
                || trace.with_untracked(|t| t.seq),
                || status.with_untracked(|s| s.is_final()),
                |events| {
                    for e in &events {
                        match &e.event {
                            model::chat::RunEvent::Status { status: s, .. } => status.set(*s),
                            model::chat::RunEvent::Usage { input_tokens, output_tokens, cost_micros, .. } => {
                                figures.set((*input_tokens, *output_tokens, *cost_micros));
                            }
                            _ => {}
                        }
                    }
                    trace.update(|t| events.iter().for_each(|e| t.apply(e)));
                },
            )
            .await;
        });
    });
}
