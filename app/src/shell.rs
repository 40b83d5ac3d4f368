//! The document shell, the router, and the signed-in layout (sidebar, top bar, user menu).

pub mod layout;
mod theme;

use leptos::prelude::*;
use leptos_meta::{Html, Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{Lazy, LazyRoute, SsrMode, path};

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
use crate::specs::{NewSpecPage, SpecPage, SpecsPage};
use crate::usage::UsagePage;
pub use layout::{AppLayout, AuthLayout};
pub use theme::Theme;

/// The pages, each in one of three groups whose code the browser loads when a page of the
/// group is first shown (`cargo leptos --split` puts each group in its own WASM module):
/// the first download holds the shell and what pages share, and the page's group. Few
/// groups, because the splitter makes a chunk for every set of groups that shares some
/// code, and each chunk is a request: a group per page made 100–160 requests per page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    Login,
    Register,
    Shared,
    Home,
    ChatList,
    Conversation,
    Agents,
    NewAgent,
    ImportAgent,
    Agent,
    AgentHistory,
    Skills,
    Skill,
    Mcp,
    NewMcp,
    McpServer,
    Specs,
    NewSpec,
    Spec,
    Builds,
    Usage,
    Runs,
    Run,
    Providers,
    NewProvider,
    Provider,
    Settings,
    Admin,
}

/// Signing in, and a shared conversation: what someone not signed in may open.
#[leptos::lazy]
fn public_pages(page: Page) -> AnyView {
    match page {
        Page::Login => view! { <LoginPage /> }.into_any(),
        Page::Register => view! { <RegisterPage /> }.into_any(),
        _ => view! { <SharedPage /> }.into_any(),
    }
}

/// Home and chat: what a person opens first and most.
#[leptos::lazy]
fn chat_pages(page: Page) -> AnyView {
    match page {
        Page::Home => view! { <HomePage /> }.into_any(),
        Page::ChatList => view! { <ChatListPage /> }.into_any(),
        _ => view! { <ConversationPage /> }.into_any(),
    }
}

/// Everything else: agents and what they use, runs, usage, settings, administration.
#[leptos::lazy]
fn work_pages(page: Page) -> AnyView {
    match page {
        Page::Agents => view! { <AgentsPage /> }.into_any(),
        Page::NewAgent => view! { <NewAgentPage /> }.into_any(),
        Page::ImportAgent => view! { <ImportAgentPage /> }.into_any(),
        Page::Agent => view! { <AgentPage /> }.into_any(),
        Page::AgentHistory => view! { <AgentHistoryPage /> }.into_any(),
        Page::Skills => view! { <SkillsPage /> }.into_any(),
        Page::Skill => view! { <SkillPage /> }.into_any(),
        Page::Mcp => view! { <McpPage /> }.into_any(),
        Page::NewMcp => view! { <NewMcpPage /> }.into_any(),
        Page::McpServer => view! { <McpServerPage /> }.into_any(),
        Page::Specs => view! { <SpecsPage /> }.into_any(),
        Page::NewSpec => view! { <NewSpecPage /> }.into_any(),
        Page::Spec => view! { <SpecPage /> }.into_any(),
        Page::Builds => view! { <BuildsPage /> }.into_any(),
        Page::Usage => view! { <UsagePage /> }.into_any(),
        Page::Runs => view! { <RunsPage /> }.into_any(),
        Page::Run => view! { <RunPage /> }.into_any(),
        Page::Providers => view! { <ProvidersPage /> }.into_any(),
        Page::NewProvider => view! { <NewProviderPage /> }.into_any(),
        Page::Provider => view! { <ProviderPage /> }.into_any(),
        Page::Settings => view! { <SettingsPage /> }.into_any(),
        _ => view! { <AdminPage /> }.into_any(),
    }
}

/// A route to `$page`, whose code comes with `$group` (preloaded with it).
macro_rules! lazy_page {
    ($route:ident, $page:ident, $group:ident, $preload:ident) => {
        struct $route;

        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            async fn view(_this: Self) -> AnyView {
                $group(Page::$page).await
            }

            async fn preload() {
                #[cfg(target_arch = "wasm32")]
                $preload().await;
            }
        }
    };
}

macro_rules! public_page {
    ($route:ident, $page:ident) => {
        lazy_page!($route, $page, public_pages, __preload_public_pages);
    };
}
macro_rules! chat_page {
    ($route:ident, $page:ident) => {
        lazy_page!($route, $page, chat_pages, __preload_chat_pages);
    };
}
macro_rules! work_page {
    ($route:ident, $page:ident) => {
        lazy_page!($route, $page, work_pages, __preload_work_pages);
    };
}

public_page!(LoginRoute, Login);
public_page!(RegisterRoute, Register);
public_page!(SharedRoute, Shared);
chat_page!(HomeRoute, Home);
chat_page!(ChatListRoute, ChatList);
chat_page!(ConversationRoute, Conversation);
work_page!(AgentsRoute, Agents);
work_page!(NewAgentRoute, NewAgent);
work_page!(ImportAgentRoute, ImportAgent);
work_page!(AgentRoute, Agent);
work_page!(AgentHistoryRoute, AgentHistory);
work_page!(SkillsRoute, Skills);
work_page!(SkillRoute, Skill);
work_page!(McpRoute, Mcp);
work_page!(NewMcpRoute, NewMcp);
work_page!(McpServerRoute, McpServer);
work_page!(SpecsRoute, Specs);
work_page!(NewSpecRoute, NewSpec);
work_page!(SpecRoute, Spec);
work_page!(BuildsRoute, Builds);
work_page!(UsageRoute, Usage);
work_page!(RunsRoute, Runs);
work_page!(RunRoute, Run);
work_page!(ProvidersRoute, Providers);
work_page!(NewProviderRoute, NewProvider);
work_page!(ProviderRoute, Provider);
work_page!(SettingsRoute, Settings);
work_page!(AdminRoute, Admin);

#[component]
fn BuildsPage() -> impl IntoView {
    view! { <ComingSoon section=Section::Builds /> }
}

/// `public/favicon.svg` inline: the browser asks for nothing more to show it.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 viewBox=%220 0 32 32%22%3E%3Cdefs%3E%3ClinearGradient id=%22g%22 x1=%220%22 y1=%220%22 x2=%221%22 y2=%221%22%3E%3Cstop offset=%220%22 stop-color=%22%235b4cf0%22/%3E%3Cstop offset=%221%22 stop-color=%22%23c35cf0%22/%3E%3C/linearGradient%3E%3C/defs%3E%3Crect width=%2232%22 height=%2232%22 rx=%228%22 fill=%22url(%23g)%22/%3E%3Cpath d=%22M16 7l9 9-9 9-9-9z%22 fill=%22%23fff%22/%3E%3C/svg%3E";

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
        <Link rel="icon" href=FAVICON type_="image/svg+xml" />
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
                    <Route path=path!("specs") view={Lazy::<SpecsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("specs/new") view={Lazy::<NewSpecRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("specs/:id") view={Lazy::<SpecRoute>::new()} ssr=SsrMode::Async />
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
