use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use model::providers::{ProviderKind, ProviderView};

use super::api::{CreateProvider, DeleteProvider, TestProvider, UpdateProvider, get_provider, search_providers};
use crate::components::{
    EmptyState, ErrorAlert, Field, ListBody, Loaded, PageHeader, SuccessNote, TextArea, action_error, action_ok,
    field_error, list_query, route_id,
};
use crate::error::AppError;
use crate::i18n::t;
use crate::shell::layout::use_session;

#[component]
pub fn ProvidersPage() -> impl IntoView {
    let t = t();
    let (q, page) = list_query();
    let list = crate::data::load(move || (q.get(), page.get()), |(q, page)| search_providers(q, page));
    view! {
        <Title text=t.providers_title />
        <PageHeader title=t.providers_title lead=t.providers_lead>
            <A href="/providers/new" attr:class="btn btn-primary">{t.providers_add}</A>
        </PageHeader>
        <ListBody
            list
            base="/providers"
            search=t.providers_search
            q
            no_match=t.providers_no_match
            empty={move || view! {
                <EmptyState icon="◈" title=t.providers_empty_title body=t.providers_empty_body>
                    <A href="/providers/new" attr:class="btn btn-primary">{t.providers_add}</A>
                </EmptyState>
            }}
            items={move |items: Vec<ProviderView>| view! {
                <ul class="cards" aria-label=t.providers_title>
                    {items.into_iter().map(|p| view! { <ProviderCard p /> }).collect_view()}
                </ul>
            }}
        />
    }
}

fn kind_label(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => t().kind_anthropic,
        ProviderKind::Openai => t().kind_openai,
    }
}

#[component]
fn ProviderCard(p: ProviderView) -> impl IntoView {
    let t = t();
    let href = format!("/providers/{}", p.id);
    let key = if p.api_key_hint.is_empty() { t.provider_no_key.to_owned() } else { p.api_key_hint.clone() };
    view! {
        <li class="card card-link">
            <A href=href>
                <span class="card-title">{p.name.clone()}</span>
            </A>
            <span class=if p.shared { "badge badge-on" } else { "badge" }>
                {if p.shared { t.provider_shared } else { t.provider_personal }}
            </span>
            <p class="muted small">{kind_label(p.kind)} " · " <span class="mono">{p.base_url.clone()}</span></p>
            <p class="muted small">
                <span class="mono">{key}</span> " · " {t.n(t.provider_models_n, p.models.len() as u64)}
            </p>
        </li>
    }
}

/// The inputs shared by the add and edit forms; `p` fills them when editing.
#[component]
fn ProviderFields(p: Option<ProviderView>, err: Signal<Option<AppError>>) -> impl IntoView {
    let t = t();
    let kind = p.as_ref().map_or(ProviderKind::Openai, |p| p.kind);
    let key_help = match &p {
        Some(p) if !p.api_key_hint.is_empty() => t.field_api_key_keep.replace("{hint}", &p.api_key_hint),
        _ => t.field_api_key_help.to_owned(),
    };
    let headers_help = match &p {
        Some(p) if !p.header_names.is_empty() => t.field_headers_keep.replace("{names}", &p.header_names.join(", ")),
        _ => t.field_headers_help.to_owned(),
    };
    view! {
        <Field name="form[name]" label=t.field_provider_name value=p.as_ref().map(|p| p.name.clone()).unwrap_or_default() required=true maxlength=model::providers::NAME_MAX error=field_error(err, "name") />
        <div class="field" class:has-error=move || field_error(err, "kind").get().is_some()>
            <label for="f-kind">{t.field_provider_kind}</label>
            <select id="f-kind" name="form[kind]">
                <option value="openai" selected=kind == ProviderKind::Openai>{t.kind_openai}</option>
                <option value="anthropic" selected=kind == ProviderKind::Anthropic>{t.kind_anthropic}</option>
            </select>
            <p class="field-error" role="alert">{move || field_error(err, "kind").get()}</p>
        </div>
        <Field name="form[base_url]" label=t.field_base_url kind="url" help=t.field_base_url_help value=p.as_ref().map(|p| p.base_url.clone()).unwrap_or_default() required=true maxlength=model::providers::URL_MAX error=field_error(err, "base_url") />
        <div class="field" class:has-error=move || field_error(err, "api_key").get().is_some()>
            <label for="f-api_key">{t.field_api_key}</label>
            <input id="f-api_key" name="form[api_key]" type="password" autocomplete="off" maxlength=model::providers::API_KEY_MAX aria-describedby="f-api_key-help" />
            <p class="help" id="f-api_key-help">{key_help}</p>
            <p class="field-error" role="alert">{move || field_error(err, "api_key").get()}</p>
        </div>
        <TextArea name="form[headers]" label=t.field_headers help=headers_help rows=2 mono=true error=field_error(err, "headers") />
        <TextArea name="form[models]" label=t.field_models help=t.field_models_help value=p.as_ref().map(|p| p.models.join("\n")).unwrap_or_default() rows=4 mono=true error=field_error(err, "models") />
    }
}

#[component]
pub fn NewProviderPage() -> impl IntoView {
    let t = t();
    let session = use_session();
    let action = ServerAction::<CreateProvider>::new();
    let err = action_error(action);
    let pending = action.pending();
    let is_admin = move || session.me.get().and_then(Result::ok).flatten().is_some_and(|m| m.is_admin);
    view! {
        <Title text=t.provider_new_title />
        <p class="crumbs"><A href="/providers">"← " {t.back_to_providers}</A></p>
        <PageHeader title=t.provider_new_title lead=t.provider_new_lead />
        <section class="card">
            <ErrorAlert error=err />
            <ActionForm action=action attr:class="form">
                <ProviderFields p=None err />
                <Transition fallback=|| ()>
                    {move || is_admin().then(|| view! {
                        <label class="check">
                            <input type="checkbox" name="form[shared]" value="on" />
                            {t.field_shared}
                        </label>
                    })}
                </Transition>
                <button type="submit" class="btn btn-primary" disabled=pending>
                    {move || if pending.get() { t.provider_creating } else { t.provider_create }}
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn ProviderPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let update = ServerAction::<UpdateProvider>::new();
    let test = ServerAction::<TestProvider>::new();
    let delete = ServerAction::<DeleteProvider>::new();
    let provider = crate::data::load(
        move || (id.get(), update.version().get(), test.version().get()),
        |(id, _, _)| get_provider(id),
    );
    view! {
        <p class="crumbs"><A href="/providers">"← " {t.back_to_providers}</A></p>
        <Loaded res=provider lines=6 show={move |p: ProviderView| view! { <ProviderDetail p update test delete /> }} />
    }
}

#[component]
fn ProviderDetail(
    p: ProviderView,
    update: ServerAction<UpdateProvider>,
    test: ServerAction<TestProvider>,
    delete: ServerAction<DeleteProvider>,
) -> impl IntoView {
    let t = t();
    let update_err = action_error(update);
    let test_err = action_error(test);
    let delete_err = action_error(delete);
    let saving = update.pending();
    let testing = test.pending();
    let probe = move || {
        test.value().get().and_then(Result::ok).map(|r| {
            view! {
                <div class="alert alert-ok" role="status" data-testid="probe">
                    <strong>{t.n(t.provider_test_ok, r.latency_ms)}</strong>
                    <p>{t.provider_test_models} " " <span class="mono">{r.models.join(", ")}</span></p>
                    {r.saved.then(|| view! { <p>{t.provider_test_saved}</p> })}
                </div>
            }
        })
    };
    let (id, edit_id, delete_id) = (p.id.clone(), p.id.clone(), p.id.clone());
    view! {
        <Title text=p.name.clone() />
        <header class="page-header">
            <h1>{p.name.clone()}</h1>
            <p class="lead">
                <span class=if p.shared { "badge badge-on" } else { "badge" }>
                    {if p.shared { t.provider_shared } else { t.provider_personal }}
                </span>
                " " {kind_label(p.kind)}
            </p>
        </header>
        <div class="stack">
            <section class="card" aria-labelledby="test-title">
                <h2 id="test-title">{t.provider_test}</h2>
                <ErrorAlert error=test_err />
                {probe}
                <ActionForm action=test>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="btn btn-secondary" disabled=testing>
                        {move || if testing.get() { t.provider_testing } else { t.provider_test }}
                    </button>
                </ActionForm>
            </section>
            {if p.editable {
                view! {
                    <section class="card" aria-labelledby="edit-title">
                        <h2 id="edit-title">{t.provider_edit_title}</h2>
                        <SuccessNote show=action_ok(update) text=t.provider_saved />
                        <ErrorAlert error=update_err />
                        <ActionForm action=update attr:class="form">
                            <input type="hidden" name="id" value=edit_id />
                            <ProviderFields p=Some(p.clone()) err=update_err />
                            <button type="submit" class="btn btn-primary" disabled=saving>
                                {move || if saving.get() { t.saving } else { t.provider_save }}
                            </button>
                        </ActionForm>
                    </section>
                    <section class="card danger" aria-labelledby="danger-title">
                        <h2 id="danger-title">{t.danger_zone}</h2>
                        <ErrorAlert error=delete_err />
                        <details>
                            <summary class="btn btn-danger-outline">{t.provider_delete}</summary>
                            <p class="muted">{t.provider_delete_warning}</p>
                            <ActionForm action=delete>
                                <input type="hidden" name="id" value=delete_id />
                                <button type="submit" class="btn btn-danger">{t.provider_delete_confirm}</button>
                            </ActionForm>
                        </details>
                    </section>
                }
                .into_any()
            } else {
                view! {
                    <section class="card">
                        <p class="muted">{t.provider_readonly}</p>
                        <p class="mono small">{p.base_url.clone()}</p>
                        <p class="mono small">{p.models.join(", ")}</p>
                    </section>
                }
                .into_any()
            }}
        </div>
    }
}
