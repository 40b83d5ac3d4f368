use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use model::accounts::Me;

use super::theme::ThemeSwitcher;
use crate::auth::api::{Logout, get_me};
use crate::error::AppError;
use crate::i18n::t;
use crate::settings::api::UpdateProfile;

/// What the signed-in pages share: who is signed in, and the actions that change it.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: crate::data::Data<Result<Option<Me>, AppError>>,
    pub logout: ServerAction<Logout>,
    pub update_profile: ServerAction<UpdateProfile>,
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// Centered card for signing in and up.
#[component]
pub fn AuthLayout() -> impl IntoView {
    let t = t();
    view! {
        <a class="skip-link" href="#main">{t.skip_to_content}</a>
        <div class="auth-layout">
            <header class="auth-top">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    {t.app_name}
                </A>
                <ThemeSwitcher />
            </header>
            <main id="main" tabindex="-1">
                <Outlet />
            </main>
            <footer class="auth-foot">{t.tagline}</footer>
        </div>
    }
}

fn nav_links(t: &'static crate::i18n::Strings) -> impl IntoView {
    [
        ("/", t.nav_home, "⌂"),
        ("/chat", t.nav_chat, "✉"),
        ("/runs", t.nav_runs, "▶"),
        ("/agents", t.nav_agents, "◎"),
        ("/skills", t.nav_skills, "✦"),
        ("/mcp", t.nav_mcp, "⚙"),
        ("/providers", t.nav_providers, "◈"),
        ("/specs", t.nav_specs, "▤"),
        ("/builds", t.nav_builds, "▣"),
        ("/usage", t.nav_usage, "▤"),
        ("/settings", t.nav_settings, "☰"),
    ]
    .into_iter()
    .map(|(href, label, icon)| {
        view! {
            <li>
                <A href=href exact=href == "/">
                    <span class="nav-icon" aria-hidden="true">{icon}</span>
                    <span>{label}</span>
                </A>
            </li>
        }
    })
    .collect_view()
}

/// Sidebar navigation, top bar with theme and user menu, and the page.
#[component]
pub fn AppLayout() -> impl IntoView {
    let t = t();
    let logout = ServerAction::<Logout>::new();
    let update_profile = ServerAction::<UpdateProfile>::new();
    let me = crate::data::load(move || update_profile.version().get(), |_| get_me());
    provide_context(Session { me, logout, update_profile });
    let mobile_menu = NodeRef::<leptos::html::Details>::new();
    close_on_navigation(mobile_menu);
    let user = move || me.get().and_then(Result::ok).flatten();
    let admin_link = move || {
        user().filter(|u| u.is_admin).map(|_| {
            view! {
                <li>
                    <A href="/admin">
                        <span class="nav-icon" aria-hidden="true">"⚑"</span>
                        <span>{t.nav_admin}</span>
                    </A>
                </li>
            }
        })
    };
    view! {
        <a class="skip-link" href="#main">{t.skip_to_content}</a>
        <div class="app">
            <aside class="sidebar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    {t.app_name}
                </A>
                <nav aria-label=t.nav_label>
                    <ul class="nav">
                        {nav_links(t)}
                        <Transition fallback=|| ()>{admin_link}</Transition>
                    </ul>
                </nav>
            </aside>
            <div class="main-col">
                <header class="topbar">
                    <details class="mobile-nav" node_ref=mobile_menu>
                        <summary class="icon-btn" aria-label=t.menu>"☰"</summary>
                        <nav aria-label=t.nav_label>
                            <ul class="nav">{nav_links(t)} <Transition fallback=|| ()>{admin_link}</Transition></ul>
                        </nav>
                    </details>
                    <A href="/" attr:class="brand brand-compact">
                        <span class="brand-mark" aria-hidden="true">"◆"</span>
                        {t.app_name}
                    </A>
                    <div class="topbar-end">
                        <A href="/chat" attr:class="btn btn-primary btn-small" attr:title=t.chat_new>"+ " {t.chat_new_short}</A>
                        <ThemeSwitcher />
                        <Transition fallback=|| view! { <span class="avatar skeleton-avatar"></span> }>
                            {move || user().map(|u| view! { <UserMenu me=u /> })}
                        </Transition>
                    </div>
                </header>
                <main id="main" tabindex="-1">
                    <Outlet />
                </main>
            </div>
        </div>
    }
}

/// A `<details>` menu closes once one of its links took the user somewhere.
fn close_on_navigation(menu: NodeRef<leptos::html::Details>) {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        location.pathname.track();
        if let Some(d) = menu.get_untracked() {
            d.set_open(false);
        }
    });
}

fn initials(name: &str) -> String {
    name.split_whitespace().filter_map(|w| w.chars().next()).take(2).flat_map(char::to_uppercase).collect()
}

#[component]
fn UserMenu(me: Me) -> impl IntoView {
    let t = t();
    let session = use_session();
    let menu = NodeRef::<leptos::html::Details>::new();
    close_on_navigation(menu);
    view! {
        <details class="user-menu" node_ref=menu>
            <summary aria-label=t.user_menu>
                <span class="avatar" aria-hidden="true">{initials(&me.display_name)}</span>
                <span class="user-name" data-testid="user-name">{me.display_name.clone()}</span>
            </summary>
            <div class="menu" role="menu">
                <p class="menu-note">
                    {t.signed_in_as} <br /> <strong>{me.email.clone()}</strong>
                </p>
                <A href="/settings" attr:role="menuitem">{t.nav_settings}</A>
                <ActionForm action=session.logout>
                    <button type="submit" class="menu-item" role="menuitem">{t.sign_out}</button>
                </ActionForm>
            </div>
        </details>
    }
}
