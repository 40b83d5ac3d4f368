//! Home, the sections later issues fill in, and the 404 page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::components::{PageHeader, Skeleton};
use crate::i18n::{Strings, t};
use crate::shell::layout::use_session;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Agents,
    Skills,
    Mcp,
    Chat,
    Specs,
    Builds,
    Usage,
}

impl Section {
    pub const ALL: [Section; 7] =
        [Self::Chat, Self::Agents, Self::Skills, Self::Mcp, Self::Specs, Self::Builds, Self::Usage];

    fn text(self, t: &'static Strings) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Self::Agents => ("/agents", t.nav_agents, t.agents_lead, "◎"),
            Self::Skills => ("/skills", t.nav_skills, t.skills_lead, "✦"),
            Self::Mcp => ("/mcp", t.nav_mcp, t.mcp_lead, "⚙"),
            Self::Chat => ("/chat", t.nav_chat, t.chat_lead, "✉"),
            Self::Specs => ("/specs", t.nav_specs, t.specs_lead, "▤"),
            Self::Builds => ("/builds", t.nav_builds, t.builds_lead, "▣"),
            Self::Usage => ("/usage", t.nav_usage, t.usage_lead, "▤"),
        }
    }
}

#[component]
pub fn HomePage() -> impl IntoView {
    let t = t();
    let session = use_session();
    let greeting = move || {
        session
            .me
            .get()
            .and_then(Result::ok)
            .flatten()
            .map(|me| view! { <h1>{t.home_greeting.replace("{name}", &me.display_name)}</h1> })
    };
    view! {
        <Title text=t.nav_home />
        <header class="page-header">
            <Transition fallback=|| view! { <Skeleton lines=1 /> }>{greeting}</Transition>
            <p class="lead">{t.home_lead}</p>
        </header>
        <h2 class="section-title">{t.home_start}</h2>
        <ul class="tiles">
            {Section::ALL
                .into_iter()
                .map(|s| {
                    let (href, title, lead, icon) = s.text(t);
                    view! {
                        <li>
                            <A href=href attr:class="tile">
                                <span class="tile-icon" aria-hidden="true">{icon}</span>
                                <span class="tile-title">{title}</span>
                                <span class="tile-lead">{lead}</span>
                            </A>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

/// The empty state of a section that a later release fills in.
#[component]
pub fn ComingSoon(section: Section) -> impl IntoView {
    let t = t();
    let (_, title, lead, icon) = section.text(t);
    view! {
        <Title text=title />
        <PageHeader title=title lead=lead />
        <div class="empty-state">
            <span class="empty-icon" aria-hidden="true">{icon}</span>
            <h2>{t.coming_soon}</h2>
            <p>{t.coming_soon_body}</p>
        </div>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    let t = t();
    view! {
        <Title text=t.not_found_title />
        <main id="main" class="not-found">
            <p class="big-code" aria-hidden="true">"404"</p>
            <h1>{t.not_found_title}</h1>
            <p>{t.not_found_body}</p>
            <a class="btn btn-primary" href="/">{t.not_found_home}</a>
        </main>
    }
}
