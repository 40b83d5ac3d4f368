use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use model::specs::{BODY_MAX, NAME_MAX, SpecSummary, SpecView};

use super::api::{CreateSpec, DeleteSpec, DuplicateSpec, UpdateSpec, get_spec, list_specs};
use crate::components::{
    EmptyState, ErrorAlert, Field, ListBody, LoadError, PageHeader, Skeleton, TextArea, action_error, field_error,
    list_query, route_id,
};
use crate::i18n::{Strings, t};

/// "12.3 KB", "840 bytes".
fn size_text(t: &'static Strings, size: i64) -> String {
    if size < 1024 {
        t.spec_bytes.replace("{n}", &size.to_string())
    } else {
        t.spec_kb.replace("{n}", &format!("{:.1}", size as f64 / 1024.0))
    }
}

#[component]
pub fn SpecsPage() -> impl IntoView {
    let t = t();
    let (q, page) = list_query();
    let list = crate::data::load(move || (q.get(), page.get()), |(q, page)| list_specs(q, page));
    view! {
        <Title text=t.specs_title />
        <PageHeader title=t.specs_title lead=t.specs_lead>
            <A href="/specs/new" attr:class="btn btn-primary">{t.specs_new}</A>
        </PageHeader>
        <ListBody
            list
            base="/specs"
            search=t.specs_search
            q
            no_match=t.specs_no_match
            empty={move || view! {
                <EmptyState icon="▤" title=t.specs_empty_title body=t.specs_empty_body>
                    <A href="/specs/new" attr:class="btn btn-primary">{t.specs_new}</A>
                </EmptyState>
            }}
            items={move |items: Vec<SpecSummary>| view! {
                <ul class="cards" aria-label=t.specs_title>
                    {items.into_iter().map(|s| view! { <SpecCard s /> }).collect_view()}
                </ul>
            }}
        />
    }
}

#[component]
fn SpecCard(s: SpecSummary) -> impl IntoView {
    let t = t();
    view! {
        <li class="card card-link">
            <A href=format!("/specs/{}", s.id)>
                <span class="card-title">{s.name.clone()}</span>
            </A>
            <span class="badge">{t.agent_version.replace("{n}", &s.version.to_string())}</span>
            <p class="small clamp">{s.preview.clone()}</p>
            <p class="muted small">
                {model::format_utc(s.updated_at)} " · " {size_text(t, s.size)} " · "
                {t.spec_lines.replace("{n}", &s.lines.to_string())}
            </p>
        </li>
    }
}

#[component]
pub fn NewSpecPage() -> impl IntoView {
    let t = t();
    let action = ServerAction::<CreateSpec>::new();
    let err = action_error(action);
    let pending = action.pending();
    view! {
        <Title text=t.spec_new_title />
        <p class="crumbs"><A href="/specs">"← " {t.back_to_specs}</A></p>
        <PageHeader title=t.spec_new_title lead=t.spec_new_lead />
        <section class="card wide">
            <ErrorAlert error=err />
            <ActionForm action=action attr:class="form">
                <SpecFields name=String::new() body=String::new() err />
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=pending>{t.spec_create}</button>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn SpecFields(name: String, body: String, err: Signal<Option<crate::error::AppError>>) -> impl IntoView {
    let t = t();
    view! {
        <Field name="form[name]" label=t.field_spec_name value=name required=true maxlength=NAME_MAX error=field_error(err, "name") />
        <TextArea
            name="form[body]"
            label=t.field_spec_body
            help=t.field_spec_body_help.replace("{n}", &(BODY_MAX / 1024).to_string())
            value=body
            rows=24
            mono=true
            error=field_error(err, "body")
        />
    }
}

#[component]
pub fn SpecPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let query = use_query_map();
    let version = Memo::new(move |_| query.read().get("v").and_then(|v| v.parse::<i64>().ok()));
    let editing = Memo::new(move |_| query.read().get("edit").is_some());
    // Saving redirects to the spec's own address, which may be the one shown: the action's
    // version is part of what the data depends on, so the page shows what was saved.
    let update = ServerAction::<UpdateSpec>::new();
    let spec =
        crate::data::load(move || (id.get(), version.get(), update.version().get()), |(id, v, _)| get_spec(id, v));
    let content = move || {
        spec.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| spec.refetch()) /> }.into_any(),
            Ok(s) => view! { <SpecDetail s editing=editing.get() update /> }.into_any(),
        })
    };
    view! {
        <p class="crumbs"><A href="/specs">"← " {t.back_to_specs}</A></p>
        <Transition fallback=|| view! { <div class="card"><Skeleton lines=10 /></div> }>{content}</Transition>
    }
}

#[component]
fn SpecDetail(s: SpecView, editing: bool, update: ServerAction<UpdateSpec>) -> impl IntoView {
    let t = t();
    let duplicate = ServerAction::<DuplicateSpec>::new();
    let delete = ServerAction::<DeleteSpec>::new();
    let (err, dup_err, del_err) = (action_error(update), action_error(duplicate), action_error(delete));
    let saving = update.pending();
    let old = s.version != s.latest;
    let id = s.id.clone();
    let (id_dup, id_upd, id_del) = (id.clone(), id.clone(), id.clone());
    let version_param = if old { format!("?v={}", s.version) } else { String::new() };
    let (edit_href, download_href, latest_href) =
        (format!("/specs/{id}?edit=1"), format!("/specs/{id}/download{version_param}"), format!("/specs/{id}"));
    let cancel_href = latest_href.clone();
    let html = model::markdown::render_with(&s.body, None, t.copy);
    let versions = s.versions.clone();
    let shown = s.version;
    view! {
        <Title text=s.name.clone() />
        <div class="page-header with-actions">
            <div>
                <h1>{s.name.clone()}</h1>
                <p class="lead">
                    <span data-testid="spec-version">{t.agent_version.replace("{n}", &s.version.to_string())}</span>
                    " · " {model::format_utc(s.updated_at)} " · "
                    <span data-testid="spec-size">{size_text(t, s.size)}</span> " · "
                    {t.spec_lines.replace("{n}", &s.lines.to_string())}
                </p>
            </div>
            <div class="row-actions">
                {(!editing && !old).then(|| view! {
                    <A href=edit_href attr:class="btn btn-primary">{t.spec_edit}</A>
                })}
                <button type="button" class="btn btn-secondary spec-copy" on:click=copy_spec>{t.copy}</button>
                <a href=download_href class="btn btn-secondary" download>{t.spec_download}</a>
                <ActionForm action=duplicate>
                    <input type="hidden" name="id" value=id_dup />
                    <button type="submit" class="btn btn-secondary">{t.spec_duplicate}</button>
                </ActionForm>
            </div>
        </div>
        <pre class="spec-source" hidden>{s.body.clone()}</pre>
        <ErrorAlert error=dup_err />
        {old.then(|| view! {
            <div class="alert alert-warn" role="status">
                {t.spec_old_version.replace("{n}", &s.version.to_string()).replace("{latest}", &s.latest.to_string())}
                " " <A href=latest_href>{t.spec_see_latest}</A>
            </div>
        })}
        <div class="stack wide">
            {if editing {
                view! {
                    <section class="card">
                        <ErrorAlert error=err />
                        <ActionForm action=update attr:class="form">
                            <input type="hidden" name="id" value=id_upd />
                            <input type="hidden" name="version" value=s.latest.to_string() />
                            <SpecFields name=s.name.clone() body=s.body.clone() err />
                            <div class="form-actions">
                                <button type="submit" class="btn btn-primary" disabled=saving>
                                    {move || if saving.get() { t.saving } else { t.spec_save }}
                                </button>
                                <A href=cancel_href attr:class="btn btn-secondary">{t.spec_cancel}</A>
                            </div>
                        </ActionForm>
                    </section>
                }
                .into_any()
            } else {
                view! {
                    <section class="card">
                        <div class="markdown" data-testid="spec-body" inner_html=html></div>
                    </section>
                }
                .into_any()
            }}
            <section class="card" aria-labelledby="versions-title">
                <h2 id="versions-title">{t.spec_versions}</h2>
                <ul class="plain-list" data-testid="spec-versions">
                    {versions.into_iter().map(|v| {
                        let label = t.agent_version.replace("{n}", &v.version.to_string());
                        let href = format!("/specs/{}?v={}", s.id, v.version);
                        view! {
                            <li>
                                {if v.version == shown {
                                    view! { <strong>{label}</strong> }.into_any()
                                } else {
                                    view! { <A href=href>{label}</A> }.into_any()
                                }}
                                " · " {v.name.clone()} " · " {size_text(t, v.size)} " · "
                                <span class="muted">{model::format_utc(v.created_at)}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
            <section class="card danger" aria-labelledby="danger-title">
                <h2 id="danger-title">{t.danger_zone}</h2>
                <ErrorAlert error=del_err />
                <details>
                    <summary class="btn btn-danger-outline">{t.spec_delete}</summary>
                    <p class="muted">{t.spec_delete_warning}</p>
                    <ActionForm action=delete>
                        <input type="hidden" name="id" value=id_del />
                        <button type="submit" class="btn btn-danger">{t.provider_delete_confirm}</button>
                    </ActionForm>
                </details>
            </section>
        </div>
    }
}

/// Copies the spec's text as written (not as shown).
fn copy_spec(ev: leptos::ev::MouseEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let text = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector(".spec-source").ok().flatten())
            .and_then(|e| e.text_content());
        let button = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok());
        if let (Some(text), Some(w)) = (text, web_sys::window()) {
            let _ = w.navigator().clipboard().write_text(&text);
            if let Some(b) = button {
                b.set_text_content(Some(t().copied));
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}
