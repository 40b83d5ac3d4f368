//! The real app over HTTP: sessions, CSRF, limits, headers and bad input.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, ORIGIN, RETRY_AFTER};
use serde_json::Value;
use server::testing::{Jar, TestApp};

async fn json(res: reqwest::Response) -> Value {
    res.json().await.unwrap_or(Value::Null)
}

async fn display_name(app: &TestApp, jar: &Jar) -> Option<String> {
    let me = json(app.call(jar, "auth/me", &[]).await).await;
    me.get("display_name").and_then(Value::as_str).map(str::to_owned)
}

#[tokio::test]
async fn register_signs_in_and_the_first_account_is_admin() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    let me = json(app.call(&jar, "auth/me", &[]).await).await;
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["is_admin"], true);
    let second = app.register("bob@example.com").await;
    let me = json(app.call(&second, "auth/me", &[]).await).await;
    assert_eq!(me["is_admin"], false);
}

#[tokio::test]
async fn wrong_password_is_a_401_naming_the_password_field() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    let res =
        app.call(&Jar::default(), "auth/login", &[("email", "ada@example.com"), ("password", "not my password")]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = json(res).await;
    assert_eq!(body["code"], "unauthenticated");
    assert_eq!(body["fields"][0]["field"], "password");
}

#[tokio::test]
async fn duplicate_email_names_the_email_field() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    let res = app
        .call(&Jar::default(), "auth/register", &[("email", "Ada@Example.com"), ("password", "another good one")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json(res).await;
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(body["fields"][0]["field"], "email");
    assert_eq!(body["fields"][0]["rule"], "taken");
}

#[tokio::test]
async fn malformed_payload_is_a_400_naming_the_missing_field() {
    let app = TestApp::spawn().await;
    let res = app.call(&Jar::default(), "auth/login", &[("password", "x")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = json(res).await;
    assert_eq!(body["code"], "bad_request");
    assert_eq!(body["fields"][0]["field"], "email", "{body}");
}

#[tokio::test]
async fn oversized_body_is_a_413_and_stores_nothing() {
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 64 * 1024).await;
    let huge = "x".repeat(100 * 1024);
    let res = app.call(&Jar::default(), "auth/register", &[("email", "ada@example.com"), ("password", &huge)]).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let n: i64 = engine::sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.engine.store.pool)
        .await
        .expect("count");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn cross_origin_form_post_with_the_cookie_changes_nothing() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    for origin in ["http://evil.example", "null"] {
        let res = app
            .http
            .post(app.url("/api/settings/profile"))
            .header(ORIGIN, origin)
            .header(COOKIE, jar.header())
            .header("accept", "text/html")
            .form(&[("display_name", "pwned"), ("locale", "")])
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "origin {origin}");
    }
    // No Origin and no Referer at all is refused too.
    let res = app
        .http
        .post(app.url("/api/settings/profile"))
        .header(COOKIE, jar.header())
        .form(&[("display_name", "pwned")])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(display_name(&app, &jar).await.as_deref(), Some("ada"));
    // The same request from the site itself works.
    let res = app.call(&jar, "settings/profile", &[("display_name", "Ada L."), ("locale", "")]).await;
    assert!(res.status().is_success());
    assert_eq!(display_name(&app, &jar).await.as_deref(), Some("Ada L."));
}

#[tokio::test]
async fn bad_tokens_are_401_on_protected_functions() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    let good = jar.access().to_owned();
    let (head, rest) = good.split_once('.').expect("jwt");
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let payload = rest.split('.').next().expect("payload");
    let cases = [
        ("tampered", format!("{head}.{payload}x.{}", rest.split('.').nth(1).unwrap_or(""))),
        ("alg none", format!("{none_header}.{payload}.")),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in cases {
        let only_access = Jar([(engine::auth::ACCESS_COOKIE.to_owned(), token)].into_iter().collect());
        let res = app.call(&only_access, "settings/profile", &[("display_name", "x")]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    assert_eq!(display_name(&app, &jar).await.as_deref(), Some("ada"));
}

/// A token with the given claims, signed with `key`.
/// An access token with these claims, signed with `key`, shaped like the server's own.
fn forge(claims: &Value, key: &[u8]) -> String {
    let header = jsonwebtoken::Header { typ: Some("at+jwt".into()), ..Default::default() };
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(key)).expect("encode")
}

fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64"))
        .expect("json")
}

#[tokio::test]
async fn expired_and_foreign_key_tokens_are_401() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    let claims = claims_of(jar.access());
    let key = secrecy::ExposeSecret::expose_secret(&app.engine.keys.jwt).to_vec();
    let mut expired = claims.clone();
    expired["exp"] = (claims["iat"].as_u64().expect("iat") - 1).into();
    for (what, token) in [("expired", forge(&expired, &key)), ("foreign key", forge(&claims, &[9u8; 32]))] {
        let only_access = Jar([(engine::auth::ACCESS_COOKIE.to_owned(), token)].into_iter().collect());
        let res = app.call(&only_access, "settings/profile", &[("display_name", "x")]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // The same claims signed with the server's key do work: the refusals above are about
    // expiry and key, nothing else.
    let twin = Jar([(engine::auth::ACCESS_COOKIE.to_owned(), forge(&claims, &key))].into_iter().collect());
    assert!(app.call(&twin, "settings/profile", &[("display_name", "Ada")]).await.status().is_success());
}

#[tokio::test]
async fn login_goes_back_only_to_pages_of_this_site() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    for (next, expected) in [("/agents", "/agents"), ("//evil.example/x", "/"), ("https://evil.example", "/")] {
        let form = [("email", "ada@example.com"), ("password", engine::testing::PASSWORD), ("next", next)];
        let res = app.call(&Jar::default(), "auth/login", &form).await;
        assert!(res.status().is_success());
        assert_eq!(res.headers()[LOCATION], expected, "next={next}");
    }
}

#[tokio::test]
async fn one_user_never_sees_another() {
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let a = json(app.call(&admin, "auth/me", &[]).await).await;
    let b = json(app.call(&member, "auth/me", &[]).await).await;
    assert_eq!((a["email"].as_str(), b["email"].as_str()), (Some("ada@example.com"), Some("bob@example.com")));
    // Renaming oneself touches nobody else.
    assert!(app.call(&member, "settings/profile", &[("display_name", "Bob B.")]).await.status().is_success());
    assert_eq!(display_name(&app, &admin).await.as_deref(), Some("ada"));
    // A member cannot list users.
    assert_eq!(app.call(&member, "admin/overview", &[]).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn shutdown_lets_the_server_stop_within_the_grace_period() {
    let mut settings = engine::testing::settings(engine::infra::store::Backend::Sqlite).await;
    settings.bind = "127.0.0.1:0".into();
    settings.shutdown_grace_secs = 1;
    let app = server::startup::Application::build(settings).await.expect("build");
    let base = format!("http://{}", app.addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    assert!(reqwest::get(format!("{base}/healthz")).await.expect("up").status().is_success());
    tx.send(()).expect("signal");
    tokio::time::timeout(std::time::Duration::from_secs(5), running).await.expect("stopped in time").expect("join");
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn logout_makes_the_old_cookies_useless() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    let res = app.call(&jar, "auth/logout", &[]).await;
    assert!(res.status().is_success());
    let cleared = server::testing::set_cookies(&res);
    assert_eq!(cleared.get(engine::auth::ACCESS_COOKIE).map(String::as_str), Some(""));
    // Replaying the old cookies (access and refresh) gets nothing.
    let res = app.call(&jar, "settings/profile", &[("display_name", "x")]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(app.call(&jar, "auth/me", &[]).await).await, Value::Null);
}

#[tokio::test]
async fn expired_access_is_renewed_from_the_refresh_cookie_and_reuse_revokes() {
    let app = TestApp::spawn_with(|s| s.auth.refresh_reuse_grace_secs = 0).await;
    let jar = app.register("ada@example.com").await;
    // Only the refresh cookie: the middleware rotates it and signs the request in.
    let mut refresh_only = jar.clone();
    refresh_only.0.remove(engine::auth::ACCESS_COOKIE);
    let res = app.call(&refresh_only, "auth/me", &[]).await;
    let rotated = server::testing::set_cookies(&res);
    assert_eq!(json(res).await["email"], "ada@example.com");
    assert!(rotated.contains_key(engine::auth::REFRESH_COOKIE), "a new refresh token was issued");
    // The old refresh token again: the family is revoked, the new tokens die with it.
    assert_eq!(json(app.call(&refresh_only, "auth/me", &[]).await).await, Value::Null);
    let newest = Jar(rotated);
    assert_eq!(json(app.call(&newest, "auth/me", &[]).await).await, Value::Null);
}

#[tokio::test]
async fn disabled_user_is_locked_out_mid_session() {
    let app = TestApp::spawn().await;
    let admin = app.register("ada@example.com").await;
    let member = app.register("bob@example.com").await;
    let bob: Value = json(app.call(&member, "auth/me", &[]).await).await;
    let id = bob["id"].as_str().expect("id").to_owned();
    let res = app.call(&admin, "admin/user-disabled", &[("user_id", &id), ("disabled", "true")]).await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = app.call(&member, "settings/profile", &[("display_name", "x")]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .call(&Jar::default(), "auth/login", &[("email", "bob@example.com"), ("password", engine::testing::PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(res).await["code"], "account_disabled");
}

#[tokio::test]
async fn members_get_403_from_admin_functions() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    let member = app.register("bob@example.com").await;
    let res = app.call(&member, "admin/registration", &[("open", "false")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.engine.registration_open().await.expect("read"));
}

#[tokio::test]
async fn closed_registration_is_a_clear_403() {
    let app = TestApp::spawn().await;
    let admin = app.register("ada@example.com").await;
    let res = app.call(&admin, "admin/registration", &[("open", "false")]).await;
    assert!(res.status().is_success());
    let res = app
        .call(&Jar::default(), "auth/register", &[("email", "eve@example.com"), ("password", "a good password")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = json(res).await;
    assert_eq!(body["code"], "registration_closed");
    assert!(body["hint"].as_str().is_some_and(|h| h.contains("administrator")));
}

#[tokio::test]
async fn repeated_failed_logins_get_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| s.limits.login_failures = 3).await;
    app.register("ada@example.com").await;
    for _ in 0..3 {
        let res = app
            .call(&Jar::default(), "auth/login", &[("email", "ada@example.com"), ("password", "wrong password")])
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app
        .call(&Jar::default(), "auth/login", &[("email", "ada@example.com"), ("password", engine::testing::PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 =
        res.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!(wait > 0);
    assert_eq!(json(res).await["code"], "rate_limited");
}

#[tokio::test]
async fn request_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| s.limits.requests_per_minute = 5).await;
    let jar = app.register("ada@example.com").await; // one request
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.call(&jar, "auth/me", &[]).await.status());
    }
    assert!(statuses[..4].iter().all(|s| s.is_success()), "{statuses:?}");
    assert_eq!(*statuses.last().expect("last"), StatusCode::TOO_MANY_REQUESTS);
    let res = app.call(&jar, "auth/me", &[]).await;
    assert!(res.headers().get(RETRY_AFTER).is_some());
    // Another user has their own allowance.
    let other = app.register("bob@example.com").await;
    assert!(app.call(&other, "auth/me", &[]).await.status().is_success());
}

#[tokio::test]
async fn pages_need_a_session_and_carry_security_headers() {
    let app = TestApp::spawn().await;
    let res = app.get(&Jar::default(), "/agents").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/login?next=/agents");

    let res = app.get(&Jar::default(), "/login").await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert!(h.get("x-request-id").is_some());
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h[CONTENT_SECURITY_POLICY].to_str().expect("csp").to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    let html = res.text().await.expect("html");
    assert!(html.contains("Sign in"));

    let jar = app.register("ada@example.com").await;
    let res = app.get(&jar, "/").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html");
    assert!(html.contains("Welcome, ada"), "home greets the user");
    assert_eq!(app.get(&jar, "/login").await.status(), StatusCode::SEE_OTHER, "signed in: /login goes home");
    assert_eq!(app.get(&jar, "/no/such/page").await.status(), StatusCode::NOT_FOUND);

    // Every kind of answer carries the security headers; what is not a page may run
    // nothing at all.
    let answers = [
        ("page", app.get(&jar, "/").await),
        ("redirect", app.get(&Jar::default(), "/agents").await),
        ("not found", app.get(&jar, "/no/such/page").await),
        ("server function", app.call(&jar, "auth/me", &[]).await),
        ("health", app.get(&Jar::default(), "/healthz").await),
    ];
    for (what, res) in &answers {
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{what}");
        assert!(h.get("permissions-policy").is_some(), "{what}");
        assert!(h.get("strict-transport-security").is_none(), "{what}: not over plain http");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    }
    for (what, res) in &answers[3..] {
        assert_eq!(res.headers()[CONTENT_SECURITY_POLICY], "default-src 'none'; frame-ancestors 'none'", "{what}");
    }
    let ids: std::collections::HashSet<_> = answers.iter().map(|(_, r)| r.headers()["x-request-id"].clone()).collect();
    assert_eq!(ids.len(), answers.len(), "every answer has its own request id");
}

#[tokio::test]
async fn request_ids_name_each_answer_and_its_error_and_a_proxy_may_supply_them() {
    let app = TestApp::spawn().await;
    let wrong = [("email", "nobody@example.com"), ("password", "not the password")];
    let res =
        app.http.post(app.url("/api/auth/login")).header(ORIGIN, &app.base).form(&wrong).send().await.expect("call");
    assert!(res.status().is_client_error(), "{}", res.status());
    let id = res.headers()["x-request-id"].to_str().expect("id").to_owned();
    let body: serde_json::Value = res.json().await.expect("json error");
    assert_eq!(body["request_id"], id.as_str(), "the error names the request it answers");

    let sent = |id: &'static str| app.http.get(app.url("/healthz")).header("x-request-id", id).send();
    let res = sent("edge-7f3a.42").await.expect("health");
    assert_eq!(res.headers()["x-request-id"], "edge-7f3a.42", "a proxy's id is kept");
    for junk in ["two words", "<script>", ""] {
        let res = sent(junk).await.expect("health");
        let got = res.headers()["x-request-id"].to_str().expect("id").to_owned();
        assert!(got != junk && got.len() > 12 && got.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{got}");
    }
}

#[tokio::test]
async fn behind_https_answers_ask_for_https_from_then_on() {
    let app = TestApp::spawn_with(|s| s.public_origin = "https://agentry.example.com".into()).await;
    for path in ["/login", "/healthz", "/no/such/page"] {
        let res = app.get(&Jar::default(), path).await;
        let hsts = res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(hsts.as_deref(), Some("max-age=63072000; includeSubDomains"), "{path}");
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get(&Jar::default(), "/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get(&Jar::default(), "/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn form_posts_without_javascript_redirect_back_with_the_error() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header(ORIGIN, &app.base)
        .header("referer", app.url("/login"))
        .header("accept", "text/html")
        .form(&[("email", "nobody@example.com"), ("password", "whatever it is")])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::FOUND);
    let to = res.headers()[LOCATION].to_str().expect("location").to_owned();
    assert!(to.starts_with(&app.url("/login?")) && to.contains("__err="), "{to}");
    // Following it renders the form with the error.
    let html = app.http.get(&to).send().await.expect("get").text().await.expect("html");
    assert!(html.contains("Email or password is incorrect."), "the page shows the error");
}

/// A DNS-rebinding page: the attacker's name now points here, and the browser sends that
/// name as `Host` with a matching `Origin`. With no public origin set, only this server's
/// own names count: nothing is created, pages are refused too, and localhost still works.
#[tokio::test]
async fn a_forged_host_with_a_matching_origin_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let port = app.base.rsplit(':').next().expect("port").to_owned();
    let evil = format!("rebind.attacker.example:{port}");
    let res = app
        .http
        .post(app.url("/api/auth/register"))
        .header(reqwest::header::HOST, &evil)
        .header(ORIGIN, format!("http://{evil}"))
        .form(&[("email", "ada@example.com"), ("password", engine::testing::PASSWORD)])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(res.text().await.expect("body").contains("public_origin"), "the refusal says what to set");
    let users: i64 =
        engine::sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.engine.store.pool).await.expect("n");
    assert_eq!(users, 0, "no account was created");
    let page = app.http.get(app.url("/login")).header(reqwest::header::HOST, &evil).send().await.expect("get");
    assert_eq!(page.status(), StatusCode::MISDIRECTED_REQUEST, "pages are not served under a foreign name either");

    // The machine's own names still work.
    let local = format!("localhost:{port}");
    let res = app
        .http
        .post(app.url("/api/auth/register"))
        .header(reqwest::header::HOST, &local)
        .header(ORIGIN, format!("http://{local}"))
        .form(&[("email", "ada@example.com"), ("password", engine::testing::PASSWORD)])
        .send()
        .await
        .expect("send");
    assert!(res.status().is_success(), "localhost: {}", res.status());
}

/// Guesses sent all at once are counted before any password is checked: past the limit
/// they are refused without being judged.
#[tokio::test]
async fn parallel_wrong_logins_get_429_past_the_limit() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    let guesses = (0..25).map(|i| {
        let pw = format!("wrong password {i}");
        let app = &app;
        async move {
            app.call(&Jar::default(), "auth/login", &[("email", "ada@example.com"), ("password", pw.as_str())])
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let judged = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((judged, refused), (5, 20), "{statuses:?}");
}

async fn login_from(app: &TestApp, email: &str, forwarded: (&str, &str)) -> StatusCode {
    app.http
        .post(app.url("/api/auth/login"))
        .header(ORIGIN, &app.base)
        .header(forwarded.0, forwarded.1)
        .form(&[("email", email), ("password", "wrong password")])
        .send()
        .await
        .expect("send")
        .status()
}

async fn login_from_both(app: &TestApp, email: &str, forwarded: &str, xff: &str) -> StatusCode {
    app.http
        .post(app.url("/api/auth/login"))
        .header(ORIGIN, &app.base)
        .header("forwarded", forwarded)
        .header("x-forwarded-for", xff)
        .form(&[("email", email), ("password", "wrong password")])
        .send()
        .await
        .expect("send")
        .status()
}

/// Behind a reverse proxy every request comes from the proxy's address: limits must key on
/// the client's address the proxy forwards, and only when the proxy is trusted.
#[tokio::test]
async fn a_proxied_deployment_keys_limits_on_the_forwarded_address_only_from_a_trusted_peer() {
    let app = TestApp::spawn_with(|s| {
        s.limits.login_failures = 3;
        s.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let xff = "x-forwarded-for";
    // Three failures from one client (different accounts, so only the address counts); what
    // the client itself wrote to the left of the chain does not change who it is.
    for spoof in ["1.1.1.1", "8.8.8.8", "9.9.9.9"] {
        let chain = format!("{spoof}, 203.0.113.7");
        assert_eq!(login_from(&app, &format!("{spoof}@example.com"), (xff, &chain)).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, "x@example.com", (xff, "203.0.113.7")).await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not locked out.
    assert_eq!(login_from(&app, "y@example.com", (xff, "203.0.113.8")).await, StatusCode::UNAUTHORIZED);
    // The header the proxy does not write is the client's own word: it changes nothing.
    let fwd = "for=\"[2001:db8::1]:4711\";proto=https";
    assert_eq!(
        login_from_both(&app, "w@example.com", fwd, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a client's own Forwarded header does not make it someone else"
    );

    // A proxy that writes `Forwarded` (RFC 7239), with the setting saying so.
    let rfc = TestApp::spawn_with(|s| {
        s.limits.login_failures = 1;
        s.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.proxy_header = engine::settings::ProxyHeader::Forwarded;
    })
    .await;
    assert_eq!(login_from(&rfc, "a@example.com", ("forwarded", fwd)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_from(&rfc, "b@example.com", ("forwarded", fwd)).await, StatusCode::TOO_MANY_REQUESTS);
    let other = "for=198.51.100.4";
    assert_eq!(login_from(&rfc, "c@example.com", ("forwarded", other)).await, StatusCode::UNAUTHORIZED);

    // Without the proxy trusted, the header is the client's word and is ignored: the
    // socket's address is locked whatever it claims.
    let direct = TestApp::spawn_with(|s| s.limits.login_failures = 3).await;
    for i in 0..3 {
        let claim = format!("203.0.113.{i}");
        assert_eq!(login_from(&direct, &format!("u{i}@example.com"), (xff, &claim)).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&direct, "v@example.com", (xff, "203.0.113.99")).await, StatusCode::TOO_MANY_REQUESTS);
}

/// Bad API keys are anonymous requests: past the address's share they get 429 before any
/// key is looked up.
#[tokio::test]
async fn anonymous_v1_requests_are_limited_per_address() {
    let app = TestApp::spawn_with(|s| s.limits.requests_per_minute = 5).await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        let res =
            app.http.get(app.url("/v1/models")).bearer_auth(format!("agk_not_a_key_{i}")).send().await.expect("send");
        statuses.push((res.status(), res.headers().get(RETRY_AFTER).is_some()));
    }
    assert!(statuses[..5].iter().all(|(s, _)| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[5], (StatusCode::TOO_MANY_REQUESTS, true), "{statuses:?}");
    let res = app.http.get(app.url("/v1/models")).send().await.expect("send");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "no key at all counts the same");
}

/// What a signed-in person sees (pages, the API key shown once) is never stored by a
/// browser or a proxy cache.
#[tokio::test]
async fn authenticated_pages_and_a_new_api_key_are_not_cached() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    let page = app.get(&jar, "/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers().get(reqwest::header::CACHE_CONTROL).map(|v| v.as_bytes()), Some(&b"no-store"[..]));
    let key = app.call(&jar, "settings/keys/create", &[("name", "ci")]).await;
    assert!(key.status().is_success());
    assert_eq!(key.headers().get(reqwest::header::CACHE_CONTROL).map(|v| v.as_bytes()), Some(&b"no-store"[..]));
}

/// A body sent in chunks, with no length declared, that passes the limit: 413 like a
/// declared one, not a 400 about a body that could not be read.
#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 16 * 1024).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let head = format!(
        "POST /api/auth/register HTTP/1.1\r\nHost: {host}\r\nOrigin: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.base
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let chunk = format!("email=ada%40example.com&password={}", "x".repeat(4096));
    let _ = tcp.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await;
    for _ in 0..8 {
        let more = "y".repeat(4096);
        if tcp.write_all(format!("{:x}\r\n{more}\r\n", more.len()).as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{}", answer.lines().next().unwrap_or(""));
    let users: i64 =
        engine::sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.engine.store.pool).await.expect("n");
    assert_eq!(users, 0);
}

/// The database is down: a signed-in person is told so (503, with a hint), not sent to the
/// sign-in page as if their session had ended.
#[tokio::test]
async fn a_database_outage_answers_503_instead_of_signing_people_out() {
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    app.engine.store.close().await;
    let page = app.get(&jar, "/agents").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE, "{:?}", page.headers().get(LOCATION));
    assert!(page.headers().get(RETRY_AFTER).is_some());
    assert!(page.text().await.expect("body").contains("cannot reach its database"));
    let res = app.call(&jar, "auth/me", &[]).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(res).await;
    assert_eq!(body["code"], "unavailable");
    assert!(body["hint"].as_str().is_some_and(|h| !h.is_empty()), "{body}");
}
