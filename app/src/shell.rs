//! The document shell, the router, and the signed-in layout (sidebar, top bar, user menu).

pub mod layout;
mod theme;

use leptos::prelude::*;
use leptos_meta::{Html, Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::admin::AdminPage;
use crate::agents::{AgentHistoryPage, AgentPage, AgentsPage, ImportAgentPage, NewAgentPage};
use crate::auth::{LoginPage, RegisterPage};
use crate::chat::{ChatListPage, ConversationPage};
use crate::i18n::{Locale, t};
use crate::mcp::{McpPage, McpServerPage, NewMcpPage};
use crate::pages::{ComingSoon, HomePage, NotFound, Section};
use crate::providers::{NewProviderPage, ProviderPage, ProvidersPage};
use crate::settings::SettingsPage;
use crate::skills::{SkillPage, SkillsPage};
pub use layout::{AppLayout, AuthLayout};
pub use theme::Theme;

/// The whole HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// An attribute of `<html>` as the server decided it: computed during SSR, read back from
/// the document when hydrating, so both sides render the same thing.
fn html_attr(name: &str, server: impl FnOnce() -> String) -> String {
    #[cfg(feature = "ssr")]
    {
        let _ = name;
        server()
    }
    #[cfg(not(feature = "ssr"))]
    {
        let _ = server;
        document().document_element().and_then(|e| e.get_attribute(name)).unwrap_or_default()
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let locale_code = html_attr("lang", || {
        #[cfg(feature = "ssr")]
        return crate::ssr::request_locale();
        #[cfg(not(feature = "ssr"))]
        String::new()
    });
    let locale = model::accounts::LOCALES.iter().copied().find(|l| *l == locale_code).unwrap_or("en");
    provide_context(Locale(locale));
    let theme = theme::provide_theme(html_attr("data-theme", theme::request_theme));
    #[cfg(feature = "ssr")]
    crate::ssr::set_csp();

    // Tests and people wait on this, never on retries: from here on, clicks are handled
    // by the client.
    Effect::new(move |_| {
        if let Some(el) = document().document_element() {
            let _ = el.set_attribute("data-hydrated", "");
        }
    });

    let t = t();
    view! {
        <Html {..} lang=locale data-theme=move || theme.get().as_str() />
        <Title formatter=|text: String| if text.is_empty() { "Agentry".to_owned() } else { format!("{text} · Agentry") } />
        <Meta name="description" content=t.tagline />
        <Meta name="color-scheme" content="light dark" />
        <Stylesheet id="leptos" href="/pkg/agentry.css" />
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml" />
        // Every page waits for its data before the server sends it (`SsrMode::Async`): the
        // page is complete without JavaScript, and hydrates the same way with it.
        <Router>
            <Routes fallback=NotFound>
                <ParentRoute path=path!("") view=AuthLayout ssr=SsrMode::Async>
                    <Route path=path!("login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=path!("register") view=RegisterPage ssr=SsrMode::Async />
                </ParentRoute>
                <ParentRoute path=path!("") view=AppLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("agents") view=AgentsPage ssr=SsrMode::Async />
                    <Route path=path!("agents/new") view=NewAgentPage ssr=SsrMode::Async />
                    <Route path=path!("agents/import") view=ImportAgentPage ssr=SsrMode::Async />
                    <Route path=path!("agents/:id") view=AgentPage ssr=SsrMode::Async />
                    <Route path=path!("agents/:id/history") view=AgentHistoryPage ssr=SsrMode::Async />
                    <Route path=path!("skills") view=SkillsPage ssr=SsrMode::Async />
                    <Route path=path!("skills/:id") view=SkillPage ssr=SsrMode::Async />
                    <Route path=path!("mcp") view=McpPage ssr=SsrMode::Async />
                    <Route path=path!("mcp/new") view=NewMcpPage ssr=SsrMode::Async />
                    <Route path=path!("mcp/:id") view=McpServerPage ssr=SsrMode::Async />
                    <Route path=path!("chat") view=ChatListPage ssr=SsrMode::Async />
                    <Route path=path!("chat/:id") view=ConversationPage ssr=SsrMode::Async />
                    <Route path=path!("builds") view=|| view! { <ComingSoon section=Section::Builds /> } ssr=SsrMode::Async />
                    <Route path=path!("usage") view=crate::usage::UsagePage ssr=SsrMode::Async />
                    <Route path=path!("providers") view=ProvidersPage ssr=SsrMode::Async />
                    <Route path=path!("providers/new") view=NewProviderPage ssr=SsrMode::Async />
                    <Route path=path!("providers/:id") view=ProviderPage ssr=SsrMode::Async />
                    <Route path=path!("settings") view=SettingsPage ssr=SsrMode::Async />
                    <Route path=path!("admin") view=AdminPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
