use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use model::agents::VersionView;

use super::api::{RollbackAgent, get_agent_history};
use crate::components::{ErrorAlert, LoadError, PageHeader, Skeleton, action_error, route_id};
use crate::i18n::t;

#[component]
pub fn AgentHistoryPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let rollback = ServerAction::<RollbackAgent>::new();
    let err = action_error(rollback);
    let history = crate::data::load(move || (id.get(), rollback.version().get()), |(id, _)| get_agent_history(id));
    let content = move || {
        history.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| history.refetch()) /> }.into_any(),
            Ok(versions) => {
                let current = versions.first().map(|v| v.version).unwrap_or_default();
                view! {
                    <ol class="timeline">
                        {versions.into_iter().map(|v| view! { <VersionEntry v current id=id.get() rollback /> }).collect_view()}
                    </ol>
                }
                .into_any()
            }
        })
    };
    view! {
        <Title text=t.history_title />
        <p class="crumbs"><A href=move || format!("/agents/{}", id.get())>"← " {t.back_to_agent}</A></p>
        <PageHeader title=t.history_title lead=t.history_lead />
        <ErrorAlert error=err />
        <Transition fallback=|| view! { <div class="card"><Skeleton lines=6 /></div> }>{content}</Transition>
    }
}

#[component]
fn VersionEntry(v: VersionView, current: i64, id: String, rollback: ServerAction<RollbackAgent>) -> impl IntoView {
    let t = t();
    let label = t.agent_version.replace("{n}", &v.version.to_string());
    let body = if v.version == 1 && v.changes.is_empty() {
        view! { <p class="muted">{t.history_created}</p> }.into_any()
    } else if v.changes.is_empty() {
        view! { <p class="muted">{t.history_no_changes}</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="diff">
                    <thead>
                        <tr>
                            <th scope="col">{t.history_field}</th>
                            <th scope="col">{t.history_before}</th>
                            <th scope="col">{t.history_after}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {v.changes.into_iter().map(|c| view! {
                            <tr>
                                <th scope="row">{match t.agent_field_label(&c.field) { "" => c.field.clone(), l => l.to_owned() }}</th>
                                <td><del>{c.before}</del></td>
                                <td><ins>{c.after}</ins></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <li class="card version" data-version=v.version>
            <header class="version-head">
                <h2>{label.clone()}</h2>
                {(v.version == current).then(|| view! { <span class="badge badge-on">{t.history_current}</span> })}
                {v.restored_from.map(|n| view! { <span class="badge">{t.history_restored.replace("{n}", &n.to_string())}</span> })}
                <span class="muted small">{model::format_utc(v.created_at)} " · " {t.history_by.replace("{name}", &v.author)}</span>
            </header>
            {body}
            {(v.version != current).then(|| view! {
                <ActionForm action=rollback>
                    <input type="hidden" name="id" value=id.clone() />
                    <input type="hidden" name="version" value=v.version.to_string() />
                    <button type="submit" class="btn btn-secondary btn-small" aria-label=format!("{} ({label})", t.history_restore)>
                        {t.history_restore}
                    </button>
                </ActionForm>
            })}
        </li>
    }
}
