//! "Test connection" through the SSRF guard, against the fake upstream over real HTTP:
//! members are kept off internal addresses (literal, by name and by redirect) and are not
//! told what a name resolved to; admins reach a local provider; keys go only where they
//! were entered for.

use engine::Engine;
use engine::net::NOT_ALLOWED;
use engine::providers::ProviderError;
use engine::store::Backend;
use engine::testing::two_users;
use fake_upstream::{FakeUpstream, Script};
use model::providers::{ProviderDraft, ProviderForm};

const KEY: &str = "sk-fake-0123456789";

fn draft(base_url: &str, key: &str) -> ProviderDraft {
    ProviderForm {
        name: "Fake".into(),
        kind: "openai".into(),
        base_url: base_url.into(),
        api_key: key.into(),
        ..Default::default()
    }
    .parse()
    .expect("valid draft")
}

async fn engine_with(tweak: impl FnOnce(&mut engine::Settings)) -> Engine {
    let mut s = engine::testing::settings(Backend::Sqlite).await;
    tweak(&mut s);
    Engine::start(s).await.expect("engine")
}

async fn fake(bind: &str, script: Script) -> FakeUpstream {
    FakeUpstream::start(bind, script).await.expect("fake upstream")
}

fn field_rule(e: &ProviderError) -> Option<(&str, &str)> {
    match e {
        ProviderError::Invalid(f) => f.0.first().map(|f| (f.field.as_str(), f.rule.as_str())),
        _ => None,
    }
}

#[tokio::test]
async fn members_cannot_save_a_connection_to_an_internal_address() {
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    for url in [
        "http://127.0.0.1:11434/v1",
        "http://10.0.0.5/v1",
        "http://172.16.3.4/v1",
        "http://192.168.1.10/v1",
        "http://169.254.169.254/latest",
        "http://[::1]:8080/v1",
        "http://[::ffff:127.0.0.1]/v1",
    ] {
        let err = e.create_provider(&t.member.user, draft(url, KEY)).await.expect_err(url);
        assert_eq!(field_rule(&err), Some(("base_url", "private_address")), "{url}");
    }
    // An admin's local Ollama is the common case.
    e.create_provider(&t.admin.user, draft("http://127.0.0.1:11434/v1", "")).await.expect("admin may");
}

#[tokio::test]
async fn an_admin_lists_a_local_providers_models_with_the_key_sent() {
    let up = fake("127.0.0.1:0", Script { api_key: Some(KEY.into()), ..Script::default() }).await;
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    let p = e.create_provider(&t.admin.user, draft(&up.openai_base(), KEY)).await.expect("create");
    let probe = e.test_provider(&t.admin.user, &p.id).await.expect("probe");
    assert_eq!(probe.models, ["fake-large", "fake-small"]);
    assert!(probe.saved);
    assert_eq!(e.get_provider(&t.admin.user, &p.id).await.expect("get").models, ["fake-large", "fake-small"]);
    let auth = up.seen()[0].headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(auth.as_deref(), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test]
async fn a_wrong_key_is_reported_without_echoing_it() {
    let up = fake("127.0.0.1:0", Script { api_key: Some("the-right-key".into()), ..Script::default() }).await;
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    let p = e.create_provider(&t.admin.user, draft(&up.openai_base(), KEY)).await.expect("create");
    let err = e.test_provider(&t.admin.user, &p.id).await.expect_err("401");
    let msg = err.to_string();
    assert!(matches!(err, ProviderError::Upstream(_)) && msg.contains("401"), "{msg}");
    assert!(!msg.contains(KEY) && !msg.contains("the-right-key"), "{msg}");
}

#[tokio::test]
async fn a_member_host_name_resolving_to_loopback_is_refused_on_connect() {
    let up = fake("127.0.0.1:0", Script::default()).await;
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    let url = format!("http://localhost:{}/v1", up.addr.port());
    let p = e.create_provider(&t.member.user, draft(&url, KEY)).await.expect("names are checked on connect");
    let err = e.test_provider(&t.member.user, &p.id).await.expect_err("refused");
    assert!(matches!(&err, ProviderError::Unreachable(m) if m.contains(NOT_ALLOWED)), "{err}");
    let msg = err.to_string();
    assert!(!msg.contains("127.0.0.1") && !msg.contains("loopback"), "how the name resolved leaked: {msg}");
    assert!(up.seen().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn a_member_mcp_url_to_loopback_fails_by_name_and_by_literal_without_naming_the_address() {
    let up = fake("127.0.0.1:0", Script::default()).await;
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    let form = model::mcp::McpForm {
        name: "Tools".into(),
        transport: "http".into(),
        url: format!("http://localhost:{}/mcp", up.addr.port()),
        ..Default::default()
    };
    let s = e.create_mcp(&t.member.user, form.parse().expect("draft")).await.expect("names are checked on connect");
    let s = e.connect_mcp(&t.member.user, &s.id).await.expect("connect records the failure");
    assert_eq!(s.status, model::mcp::Status::Failed);
    assert!(!s.last_error.contains("127.0.0.1") && !s.last_error.contains("loopback"), "{}", s.last_error);

    // A literal address that got into the row anyway is refused on connect too.
    engine::sqlx::query("UPDATE mcp_servers SET url = $1 WHERE id = $2")
        .bind(format!("http://127.0.0.1:{}/mcp", up.addr.port()))
        .bind(&s.id)
        .execute(&e.store.pool)
        .await
        .expect("update");
    let s = e.connect_mcp(&t.member.user, &s.id).await.expect("connect records the failure");
    assert!(s.last_error.contains(NOT_ALLOWED), "{}", s.last_error);
    assert!(up.seen().is_empty(), "nothing reached the address");
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused_for_a_member_and_followed_for_an_admin() {
    // 127.0.0.2 stands for a public host: the operator exempts it for members.
    let target = fake("127.0.0.1:0", Script::default()).await;
    let to = format!("{}/models", target.openai_base());
    let hop = fake("127.0.0.2:0", Script { redirect_models_to: Some(to), ..Script::default() }).await;
    let e = engine_with(|s| s.allow_private_networks = vec!["127.0.0.2/32".into()]).await;
    let t = two_users(&e).await;
    let p = e.create_provider(&t.member.user, draft(&hop.openai_base(), KEY)).await.expect("exempt address");
    let err = e.test_provider(&t.member.user, &p.id).await.expect_err("redirect refused");
    assert!(matches!(&err, ProviderError::Unreachable(m) if m.contains(NOT_ALLOWED)), "{err}");
    assert!(target.seen().is_empty(), "the redirect was not followed");

    // An admin's connection may reach loopback, but the key still stays with its origin.
    let p = e.create_provider(&t.admin.user, draft(&hop.openai_base(), KEY)).await.expect("admin");
    let err = e.test_provider(&t.admin.user, &p.id).await.expect_err("cross-origin redirect");
    assert!(matches!(&err, ProviderError::Unreachable(m) if m.contains("another origin")), "{err}");
    assert!(target.seen().is_empty());
}
