use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use model::agents::AgentPage;
use model::skills::{SkillSummary, SkillView};

use super::api::{AttachSkill, DeleteSkill, PruneSkillVersions, UploadSkill, get_skill, list_skills, upload_skill};
use crate::agents::api::list_agents;
use crate::components::{EmptyState, ErrorAlert, ListBody, Loaded, UsedByCard, action_error, list_query, route_id};
use crate::error::AppError;
use crate::i18n::t;

/// The error a form posted without JavaScript came back with (`?__err=` on the page),
/// when it was posted to `path`.
fn url_error(path: &'static str) -> Option<AppError> {
    use leptos::server_fn::error::ServerFnUrlError;
    let e = use_context::<ServerActionError>()?;
    (e.path() == path).then(|| ServerFnUrlError::<AppError>::decode_err(e.err()))
}

/// `<input type=file webkitdirectory>`: the folder picker (the attribute is not in the
/// standard set the `view!` macro knows).
fn folder_input() -> impl IntoView {
    use leptos::tachys::html::attribute::custom::CustomAttribute;
    leptos::html::input().id("f-files").r#type("file").name("files").multiple(true).attr("webkitdirectory", "")
}

#[component]
fn UploadForm() -> impl IntoView {
    let t = t();
    let upload = Action::new_local(|fd: &leptos::web_sys::FormData| upload_skill(fd.clone().into()));
    let pending = upload.pending();
    let path = <UploadSkill as leptos::server_fn::ServerFn>::PATH;
    let posted = url_error(path);
    let err = Signal::derive(move || match upload.value().get() {
        Some(Err(e)) => Some(e),
        Some(Ok(_)) => None,
        None => posted.clone(),
    });
    let on_submit = move |ev: leptos::web_sys::SubmitEvent| {
        use leptos::wasm_bindgen::JsCast;
        ev.prevent_default();
        let form = ev.target().and_then(|t| t.dyn_into::<leptos::web_sys::HtmlFormElement>().ok());
        if let Some(fd) = form.and_then(|f| leptos::web_sys::FormData::new_with_form(&f).ok()) {
            upload.dispatch_local(fd);
        }
    };
    view! {
        <section class="card" aria-labelledby="upload-title">
            <h2 id="upload-title">{t.skill_upload_title}</h2>
            <p class="muted">{t.skill_upload_lead}</p>
            <ErrorAlert error=err />
            <form class="form" method="post" enctype="multipart/form-data" action=path on:submit=on_submit>
                <div class="field-row">
                    <div class="field">
                        <label for="f-archive">{t.field_skill_zip}</label>
                        <input id="f-archive" type="file" name="archive" accept=".zip,application/zip" />
                    </div>
                    <div class="field">
                        <label for="f-files">{t.field_skill_folder}</label>
                        {folder_input()}
                    </div>
                </div>
                <p class="help">{t.skill_upload_limits}</p>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=pending>
                        {move || if pending.get() { t.skill_uploading } else { t.skill_upload }}
                    </button>
                </div>
            </form>
        </section>
    }
}

#[component]
pub fn SkillsPage() -> impl IntoView {
    let t = t();
    let (q, page) = list_query();
    let list = crate::data::load(move || (q.get(), page.get()), |(q, page)| list_skills(q, page));
    view! {
        <Title text=t.nav_skills />
        <header class="page-header">
            <h1>{t.nav_skills}</h1>
            <p class="lead">{t.skills_lead}</p>
        </header>
        <div class="stack wide">
            <UploadForm />
            <div>
                <ListBody
                    list
                    base="/skills"
                    search=t.skills_search
                    q
                    no_match=t.skills_no_match
                    empty={move || view! {
                        <EmptyState icon="✦" title=t.skills_empty_title body=t.skills_empty_body>
                            <span></span>
                        </EmptyState>
                    }}
                    items={move |items: Vec<SkillSummary>| view! {
                        <ul class="cards" aria-label=t.nav_skills>
                            {items.into_iter().map(|s| view! { <SkillCard s /> }).collect_view()}
                        </ul>
                    }}
                />
            </div>
        </div>
    }
}

#[component]
fn SkillCard(s: SkillSummary) -> impl IntoView {
    let t = t();
    view! {
        <li class="card card-link">
            <A href=format!("/skills/{}", s.id)>
                <span class="card-title mono">{s.name.clone()}</span>
            </A>
            <span class="badge">{t.agent_version.replace("{n}", &s.version.to_string())}</span>
            <p class="small clamp">{s.description.clone()}</p>
            <p class="muted small">{t.n(t.skill_files_n, s.files as u64)}</p>
        </li>
    }
}

#[component]
pub fn SkillPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let attach = ServerAction::<AttachSkill>::new();
    let prune = ServerAction::<PruneSkillVersions>::new();
    let skill = crate::data::load(
        move || (id.get(), attach.version().get(), prune.version().get()),
        |(id, _, _)| get_skill(id),
    );
    let agents = crate::data::load(|| (), |_| list_agents(String::new(), 1));
    view! {
        <p class="crumbs"><A href="/skills">"← " {t.back_to_skills}</A></p>
        <Loaded res=skill lines=8 show={move |s: SkillView| view! { <SkillDetail s attach prune agents /> }} />
    }
}

#[component]
fn SkillDetail(
    s: SkillView,
    attach: ServerAction<AttachSkill>,
    prune: ServerAction<PruneSkillVersions>,
    agents: crate::data::Data<Result<AgentPage, AppError>>,
) -> impl IntoView {
    let t = t();
    let delete = ServerAction::<DeleteSkill>::new();
    let attach_err = action_error(attach);
    let delete_err = action_error(delete);
    let prune_err = action_error(prune);
    let old_versions = s.versions.len().saturating_sub(1);
    let id = s.id.clone();
    let attach_form = {
        let id = id.clone();
        move |fields: AnyView| {
            let id = id.clone();
            view! {
                <ActionForm action=attach attr:class="inline-form">
                    <input type="hidden" name="skill_id" value=id />
                    {fields}
                </ActionForm>
            }
            .into_any()
        }
    };
    let files_base = format!("/skills/{id}/files/");
    let used_by = s.used_by.clone();
    let delete_id = id.clone();
    view! {
        <Title text=s.name.clone() />
        <header class="page-header">
            <h1 class="mono">{s.name.clone()}</h1>
            <p class="lead">
                <span data-testid="skill-version">{t.agent_version.replace("{n}", &s.version.to_string())}</span>
                " · " {s.description.clone()}
            </p>
        </header>
        <div class="stack wide">
            <UsedByCard used_by agents none=t.skill_used_by_none error=attach_err form=attach_form />
            <article class="card markdown" aria-label="SKILL.md" inner_html=s.html.clone()></article>
            <section class="card" aria-labelledby="files-title">
                <h2 id="files-title">{t.skill_files}</h2>
                <ul class="plain-list mono small">
                    {s.files.iter().map(|f| view! {
                        <li>
                            <a href=format!("{files_base}{}", f.path)>{f.path.clone()}</a>
                            <span class="muted">" · " {f.size} " B"</span>
                        </li>
                    }).collect_view()}
                </ul>
                <h3 class="section-title">{t.skill_versions}</h3>
                <ul class="plain-list small">
                    {s.versions.iter().map(|(v, at)| view! {
                        <li>{t.agent_version.replace("{n}", &v.to_string())} " · " {model::format_utc(*at)}</li>
                    }).collect_view()}
                </ul>
                <p class="help">{t.skill_reupload_hint}</p>
                <ErrorAlert error=prune_err />
                {(old_versions > 0).then(|| view! {
                    <ActionForm action=prune attr:class="inline-form">
                        <input type="hidden" name="id" value=id.clone() />
                        <button type="submit" class="btn btn-secondary">
                            {t.n(t.skill_prune_versions, old_versions as u64)}
                        </button>
                    </ActionForm>
                })}
            </section>
            <section class="card danger" aria-labelledby="danger-title">
                <h2 id="danger-title">{t.danger_zone}</h2>
                <p class="muted">{t.skill_delete_rule}</p>
                <ErrorAlert error=delete_err />
                <details>
                    <summary class="btn btn-danger-outline">{t.skill_delete}</summary>
                    <ActionForm action=delete>
                        <input type="hidden" name="id" value=delete_id />
                        <button type="submit" class="btn btn-danger">{t.provider_delete_confirm}</button>
                    </ActionForm>
                </details>
            </section>
        </div>
    }
}
