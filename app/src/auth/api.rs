//! Server functions for accounts and sessions.

use leptos::prelude::*;
use model::accounts::Me;

use crate::error::AppError;

/// Creates an account, signs it in and goes home.
#[server(endpoint = "auth/register")]
pub async fn register(
    email: String,
    password: String,
    #[server(default)] display_name: String,
) -> Result<(), AppError> {
    let engine = crate::ssr::engine()?;
    let (_, tokens) = engine.register(&email, &password, &display_name, &crate::ssr::client()).await?;
    crate::ssr::set_session(&engine, &tokens);
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs in and goes to `next` (a local path) or home.
#[server(endpoint = "auth/login")]
pub async fn login(email: String, password: String, #[server(default)] next: String) -> Result<(), AppError> {
    let engine = crate::ssr::engine()?;
    let (_, tokens) = engine.login(&email, &password, &crate::ssr::client()).await?;
    crate::ssr::set_session(&engine, &tokens);
    leptos_axum::redirect(safe_next(&next));
    Ok(())
}

/// Ends this session and goes to the sign-in page.
#[server(endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    let engine = crate::ssr::engine()?;
    if let Some(user) = crate::ssr::current_user() {
        engine.logout(&user).await?;
    }
    crate::ssr::clear_session(&engine);
    leptos_axum::redirect("/login");
    Ok(())
}

/// Rotates the refresh token now (the middleware also does it when the access token expires).
#[server(endpoint = "auth/refresh")]
pub async fn refresh_session() -> Result<(), AppError> {
    let engine = crate::ssr::engine()?;
    let token = crate::ssr::request_cookie(engine::auth::REFRESH_COOKIE).unwrap_or_default();
    let (_, tokens) = engine.refresh(&token, &crate::ssr::client()).await?;
    crate::ssr::set_session(&engine, &tokens);
    Ok(())
}

/// The signed-in user, or `None`. The middleware already read the user from the store
/// for this request, so this costs no query.
#[server(endpoint = "auth/me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    Ok(crate::ssr::current_user().map(Me::from))
}

/// Whether new accounts may be created right now.
#[server(endpoint = "auth/registration")]
pub async fn get_registration_open() -> Result<bool, AppError> {
    Ok(crate::ssr::engine()?.registration_open().await?)
}

/// Only same-site paths: `/x` but not `//evil.example` or `http://…`.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 512
        && next.chars().all(|c| c.is_ascii_graphic());
    if ok { next } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_kept_on_this_site() {
        assert_eq!(safe_next("/agents?x=1"), "/agents?x=1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "", "/a b", "javascript:alert(1)"] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }
}
