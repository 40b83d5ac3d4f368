use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use model::agents::AgentPage;
use model::mcp::{McpView, Status, ToolInfo, Transport, tool_changes};

use super::api::{
    ApproveMcp, ApproveMcpTools, AttachMcp, ConnectMcp, CreateMcp, DeleteMcp, ImportMcp, UpdateMcp, get_mcp, list_mcp,
};
use crate::agents::api::list_agents;
use crate::components::{
    EmptyState, ErrorAlert, Field, ImportErrors, ListBody, Loaded, PageHeader, SuccessNote, TextArea, UsedByCard,
    action_error, action_ok, field_error, list_query, route_id,
};
use crate::error::AppError;
use crate::i18n::t;
use crate::shell::layout::use_session;

#[component]
pub fn McpPage() -> impl IntoView {
    let t = t();
    let (q, page) = list_query();
    let import = ServerAction::<ImportMcp>::new();
    let list =
        crate::data::load(move || (q.get(), page.get(), import.version().get()), |(q, page, _)| list_mcp(q, page));
    view! {
        <Title text=t.nav_mcp />
        <PageHeader title=t.nav_mcp lead=t.mcp_lead>
            <A href="/mcp/new" attr:class="btn btn-primary">{t.mcp_add}</A>
        </PageHeader>
        <ListBody
            list
            base="/mcp"
            search=t.mcp_search
            q
            no_match=t.mcp_no_match
            empty={move || view! {
                <EmptyState icon="⚙" title=t.mcp_empty_title body=t.mcp_empty_body>
                    <A href="/mcp/new" attr:class="btn btn-primary">{t.mcp_add}</A>
                </EmptyState>
            }}
            items={move |items: Vec<McpView>| view! {
                <ul class="cards" aria-label=t.nav_mcp>
                    {items.into_iter().map(|m| view! { <McpCard m /> }).collect_view()}
                </ul>
            }}
        />
        <ImportForm action=import />
    }
}

/// Pasting an `mcpServers` document from another MCP client adds all its servers at once.
#[component]
fn ImportForm(action: ServerAction<ImportMcp>) -> impl IntoView {
    let t = t();
    let err = action_error(action);
    let pending = action.pending();
    let done = move || {
        action.value().get().and_then(Result::ok).map(|added| {
            view! { <div class="alert alert-ok" role="status">{t.n(t.mcp_imported_n, added.len() as u64)}</div> }
        })
    };
    view! {
        <section class="card below" aria-labelledby="import-title">
            <h2 id="import-title">{t.mcp_import_title}</h2>
            <p class="muted">{t.mcp_import_body}</p>
            {done}
            <ImportErrors error=err title=t.mcp_import_problems />
            <ActionForm action=action attr:class="form">
                <TextArea name="document" label=t.field_mcp_import help=t.field_mcp_import_help rows=8 mono=true maxlength=model::mcp::IMPORT_MAX error=field_error(err, "document") />
                <div class="form-actions">
                    <button type="submit" class="btn btn-secondary" disabled=pending>
                        {move || if pending.get() { t.mcp_importing } else { t.mcp_import }}
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}

/// The status badge: connected, failed, never connected; or waiting for approval.
fn status_badge(m: &McpView) -> impl IntoView + use<> {
    let t = t();
    let (class, text) = match m.status {
        _ if !m.approved => ("badge badge-warn", t.mcp_needs_approval),
        Status::Connected => ("badge badge-on", t.mcp_status_connected),
        Status::Failed => ("badge badge-off", t.mcp_status_failed),
        Status::NeverConnected => ("badge", t.mcp_status_never),
    };
    view! { <span class=class data-testid="mcp-status">{text}</span> }
}

fn target(m: &McpView) -> String {
    match m.transport {
        Transport::Stdio => m.command_line.clone(),
        Transport::Http => m.url.clone(),
    }
}

#[component]
fn McpCard(m: McpView) -> impl IntoView {
    let t = t();
    let kind = match m.transport {
        Transport::Stdio => t.transport_stdio,
        Transport::Http => t.transport_http,
    };
    let (badge, name) = (status_badge(&m), m.name.clone());
    view! {
        <li class="card card-link">
            <A href=format!("/mcp/{}", m.id)>
                <span class="card-title">{name}</span>
            </A>
            {badge}
            <p class="muted small">{kind} " · " {t.n(t.mcp_tools_n, m.tools.len() as u64)}
                {m.changed_tools.is_some().then(|| view! { " · " <span class="warn-text">{t.mcp_tools_changed}</span> })}
            </p>
            <p class="muted small mono clamp">{target(&m)}</p>
        </li>
    }
}

/// The inputs shared by the add and edit forms. Both kinds' fields are in the page; CSS
/// shows the chosen kind's (so the form works the same without JavaScript).
#[component]
fn McpFields(m: Option<McpView>, #[prop(into)] err: Signal<Option<AppError>>) -> impl IntoView {
    let t = t();
    let transport = m.as_ref().map_or(Transport::Stdio, |m| m.transport);
    let kept = |names: &[String], empty: &'static str| {
        if names.is_empty() { empty.to_owned() } else { t.field_headers_keep.replace("{names}", &names.join(", ")) }
    };
    let env_help = kept(m.as_ref().map(|m| m.env_names.as_slice()).unwrap_or_default(), t.field_env_help);
    let headers_help = kept(m.as_ref().map(|m| m.header_names.as_slice()).unwrap_or_default(), t.field_headers_help);
    let value = |f: fn(&McpView) -> String| m.as_ref().map(f).unwrap_or_default();
    let session = use_session();
    let is_admin = move || session.me.get().and_then(Result::ok).flatten().is_some_and(|m| m.is_admin);
    let trusted = m.as_ref().is_some_and(|m| m.trust_read_only);
    // Only an administrator may trust a server's read-only marks; members never see the box.
    let trust = move || {
        is_admin().then(|| {
            view! {
                <div class="field" class:has-error=move || field_error(err, "trust_read_only").get().is_some()>
                    <label class="check">
                        <input type="checkbox" name="form[trust_read_only]" value="on" checked=trusted aria-describedby="f-trust_read_only-help" />
                        {t.field_trust_read_only}
                    </label>
                    <p class="help" id="f-trust_read_only-help">{t.field_trust_read_only_help}</p>
                    <p class="field-error" role="alert">{move || field_error(err, "trust_read_only").get()}</p>
                </div>
            }
        })
    };
    view! {
        <Field name="form[name]" label=t.field_mcp_name value=value(|m| m.name.clone()) required=true maxlength=model::mcp::NAME_MAX error=field_error(err, "name") />
        <fieldset class="choice" aria-describedby="f-transport-error">
            <legend class="label">{t.field_transport}</legend>
            <label class="check">
                <input type="radio" name="form[transport]" value="stdio" checked=transport == Transport::Stdio />
                {t.transport_stdio}
            </label>
            <label class="check">
                <input type="radio" name="form[transport]" value="http" checked=transport == Transport::Http />
                {t.transport_http}
            </label>
            <p class="field-error" id="f-transport-error" role="alert">{move || field_error(err, "transport").get()}</p>
        </fieldset>
        <div class="when-stdio stack-tight">
            <Field name="form[command]" label=t.field_command help=t.field_command_help value=value(|m| m.command.clone()) maxlength=model::mcp::COMMAND_MAX error=field_error(err, "command") />
            <TextArea name="form[args]" label=t.field_args help=t.field_args_help value=value(|m| m.args.join("\n")) rows=3 mono=true error=field_error(err, "args") />
            <TextArea name="form[env]" label=t.field_env help=env_help rows=2 mono=true error=field_error(err, "env") />
        </div>
        <div class="when-http stack-tight">
            <Field name="form[url]" label=t.field_url kind="url" help=t.field_url_help value=value(|m| m.url.clone()) maxlength=model::providers::URL_MAX error=field_error(err, "url") />
            <TextArea name="form[headers]" label=t.field_headers help=headers_help rows=2 mono=true error=field_error(err, "headers") />
        </div>
        <Transition fallback=|| ()>{trust}</Transition>
    }
}

#[component]
pub fn NewMcpPage() -> impl IntoView {
    let t = t();
    let action = ServerAction::<CreateMcp>::new();
    let err = action_error(action);
    let pending = action.pending();
    view! {
        <Title text=t.mcp_new_title />
        <p class="crumbs"><A href="/mcp">"← " {t.back_to_mcp}</A></p>
        <PageHeader title=t.mcp_new_title lead=t.mcp_new_lead />
        <section class="card">
            <ErrorAlert error=err />
            <ActionForm action=action attr:class="form transport-form">
                <McpFields m=None err />
                <p class="help">{t.mcp_new_approval_note}</p>
                <button type="submit" class="btn btn-primary" disabled=pending>
                    {move || if pending.get() { t.mcp_creating } else { t.mcp_create }}
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn McpServerPage() -> impl IntoView {
    let t = t();
    let id = route_id();
    let actions = Actions {
        update: ServerAction::new(),
        approve: ServerAction::new(),
        connect: ServerAction::new(),
        approve_tools: ServerAction::new(),
        attach: ServerAction::new(),
        delete: ServerAction::new(),
    };
    let server = crate::data::load(move || (id.get(), actions.version()), |(id, _)| get_mcp(id));
    let agents = crate::data::load(|| (), |_| list_agents(String::new(), 1));
    view! {
        <p class="crumbs"><A href="/mcp">"← " {t.back_to_mcp}</A></p>
        <Loaded res=server lines=8 show={move |m: McpView| view! { <McpDetail m actions agents /> }} />
    }
}

/// Everything a server's page can do; any of them finishing reloads the server.
#[derive(Clone, Copy)]
struct Actions {
    update: ServerAction<UpdateMcp>,
    approve: ServerAction<ApproveMcp>,
    connect: ServerAction<ConnectMcp>,
    approve_tools: ServerAction<ApproveMcpTools>,
    attach: ServerAction<AttachMcp>,
    delete: ServerAction<DeleteMcp>,
}

impl Actions {
    fn version(&self) -> usize {
        self.update.version().get()
            + self.approve.version().get()
            + self.connect.version().get()
            + self.approve_tools.version().get()
            + self.attach.version().get()
    }
}

#[component]
fn McpDetail(m: McpView, actions: Actions, agents: crate::data::Data<Result<AgentPage, AppError>>) -> impl IntoView {
    let t = t();
    let Actions { update, approve, connect, approve_tools, attach, delete } = actions;
    let connecting = connect.pending();
    let saving = update.pending();
    let id = m.id.clone();
    let kind = match m.transport {
        Transport::Stdio => t.transport_stdio,
        Transport::Http => t.transport_http,
    };
    let approval = (m.transport == Transport::Stdio && !m.approved).then(|| {
        let (id, line) = (id.clone(), m.command_line.clone());
        view! {
            <section class="card attention" aria-labelledby="approve-title">
                <h2 id="approve-title">{t.mcp_approve_title}</h2>
                <p>{t.mcp_approve_body}</p>
                <pre class="command-line" data-testid="command-line">{line.clone()}</pre>
                <ErrorAlert error=action_error(approve) />
                <ActionForm action=approve>
                    <input type="hidden" name="id" value=id />
                    <input type="hidden" name="line" value=line />
                    <button type="submit" class="btn btn-primary">{t.mcp_approve}</button>
                </ActionForm>
            </section>
        }
    });
    let changed = m.changed_tools.clone().map(|after| {
        let changes = tool_changes(&m.tools, &after);
        let id = id.clone();
        view! {
            <section class="card attention" aria-labelledby="changed-title">
                <h2 id="changed-title">{t.mcp_changed_title}</h2>
                <p>{t.mcp_changed_body}</p>
                <ul class="plain-list mono small" data-testid="tool-changes">
                    {changes.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}
                </ul>
                <ErrorAlert error=action_error(approve_tools) />
                <ActionForm action=approve_tools>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="btn btn-primary">{t.mcp_approve_tools}</button>
                </ActionForm>
            </section>
        }
    });
    let status = {
        let id = id.clone();
        let approved = m.approved;
        view! {
            <section class="card" aria-labelledby="status-title">
                <h2 id="status-title">{t.mcp_connect_title}</h2>
                <p>{status_badge(&m)} " " <span class="muted small">{model::format_utc(m.updated_at)}</span></p>
                <p class="mono small">{target(&m)}</p>
                {(!m.last_error.is_empty()).then(|| view! {
                    <div class="alert alert-error" role="status">
                        <strong>{t.mcp_last_error}</strong>
                        <p class="mono small" data-testid="last-error">{m.last_error.clone()}</p>
                    </div>
                })}
                {(!m.stderr_tail.is_empty()).then(|| view! {
                    <details>
                        <summary>{t.mcp_stderr}</summary>
                        <pre class="log">{m.stderr_tail.clone()}</pre>
                    </details>
                })}
                <ErrorAlert error=action_error(connect) />
                {if approved {
                    view! {
                        <ActionForm action=connect>
                            <input type="hidden" name="id" value=id />
                            <button type="submit" class="btn btn-secondary" disabled=connecting>
                                {move || if connecting.get() { t.mcp_connecting } else { t.mcp_connect }}
                            </button>
                        </ActionForm>
                    }
                    .into_any()
                } else {
                    view! { <p class="muted">{t.mcp_connect_needs_approval}</p> }.into_any()
                }}
            </section>
        }
    };
    let tools = m.tools.clone();
    let used_by = m.used_by.clone();
    let attach_form = {
        let id = id.clone();
        move |fields: AnyView| {
            let id = id.clone();
            view! {
                <ActionForm action=attach attr:class="inline-form">
                    <input type="hidden" name="mcp_id" value=id />
                    {fields}
                </ActionForm>
            }
            .into_any()
        }
    };
    let (edit_id, delete_id) = (id.clone(), id.clone());
    view! {
        <Title text=m.name.clone() />
        <header class="page-header">
            <h1>{m.name.clone()}</h1>
            <p class="lead">{kind}</p>
        </header>
        <div class="stack wide">
            {approval}
            {changed}
            {status}
            <section class="card" aria-labelledby="tools-title">
                <h2 id="tools-title">{t.mcp_tools}</h2>
                {if m.trust_read_only {
                    view! { <p data-testid="mcp-trust"><span class="badge badge-on">{t.mcp_trusted}</span> " " {t.mcp_trusted_body}</p> }.into_any()
                } else {
                    view! { <p class="muted small" data-testid="mcp-trust">{t.mcp_untrusted_body}</p> }.into_any()
                }}
                {if tools.is_empty() {
                    view! { <p class="muted">{t.mcp_tools_none}</p> }.into_any()
                } else {
                    view! {
                        <ul class="tool-list" aria-label=t.mcp_tools>
                            {tools.into_iter().map(|tool| view! { <ToolItem tool /> }).collect_view()}
                        </ul>
                    }
                    .into_any()
                }}
            </section>
            <UsedByCard used_by agents none=t.mcp_used_by_none error=action_error(attach) form=attach_form />
            <section class="card" aria-labelledby="edit-title">
                <h2 id="edit-title">{t.mcp_edit_title}</h2>
                <SuccessNote show=action_ok(update) text=t.mcp_saved />
                <ErrorAlert error=action_error(update) />
                <ActionForm action=update attr:class="form transport-form">
                    <input type="hidden" name="id" value=edit_id />
                    <McpFields m=Some(m.clone()) err=action_error(update) />
                    <button type="submit" class="btn btn-primary" disabled=saving>
                        {move || if saving.get() { t.saving } else { t.mcp_save }}
                    </button>
                </ActionForm>
            </section>
            <section class="card danger" aria-labelledby="danger-title">
                <h2 id="danger-title">{t.danger_zone}</h2>
                <p class="muted">{t.mcp_delete_rule}</p>
                <ErrorAlert error=action_error(delete) />
                <details>
                    <summary class="btn btn-danger-outline">{t.mcp_delete}</summary>
                    <ActionForm action=delete>
                        <input type="hidden" name="id" value=delete_id />
                        <button type="submit" class="btn btn-danger">{t.provider_delete_confirm}</button>
                    </ActionForm>
                </details>
            </section>
        </div>
    }
}

#[component]
fn ToolItem(tool: ToolInfo) -> impl IntoView {
    let t = t();
    let schema = serde_json::from_str::<serde_json::Value>(&tool.schema)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(tool.schema.clone());
    view! {
        <li class="tool">
            <div class="tool-head">
                <span class="mono tool-name">{tool.name.clone()}</span>
                {if tool.read_only {
                    view! { <span class="badge badge-on">{t.mcp_read_only}</span> }.into_any()
                } else {
                    view! { <span class="badge badge-warn">{t.mcp_may_write}</span> }.into_any()
                }}
            </div>
            {(!tool.description.is_empty()).then(|| view! { <p class="small">{tool.description.clone()}</p> })}
            <details>
                <summary class="small">{t.mcp_schema}</summary>
                <pre class="log">{schema}</pre>
            </details>
        </li>
    }
}
