//! The conversations beside the open one: pinned first, then by day (Today, Yesterday,
//! the last seven days, earlier), searchable, each with pin, rename and delete in its
//! menu. Every action is a form, so it all works without JavaScript.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use model::chat::{ConversationSummary, SidebarList, TITLE_MAX};

use super::api::{DeleteConversation, PinConversation, RenameConversation, sidebar_conversations};
use crate::components::{ErrorAlert, Loaded, action_error};
use crate::error::AppError;
use crate::i18n::{Strings, t};

const DAY_MS: i64 = 86_400_000;

/// The sidebar's actions, so the page can refetch what they change.
#[derive(Clone, Copy)]
pub struct SidebarActions {
    pub pin: ServerAction<PinConversation>,
    pub rename: ServerAction<RenameConversation>,
    pub delete: ServerAction<DeleteConversation>,
}

impl SidebarActions {
    pub fn new() -> Self {
        Self { pin: ServerAction::new(), rename: ServerAction::new(), delete: ServerAction::new() }
    }

    pub fn version(&self) -> usize {
        self.pin.version().get() + self.rename.version().get() + self.delete.version().get()
    }

    pub fn error(&self) -> Signal<Option<AppError>> {
        let (pin, rename, delete) = (action_error(self.pin), action_error(self.rename), action_error(self.delete));
        Signal::derive(move || pin.get().or_else(|| rename.get()).or_else(|| delete.get()))
    }
}

/// Which heading a conversation goes under, by its last activity (UTC days).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Group {
    Pinned,
    Today,
    Yesterday,
    Week,
    Earlier,
}

impl Group {
    fn of(c: &ConversationSummary, now_ms: i64) -> Self {
        if c.pinned {
            return Self::Pinned;
        }
        let (day, today) = (c.updated_at.div_euclid(DAY_MS), now_ms.div_euclid(DAY_MS));
        match today - day {
            i64::MIN..=0 => Self::Today,
            1 => Self::Yesterday,
            2..=7 => Self::Week,
            _ => Self::Earlier,
        }
    }

    fn label(self, t: &'static Strings) -> &'static str {
        match self {
            Self::Pinned => t.chat_group_pinned,
            Self::Today => t.chat_group_today,
            Self::Yesterday => t.chat_group_yesterday,
            Self::Week => t.chat_group_week,
            Self::Earlier => t.chat_group_earlier,
        }
    }
}

/// The conversations in their groups, in list order (pinned, then newest first).
fn grouped(items: Vec<ConversationSummary>, now_ms: i64) -> Vec<(Group, Vec<ConversationSummary>)> {
    let mut out: Vec<(Group, Vec<ConversationSummary>)> = Vec::new();
    for c in items {
        let g = Group::of(&c, now_ms);
        match out.last_mut() {
            Some((last, list)) if *last == g => list.push(c),
            _ => out.push((g, vec![c])),
        }
    }
    out
}

#[component]
pub fn ChatSidebar(
    /// The open conversation.
    #[prop(into)]
    current: Signal<String>,
    acts: SidebarActions,
    /// Changes when something the list shows may have changed (a message sent).
    #[prop(into)]
    changed: Signal<usize>,
) -> impl IntoView {
    let t = t();
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let list =
        crate::data::load(move || (q.get(), acts.version(), changed.get()), |(q, _, _)| sidebar_conversations(q));
    let show = move |SidebarList { now_ms, page: p }: SidebarList| {
        if p.items.is_empty() {
            let text = if q.with(String::is_empty) { t.chat_none_yet } else { t.chat_no_match };
            return view! { <p class="empty small">{text}</p> }.into_any();
        }
        let more = (p.pages() > 1).then(|| view! { <A href="/chat" attr:class="small">{t.chat_all}</A> });
        view! {
            {grouped(p.items, now_ms)
                .into_iter()
                .map(|(g, items)| view! {
                    <h2 class="sidebar-group">{g.label(t)}</h2>
                    <ul class="sidebar-list">
                        {items.into_iter().map(|c| view! { <SidebarRow c current acts /> }).collect_view()}
                    </ul>
                })
                .collect_view()}
            {more}
        }
        .into_any()
    };
    view! {
        <aside class="chat-sidebar" aria-label=t.chat_conversations>
            <ErrorAlert error=acts.error() />
            <A href="/chat" attr:class="btn btn-primary btn-small new-chat-link">"+ " {t.chat_new}</A>
            <form method="get" class="sidebar-search" role="search">
                <label for="sidebar-q" class="visually-hidden">{t.chat_search}</label>
                <input id="sidebar-q" type="search" name="q" value=q.get_untracked() placeholder=t.chat_search_short />
            </form>
            <Loaded res=list lines=6 show />
        </aside>
    }
}

#[component]
fn SidebarRow(c: ConversationSummary, current: Signal<String>, acts: SidebarActions) -> impl IntoView {
    let t = t();
    let href = format!("/chat/{}", c.id);
    let id = c.id.clone();
    let is_current = {
        let id = id.clone();
        Signal::derive(move || current.with(|cur| *cur == id))
    };
    let back = {
        let id = id.clone();
        move || current.with(|cur| if *cur == id || cur.is_empty() { String::new() } else { format!("/chat/{cur}") })
    };
    let (pin_id, rename_id, delete_id) = (id.clone(), id.clone(), id);
    let pin_label = if c.pinned { t.chat_unpin } else { t.chat_pin };
    let title = c.title.clone();
    view! {
        <li class="sidebar-row" class:current=is_current>
            <A href=href attr:class="sidebar-link" attr:aria-current=move || is_current.get().then_some("page")>
                {c.pinned.then_some(view! { <span class="pin-mark" aria-hidden="true">"📌 "</span> })}
                {title}
            </A>
            <details class="row-menu">
                <summary class="btn btn-ghost btn-small" aria-label=t.chat_conversation_menu>"⋯"</summary>
                <div class="row-menu-body">
                    <ActionForm action=acts.pin attr:class="inline-form">
                        <input type="hidden" name="id" value=pin_id />
                        <input type="hidden" name="pinned" value=(!c.pinned).to_string() />
                        <button type="submit" class="btn btn-secondary btn-small">{pin_label}</button>
                    </ActionForm>
                    <ActionForm action=acts.rename attr:class="inline-form">
                        <input type="hidden" name="id" value=rename_id />
                        <input name="title" value=c.title.clone() maxlength=TITLE_MAX required aria-label=t.chat_title />
                        <button type="submit" class="btn btn-secondary btn-small">{t.chat_rename}</button>
                    </ActionForm>
                    <ActionForm action=acts.delete attr:class="inline-form">
                        <input type="hidden" name="id" value=delete_id />
                        <input type="hidden" name="back" value=back />
                        <button type="submit" class="btn btn-danger btn-small">{t.delete}</button>
                    </ActionForm>
                </div>
            </details>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(id: &str, at: i64, pinned: bool) -> ConversationSummary {
        ConversationSummary {
            id: id.into(),
            title: id.into(),
            agent_id: String::new(),
            agent_name: String::new(),
            updated_at: at,
            pinned,
        }
    }

    #[test]
    fn conversations_fall_under_pinned_then_their_day() {
        let now = 100 * DAY_MS + 3_600_000;
        let items = vec![
            conv("p", 3 * DAY_MS, true),
            conv("a", now - 60_000, false),
            conv("b", 99 * DAY_MS + 5, false),
            conv("c", 95 * DAY_MS, false),
            conv("d", 10 * DAY_MS, false),
        ];
        let groups: Vec<(Group, Vec<String>)> =
            grouped(items, now).into_iter().map(|(g, l)| (g, l.into_iter().map(|c| c.id).collect())).collect();
        assert_eq!(
            groups,
            vec![
                (Group::Pinned, vec!["p".to_owned()]),
                (Group::Today, vec!["a".to_owned()]),
                (Group::Yesterday, vec!["b".to_owned()]),
                (Group::Week, vec!["c".to_owned()]),
                (Group::Earlier, vec!["d".to_owned()]),
            ]
        );
    }
}
