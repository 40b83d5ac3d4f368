//! Server-only glue between server functions and the engine: the shared state, the
//! signed-in user the middleware found, cookies, and error stamping.

use axum::http::{HeaderValue, StatusCode, header};
use engine::auth::{ACCESS_COOKIE, ClientInfo, REFRESH_COOKIE};
use engine::{CurrentUser, Engine, IssuedTokens};
use http::request::Parts;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use crate::error::{AppError, ErrorCode};

/// The axum state: Leptos' options for rendering, and the engine for server functions.
/// Leptos clones it into every server function call's context, so it is two pointers
/// (the options' many strings were cloned and dropped on every call).
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: std::sync::Arc<LeptosOptions>,
    pub engine: Engine,
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        LeptosOptions::clone(&s.leptos_options)
    }
}

/// The id the request-id middleware gave this request; shown with internal errors.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Where a rendered page leaves its Content-Security-Policy (it holds the render's
/// nonce) for the middleware to put on the response. The header set through Leptos'
/// `ResponseOptions` alone went missing now and then once routes were lazy.
#[derive(Clone, Debug, Default)]
pub struct PageCsp(pub std::sync::Arc<std::sync::Mutex<Option<HeaderValue>>>);

/// Reads the request's parts in place: cloning them (every header and extension) cost
/// more than the rest of a small server function.
fn with_parts<R>(f: impl FnOnce(&Parts) -> R) -> Option<R> {
    leptos::prelude::with_context::<Parts, _>(f)
}

pub fn engine() -> Result<Engine, AppError> {
    use_context::<AppState>().map(|s| s.engine).ok_or_else(|| {
        tracing::error!("AppState missing from the server function context");
        AppError::new(ErrorCode::Internal, "Something went wrong on the server.")
    })
}

/// The signed-in user, or `unauthenticated`.
pub fn user() -> Result<CurrentUser, AppError> {
    current_user().ok_or_else(|| {
        AppError::new(ErrorCode::Unauthenticated, "You are not signed in.").with_hint("Sign in, then try again.")
    })
}

/// The signed-in user, if any (set by the auth middleware).
pub fn current_user() -> Option<CurrentUser> {
    with_parts(|p| p.extensions.get::<CurrentUser>().cloned()).flatten()
}

/// A run's events as a streamed response: one JSON object per line, never cached or held
/// back by a proxy.
pub fn ndjson(
    events: futures::stream::BoxStream<'static, model::chat::SeqEvent>,
) -> leptos::server_fn::codec::ByteStream<AppError> {
    use futures::StreamExt;
    if let Some(res) = use_context::<ResponseOptions>() {
        res.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        res.insert_header(header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    }
    let lines = events.map(|e| {
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, AppError>(line)
    });
    leptos::server_fn::codec::ByteStream::new(lines)
}

/// A request header's value, when it is text.
pub fn header(name: &str) -> Option<String> {
    with_parts(|p| p.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)).flatten()
}

pub fn client() -> ClientInfo {
    with_parts(|p| p.extensions.get::<ClientInfo>().cloned()).flatten().unwrap_or_default()
}

fn is_form_post(p: &Parts) -> bool {
    p.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

/// Adds the request id and sets the HTTP status of the response. A plain HTML form post
/// (no JavaScript) is answered with a redirect back to the form, so its status stays.
pub fn stamp(mut e: AppError) -> AppError {
    if let Some((request_id, form_post)) =
        with_parts(|p| (p.extensions.get::<RequestId>().map(|r| r.0.clone()), is_form_post(p)))
    {
        e.request_id = request_id;
        if !form_post
            && let (Some(res), Ok(status)) = (use_context::<ResponseOptions>(), StatusCode::from_u16(e.code.status()))
        {
            res.set_status(status);
        }
    }
    e
}

/// Makes the response a file download named `filename` (ASCII letters, digits, `.-_` only).
pub fn set_download(filename: &str) {
    let safe: String =
        filename.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    if let (Some(res), Ok(v)) =
        (use_context::<ResponseOptions>(), HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")))
    {
        res.insert_header(header::CONTENT_DISPOSITION, v);
    }
}

pub fn set_retry_after(secs: u64) {
    if let Some(res) = use_context::<ResponseOptions>() {
        res.insert_header(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// Logs an internal error with its whole chain and returns the generic error the user sees.
pub fn internal(e: &(dyn std::error::Error + 'static)) -> AppError {
    let mut chain = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let err = AppError::new(ErrorCode::Internal, "Something went wrong on the server.")
        .with_hint("Try again. If it keeps failing, give an administrator the request id.");
    tracing::error!(error = %chain, request_id = err.request_id.as_deref().unwrap_or(""), "internal error");
    err
}

fn cookie(name: &str, value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")).ok()
}

/// `Set-Cookie` values for freshly issued tokens.
pub fn session_cookies(tokens: &IssuedTokens, secure: bool) -> Vec<HeaderValue> {
    let mut v: Vec<HeaderValue> =
        cookie(ACCESS_COOKIE, &tokens.access, tokens.access_max_age_secs, secure).into_iter().collect();
    if let Some(r) = &tokens.refresh {
        v.extend(cookie(REFRESH_COOKIE, r, tokens.refresh_max_age_secs, secure));
    }
    v
}

/// `Set-Cookie` values that delete both session cookies.
pub fn cleared_cookies(secure: bool) -> Vec<HeaderValue> {
    [ACCESS_COOKIE, REFRESH_COOKIE].iter().filter_map(|n| cookie(n, "", 0, secure)).collect()
}

fn append_cookies(values: Vec<HeaderValue>) {
    if let Some(res) = use_context::<ResponseOptions>() {
        for v in values {
            res.append_header(header::SET_COOKIE, v);
        }
    }
}

/// Where a key just created waits for the page a plain form post returns to.
const NEW_KEY_COOKIE: &str = "agentry_new_key";

/// A form posted without JavaScript: its answer is a redirect back to the page, so what
/// the server function returned never reaches it.
pub fn plain_form_post() -> bool {
    with_parts(is_form_post).unwrap_or(false)
}

/// Keeps a new API key for the next page, in an httpOnly cookie that lives two minutes
/// and is cleared when read (for a form posted without JavaScript).
pub fn flash_new_key(engine: &Engine, key: &str) {
    append_cookies(cookie(NEW_KEY_COOKIE, key, 120, engine.settings.is_https()).into_iter().collect());
}

/// The key [`flash_new_key`] kept, once.
pub fn take_new_key(engine: &Engine) -> Option<String> {
    let key = request_cookie(NEW_KEY_COOKIE).filter(|k| !k.is_empty())?;
    append_cookies(cookie(NEW_KEY_COOKIE, "", 0, engine.settings.is_https()).into_iter().collect());
    Some(key)
}

pub fn set_session(engine: &Engine, tokens: &IssuedTokens) {
    append_cookies(session_cookies(tokens, engine.settings.is_https()));
}

pub fn clear_session(engine: &Engine) {
    append_cookies(cleared_cookies(engine.settings.is_https()));
}

/// A cookie's value from the request.
pub fn request_cookie(name: &str) -> Option<String> {
    with_parts(|p| cookie_value(&p.headers, name)).flatten()
}

pub fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The locale for this request: the user's choice, else the best of Accept-Language.
pub fn request_locale() -> String {
    with_parts(|p| {
        if let Some(l) = p.extensions.get::<CurrentUser>().map(|u| u.locale.clone()).filter(|l| !l.is_empty()) {
            return l;
        }
        let accept = p.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        crate::i18n::negotiate(accept).to_owned()
    })
    .unwrap_or_else(|| crate::i18n::negotiate("").to_owned())
}

/// The page's Content-Security-Policy: scripts only from this origin or with this
/// response's nonce (Leptos puts it on its hydration scripts), WASM allowed, nothing
/// may frame the page.
pub fn set_csp() {
    let Some(res) = use_context::<ResponseOptions>() else { return };
    let nonce = leptos::nonce::use_nonce().map(|n| n.to_string()).unwrap_or_default();
    // `cargo leptos watch` reloads the page over a websocket on the reload port.
    let reload = match use_context::<AppState>() {
        Some(s) if cfg!(debug_assertions) => {
            format!(" ws://{}:{}", s.leptos_options.site_addr.ip(), s.leptos_options.reload_port)
        }
        _ => String::new(),
    };
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'{reload}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        if let Some(slot) = with_parts(|p| p.extensions.get::<PageCsp>().cloned()).flatten()
            && let Ok(mut slot) = slot.0.lock()
        {
            *slot = Some(v.clone());
        }
        res.insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
}
