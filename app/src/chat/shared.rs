//! `/s/:token`: a conversation someone shared, read-only, for anyone with the link,
//! signed in or not. It shows the branch as it was when shared: the messages' text and
//! the names of the tools an answer called, nothing else of the owner's.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;
use model::chat::{ConversationExport, ExportedMessage, Role};
use model::markdown;

use super::api::shared_conversation;
use crate::components::Loaded;
use crate::i18n::t;

#[component]
pub fn SharedPage() -> impl IntoView {
    let params = use_params_map();
    let token = Memo::new(move |_| params.read().get("token").unwrap_or_default());
    let shared = crate::data::load(move || token.get(), shared_conversation);
    view! {
        // A shared page is for the people it was sent to, not for search engines.
        <Meta name="robots" content="noindex" />
        <div class="shared-page">
            <Loaded res=shared lines=6 show={move |c: ConversationExport| view! { <SharedConversation c /> }} />
        </div>
    }
}

#[component]
fn SharedConversation(c: ConversationExport) -> impl IntoView {
    let t = t();
    let agent = c.agent_name.clone();
    view! {
        <Title text=c.title.clone() />
        <header class="shared-header">
            <h1>{c.title.clone()}</h1>
            <p class="muted small">
                {c.agent_name.clone()} " · " {t.chat_shared_on} " " {model::fields::format_utc(c.at)}
            </p>
            <p class="note small">{t.chat_shared_note}</p>
        </header>
        <section class="messages" aria-label=t.chat_messages>
            {c.messages.into_iter().map(|m| view! { <SharedMessage m agent=agent.clone() /> }).collect_view()}
        </section>
    }
}

#[component]
fn SharedMessage(m: ExportedMessage, agent: String) -> impl IntoView {
    let copy = t().copy;
    match m.role {
        Role::User => view! {
            <article class="msg msg-user" data-testid="user-message">
                <div class="bubble">{m.text}</div>
            </article>
        }
        .into_any(),
        Role::Assistant => view! {
            <article class="msg msg-assistant" data-testid="answer">
                <p class="msg-who small muted">{agent}</p>
                {(!m.tools.is_empty()).then(|| view! {
                    <ul class="shared-tools">
                        {m.tools.into_iter().map(|tool| view! { <li class="badge mono">{tool.name}</li> }).collect_view()}
                    </ul>
                })}
                <div class="markdown" inner_html=markdown::render_with(&m.text, None, copy)></div>
            </article>
        }
        .into_any(),
    }
}
