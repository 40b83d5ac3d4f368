//! "Test connection" through the SSRF guard, against the fake upstream over real HTTP:
//! members are kept off internal addresses (literal in every spelling, by name and by
//! redirect) and are not told what a name resolved to; admins reach a local provider;
//! keys go only where they were entered for.

use std::net::Ipv4Addr;

use engine::Engine;
use engine::infra::net::NOT_ALLOWED;
use engine::infra::store::Backend;
use engine::mcp::McpError;
use engine::providers::ProviderError;
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

/// The IPv4 blocks members may not reach, each with its prefix length.
const BLOCKED: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// A fixed-seed generator (splitmix64): the same addresses on every run, so a failure
/// reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }
}

/// The block's first and last address, then random ones in it.
fn samples(rng: &mut Rng, (net, len): (Ipv4Addr, u8), n: usize) -> Vec<Ipv4Addr> {
    let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    let base = u32::from(net) & !host_bits;
    let mut v = vec![base, base | host_bits];
    v.extend((2..n).map(|_| base | (rng.next() & host_bits)));
    v.into_iter().map(Ipv4Addr::from).collect()
}

/// The ways a URL host can spell `ip` that a WHATWG URL parser (reqwest's) reads as it or
/// as an IPv6 address that delivers to it.
fn spellings(ip: Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = ip.octets();
    let n = u32::from(ip);
    let (hi, lo) = (n >> 16, n & 0xffff);
    let dotted = ip.to_string();
    let full_width: String = dotted
        .chars()
        .map(|ch| ch.to_digit(10).and_then(|v| char::from_u32(0xff10 + v)).unwrap_or('\u{3002}'))
        .collect();
    vec![
        dotted.clone(),
        format!("{n}"),
        format!("0x{n:x}"),
        format!("0X{n:08X}"),
        format!("0{n:o}"),
        format!("0x{a:x}.{b}.{c}.{d}"),
        format!("0x{a:02x}.0x{b:02x}.0x{c:02x}.0x{d:02x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("{a}.{b}.{}", u32::from(c) << 8 | u32::from(d)),
        format!("{a}.{}", n & 0xff_ffff),
        format!("{dotted}."),
        dotted.bytes().map(|x| format!("%{x:02X}")).collect(),
        full_width,
        format!("[::ffff:{dotted}]"),
        format!("[::ffff:{hi:x}:{lo:x}]"),
        format!("[0:0:0:0:0:ffff:{hi:x}:{lo:x}]"),
        format!("[::ffff:0:{hi:x}:{lo:x}]"),
        format!("[::ffff:0:{dotted}]"),
        format!("[64:ff9b::{hi:x}:{lo:x}]"),
        format!("[64:ff9b::{dotted}]"),
        format!("[64:ff9b:1::{hi:x}:{lo:x}]"),
        format!("[2002:{hi:x}:{lo:x}::]"),
        format!("[2002:{hi:x}:{lo:x}:beef::1]"),
        format!("[::{dotted}]"),
    ]
}

fn parsed(url: &str) -> reqwest::Url {
    let u = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(matches!(u.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))), "{url} is read as a name: {u}");
    u
}

#[tokio::test]
async fn every_spelling_of_every_blocked_ipv4_block_is_refused_to_members() {
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    let guard = e.guard(false);
    let mut rng = Rng(0x5eed_a9e7);
    for &block in BLOCKED {
        for ip in samples(&mut rng, block, 12) {
            for host in spellings(ip) {
                let url = format!("http://{host}:8080/v1");
                assert_eq!(guard.check_url(&parsed(&url)), Err(NOT_ALLOWED.into()), "{url} ({ip})");
                // The paths a member takes: saving a provider or an MCP server.
                let err = e.create_provider(&t.member.user, draft(&url, KEY)).await.expect_err(&url);
                assert_eq!(field_rule(&err), Some(("base_url", "private_address")), "{url} ({ip})");
                let form = model::mcp::McpForm {
                    name: "Tools".into(),
                    transport: "http".into(),
                    url: url.clone(),
                    ..Default::default()
                };
                let err = e.create_mcp(&t.member.user, form.parse().expect("draft")).await.expect_err(&url);
                assert!(matches!(err, McpError::Invalid(_)), "{url} ({ip}): {err:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_public_address_is_allowed_in_the_spellings_that_deliver_to_it() {
    let e = engine_with(|_| {}).await;
    let t = two_users(&e).await;
    let guard = e.guard(false);
    let public = Ipv4Addr::new(93, 184, 216, 34);
    // The IPv4-compatible form (`[::a.b.c.d]`) is deprecated and refused whatever it carries.
    let compatible = format!("[::{public}]");
    for host in spellings(public).into_iter().filter(|h| *h != compatible) {
        let url = format!("https://{host}/v1");
        assert_eq!(guard.check_url(&parsed(&url)), Ok(()), "{url}");
    }
    assert!(guard.check_url(&parsed(&format!("https://{compatible}/v1"))).is_err());
    // Saving decides on the address alone; nothing is connected to.
    let form = ProviderForm {
        name: "Public".into(),
        kind: "openai".into(),
        base_url: format!("https://{}/v1", u32::from(public)),
        ..Default::default()
    };
    e.create_provider(&t.member.user, form.parse().expect("draft")).await.expect("a public address may be saved");
}
