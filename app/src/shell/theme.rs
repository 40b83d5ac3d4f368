//! Light, dark or system theme. Kept in a `theme` cookie so the server renders the right
//! one (no flash), switchable with a form that works without JavaScript.

use leptos::prelude::*;

use crate::components::action_ok;
use crate::error::AppError;
use crate::i18n::t;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
    System,
}

impl Theme {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "light" => Some(Self::Light),
            "dark" => Some(Self::Dark),
            "system" => Some(Self::System),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
            Self::System => "system",
        }
    }
}

#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub const THEME_COOKIE: &str = "theme";

/// The theme cookie of the current request (server side).
pub fn request_theme() -> String {
    #[cfg(feature = "ssr")]
    return crate::ssr::request_cookie(THEME_COOKIE).unwrap_or_default();
    #[cfg(not(feature = "ssr"))]
    String::new()
}

/// Remembers the theme in a cookie for a year.
#[server(endpoint = "prefs/theme")]
pub async fn set_theme(theme: String) -> Result<(), AppError> {
    let Some(theme) = Theme::parse(&theme) else {
        return Err(AppError::invalid(model::FieldErrors(vec![model::FieldError::new("theme", "invalid")])));
    };
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        let secure = crate::ssr::engine()?.settings.is_https();
        let value = format!(
            "{THEME_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{}",
            theme.as_str(),
            if secure { "; Secure" } else { "" }
        );
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            res.append_header(http::header::SET_COOKIE, v);
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct ThemeCtx {
    theme: RwSignal<Theme>,
    action: ServerAction<SetTheme>,
}

/// Provides the theme and its switcher; returns the signal `<html data-theme>` follows.
pub fn provide_theme(initial: String) -> Signal<Theme> {
    let theme = RwSignal::new(Theme::parse(&initial).unwrap_or(Theme::System));
    let action = ServerAction::<SetTheme>::new();
    let ok = action_ok(action);
    Effect::new(move |_| {
        if ok.get()
            && let Some(t) = action.input().get_untracked().and_then(|i| Theme::parse(&i.theme))
        {
            theme.set(t);
        }
    });
    provide_context(ThemeCtx { theme, action });
    theme.into()
}

/// Three buttons: light, dark, system. The current one is pressed.
#[component]
pub fn ThemeSwitcher() -> impl IntoView {
    let ctx = expect_context::<ThemeCtx>();
    let t = t();
    let choice = move |value: Theme, label: &'static str, icon: &'static str| {
        let action = ctx.action;
        view! {
            <ActionForm action=action attr:class="theme-choice">
                <input type="hidden" name="theme" value=value.as_str() />
                <button
                    type="submit"
                    class="icon-btn"
                    title=label
                    aria-label=label
                    aria-pressed=move || if ctx.theme.get() == value { "true" } else { "false" }
                    on:click=move |_| ctx.theme.set(value)
                >
                    <span aria-hidden="true">{icon}</span>
                </button>
            </ActionForm>
        }
    };
    view! {
        <div class="theme-switcher" role="group" aria-label=t.theme>
            {choice(Theme::Light, t.theme_light, "☀")}
            {choice(Theme::Dark, t.theme_dark, "☾")}
            {choice(Theme::System, t.theme_system, "◐")}
        </div>
    }
}
