//! The document shell, the router, and the signed-in layout (sidebar, top bar, user menu).

pub mod layout;
mod theme;

use leptos::prelude::*;
use leptos_meta::{Html, Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{Lazy, LazyRoute, SsrMode, lazy_route, path};

use crate::admin::AdminPage;
use crate::agents::{AgentHistoryPage, AgentPage, AgentsPage, ImportAgentPage, NewAgentPage};
use crate::auth::{LoginPage, RegisterPage};
use crate::chat::{ChatListPage, ConversationPage, SharedPage};
use crate::i18n::{Locale, t};
use crate::mcp::{McpPage, McpServerPage, NewMcpPage};
use crate::pages::{ComingSoon, HomePage, NotFound, Section};
use crate::providers::{NewProviderPage, ProviderPage, ProvidersPage};
use crate::runs::{RunPage, RunsPage};
use crate::settings::SettingsPage;
use crate::skills::{SkillPage, SkillsPage};
use crate::usage::UsagePage;
pub use layout::{AppLayout, AuthLayout};
pub use theme::Theme;

/// A page whose code the browser loads when it is first shown (`cargo leptos --split`
/// puts each in its own WASM chunk): the first download holds the shell and what pages
/// share, not every page.
macro_rules! lazy_page {
    ($route:ident, $page:ident) => {
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    };
}

lazy_page!(LoginRoute, LoginPage);
lazy_page!(RegisterRoute, RegisterPage);
lazy_page!(HomeRoute, HomePage);
lazy_page!(AgentsRoute, AgentsPage);
lazy_page!(NewAgentRoute, NewAgentPage);
lazy_page!(ImportAgentRoute, ImportAgentPage);
lazy_page!(AgentRoute, AgentPage);
lazy_page!(AgentHistoryRoute, AgentHistoryPage);
lazy_page!(SkillsRoute, SkillsPage);
lazy_page!(SkillRoute, SkillPage);
lazy_page!(McpRoute, McpPage);
lazy_page!(NewMcpRoute, NewMcpPage);
lazy_page!(McpServerRoute, McpServerPage);
lazy_page!(ChatListRoute, ChatListPage);
lazy_page!(ConversationRoute, ConversationPage);
lazy_page!(BuildsRoute, BuildsPage);
lazy_page!(UsageRoute, UsagePage);
lazy_page!(RunsRoute, RunsPage);
lazy_page!(RunRoute, RunPage);
lazy_page!(ProvidersRoute, ProvidersPage);
lazy_page!(NewProviderRoute, NewProviderPage);
lazy_page!(ProviderRoute, ProviderPage);
lazy_page!(SettingsRoute, SettingsPage);
lazy_page!(AdminRoute, AdminPage);
lazy_page!(SharedRoute, SharedPage);

#[component]
fn BuildsPage() -> impl IntoView {
    view! { <ComingSoon section=Section::Builds /> }
}

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
                    <Route path=path!("login") view={Lazy::<LoginRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("register") view={Lazy::<RegisterRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("s/:token") view={Lazy::<SharedRoute>::new()} ssr=SsrMode::Async />
                </ParentRoute>
                <ParentRoute path=path!("") view=AppLayout ssr=SsrMode::Async>
                    <Route path=path!("") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("agents") view={Lazy::<AgentsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("agents/new") view={Lazy::<NewAgentRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("agents/import") view={Lazy::<ImportAgentRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("agents/:id") view={Lazy::<AgentRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("agents/:id/history") view={Lazy::<AgentHistoryRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("skills") view={Lazy::<SkillsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("skills/:id") view={Lazy::<SkillRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("mcp") view={Lazy::<McpRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("mcp/new") view={Lazy::<NewMcpRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("mcp/:id") view={Lazy::<McpServerRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("chat") view={Lazy::<ChatListRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("chat/:id") view={Lazy::<ConversationRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("runs") view={Lazy::<RunsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("runs/:id") view={Lazy::<RunRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("builds") view={Lazy::<BuildsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("usage") view={Lazy::<UsageRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("providers") view={Lazy::<ProvidersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("providers/new") view={Lazy::<NewProviderRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("providers/:id") view={Lazy::<ProviderRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("settings") view={Lazy::<SettingsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("admin") view={Lazy::<AdminRoute>::new()} ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
