//! The chat pages: the conversations list with a new-chat form, and a conversation.
//!
//! A conversation renders on the server as stored (a running answer as far as it got).
//! Once hydrated, a running answer follows its run from the last sequence number it
//! has: each event is folded into the answer's transcript, and only the part that
//! changed re-renders (its settled markdown once, the growing tail per token). A dropped
//! connection resumes from the last event; leaving the page never stops the run.
//! Everything also works without JavaScript: the forms post, and a page with a running
//! answer refreshes itself every few seconds.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use model::chat::{
    CallState, ConversationSummary, ConversationView, MESSAGE_MAX, MessageView, Part, RunStatus, TITLE_MAX, ToolCall,
    Transcript,
};
use model::markdown;

use model::attachments::{AttachmentKind, AttachmentView};

use super::api::{
    AnswerTool, ContinueAnswer, DeleteConversation, RateAnswer, Regenerate, RenameConversation, SendMessage,
    ShareConversation, StopRun, SwitchBranch, UnshareConversation, attach_files, discard_attachment, get_conversation,
    get_share, list_conversations,
};
use super::sidebar::{ChatSidebar, SidebarActions};
use crate::agents::api::list_agents;
use crate::components::{
    EmptyState, ErrorAlert, ListBody, LoadError, Loaded, Skeleton, action_error, encode, list_query, route_id,
};
use crate::error::AppError;
use crate::i18n::t;
use model::agents::AgentPage;

/// Cuts a long tool input or result for the page (the whole is in the store).
const SHOWN_MAX: usize = 8_000;

#[component]
pub fn ChatListPage() -> impl IntoView {
    let t = t();
    let (q, page) = list_query();
    let query = use_query_map();
    let agent = Memo::new(move |_| query.read().get("agent").unwrap_or_default());
    let list = crate::data::load(move || (agent.get(), q.get(), page.get()), |(a, q, p)| list_conversations(a, q, p));
    let agents = crate::data::load(|| (), |_| list_agents(String::new(), 1));
    let new_chat = move || {
        agents.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| agents.refetch()) /> }.into_any(),
            Ok(p) if p.items.is_empty() => view! {
                <EmptyState icon="✦" title=t.chat_no_agents_title body=t.chat_no_agents_body>
                    <A href="/agents/new" attr:class="btn btn-primary">{t.agents_new}</A>
                </EmptyState>
            }
            .into_any(),
            Ok(p) => view! { <NewChat agents=p.items preselect=agent.get_untracked() /> }.into_any(),
        })
    };
    view! {
        <Title text=t.nav_chat />
        <div class="page-header">
            <h1>{t.nav_chat}</h1>
            <p class="lead">{t.chat_lead}</p>
        </div>
        <Transition fallback=|| view! { <div class="card"><Skeleton lines=3 /></div> }>{new_chat}</Transition>
        <h2 class="section-title">{t.chat_conversations}</h2>
        <ListBody
            list
            base="/chat"
            search=t.chat_search
            q
            filters=Signal::derive(move || agent.with(|a| if a.is_empty() { String::new() } else { format!("agent={}", encode(a)) }))
            no_match=t.chat_no_match
            empty={move || view! { <p class="empty">{t.chat_none_yet}</p> }}
            items={move |items: Vec<ConversationSummary>| view! {
                <ul class="conversation-list" aria-label=t.chat_conversations>
                    {items.into_iter().map(|c| view! { <ConversationRow c /> }).collect_view()}
                </ul>
            }}
        />
    }
}

#[component]
fn ConversationRow(c: ConversationSummary) -> impl IntoView {
    view! {
        <li class="card card-link conversation-row">
            <A href=format!("/chat/{}", c.id)><span class="card-title">{c.title}</span></A>
            <p class="muted small">{c.agent_name} " · " {model::fields::format_utc(c.updated_at)}</p>
        </li>
    }
}

/// Pick an agent and write the first message; sending opens the new conversation.
#[component]
fn NewChat(agents: Vec<model::agents::AgentSummary>, preselect: String) -> impl IntoView {
    let t = t();
    let send = ServerAction::<SendMessage>::new();
    let err = action_error(send);
    let pending = send.pending();
    view! {
        <section class="card new-chat" aria-labelledby="new-chat-title">
            <h2 id="new-chat-title">{t.chat_new}</h2>
            <ErrorAlert error=err />
            <ActionForm action=send attr:class="composer-form">
                <div class="field">
                    <label for="new-chat-agent">{t.chat_agent}</label>
                    <select id="new-chat-agent" name="agent_id">
                        {agents
                            .into_iter()
                            .map(|a| {
                                let selected = a.id == preselect;
                                view! { <option value=a.id selected=selected>{a.name}</option> }
                            })
                            .collect_view()}
                    </select>
                </div>
                <Composer pending running=Signal::stored(false) send />
            </ActionForm>
        </section>
    }
}

/// The message box and its send button (Enter sends, Shift+Enter breaks the line). Once
/// hydrated, files can be attached: each is uploaded when picked and shown as a chip (an
/// image with its preview) until the message is sent or the chip removed.
#[component]
fn Composer(
    pending: Memo<bool>,
    #[prop(into)] running: Signal<bool>,
    send: ServerAction<SendMessage>,
) -> impl IntoView {
    let t = t();
    let busy = move || pending.get() || running.get();
    let files = RwSignal::new(Vec::<AttachmentView>::new());
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let upload = Action::new_local(|fd: &leptos::web_sys::FormData| attach_files(fd.clone().into()));
    let uploading = upload.pending();
    Effect::new(move |_| {
        if let Some(Ok(added)) = upload.value().get() {
            files.update(|f| f.extend(added));
        }
    });
    let upload_err = Signal::derive(move || match upload.value().get() {
        Some(Err(e)) => Some(e),
        _ => None,
    });
    // A message sent takes its files with it.
    Effect::new(move |prev: Option<usize>| {
        let v = send.version().get();
        if prev.is_some_and(|p| p != v) && matches!(send.value().get_untracked(), Some(Ok(_))) {
            files.set(Vec::new());
            upload.value().set(None);
        }
        v
    });
    let ids = move || files.with(|f| f.iter().map(|a| a.id.clone()).collect::<Vec<String>>().join(","));
    let chips = move || {
        files
            .get()
            .into_iter()
            .map(|a| {
                let id = a.id.clone();
                let remove = move |_| {
                    let id = id.clone();
                    files.update(|f| f.retain(|x| x.id != id));
                    leptos::task::spawn_local(async move {
                        let _ = discard_attachment(id).await;
                    });
                };
                let url = format!("/chat/attachments/{}", a.id);
                view! {
                    <li class="attach-chip" data-testid="attachment-chip">
                        {(a.kind == AttachmentKind::Image).then(|| view! { <img src=url.clone() alt="" class="attach-thumb" /> })}
                        <span class="attach-name">{a.name.clone()}</span>
                        <span class="small muted">{file_size(a.size)}</span>
                        <button type="button" class="icon-btn" aria-label=format!("{} {}", t.chat_attach_remove, a.name) on:click=remove>"×"</button>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <ErrorAlert error=upload_err />
        <Show when=move || files.with(|f| !f.is_empty())>
            <ul class="attach-chips" aria-label=t.chat_attachments>{chips}</ul>
        </Show>
        <input type="hidden" name="attachments" prop:value=ids value="" />
        <div class="composer">
            <label for="composer-text" class="visually-hidden">{t.chat_message}</label>
            <textarea
                id="composer-text"
                name="text"
                rows="2"
                required=move || files.with(Vec::is_empty)
                maxlength=MESSAGE_MAX
                placeholder=t.chat_placeholder
                on:keydown=enter_sends
            ></textarea>
            <Show when=move || hydrated.get()>
                <label class="btn btn-secondary attach-btn" title=t.chat_attach data-testid="attach">
                    {clip_icon()}
                    <span class="visually-hidden">{t.chat_attach}</span>
                    <input
                        type="file"
                        multiple
                        class="visually-hidden"
                        data-testid="attach-input"
                        disabled=move || uploading.get()
                        on:change=move |ev| pick_files(ev, upload)
                    />
                </label>
            </Show>
            <button type="submit" class="btn btn-primary" disabled=move || busy() || uploading.get() data-testid="send">
                {move || if pending.get() { t.chat_sending } else { t.chat_send }}
            </button>
        </div>
        <p class="composer-hint small muted">{t.chat_shortcuts}</p>
    }
}

/// Uploads the files just picked (the input is emptied, so picking the same file again
/// works).
fn pick_files(ev: leptos::ev::Event, upload: Action<leptos::web_sys::FormData, Result<Vec<AttachmentView>, AppError>>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        let (Some(list), Ok(fd)) = (input.files(), web_sys::FormData::new()) else { return };
        if list.length() == 0 {
            return;
        }
        for i in 0..list.length() {
            if let Some(f) = list.get(i) {
                let _ = fd.append_with_blob_and_filename("files", &f, &f.name());
            }
        }
        input.set_value("");
        upload.dispatch_local(fd);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, upload);
}

/// A paper clip (emoji are not in every system's fonts).
fn clip_icon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
            <path d="M16 6.5 8.6 13.9a2 2 0 0 0 2.8 2.8L19 9.1a4 4 0 0 0-5.7-5.7L5.6 11.1a6 6 0 0 0 8.5 8.5L20 13.7" />
        </svg>
    }
}

/// A thumb, up or down.
fn thumb_icon(up: bool) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
            <g transform=if up { "" } else { "rotate(180 12 12)" }>
                <path d="M3 10h4v10H3z" />
                <path d="M7 10l4-7c1.5 0 2.6 1.1 2.2 2.7L12.6 9H19a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.8 20H7" />
            </g>
        </svg>
    }
}

/// A page with a folded corner.
fn file_icon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="14" height="14" aria-hidden="true">
            <path d="M6 2h8l4 4v16H6z" />
            <path d="M14 2v4h4" />
        </svg>
    }
}

/// `12 KB`, `3.4 MB`.
fn file_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn enter_sends(ev: leptos::ev::KeyboardEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if ev.key() != "Enter" || ev.shift_key() || ev.is_composing() {
            return;
        }
        let form =
            ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlTextAreaElement>().ok()).and_then(|area| area.form());
        if let Some(form) = form {
            ev.prevent_default();
            let _ = form.request_submit();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// The chat pages' keys, once hydrated: Ctrl/⌘+Shift+O starts a new chat, Shift+Esc
/// puts the cursor in the message box, Esc stops the answer being written.
fn shortcuts() {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let navigate = leptos_router::hooks::use_navigate();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            let doc = document();
            let key = ev.key();
            if (ev.ctrl_key() || ev.meta_key()) && ev.shift_key() && key.eq_ignore_ascii_case("o") {
                ev.prevent_default();
                navigate("/chat", Default::default());
            } else if key == "Escape" && ev.shift_key() {
                ev.prevent_default();
                if let Some(area) =
                    doc.get_element_by_id("composer-text").and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = area.focus();
                }
            } else if key == "Escape" {
                let stop = doc.query_selector("[data-testid=stop]").ok().flatten();
                if let Some(stop) = stop.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
                    ev.prevent_default();
                    stop.click();
                }
            }
        });
        on_cleanup(move || handle.remove());
    }
}

/// Shows "Jump to latest" while the page is scrolled away from the newest message.
fn scrolled_up() -> ReadSignal<bool> {
    let (away, set_away) = signal(false);
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::scroll, move |_| {
            let w = window();
            let (y, h) = (w.scroll_y().unwrap_or(0.0), w.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(0.0));
            let total = document().document_element().map_or(0.0, |e| f64::from(e.scroll_height()));
            set_away.set(y + h < total - 240.0);
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_away;
    away
}

/// What the conversation page's parts can do. Sending, regenerating, switching and
/// renaming reload the conversation; stopping and answering a tool call show up in the
/// live answer itself.
#[derive(Clone, Copy)]
struct ChatActions {
    send: ServerAction<SendMessage>,
    regenerate: ServerAction<Regenerate>,
    resume: ServerAction<ContinueAnswer>,
    rate: ServerAction<RateAnswer>,
    switch: ServerAction<SwitchBranch>,
    stop: ServerAction<StopRun>,
    answer: ServerAction<AnswerTool>,
    rename: ServerAction<RenameConversation>,
    delete: ServerAction<DeleteConversation>,
    /// An answer is being written (sending waits for it).
    running: RwSignal<bool>,
}

impl ChatActions {
    fn version(&self) -> usize {
        self.send.version().get()
            + self.regenerate.version().get()
            + self.resume.version().get()
            + self.rate.version().get()
            + self.switch.version().get()
            + self.rename.version().get()
    }
}

#[component]
pub fn ConversationPage() -> impl IntoView {
    let t = t();
    let query = use_query_map();
    let id = route_id();
    let before = Memo::new(move |_| query.read().get("before").unwrap_or_default());
    let acts = ChatActions {
        send: ServerAction::new(),
        regenerate: ServerAction::new(),
        resume: ServerAction::new(),
        rate: ServerAction::new(),
        switch: ServerAction::new(),
        stop: ServerAction::new(),
        answer: ServerAction::new(),
        rename: ServerAction::new(),
        delete: ServerAction::new(),
        running: RwSignal::new(false),
    };
    provide_context(acts);
    let side = SidebarActions::new();
    let agents = crate::data::load(|| (), |_| list_agents(String::new(), 1));
    let conv = crate::data::load(
        move || (id.get(), before.get(), acts.version(), side.version()),
        |(id, b, _, _)| get_conversation(id, b),
    );
    let sent = Signal::derive(move || acts.send.version().get());
    shortcuts();
    view! {
        <div class="chat-layout">
            <ChatSidebar current=id acts=side changed=sent />
            <div class="chat-main">
                <p class="crumbs chat-crumbs"><A href="/chat">"← " {t.chat_all}</A></p>
                <Loaded res=conv lines=6 show={move |c: ConversationView| view! { <Conversation c agents /> }} />
            </div>
        </div>
    }
}

/// The conversation's share link: made on request, shown while it lives, revoked here.
#[component]
fn ShareBox(id: String) -> impl IntoView {
    let t = t();
    let share = ServerAction::<ShareConversation>::new();
    let unshare = ServerAction::<UnshareConversation>::new();
    let current = {
        let id = id.clone();
        crate::data::load(move || (share.version().get(), unshare.version().get()), move |_| get_share(id.clone()))
    };
    let err = Signal::derive(move || action_error(share).get().or_else(|| action_error(unshare).get()));
    let body = move || {
        let id = id.clone();
        current.get().map(move |r| match r {
            Ok(Some(s)) => view! {
                <p class="small">{t.chat_share_live}</p>
                <a href=s.path.clone() data-testid="share-link" class="mono small share-link">{s.path.clone()}</a>
                <ActionForm action=unshare attr:class="inline-form">
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="btn btn-danger-outline btn-small">{t.chat_share_revoke}</button>
                </ActionForm>
            }
            .into_any(),
            Ok(None) => view! {
                <p class="small">{t.chat_share_help}</p>
                <ActionForm action=share attr:class="inline-form">
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="btn btn-primary btn-small">{t.chat_share_create}</button>
                </ActionForm>
            }
            .into_any(),
            Err(e) => view! { <ErrorAlert error=Signal::stored(Some(e)) /> }.into_any(),
        })
    };
    view! {
        <ErrorAlert error=err />
        <Transition fallback=|| view! { <Skeleton lines=1 /> }>{body}</Transition>
    }
}

/// Which agent answers the next message: the conversation's, or another picked here.
#[component]
fn AgentPicker(current: String, agents: crate::data::Data<Result<AgentPage, AppError>>) -> impl IntoView {
    let t = t();
    let hidden = current.clone();
    let picker = move || {
        let current = current.clone();
        agents.get().map(move |r| match r {
            Ok(p) if p.items.iter().any(|a| a.id == current) => view! {
                <label for="composer-agent" class="small muted">{t.chat_agent}</label>
                <select id="composer-agent" name="agent_id" class="select-small">
                    {p.items
                        .into_iter()
                        .map(|a| {
                            let selected = a.id == current;
                            view! { <option value=a.id selected=selected>{a.name}</option> }
                        })
                        .collect_view()}
                </select>
            }
            .into_any(),
            _ => view! { <input type="hidden" name="agent_id" value=current /> }.into_any(),
        })
    };
    view! {
        <div class="composer-tools">
            <Transition fallback=move || view! { <input type="hidden" name="agent_id" value=hidden.clone() /> }>
                {picker}
            </Transition>
        </div>
    }
}

#[component]
fn Conversation(c: ConversationView, agents: crate::data::Data<Result<AgentPage, AppError>>) -> impl IntoView {
    let t = t();
    let acts = expect_context::<ChatActions>();
    let send_err = action_error(acts.send);
    let action_errors = Signal::derive(move || {
        action_error(acts.regenerate)
            .get()
            .or_else(|| action_error(acts.resume).get())
            .or_else(|| action_error(acts.rate).get())
            .or_else(|| action_error(acts.switch).get())
            .or_else(|| action_error(acts.stop).get())
            .or_else(|| action_error(acts.answer).get())
            .or_else(|| action_error(acts.rename).get())
            .or_else(|| action_error(acts.delete).get())
    });
    let last_running = c.messages.last().and_then(|m| m.transcript.as_ref()).is_some_and(|tr| !tr.status.is_final());
    acts.running.set(last_running);
    let earlier = c.earlier.clone().map(|b| format!("/chat/{}?before={}", c.id, encode(&b)));
    let totals = usage_line(c.input_tokens, c.output_tokens, c.cost_micros, "");
    let (cid, agent_id) = (c.id.clone(), c.agent_id.clone());
    let (rename_id, delete_id, send_cid, send_agent) = (c.id.clone(), c.id.clone(), c.id.clone(), c.agent_id.clone());
    let (export_id, share_id) = (c.id.clone(), c.id.clone());
    let pending = acts.send.pending();
    let textarea_reset = NodeRef::<leptos::html::Form>::new();
    // A sent message clears the box.
    Effect::new(move |prev: Option<usize>| {
        let v = acts.send.version().get();
        if prev.is_some_and(|p| p != v)
            && matches!(acts.send.value().get_untracked(), Some(Ok(_)))
            && let Some(form) = textarea_reset.get()
        {
            form.reset();
        }
        v
    });
    let messages = c.messages.clone();
    let last_id = messages.last().map(|m| m.id.clone()).unwrap_or_default();
    let away = scrolled_up();
    view! {
        <Title text=c.title.clone() />
        <header class="chat-header">
            <div>
                <h1 class="chat-title">{c.title.clone()}</h1>
                <p class="muted small">
                    <A href=format!("/agents/{}", c.agent_id)>{c.agent_name.clone()}</A>
                    {(!totals.is_empty()).then(|| view! { " · " <span data-testid="conversation-usage">{totals.clone()}</span> })}
                </p>
            </div>
            <div class="row-actions">
                <details class="popover">
                    <summary class="btn btn-secondary btn-small">{t.chat_export}</summary>
                    <div class="popover-body">
                        <a href=format!("/chat/{}/export?format=md", export_id) download="">{t.chat_export_md}</a>
                        <a href=format!("/chat/{}/export?format=json", export_id) download="">{t.chat_export_json}</a>
                    </div>
                </details>
                <details class="popover">
                    <summary class="btn btn-secondary btn-small">{t.chat_share}</summary>
                    <div class="popover-body">
                        <ShareBox id=share_id />
                    </div>
                </details>
                <details class="popover">
                    <summary class="btn btn-secondary btn-small">{t.chat_rename}</summary>
                    <ActionForm action=acts.rename attr:class="inline-form">
                        <input type="hidden" name="id" value=rename_id />
                        <label for="rename-title" class="visually-hidden">{t.chat_title}</label>
                        <input id="rename-title" name="title" value=c.title.clone() maxlength=TITLE_MAX required />
                        <button type="submit" class="btn btn-primary btn-small">{t.save}</button>
                    </ActionForm>
                </details>
                <details class="popover">
                    <summary class="btn btn-danger-outline btn-small">{t.delete}</summary>
                    <ActionForm action=acts.delete attr:class="inline-form">
                        <input type="hidden" name="id" value=delete_id />
                        <span class="small">{t.chat_delete_confirm}</span>
                        <button type="submit" class="btn btn-danger btn-small">{t.chat_delete}</button>
                    </ActionForm>
                </details>
            </div>
        </header>
        <ErrorAlert error=action_errors />
        <section class="messages" aria-label=t.chat_messages aria-live="polite" on:click=copy_code>
            {earlier.map(|href| view! { <p class="earlier"><A href=href>{t.chat_earlier}</A></p> })}
            {messages
                .into_iter()
                .map(|m| {
                    let is_last = m.id == last_id;
                    view! { <MessageItem m conversation_id=cid.clone() agent_id=agent_id.clone() is_last /> }
                })
                .collect_view()}
            {c.messages.is_empty().then(|| view! { <p class="empty">{t.chat_empty}</p> })}
        </section>
        <div id="latest"></div>
        {last_running.then(|| view! { <noscript><meta http-equiv="refresh" content="3" /></noscript> })}
        <div class="composer-dock">
            <a href="#latest" class="btn btn-secondary btn-small jump-latest" class:shown=away>"↓ " {t.chat_jump_latest}</a>
            <ErrorAlert error=send_err />
            <ActionForm action=acts.send node_ref=textarea_reset attr:class="composer-form">
                <AgentPicker current=send_agent agents />
                <input type="hidden" name="conversation_id" value=send_cid />
                <Composer pending running=acts.running send=acts.send />
            </ActionForm>
        </div>
    }
}

/// One message of the branch shown.
#[component]
fn MessageItem(m: MessageView, conversation_id: String, agent_id: String, is_last: bool) -> impl IntoView {
    match m.transcript.clone() {
        Some(tr) => view! { <AnswerItem m=m.clone() tr is_last /> }.into_any(),
        None => view! { <QuestionItem m conversation_id agent_id /> }.into_any(),
    }
}

/// `‹ 2 / 3 ›` between a message and its siblings (other answers or edits).
fn branch_switcher(id: &str, siblings: &[String]) -> impl IntoView + use<> {
    let t = t();
    let acts = expect_context::<ChatActions>();
    let pos = siblings.iter().position(|s| s == id).unwrap_or(0);
    let prev = pos.checked_sub(1).and_then(|i| siblings.get(i)).cloned();
    let next = siblings.get(pos + 1).cloned();
    let total = siblings.len();
    let button = move |target: Option<String>, label: &'static str, text: &'static str| {
        view! {
            <ActionForm action=acts.switch attr:class="inline">
                <input type="hidden" name="message_id" value=target.clone().unwrap_or_default() />
                <button type="submit" class="icon-btn" aria-label=label disabled=target.is_none()>{text}</button>
            </ActionForm>
        }
    };
    (total > 1).then(|| {
        view! {
            <nav class="branches" aria-label=t.chat_versions data-testid="branches">
                {button(prev, t.chat_prev_version, "‹")}
                <span class="small muted">{format!("{} / {total}", pos + 1)}</span>
                {button(next, t.chat_next_version, "›")}
            </nav>
        }
    })
}

/// The files a person's message carries: images shown, text files as links.
#[component]
fn Attachments(files: Vec<AttachmentView>) -> impl IntoView {
    let t = t();
    view! {
        <ul class="msg-files" aria-label=t.chat_attachments>
            {files
                .into_iter()
                .map(|a| {
                    let url = format!("/chat/attachments/{}", a.id);
                    match a.kind {
                        AttachmentKind::Image => view! {
                            <li>
                                <a href=url.clone() target="_blank" rel="noopener">
                                    <img src=url.clone() alt=a.name.clone() class="msg-image" loading="lazy" data-testid="message-image" />
                                </a>
                            </li>
                        }
                        .into_any(),
                        AttachmentKind::Text => view! {
                            <li>
                                <a href=url class="chip" target="_blank" rel="noopener" data-testid="message-file">
                                    {file_icon()} " " {a.name.clone()} " · " {file_size(a.size)}
                                </a>
                            </li>
                        }
                        .into_any(),
                    }
                })
                .collect_view()}
        </ul>
    }
}

#[component]
fn QuestionItem(m: MessageView, conversation_id: String, agent_id: String) -> impl IntoView {
    let t = t();
    let acts = expect_context::<ChatActions>();
    let switcher = branch_switcher(&m.id, &m.siblings);
    let edit_id = format!("edit-{}", m.id);
    view! {
        <article class="msg msg-user" data-testid="user-message">
            {(!m.attachments.is_empty()).then(|| view! { <Attachments files=m.attachments.clone() /> })}
            {(!m.text.is_empty()).then(|| view! { <div class="bubble">{m.text.clone()}</div> })}
            <div class="msg-foot">
                {switcher}
                <button type="button" class="btn btn-ghost btn-small msg-copy">{t.copy}</button>
                <details class="popover edit">
                    <summary class="btn btn-ghost btn-small">{t.chat_edit}</summary>
                    <ActionForm action=acts.send attr:class="edit-form">
                        <input type="hidden" name="agent_id" value=agent_id />
                        <input type="hidden" name="conversation_id" value=conversation_id />
                        <input type="hidden" name="parent_id" value=m.id.clone() />
                        <label for=edit_id.clone() class="visually-hidden">{t.chat_edit}</label>
                        <textarea id=edit_id name="text" rows="3" required maxlength=MESSAGE_MAX>{m.text.clone()}</textarea>
                        <button type="submit" class="btn btn-primary btn-small">{t.chat_edit_send}</button>
                    </ActionForm>
                </details>
            </div>
        </article>
    }
}

#[component]
fn AnswerItem(m: MessageView, tr: Transcript, is_last: bool) -> impl IntoView {
    let t = t();
    let acts = expect_context::<ChatActions>();
    let live = RwSignal::new(tr);
    let id = m.id.clone();
    if is_last {
        follow(id.clone(), live, acts.running);
    }
    let status = Memo::new(move |_| live.with(|t| t.status));
    let count = Memo::new(move |_| live.with(|t| t.parts.len()));
    let part_id = id.clone();
    let body =
        move || (0..count.get()).map(|i| view! { <PartView live i message_id=part_id.clone() /> }).collect_view();
    let switcher = branch_switcher(&m.id, &m.siblings);
    let (stop_id, regen_id, resume_id) = (id.clone(), id.clone(), id.clone());
    let (rate_id, rating) = (id.clone(), m.rating.clone());
    let run_id = m.run_id.clone();
    // Only what the foot shows: it redraws when these change, not on every token.
    let shown_foot = Memo::new(move |_| {
        live.with(|t| (t.status, usage_line(t.input_tokens, t.output_tokens, t.cost_micros, &t.model), t.error.clone()))
    });
    let has_parts = Memo::new(move |_| live.with(|t| !t.parts.is_empty()));
    let foot = move || {
        let (stop_id, regen_id, resume_id) = (stop_id.clone(), regen_id.clone(), resume_id.clone());
        let (s, usage, error) = shown_foot.get();
        let unfinished = matches!(s, RunStatus::Incomplete | RunStatus::Stopped | RunStatus::Interrupted);
        let trace_link = run_id.clone().map(|r| {
            view! { <A href=format!("/runs/{r}") attr:class="btn btn-ghost btn-small" attr:data-testid="answer-trace">{t.chat_trace}</A> }
        });
        let notice = match s {
            RunStatus::Stopped => Some(("notice", t.chat_stopped)),
            RunStatus::Incomplete => Some(("notice notice-warn", t.chat_incomplete)),
            RunStatus::Interrupted => Some(("notice notice-warn", t.chat_interrupted)),
            RunStatus::Failed => Some(("notice notice-error", t.chat_failed)),
            _ => None,
        };
        view! {
            {notice.map(|(class, text)| view! {
                <div class=class role="status" data-testid="answer-status">
                    <strong>{text}</strong>
                    {(!error.is_empty()).then(|| view! { <span>" " {error.clone()}</span> })}
                </div>
            })}
            <div class="msg-foot">
                {(!usage.is_empty()).then(|| view! { <span class="small muted" data-testid="message-usage">{usage.clone()}</span> })}
                <button type="button" class="btn btn-ghost btn-small msg-copy">{t.copy}</button>
                {(!s.is_final()).then(|| view! {
                    <ActionForm action=acts.stop attr:class="inline">
                        <input type="hidden" name="message_id" value=stop_id />
                        <button type="submit" class="btn btn-secondary btn-small" data-testid="stop">"■ " {t.chat_stop}</button>
                    </ActionForm>
                })}
                {s.is_final().then(|| view! {
                    <ActionForm action=acts.regenerate attr:class="inline">
                        <input type="hidden" name="message_id" value=regen_id />
                        <button
                            type="submit"
                            class=if matches!(s, RunStatus::Done | RunStatus::Stopped) { "btn btn-ghost btn-small" } else { "btn btn-secondary btn-small" }
                            data-testid="regenerate"
                        >
                            {if matches!(s, RunStatus::Done | RunStatus::Stopped) { t.chat_regenerate } else { t.retry }}
                        </button>
                    </ActionForm>
                })}
                {(unfinished && has_parts.get()).then(|| view! {
                    <ActionForm action=acts.resume attr:class="inline">
                        <input type="hidden" name="message_id" value=resume_id />
                        <button type="submit" class="btn btn-secondary btn-small" data-testid="continue">{t.chat_continue} " →"</button>
                    </ActionForm>
                })}
                {trace_link}
            </div>
        }
    };
    view! {
        <article id=format!("m-{id}") class="msg msg-assistant" data-testid="answer" data-status=move || status.get().as_str()>
            <div class="answer-body">
                {body}
                {move || (status.get() == RunStatus::Running && live.with(|t| t.parts.is_empty()))
                    .then(|| view! { <span class="typing" aria-label=t.chat_thinking><i></i><i></i><i></i></span> })}
            </div>
            {switcher}
            {foot}
            {move || status.get().is_final().then(|| view! { <RatingBox message_id=rate_id.clone() rating=rating.clone() /> })}
        </article>
    }
}

/// Thumbs up or down on a finished answer (pressing the chosen one again takes it back),
/// and a note once rated. Forms, so it works without JavaScript.
#[component]
fn RatingBox(message_id: String, rating: Option<model::chat::Rating>) -> impl IntoView {
    let t = t();
    let acts = expect_context::<ChatActions>();
    let current = rating.as_ref().map(|r| r.up);
    let id = message_id.clone();
    let button = move |up: bool| {
        let id = id.clone();
        let pressed = current == Some(up);
        let value = if pressed {
            "none"
        } else if up {
            "up"
        } else {
            "down"
        };
        view! {
            <ActionForm action=acts.rate attr:class="inline">
                <input type="hidden" name="message_id" value=id />
                <input type="hidden" name="rating" value=value />
                <button
                    type="submit"
                    class="icon-btn rate"
                    class:pressed=pressed
                    aria-pressed=if pressed { "true" } else { "false" }
                    aria-label=if up { t.chat_rate_up } else { t.chat_rate_down }
                    title=if up { t.chat_rate_up } else { t.chat_rate_down }
                    data-testid=if up { "rate-up" } else { "rate-down" }
                >
                    {thumb_icon(up)}
                </button>
            </ActionForm>
        }
    };
    let note_id = format!("note-{message_id}");
    let note = rating.map(|r| {
        let (open, text) = (!r.note.is_empty(), r.note);
        view! {
            <details class="popover rate-note" open=open>
                <summary class="btn btn-ghost btn-small">{t.chat_rate_note}</summary>
                <ActionForm action=acts.rate attr:class="edit-form">
                    <input type="hidden" name="message_id" value=message_id.clone() />
                    <input type="hidden" name="rating" value=if r.up { "up" } else { "down" } />
                    <label for=note_id.clone() class="small">{t.chat_rate_note_label}</label>
                    <textarea id=note_id name="note" rows="2" maxlength=model::chat::RATING_NOTE_MAX>{text}</textarea>
                    <button type="submit" class="btn btn-primary btn-small" data-testid="rate-note-save">{t.chat_rate_note_save}</button>
                </ActionForm>
            </details>
        }
    });
    view! {
        <div class="rating" data-testid="rating">
            {button(true)}
            {button(false)}
            {note}
        </div>
    }
}

/// One part of an answer: text as markdown, or a tool call's card.
#[component]
fn PartView(live: RwSignal<Transcript>, i: usize, message_id: String) -> impl IntoView {
    let part = Memo::new(move |_| live.with(|t| t.parts.get(i).cloned()));
    let is_text = Memo::new(move |_| matches!(part.get(), Some(Part::Text { .. })));
    move || {
        if is_text.get() {
            let text = Memo::new(move |_| match part.get() {
                Some(Part::Text { text }) => text,
                _ => String::new(),
            });
            view! { <TextPart text /> }.into_any()
        } else {
            match part.get() {
                Some(Part::Tool { call }) => view! { <ToolCard call message_id=message_id.clone() /> }.into_any(),
                Some(Part::Context { cut }) => view! { <ContextNote cut /> }.into_any(),
                Some(Part::Turn) | Some(Part::Text { .. }) | None => ().into_any(),
            }
        }
    }
}

/// Markdown that may still grow: the settled part renders once per paragraph, the tail
/// per change.
#[component]
fn TextPart(text: Memo<String>) -> impl IntoView {
    let copy = t().copy;
    let settled = Memo::new(move |_| text.with(|s| s[..markdown::settled_len(s)].to_owned()));
    let settled_html = Memo::new(move |_| settled.with(|s| markdown::render_with(s, None, copy)));
    let html = move || {
        let tail = text.with(|s| markdown::render_with(&s[markdown::settled_len(s)..], None, copy));
        format!("{}{tail}", settled_html.get())
    };
    view! { <div class="markdown" inner_html=html></div> }
}

/// Where older messages were summarised or left out to fit the model's window.
#[component]
fn ContextNote(cut: model::chat::ContextCut) -> impl IntoView {
    let t = t();
    let text = if cut.summary.is_empty() { t.chat_context_dropped } else { t.chat_context_summarised };
    let text = t.n(text, u64::from(cut.dropped)).replace("{window}", &thousands(cut.window));
    let summary = cut.summary;
    view! {
        <div class="context-cut" role="note" data-testid="context-cut">
            <p class="small muted">{text}</p>
            {(!summary.is_empty()).then(|| view! {
                <details class="small">
                    <summary>{t.chat_context_summary}</summary>
                    <p class="context-summary">{summary}</p>
                </details>
            })}
        </div>
    }
}

fn shown(s: &str) -> String {
    if s.len() <= SHOWN_MAX {
        return s.to_owned();
    }
    let mut end = SHOWN_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} more bytes)", &s[..end], s.len() - end)
}

/// A tool call: what is called with which input, its state, the question when the policy
/// asks, and the result.
#[component]
fn ToolCard(call: ToolCall, message_id: String) -> impl IntoView {
    let t = t();
    let acts = expect_context::<ChatActions>();
    let (state_class, state_text) = match call.state {
        CallState::Writing => ("badge", t.tool_writing),
        CallState::Asking => ("badge badge-warn", t.tool_asking),
        CallState::Running => ("badge", t.tool_running),
        CallState::Done => ("badge badge-on", t.tool_done),
        CallState::Failed => ("badge badge-off", t.tool_failed),
        CallState::Denied => ("badge badge-off", t.tool_denied),
    };
    let name = if call.label.is_empty() { call.name.clone() } else { call.label.clone() };
    let input = if call.input.is_null() {
        String::new()
    } else {
        serde_json::to_string_pretty(&call.input).unwrap_or_default()
    };
    let asking = call.state == CallState::Asking;
    let call_id = call.id.clone();
    let answer_form = move |allow: bool| {
        let (message_id, call_id) = (message_id.clone(), call_id.clone());
        view! {
            <ActionForm action=acts.answer attr:class="inline">
                <input type="hidden" name="message_id" value=message_id />
                <input type="hidden" name="call_id" value=call_id />
                {allow.then(|| view! { <input type="hidden" name="allow" value="true" /> })}
                <button
                    type="submit"
                    class=if allow { "btn btn-primary btn-small" } else { "btn btn-secondary btn-small" }
                    data-testid=if allow { "allow" } else { "deny" }
                >
                    {if allow { t.tool_allow } else { t.tool_deny }}
                </button>
            </ActionForm>
        }
    };
    view! {
        <div class="tool-call" data-testid="tool-call" data-state=format!("{:?}", call.state).to_lowercase()>
            <div class="tool-call-head">
                <span class="tool-icon" aria-hidden="true">"⚙"</span>
                <span class="tool-call-name mono">{name}</span>
                <span class=state_class>{state_text}</span>
            </div>
            {(!input.is_empty()).then(|| view! {
                <details open=asking>
                    <summary>{t.tool_input}</summary>
                    <pre class="tool-io">{shown(&input)}</pre>
                </details>
            })}
            {asking.then(|| view! {
                <div class="tool-ask">
                    <p class="small">{t.tool_ask_question}</p>
                    <div class="row-actions">{answer_form(true)}{answer_form(false)}</div>
                </div>
            })}
            {(!call.result.is_empty()).then(|| view! {
                <details>
                    <summary>{t.tool_result}</summary>
                    <pre class="tool-io" data-testid="tool-result">{shown(&call.result)}</pre>
                </details>
            })}
        </div>
    }
}

/// `model · 1,234 in / 56 out · $0.0123`, or empty when nothing is known yet.
fn usage_line(input: u64, output: u64, cost_micros: u64, model: &str) -> String {
    let t = t();
    let mut parts = Vec::new();
    if !model.is_empty() {
        parts.push(model.to_owned());
    }
    if input + output > 0 {
        parts.push(t.chat_tokens.replace("{in}", &thousands(input)).replace("{out}", &thousands(output)));
    }
    if cost_micros > 0 {
        parts.push(dollars(cost_micros));
    }
    parts.join(" · ")
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A cost in millionths of a dollar, to four places under a cent.
pub fn dollars(micros: u64) -> String {
    let d = micros as f64 / 1_000_000.0;
    if d < 0.01 { format!("${d:.4}") } else { format!("${d:.2}") }
}

/// Follows a running answer: its events after the last one it has, folded into `live`.
/// A dropped connection resumes from the last event; the task ends with the run or when
/// the answer leaves the page.
fn follow(message_id: String, live: RwSignal<Transcript>, running: RwSignal<bool>) {
    Effect::new(move |_| {
        if live.with_untracked(|t| t.status.is_final()) {
            return;
        }
        let id = message_id.clone();
        leptos::task::spawn_local_scoped_with_cancellation(async move {
            crate::stream::follow_events(
                |after| super::api::run_events(id.clone(), after),
                || live.with_untracked(|t| t.seq),
                || live.with_untracked(|t| t.status.is_final()),
                |events| {
                    live.update(|t| events.iter().for_each(|e| t.apply(e)));
                    stick_to_bottom();
                },
            )
            .await;
            running.set(false);
        });
    });
}

/// Keeps the newest text in view while it streams, unless the person scrolled up.
fn stick_to_bottom() {
    #[cfg(feature = "hydrate")]
    if let Some(w) = web_sys::window()
        && let Some(el) = w.document().and_then(|d| d.document_element())
    {
        let inner = w.inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(0.0);
        let near = el.scroll_height() as f64 - (w.scroll_y().unwrap_or(0.0) + inner) < 160.0;
        if near {
            w.scroll_to_with_x_and_y(0.0, el.scroll_height() as f64);
        }
    }
}

/// The copy buttons of code blocks: one listener on the messages.
fn copy_code(ev: leptos::ev::MouseEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let target = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok());
        let Some(target) = target else { return };
        // A code block's button copies its code; a message's, the message as shown.
        let (button, source) = if let Some(b) = target.closest(".code-copy").ok().flatten() {
            let code = b.closest(".code-block").ok().flatten().and_then(|c| c.query_selector("code").ok().flatten());
            (b, code)
        } else if let Some(b) = target.closest(".msg-copy").ok().flatten() {
            let text =
                b.closest(".msg").ok().flatten().and_then(|m| m.query_selector(".markdown, .bubble").ok().flatten());
            (b, text)
        } else {
            return;
        };
        let text = source.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()).map(|e| e.inner_text());
        if let (Some(text), Some(w)) = (text, web_sys::window()) {
            let _ = w.navigator().clipboard().write_text(&text);
            button.set_text_content(Some(t().copied));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}
