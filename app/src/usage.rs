//! Usage: what the signed-in user's agents used and cost over the last 7, 30 or 90 days.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use model::usage::{DEFAULT_DAYS, PERIODS, UsageReport, UsageRow};

use crate::chat::{dollars, thousands};
use crate::components::{EmptyState, LoadError, PageHeader, Skeleton};
use crate::error::AppError;
use crate::i18n::t;

#[server(endpoint = "usage/report")]
pub async fn get_usage(days: u32) -> Result<UsageReport, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.usage(&user, days).await?)
}

#[component]
pub fn UsagePage() -> impl IntoView {
    let t = t();
    let query = use_query_map();
    let days = Memo::new(move |_| {
        query
            .read()
            .get("days")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| PERIODS.contains(d))
            .unwrap_or(DEFAULT_DAYS)
    });
    let report = crate::data::load(move || days.get(), get_usage);
    let content = move || {
        report.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| report.refetch()) /> }.into_any(),
            Ok(r) if r.total.answers == 0 => view! {
                <EmptyState icon="▤" title=t.usage_none_title body=t.usage_none_body>
                    <A href="/chat" attr:class="btn btn-primary">{t.chat_new}</A>
                </EmptyState>
            }
            .into_any(),
            Ok(r) => view! { <Report r /> }.into_any(),
        })
    };
    view! {
        <Title text=t.nav_usage />
        <PageHeader title=t.nav_usage lead=t.usage_lead />
        <nav class="segmented" aria-label=t.usage_period>
            {PERIODS
                .into_iter()
                .map(|d| {
                    // A plain link (the router still takes the click): `<A>` would mark
                    // all three current, since they share a path.
                    let current = move || (days.get() == d).then_some("page");
                    view! {
                        <a href=format!("/usage?days={d}") aria-current=current>
                            {t.usage_days.replace("{n}", &d.to_string())}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
        <Transition fallback=|| view! { <div class="card"><Skeleton lines=4 /></div> }>{content}</Transition>
    }
}

#[component]
fn Report(r: UsageReport) -> impl IntoView {
    let t = t();
    let stat = |label: &'static str, value: String| {
        view! {
            <div class="stat">
                <dt>{label}</dt>
                <dd>{value}</dd>
            </div>
        }
    };
    // An SVG, not styled boxes: the heights are attributes, which the CSP allows (it
    // refuses inline styles).
    let max = r.by_day.iter().map(|d| d.tally.tokens()).max().unwrap_or(0).max(1);
    let width = r.by_day.len() * 10;
    let bars = r
        .by_day
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let h = (d.tally.tokens() as f64 / max as f64 * 100.0).max(if d.tally.tokens() > 0 { 1.5 } else { 0.5 });
            let title = t
                .usage_day_title
                .replace("{day}", &d.label)
                .replace("{tokens}", &thousands(d.tally.tokens()))
                .replace("{cost}", &dollars(d.tally.cost_micros));
            view! {
                <rect x=i * 10 + 1 y=format!("{:.2}", 100.0 - h) width="8" height=format!("{h:.2}") rx="1.5">
                    <title>{title}</title>
                </rect>
            }
        })
        .collect_view();
    let (first, last) =
        (r.by_day.first().map(|d| d.label.clone()).unwrap_or_default(), r.by_day.last().map(|d| d.label.clone()));
    let unpriced = (!r.unpriced.is_empty()).then(
        || view! { <p class="alert alert-warn">{t.usage_unpriced.replace("{models}", &r.unpriced.join(", "))}</p> },
    );
    view! {
        <dl class="stats">
            {stat(t.usage_cost, dollars(r.total.cost_micros))}
            {stat(t.usage_input, thousands(r.total.input_tokens))}
            {stat(t.usage_output, thousands(r.total.output_tokens))}
            {stat(t.usage_answers, thousands(r.total.answers))}
        </dl>
        {unpriced}
        <section class="card" aria-labelledby="usage-per-day">
            <h2 id="usage-per-day" class="card-title">{t.usage_per_day}</h2>
            <svg
                class="day-chart"
                role="img"
                aria-label=t.usage_per_day
                viewBox=format!("0 0 {width} 100")
                preserveAspectRatio="none"
            >
                {bars}
            </svg>
            <p class="day-chart-axis muted small"><span>{first}</span><span>{last}</span></p>
        </section>
        <Breakdown id="usage-agents" title=t.usage_by_agent head=t.usage_agent rows=r.by_agent link=true />
        <Breakdown id="usage-models" title=t.usage_by_model head=t.usage_model rows=r.by_model link=false />
        <p class="muted small usage-note">{t.usage_note}</p>
    }
}

#[component]
fn Breakdown(
    id: &'static str,
    title: &'static str,
    head: &'static str,
    rows: Vec<UsageRow>,
    link: bool,
) -> impl IntoView {
    let t = t();
    let rows = rows
        .into_iter()
        .map(|row| {
            let name = match (link, row.label.is_empty()) {
                (true, true) => view! { <span class="muted">{t.usage_deleted_agent}</span> }.into_any(),
                (true, false) => view! { <A href=format!("/agents/{}", row.key)>{row.label}</A> }.into_any(),
                (false, _) => view! { <code>{row.label}</code> }.into_any(),
            };
            view! {
                <tr>
                    <th scope="row">{name}</th>
                    <td class="num">{thousands(row.tally.answers)}</td>
                    <td class="num">{thousands(row.tally.input_tokens)}</td>
                    <td class="num">{thousands(row.tally.output_tokens)}</td>
                    <td class="num">{dollars(row.tally.cost_micros)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby=id>
            <h2 id=id class="card-title">{title}</h2>
            <div class="table-wrap">
                <table class="usage-table">
                    <thead>
                        <tr>
                            <th scope="col">{head}</th>
                            <th scope="col" class="num">{t.usage_answers}</th>
                            <th scope="col" class="num">{t.usage_input}</th>
                            <th scope="col" class="num">{t.usage_output}</th>
                            <th scope="col" class="num">{t.usage_cost}</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}
