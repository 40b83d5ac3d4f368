//! Request hygiene in one pass: who the client is, who the user is (refreshing an expired
//! access token on the way), Origin checks for server functions, rate limits, and the
//! sign-in gate for pages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use app::ssr::{PageCsp, RequestId, cookie_value, session_cookies};
use app::{AppError, ErrorCode};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use engine::auth::{ACCESS_COOKIE, ClientInfo, REFRESH_COOKIE};
use engine::settings::ProxyHeader;
use engine::{AuthError, CurrentUser, Engine};
use tracing::Instrument;

/// The span every log line of a request is written in.
fn make_span(req: &Request<Body>) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// Paths anyone may open without signing in.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/register" | "/healthz" | "/readyz" | "/favicon.ico" | "/favicon.svg" | "/robots.txt")
        || path.starts_with("/pkg/")
        // A conversation's share link: read-only, for anyone holding it.
        || path.starts_with("/s/")
        || path.starts_with("/api/")
        // The OpenAI-compatible API authenticates by API key and answers in its own shape.
        || path.starts_with("/v1/")
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// A JSON error in the shape server functions use.
fn api_error(e: AppError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut e = e;
    e.request_id = Some(request_id.to_owned());
    let retry = e.retry_after_secs;
    let mut res = (status, axum::Json(e)).into_response();
    if let Some(secs) = retry {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// The origin the browser must be on for a state-changing request to count.
fn origin_ok(engine: &Engine, req: &Request) -> bool {
    let h = req.headers();
    let sent = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
        // Some browsers omit Origin on same-origin requests; Referer then tells.
        let r = h.get(header::REFERER)?.to_str().ok()?;
        let after_scheme = r.find("://")? + 3;
        let end = r[after_scheme..].find('/').map_or(r.len(), |i| after_scheme + i);
        Some(r[..end].to_owned())
    });
    let Some(sent) = sent else { return false };
    let public = &engine.settings.public_origin;
    if !public.is_empty() {
        return sent.trim_end_matches('/') == public.trim_end_matches('/');
    }
    // No public origin configured: same-origin with the Host the request was sent to.
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    !host.is_empty() && (sent == format!("http://{host}") || sent == format!("https://{host}"))
}

/// With no `public_origin`, whether the request names this server as only this server can
/// be named: an IP address, a loopback name or the bound address. Any other name is
/// someone's DNS pointing at us (a rebinding page would otherwise pass the Origin check,
/// since it sends a matching `Host` and `Origin`). No `Host` at all is no browser's.
fn host_ok(engine: &Engine, req: &Request) -> bool {
    if !engine.settings.public_origin.is_empty() {
        return true;
    }
    let host = match req.headers().get(header::HOST) {
        Some(v) => match v.to_str() {
            Ok(h) => h,
            Err(_) => return false,
        },
        None => match req.uri().authority() {
            Some(a) => a.as_str(),
            None => return true,
        },
    };
    let name = host_name(host);
    if name.is_empty() {
        return false;
    }
    const LOCAL: &str = ".localhost";
    let b = name.as_bytes();
    engine::infra::net::literal_ip(name).is_some()
        || name.eq_ignore_ascii_case("localhost")
        || (b.len() > LOCAL.len() && b[b.len() - LOCAL.len()..].eq_ignore_ascii_case(LOCAL.as_bytes()))
        || host_name(&engine.settings.bind).eq_ignore_ascii_case(name)
}

/// The name part of `host[:port]` (`[v6]` kept in its brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The client's address: the socket's, or, when the socket is a trusted proxy, the
/// nearest address in the chain of the header the proxies write (`proxy_header`) that is
/// not itself a trusted proxy. Anyone else's forwarding headers, and the header the proxies
/// do not write (they pass it on as the client sent it), are ignored, so a client cannot
/// pick the address its requests are limited under.
fn client_ip(engine: &Engine, req: &Request) -> String {
    let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical()) else {
        return String::new();
    };
    let trusted = &engine.trusted_proxies;
    if !trusted.contains(peer) {
        return peer.to_string();
    }
    let h = req.headers();
    let chain: Vec<&str> = match engine.settings.proxy_header {
        ProxyHeader::Forwarded => h
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"'))
                })
            })
            .collect(),
        ProxyHeader::XForwardedFor => {
            h.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect()
        }
    };
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(ip) = forwarded_ip(hop.trim()) else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client.to_string()
}

/// An address as forwarding headers write it: `1.2.3.4`, `1.2.3.4:5678`, `[v6]`,
/// `[v6]:5678` or a bare v6 address.
fn forwarded_ip(s: &str) -> Option<std::net::IpAddr> {
    let s = s.trim_matches('"');
    let ip = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next()?.parse().ok()?
    } else {
        match s.parse() {
            Ok(ip) => ip,
            Err(_) => s.rsplit_once(':')?.0.parse().ok()?,
        }
    };
    Some(std::net::IpAddr::to_canonical(&ip))
}

/// Security headers on every response: set here, in the one middleware every request
/// passes, rather than as a layer each (axum boxes and clones every route layer again
/// for each request).
const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    // `same-origin`: forms posted without JavaScript are sent back to their page by the
    // Referer, so it must be sent within the site, and only there.
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    (header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"),
];

/// Pages set their own policy with a nonce; everything else may not run or frame anything.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Request ids: this process's random prefix and a counter, unique across restarts and
/// instances without asking the kernel for randomness on every request (a v4 UUID did).
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

static REQUEST_IDS: LazyLock<RequestIds> = LazyLock::new(|| RequestIds {
    prefix: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
    next: AtomicU64::new(1),
});

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The request's id: the one a proxy in front sent, when it looks like an id, else a new one.
fn request_id(req: &Request) -> HeaderValue {
    let sent = req.headers().get(&REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    sent.cloned().unwrap_or_else(|| {
        let n = REQUEST_IDS.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", REQUEST_IDS.prefix)).unwrap_or(HeaderValue::from_static("-"))
    })
}

/// What every request goes through, in one middleware (each layer on the router is boxed
/// and cloned for every request; request ids, the log span, the security headers and the
/// body limit as separate layers cost about 1.5 µs of a 16 µs call): a request id on the
/// request, the response and every log line; the checks below; then the security headers
/// on whatever answers, and an error line for a server failure.
pub async fn hygiene(State(engine): State<Engine>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let span = make_span(&req);
    let https = engine.settings.is_https();
    let mut res = checks(engine, req, next).instrument(span.clone()).await;
    let status = res.status();
    let h = res.headers_mut();
    h.insert(REQUEST_ID, id);
    for (name, value) in SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
    }
    let _in = span.enter();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), latency_ms, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), latency_ms, "request answered");
    }
    res
}

async fn checks(engine: Engine, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if !host_ok(&engine, &req) && !matches!(path.as_str(), "/healthz" | "/readyz") {
        tracing::warn!(host = ?req.headers().get(header::HOST), "request for another host refused");
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "This server answers only to its own address (an IP address or localhost). To serve it \
             under a name, set public_origin (AGENTRY_PUBLIC_ORIGIN) to the address people use.\n",
        )
            .into_response();
    }
    let ip = client_ip(&engine, &req);
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let client = ClientInfo { ip, user_agent };

    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if is_api(&path) && state_changing && !origin_ok(&engine, &req) {
        tracing::warn!(path, "cross-origin request refused");
        return api_error(
            AppError::new(ErrorCode::Forbidden, "Cross-origin request refused.")
                .with_hint("Server functions accept requests only from this site's own pages."),
            &request_id,
        );
    }

    // Who is this? A valid access token, else a refresh token that rotates now.
    let mut set_cookies = Vec::new();
    let mut user: Option<CurrentUser> = None;
    if let Some(access) = cookie_value(req.headers(), ACCESS_COOKIE).filter(|v| !v.is_empty()) {
        match engine.authenticate(&access).await {
            Ok(u) => user = Some(u),
            Err(AuthError::Store(e)) => return unavailable(&path, &e, &request_id),
            Err(_) => {}
        }
    }
    if user.is_none()
        && let Some(refresh) = cookie_value(req.headers(), REFRESH_COOKIE).filter(|v| !v.is_empty())
    {
        match engine.refresh(&refresh, &client).await {
            Err(AuthError::Store(e)) => return unavailable(&path, &e, &request_id),
            Ok((u, tokens)) => {
                set_cookies = session_cookies(&tokens, engine.settings.is_https());
                // Later handlers read the cookie header: give them the new access token.
                if let Ok(v) = HeaderValue::from_str(&format!("{ACCESS_COOKIE}={}", tokens.access)) {
                    req.headers_mut().append(header::COOKIE, v);
                }
                user = Some(u);
            }
            Err(e) => tracing::debug!(error = %e, "refresh refused"),
        }
    }

    if is_api(&path) {
        let key = user.as_ref().map_or_else(|| format!("ip:{}", client.ip), |u| format!("user:{}", u.id));
        if let Err(wait) = engine.limits.requests.check(&key) {
            let mut e = AppError::new(ErrorCode::RateLimited, "Too many requests.")
                .with_hint(format!("Wait {} seconds, then try again.", wait.secs()));
            e.retry_after_secs = Some(wait.secs());
            return api_error(e, &request_id);
        }
    }

    let is_page = matches!(*req.method(), Method::GET | Method::HEAD) && !is_public(&path);
    if is_page && user.is_none() {
        let next = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let target = if next == "/" { "/login".to_owned() } else { format!("/login?next={}", encode_query(&next)) };
        return Redirect::to(&target).into_response();
    }
    if user.is_some() && matches!(path.as_str(), "/login" | "/register") && *req.method() == Method::GET {
        return Redirect::to("/").into_response();
    }

    if let Some(u) = user {
        req.extensions_mut().insert(u);
    }
    req.extensions_mut().insert(client);
    req.extensions_mut().insert(RequestId(request_id));
    let csp = PageCsp::default();
    req.extensions_mut().insert(csp.clone());
    let signed_in = user_signed_in(&req);
    let mut res = match body_refusal(&engine, &req) {
        None => {
            let over = Arc::new(AtomicBool::new(false));
            let res = next.run(limited(&engine, req, over.clone())).await;
            // A body without a declared length that grew past the limit: whatever the
            // handler made of the cut-off body, the answer is 413.
            if over.load(Ordering::Relaxed) {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
            } else {
                res
            }
        }
        Some(refused) => refused.into_response(),
    };
    // Pages and answers for a signed-in person (an API key shown once, among them) stay
    // out of every cache, the browser's back/forward history included.
    if signed_in && !path.starts_with("/pkg/") && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(v) = csp.0.lock().ok().and_then(|mut c| c.take()) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    for c in set_cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// Percent-encodes a path for use as a query value.
fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Server functions that take files, and so a larger body.
pub const UPLOAD_PATHS: [&str; 2] = ["/api/skills/upload", "/api/chat/attach"];

/// Why a request's body is refused before it is read: a declared length over the limit
/// (`max_upload_bytes` for uploads, `max_body_bytes` for the rest), or an upload that is
/// not multipart (server functions cannot read anything else there). A body that grows
/// past the limit while being read fails then ([`limited`]).
fn body_refusal(engine: &Engine, req: &Request) -> Option<(StatusCode, &'static str)> {
    let limit = body_limit(engine, req);
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Some((StatusCode::PAYLOAD_TOO_LARGE, "request body too large"));
    }
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data") && ct.contains("boundary="));
    let upload = UPLOAD_PATHS.contains(&req.uri().path());
    (upload && req.method() == Method::POST && !multipart)
        .then_some((StatusCode::UNSUPPORTED_MEDIA_TYPE, "send the files as multipart/form-data"))
}

/// Forms that carry a spec: up to `model::specs::BODY_MAX` bytes of text, which URL-encoding
/// can make three times longer.
const SPEC_PATHS: [&str; 2] = ["/api/specs/create", "/api/specs/update"];
const SPEC_FORM_MAX: usize = 3 * model::specs::BODY_MAX + 64 * 1024;

fn body_limit(engine: &Engine, req: &Request) -> usize {
    if UPLOAD_PATHS.contains(&req.uri().path()) {
        engine.settings.max_upload_bytes
    } else if SPEC_PATHS.contains(&req.uri().path()) {
        engine.settings.max_body_bytes.max(SPEC_FORM_MAX)
    } else {
        engine.settings.max_body_bytes
    }
}

/// The request with its body cut off at the limit; `over` is set when it was.
fn limited(engine: &Engine, req: Request, over: Arc<AtomicBool>) -> Request {
    let limit = body_limit(engine, &req);
    req.map(|b| Body::new(Watched { inner: http_body_util::Limited::new(b, limit), over }))
}

fn user_signed_in(req: &Request) -> bool {
    req.extensions().get::<CurrentUser>().is_some()
}

/// A limited body that notes when its limit was hit, so the answer can be a 413 whatever
/// the handler made of the error.
struct Watched {
    inner: http_body_util::Limited<Body>,
    over: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(e))) = &polled
            && e.is::<http_body_util::LengthLimitError>()
        {
            self.over.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The store cannot be reached: say so (503), rather than take the person for signed out.
fn unavailable(path: &str, e: &dyn std::fmt::Display, request_id: &str) -> Response {
    tracing::error!(error = %e, "the database is unavailable");
    let mut res = if is_api(path) {
        api_error(
            AppError::new(ErrorCode::Unavailable, "Agentry cannot reach its database.")
                .with_hint("Try again in a moment; if it lasts, tell whoever runs this server."),
            request_id,
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><meta charset=utf-8><title>Agentry is unavailable</title>\
             <h1>Agentry cannot reach its database</h1>\
             <p>Nothing you saved is lost. Reload this page in a moment; if this lasts, tell whoever runs \
             this server.</p>",
        )
            .into_response()
    };
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}
