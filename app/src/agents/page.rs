use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use model::agents::{AgentSummary, AgentView};

use super::api::{CreateAgent, DeleteAgent, DuplicateAgent, ImportAgent, UpdateAgent, get_agent, list_agents};
use super::editor::AgentFields;
use crate::components::{
    EmptyState, ErrorAlert, ImportErrors, ListBody, LoadError, PageHeader, Skeleton, SuccessNote, TextArea,
    action_error, action_ok, field_error, list_query, route_id,
};
use crate::i18n::t;
use crate::providers::api::list_providers;

#[component]
pub fn AgentsPage() -> impl IntoView {
    let t = t();
    let (q, page) = list_query();
    let list = crate::data::load(move || (q.get(), page.get()), |(q, page)| list_agents(q, page));
    view! {
        <Title text=t.agents_title />
        <PageHeader title=t.agents_title lead=t.agents_lead>
            <A href="/agents/import" attr:class="btn btn-secondary">{t.agents_import}</A>
            <A href="/agents/new" attr:class="btn btn-primary">{t.agents_new}</A>
        </PageHeader>
        <ListBody
            list
            base="/agents"
            search=t.agents_search
            q
            no_match=t.agents_no_match
            empty={move || view! {
                <EmptyState icon="◎" title=t.agents_empty_title body=t.agents_empty_body>
                    <div class="row-actions">
                        <A href="/agents/new" attr:class="btn btn-primary">{t.agents_new}</A>
                        <A href="/agents/import" attr:class="btn btn-secondary">{t.agents_import}</A>
                    </div>
                </EmptyState>
            }}
            items={move |items: Vec<AgentSummary>| view! {
                <ul class="cards" aria-label=t.agents_title>
                    {items.into_iter().map(|a| view! { <AgentCard a /> }).collect_view()}
                </ul>
            }}
        />
    }
}

#[component]
fn AgentCard(a: AgentSummary) -> impl IntoView {
    let t = t();
    view! {
        <li class="card card-link">
            <A href=format!("/agents/{}", a.id)>
                <span class="card-title">{a.name.clone()}</span>
            </A>
            <span class="badge">{t.agent_version.replace("{n}", &a.version.to_string())}</span>
            <p class="muted small mono">{a.slug.clone()} " · " {a.model.clone()}</p>
            {(!a.description.is_empty()).then(|| view! { <p class="small clamp">{a.description.clone()}</p> })}
        </li>
    }
}

/// The add-a-provider-first notice, for when there is nothing to pick.
#[component]
fn NeedProvider() -> impl IntoView {
    let t = t();
    view! {
        <div class="alert alert-warn" role="status">
            <p>{t.agents_need_provider}</p>
            <A href="/providers/new" attr:class="btn btn-secondary">{t.agents_add_provider}</A>
        </div>
    }
}

#[component]
pub fn NewAgentPage() -> impl IntoView {
    let t = t();
    let action = ServerAction::<CreateAgent>::new();
    let err = action_error(action);
    let pending = action.pending();
    let providers = crate::data::load(|| (), |_| list_providers());
    let form = move || {
        providers.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| providers.refetch()) /> }.into_any(),
            Ok(list) => view! {
                {list.is_empty().then(|| view! { <NeedProvider /> })}
                <ActionForm action=action attr:class="form">
                    <AgentFields spec=None providers=list err />
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=pending>
                            {move || if pending.get() { t.agent_creating } else { t.agent_create }}
                        </button>
                    </div>
                </ActionForm>
            }
            .into_any(),
        })
    };
    view! {
        <Title text=t.agent_new_title />
        <p class="crumbs"><A href="/agents">"← " {t.back_to_agents}</A></p>
        <PageHeader title=t.agent_new_title lead=t.agent_new_lead />
        <section class="card wide">
            <ErrorAlert error=err />
            <Transition fallback=|| view! { <Skeleton lines=8 /> }>{form}</Transition>
        </section>
    }
}

#[component]
pub fn AgentPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let update = ServerAction::<UpdateAgent>::new();
    let agent = crate::data::load(move || (id.get(), update.version().get()), |(id, _)| get_agent(id));
    let providers = crate::data::load(|| (), |_| list_providers());
    let content = move || {
        let a = agent.get()?;
        let p = providers.get()?;
        Some(match (a, p) {
            (Err(e), _) | (_, Err(e)) => {
                view! { <LoadError error=e on_retry=Callback::new(move |_| agent.refetch()) /> }.into_any()
            }
            (Ok(a), Ok(p)) => view! { <AgentDetail a providers=p update /> }.into_any(),
        })
    };
    view! {
        <p class="crumbs"><A href="/agents">"← " {t.back_to_agents}</A></p>
        <Transition fallback=|| view! { <div class="card"><Skeleton lines=8 /></div> }>{content}</Transition>
    }
}

#[component]
fn AgentDetail(
    a: AgentView,
    providers: Vec<model::providers::ProviderView>,
    update: ServerAction<UpdateAgent>,
) -> impl IntoView {
    let t = t();
    let duplicate = ServerAction::<DuplicateAgent>::new();
    let delete = ServerAction::<DeleteAgent>::new();
    let err = action_error(update);
    let dup_err = action_error(duplicate);
    let del_err = action_error(delete);
    let saving = update.pending();
    let id = a.id.clone();
    let (id2, id3, id4) = (id.clone(), id.clone(), id.clone());
    view! {
        <Title text=a.spec.name.clone() />
        <div class="page-header with-actions">
            <div>
                <h1>{a.spec.name.clone()}</h1>
                <p class="lead">
                    <span class="mono">{a.spec.slug.clone()}</span> " · "
                    <span data-testid="agent-version">{t.agent_version.replace("{n}", &a.version.to_string())}</span>
                    " · " {model::format_utc(a.updated_at)}
                </p>
            </div>
            <div class="row-actions">
                <A href=format!("/chat?agent={id}") attr:class="btn btn-primary">{t.chat_with_agent}</A>
                <A href=format!("/agents/{id}/history") attr:class="btn btn-secondary">{t.agent_history}</A>
                <a href=format!("/api/agents/export?id={id}") class="btn btn-secondary" download>{t.agent_export}</a>
                <ActionForm action=duplicate>
                    <input type="hidden" name="id" value=id2 />
                    <button type="submit" class="btn btn-secondary">{t.agent_duplicate}</button>
                </ActionForm>
            </div>
        </div>
        <ErrorAlert error=dup_err />
        <div class="stack wide">
            <section class="card">
                <SuccessNote show=action_ok(update) text=t.agent_saved />
                <ErrorAlert error=err />
                <ActionForm action=update attr:class="form">
                    <input type="hidden" name="id" value=id3 />
                    <input type="hidden" name="version" value=a.version.to_string() />
                    <AgentFields spec=Some(a.spec.clone()) providers skills=a.skill_names.clone() servers=a.mcp_names.clone() tools=a.tools.clone() err />
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=saving>
                            {move || if saving.get() { t.saving } else { t.agent_save }}
                        </button>
                    </div>
                </ActionForm>
            </section>
            <section class="card danger" aria-labelledby="danger-title">
                <h2 id="danger-title">{t.danger_zone}</h2>
                <ErrorAlert error=del_err />
                <details>
                    <summary class="btn btn-danger-outline">{t.agent_delete}</summary>
                    <p class="muted">{t.agent_delete_warning}</p>
                    <ActionForm action=delete>
                        <input type="hidden" name="id" value=id4 />
                        <button type="submit" class="btn btn-danger">{t.provider_delete_confirm}</button>
                    </ActionForm>
                </details>
            </section>
        </div>
    }
}

#[component]
pub fn ImportAgentPage() -> impl IntoView {
    let t = t();
    let action = ServerAction::<ImportAgent>::new();
    let err = action_error(action);
    let pending = action.pending();
    view! {
        <Title text=t.import_title />
        <p class="crumbs"><A href="/agents">"← " {t.back_to_agents}</A></p>
        <PageHeader title=t.import_title lead=t.import_lead />
        <section class="card wide">
            <ImportErrors error=err title=t.import_problems />
            <ActionForm action=action attr:class="form">
                <TextArea name="document" label=t.field_document rows=16 mono=true maxlength=model::agents::DOCUMENT_MAX error=field_error(err, "document") />
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=pending>{t.import_submit}</button>
                </div>
            </ActionForm>
        </section>
    }
}
