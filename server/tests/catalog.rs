//! The catalog's server functions over real HTTP: every one refuses another user's ids
//! (404, nothing changed), and no secret ever appears in a response or a log line.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use fake_upstream::{FakeUpstream, Script};
use reqwest::StatusCode;
use serde_json::Value;
use server::testing::{Jar, TestApp, json_ok};

const KEY: &str = "sk-live-SECRETKEY-0123456789";
const HEADER_VALUE: &str = "hv-SECRETHEADER-42";

/// Every log line of this test binary, at debug level and above.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut l) = LOGS.lock() {
            l.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

fn logs() -> String {
    LOGS.lock().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default()
}

async fn text(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    (status, res.text().await.unwrap_or_default())
}

fn provider_form<'a>(name: &'a str, base_url: &'a str, key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("form[name]", name),
        ("form[kind]", "openai"),
        ("form[base_url]", base_url),
        ("form[api_key]", key),
        ("form[headers]", "X-Team-Secret: hv-SECRETHEADER-42"),
        ("form[models]", "fake-large"),
    ]
}

async fn create_provider(app: &TestApp, jar: &Jar, base_url: &str) -> Value {
    let (status, body) = text(app.call(jar, "providers/create", &provider_form("Fake", base_url, KEY)).await).await;
    assert!(status.is_success(), "create: {status} {body}");
    serde_json::from_str(&body).expect("provider json")
}

#[tokio::test]
async fn another_users_provider_is_not_found_for_every_function_and_unchanged() {
    capture_logs();
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let p = create_provider(&app, &admin, &up.openai_base()).await;
    let id = p["id"].as_str().expect("id");
    let mut update = provider_form("Stolen", "https://evil.example/v1", "sk-evil");
    update.push(("id", id));
    let calls: [(&str, Vec<(&str, &str)>); 4] = [
        ("providers/get", vec![("id", id)]),
        ("providers/update", update),
        ("providers/test", vec![("id", id)]),
        ("providers/delete", vec![("id", id)]),
    ];
    for (endpoint, form) in calls {
        let (status, body) = text(app.call(&member, endpoint, &form).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(body.contains("\"code\":\"provider_not_found\""), "{endpoint}: {body}");
    }
    let list: Value = app.call(&member, "providers/list", &[]).await.json().await.expect("list");
    assert_eq!(list.as_array().map(Vec::len), Some(0));
    let found: Value = app.call(&member, "providers/search", &[("q", "fake")]).await.json().await.expect("search");
    assert_eq!(found["total"], 0);
    assert!(up.seen().is_empty(), "the member's test reached the upstream");
    let after: Value = app.call(&admin, "providers/get", &[("id", id)]).await.json().await.expect("get");
    assert_eq!(after, p, "the owner's connection changed");
}

#[tokio::test]
async fn secrets_never_appear_in_responses_or_logs() {
    capture_logs();
    // The upstream wants another key and quotes the one it got, as some providers do.
    let up = FakeUpstream::start("127.0.0.1:0", Script { api_key: Some("sk-other".into()), ..Script::default() })
        .await
        .expect("upstream");
    let app = TestApp::spawn().await;
    let admin = app.register("ada@example.com").await;
    let mut seen = Vec::new();
    let p = create_provider(&app, &admin, &up.openai_base()).await;
    assert_eq!(p["api_key_hint"], "••••6789");
    assert_eq!(p["header_names"][0], "X-Team-Secret");
    let id = p["id"].as_str().expect("id").to_owned();
    seen.push(text(app.call(&admin, "providers/list", &[]).await).await);
    seen.push(text(app.call(&admin, "providers/get", &[("id", &id)]).await).await);
    let failed = text(app.call(&admin, "providers/test", &[("id", &id)]).await).await;
    assert_eq!(failed.0, StatusCode::BAD_GATEWAY, "{}", failed.1);
    assert!(failed.1.contains("401"), "{}", failed.1);
    seen.push(failed);
    let base = up.openai_base();
    let mut update = provider_form("Fake renamed", &base, "");
    update.push(("id", &id));
    seen.push(text(app.call(&admin, "providers/update", &update).await).await);
    let page = app.get(&admin, &format!("/providers/{id}")).await;
    seen.push(text(page).await);
    for (status, body) in &seen {
        assert!(!body.contains(KEY) && !body.contains(HEADER_VALUE), "secret in a {status} response: {body}");
    }
    // The upstream did get them: they are stored and used, just never shown.
    let sent = &up.seen()[0].headers;
    assert_eq!(sent.get("authorization").and_then(|v| v.to_str().ok()), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(sent.get("x-team-secret").and_then(|v| v.to_str().ok()), Some(HEADER_VALUE));
    let logs = logs();
    assert!(logs.contains("providers"), "logs were captured");
    assert!(!logs.contains(KEY) && !logs.contains(HEADER_VALUE), "a secret was logged");
}

#[tokio::test]
async fn a_member_gets_a_field_error_for_a_private_address_and_an_admin_does_not() {
    capture_logs();
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let (status, body) =
        text(app.call(&member, "providers/create", &provider_form("Local", &up.openai_base(), "")).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (body["fields"][0]["field"].as_str(), body["fields"][0]["rule"].as_str()),
        (Some("base_url"), Some("private_address"))
    );
    let p = create_provider(&app, &admin, &up.openai_base()).await;
    let probe: Value =
        app.call(&admin, "providers/test", &[("id", p["id"].as_str().expect("id"))]).await.json().await.expect("probe");
    assert_eq!(probe["models"], serde_json::json!(["fake-large", "fake-small"]));
}

#[tokio::test]
async fn only_admins_create_shared_connections() {
    capture_logs();
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let mut form = provider_form("Team", "https://api.example.com/v1", KEY);
    form.push(("form[shared]", "on"));
    assert_eq!(app.call(&member, "providers/create", &form).await.status(), StatusCode::FORBIDDEN);
    let (status, body) = text(app.call(&admin, "providers/create", &form).await).await;
    assert!(status.is_success(), "{body}");
    let list: Value = app.call(&member, "providers/list", &[]).await.json().await.expect("list");
    assert_eq!(list[0]["shared"], true);
    assert_eq!(list[0]["editable"], false);
}

fn agent_form<'a>(provider_id: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("form[name]", name),
        ("form[provider_id]", provider_id),
        ("form[model]", "fake-large"),
        ("form[system_prompt]", "Be helpful."),
        ("form[temperature]", "0.3"),
    ]
}

#[tokio::test]
async fn another_users_agent_is_not_found_for_every_function_and_unchanged() {
    capture_logs();
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let p = create_provider(&app, &admin, "https://api.example.com/v1").await;
    let pid = p["id"].as_str().expect("id");
    let (status, body) = text(app.call(&admin, "agents/create", &agent_form(pid, "Private")).await).await;
    assert!(status.is_success(), "{body}");
    let agent: Value = serde_json::from_str(&body).expect("agent");
    let id = agent["id"].as_str().expect("id");
    let mut update = agent_form(pid, "Stolen");
    update.push(("id", id));
    let calls: [(&str, Vec<(&str, &str)>); 6] = [
        ("agents/get", vec![("id", id)]),
        ("agents/update", update),
        ("agents/delete", vec![("id", id)]),
        ("agents/duplicate", vec![("id", id)]),
        ("agents/history", vec![("id", id)]),
        ("agents/rollback", vec![("id", id), ("version", "1")]),
    ];
    for (endpoint, form) in calls {
        let (status, body) = text(app.call(&member, endpoint, &form).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(body.contains("\"code\":\"agent_not_found\""), "{endpoint}: {body}");
    }
    let (status, body) = text(app.get(&member, &format!("/api/agents/export?id={id}")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "export: {body}");
    let list: Value = app.call(&member, "agents/list", &[]).await.json().await.expect("list");
    assert_eq!(list["total"], 0);
    let after: Value = app.call(&admin, "agents/get", &[("id", id)]).await.json().await.expect("get");
    assert_eq!(after, agent, "the owner's agent changed");
}

#[tokio::test]
async fn an_agent_exported_as_a_download_imports_for_another_user() {
    capture_logs();
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let mut shared = provider_form("Team", "https://api.example.com/v1", KEY);
    shared.push(("form[shared]", "on"));
    let p: Value = app.call(&admin, "providers/create", &shared).await.json().await.expect("shared");
    let pid = p["id"].as_str().expect("id");
    let agent: Value = app.call(&admin, "agents/create", &agent_form(pid, "Portable")).await.json().await.expect("a");
    let id = agent["id"].as_str().expect("id");
    let res = app.get(&admin, &format!("/api/agents/export?id={id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers().get("content-disposition").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(disposition.as_deref(), Some("attachment; filename=\"portable.agent.json\""));
    let doc = res.text().await.expect("doc");
    assert!(doc.contains("\"provider\":\"Team\"") && !doc.contains(pid) && !doc.contains(KEY), "{doc}");
    let (status, body) = text(app.call(&member, "agents/import", &[("document", &doc)]).await).await;
    assert!(status.is_success(), "{body}");
    let imported: Value = serde_json::from_str(&body).expect("imported");
    assert_eq!(imported["spec"], agent["spec"]);
    // A broken document names the problem and creates nothing.
    let (status, body) = text(app.call(&member, "agents/import", &[("document", "{\"format\":1")]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("document"), "{body}");
    let list: Value = app.call(&member, "agents/list", &[]).await.json().await.expect("list");
    assert_eq!(list["total"], 1);
}

fn skill_zip() -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("SKILL.md", opts).expect("start");
    w.write_all(b"---\nname: notes\ndescription: Takes notes.\n---\n# Notes\n").expect("write");
    w.start_file("page.html", opts).expect("start");
    w.write_all(b"<script>alert(document.cookie)</script>").expect("write");
    w.finish().expect("finish").into_inner()
}

async fn upload(app: &TestApp, jar: &Jar, zip: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(zip).file_name("notes.zip");
    app.http
        .post(app.url("/api/skills/upload"))
        .header(reqwest::header::ORIGIN, &app.base)
        .header(reqwest::header::COOKIE, jar.header())
        .multipart(reqwest::multipart::Form::new().part("archive", part))
        .send()
        .await
        .expect("upload")
}

#[tokio::test]
async fn another_users_skill_is_not_found_for_every_function_and_files_download_safely() {
    capture_logs();
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let (status, body) = text(upload(&app, &member, skill_zip()).await).await;
    assert!(status.is_success(), "{status} {body}");
    let skill: Value = serde_json::from_str(&body).expect("skill");
    let id = skill["id"].as_str().expect("id");
    assert_eq!(skill["name"], "notes");

    let p = create_provider(&app, &admin, "https://api.example.com/v1").await;
    let agent: Value = app
        .call(&admin, "agents/create", &agent_form(p["id"].as_str().expect("id"), "Admin's"))
        .await
        .json()
        .await
        .expect("agent");
    let aid = agent["id"].as_str().expect("id");
    for (endpoint, form) in [
        ("skills/get", vec![("id", id)]),
        ("skills/delete", vec![("id", id)]),
        ("skills/attach", vec![("skill_id", id), ("agent_id", aid)]),
    ] {
        let (status, body) = text(app.call(&admin, endpoint, &form).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(body.contains("\"code\":\"skill_not_found\""), "{endpoint}: {body}");
    }
    let list: Value = app.call(&admin, "skills/list", &[]).await.json().await.expect("list");
    assert_eq!((list["items"].as_array().map(Vec::len), &list["total"]), (Some(0), &Value::from(0)));
    assert_eq!(app.get(&admin, &format!("/skills/{id}/files/SKILL.md")).await.status(), StatusCode::NOT_FOUND);
    // The admin's agent did not get the skill.
    let after: Value = app.call(&admin, "agents/get", &[("id", aid)]).await.json().await.expect("agent");
    assert_eq!(after["version"], 1);

    // The owner downloads files as attachments that cannot run as pages of this site.
    let res = app.get(&member, &format!("/skills/{id}/files/page.html")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert!(h["content-disposition"].to_str().is_ok_and(|v| v.starts_with("attachment")));
    assert_eq!(h["content-type"], "application/octet-stream");
    assert!(h["content-security-policy"].to_str().is_ok_and(|v| v.contains("default-src 'none'")));
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), b"<script>alert(document.cookie)</script>");
}

#[tokio::test]
async fn uploads_must_be_multipart_and_bad_archives_are_explained() {
    capture_logs();
    let app = TestApp::spawn().await;
    let jar = app.register("ada@example.com").await;
    let res = app.call(&jar, "skills/upload", &[("archive", "x")]).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = text(upload(&app, &jar, b"not a zip at all".to_vec()).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("could not be read"), "{body}");
    let list: Value = app.call(&jar, "skills/list", &[]).await.json().await.expect("list");
    assert_eq!(list["total"], 0);
}

const ENV_VALUE: &str = "env-SECRETVALUE-77";

/// Our stdio MCP fixture, run with node.
fn mcp_fixture() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end/fixtures/mcp-fixture.mjs");
    p.canonicalize().expect("fixture").display().to_string()
}

fn mcp_form<'a>(name: &'a str, fixture: &'a str, env: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("form[name]", name),
        ("form[transport]", "stdio"),
        ("form[command]", "node"),
        ("form[args]", fixture),
        ("form[env]", env),
    ]
}

#[tokio::test]
async fn another_users_mcp_server_is_not_found_for_every_function_and_env_values_never_show() {
    capture_logs();
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let fixture = mcp_fixture();
    let env = format!("API_TOKEN={ENV_VALUE}");
    let (status, body) = text(app.call(&admin, "mcp/create", &mcp_form("Fixture", &fixture, &env)).await).await;
    assert!(status.is_success(), "create: {status} {body}");
    let server: Value = serde_json::from_str(&body).expect("server");
    let id = server["id"].as_str().expect("id").to_owned();
    let line = server["command_line"].as_str().expect("line").to_owned();
    assert!(line.starts_with("API_TOKEN=<hmac:"), "{line}");

    // A member may not add a server that runs a command here.
    let (status, body) = text(app.call(&member, "mcp/create", &mcp_form("Mine", &fixture, "")).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("administrator"), "{body}");

    // Nothing of the admin's server is reachable with its id.
    let p = create_provider(&app, &member, "https://api.example.com/v1").await;
    let agent: Value = app
        .call(&member, "agents/create", &agent_form(p["id"].as_str().expect("id"), "Member's"))
        .await
        .json()
        .await
        .expect("agent");
    let aid = agent["id"].as_str().expect("id");
    let mut update = mcp_form("Stolen", "/tmp/x.mjs", "");
    update.push(("id", &id));
    for (endpoint, form) in [
        ("mcp/get", vec![("id", id.as_str())]),
        ("mcp/update", update),
        ("mcp/approve", vec![("id", id.as_str()), ("line", line.as_str())]),
        ("mcp/connect", vec![("id", id.as_str())]),
        ("mcp/approve-tools", vec![("id", id.as_str())]),
        ("mcp/attach", vec![("mcp_id", id.as_str()), ("agent_id", aid)]),
        ("mcp/delete", vec![("id", id.as_str())]),
    ] {
        let (status, body) = text(app.call(&member, endpoint, &form).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(body.contains("\"code\":\"mcp_server_not_found\""), "{endpoint}: {body}");
    }
    let list: Value = app.call(&member, "mcp/list", &[]).await.json().await.expect("list");
    assert_eq!(list["total"], 0);
    let after: Value = app.call(&member, "agents/get", &[("id", aid)]).await.json().await.expect("agent");
    assert_eq!(after["version"], 1, "the member's agent did not get the server");
    let owner: Value = app.call(&admin, "mcp/get", &[("id", &id)]).await.json().await.expect("get");
    assert_eq!((owner["name"].as_str(), owner["approved"].as_bool()), (Some("Fixture"), Some(false)));

    // The owner approves, connects and attaches; the env value is used but never shown.
    let mut seen = vec![text(app.call(&admin, "mcp/approve", &[("id", &id), ("line", &line)]).await).await];
    let connected = text(app.call(&admin, "mcp/connect", &[("id", &id)]).await).await;
    assert!(connected.1.contains("\"status\":\"connected\""), "{}", connected.1);
    assert!(connected.1.contains("write_note"), "{}", connected.1);
    seen.push(connected);
    seen.push(text(app.call(&admin, "mcp/list", &[]).await).await);
    let mut edit = mcp_form("Fixture renamed", &fixture, "");
    edit.push(("id", &id));
    seen.push(text(app.call(&admin, "mcp/update", &edit).await).await);
    seen.push(text(app.get(&admin, &format!("/mcp/{id}")).await).await);
    for (status, body) in &seen {
        assert!(status.is_success(), "{status} {body}");
        assert!(!body.contains(ENV_VALUE), "an env value in a response: {body}");
    }
    assert!(seen.last().is_some_and(|(_, page)| page.contains("Fixture renamed") && page.contains("API_TOKEN")));

    // A remote server's header values are kept the same way.
    let remote = [
        ("form[name]", "Remote"),
        ("form[transport]", "http"),
        ("form[url]", "https://mcp.example.com/mcp"),
        ("form[headers]", "Authorization: Bearer hv-SECRETHEADER-42"),
    ];
    let (status, body) = text(app.call(&admin, "mcp/create", &remote).await).await;
    assert!(status.is_success(), "{status} {body}");
    let rid = serde_json::from_str::<Value>(&body).expect("remote")["id"].as_str().expect("id").to_owned();
    let mut bodies = vec![body];
    bodies.push(text(app.call(&admin, "mcp/get", &[("id", &rid)]).await).await.1);
    bodies.push(text(app.get(&admin, &format!("/mcp/{rid}")).await).await.1);
    for body in &bodies {
        assert!(!body.contains(HEADER_VALUE), "a header value in a response: {body}");
    }
    assert!(bodies[1].contains("Authorization"), "the header's name is shown: {}", bodies[1]);
    let logs = logs();
    assert!(!logs.contains(ENV_VALUE) && !logs.contains(HEADER_VALUE), "a secret was logged");
}

#[tokio::test]
async fn changing_only_an_env_value_withdraws_the_approval() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.two_users().await;
    let fixture = mcp_fixture();
    let env = format!("API_TOKEN={ENV_VALUE}");
    let server = serde_json::from_str::<Value>(
        &text(app.call(&admin, "mcp/create", &mcp_form("Fixture", &fixture, &env)).await).await.1,
    )
    .expect("server");
    let id = server["id"].as_str().expect("id").to_owned();
    let line = server["command_line"].as_str().expect("line").to_owned();
    let fp =
        line.strip_prefix("API_TOKEN=<hmac:").and_then(|r| r.split_once('>')).map(|(fp, _)| fp).unwrap_or_default();
    assert_eq!(fp.len(), 8, "{line}");
    let (status, body) = text(app.call(&admin, "mcp/approve", &[("id", &id), ("line", &line)]).await).await;
    assert!(status.is_success() && body.contains("\"approved\":true"), "{status} {body}");
    let page = text(app.get(&admin, &format!("/mcp/{id}")).await).await.1;
    assert!(page.contains(fp) && !page.contains(ENV_VALUE), "the page shows the fingerprint, not the value");

    // Saving the same form keeps the approval; a new value for the same name withdraws it.
    let mut same = mcp_form("Fixture", &fixture, "");
    same.push(("id", &id));
    let (status, body) = text(app.call(&admin, "mcp/update", &same).await).await;
    assert!(status.is_success() && body.contains("\"approved\":true"), "{status} {body}");
    let mut changed = mcp_form("Fixture", &fixture, "API_TOKEN=another-value");
    changed.push(("id", &id));
    let (status, body) = text(app.call(&admin, "mcp/update", &changed).await).await;
    assert!(status.is_success() && body.contains("\"approved\":false"), "{status} {body}");
    assert!(!body.contains(&line), "the line changed: {body}");
    let (status, body) = text(app.call(&admin, "mcp/connect", &[("id", &id)]).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("not been approved"), "{body}");
    let (status, body) = text(app.call(&admin, "mcp/approve", &[("id", &id), ("line", &line)]).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "the old line approves nothing: {body}");
}

#[tokio::test]
async fn only_an_admin_may_trust_a_servers_read_only_marks() {
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let remote = [
        ("form[name]", "Remote"),
        ("form[transport]", "http"),
        ("form[url]", "https://mcp.example.com/mcp"),
        ("form[trust_read_only]", "on"),
    ];
    let (status, body) = text(app.call(&member, "mcp/create", &remote).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("\"field\":\"trust_read_only\""), "the error names the field: {body}");
    let list: Value = app.call(&member, "mcp/list", &[]).await.json().await.expect("list");
    assert_eq!(list["total"], 0, "nothing was created");

    let (status, body) = text(app.call(&admin, "mcp/create", &remote).await).await;
    assert!(status.is_success(), "{status} {body}");
    let server: Value = serde_json::from_str(&body).expect("server");
    assert_eq!(server["trust_read_only"], true);
    let page = text(app.get(&admin, &format!("/mcp/{}", server["id"].as_str().expect("id"))).await).await.1;
    assert!(page.contains("Read-only marks trusted"), "the server's page says so");
}

async fn mcp_total(app: &TestApp, jar: &Jar) -> i64 {
    let list: Value = app.call(jar, "mcp/list", &[]).await.json().await.expect("list");
    list["total"].as_i64().expect("total")
}

#[tokio::test]
async fn an_mcp_servers_document_imports_every_entry_or_none() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.two_users().await;
    let doc = serde_json::json!({ "mcpServers": {
        "Local": { "command": "node", "args": [mcp_fixture()], "env": { "API_TOKEN": ENV_VALUE } },
        "Remote": {
            "type": "streamable-http",
            "serverUrl": "https://mcp.example.com/mcp",
            "headers": { "Authorization": format!("Bearer {HEADER_VALUE}") },
        },
    }})
    .to_string();
    let (status, body) = text(app.call(&admin, "mcp/import", &[("document", &doc)]).await).await;
    assert!(status.is_success(), "{status} {body}");
    assert!(!body.contains(ENV_VALUE) && !body.contains(HEADER_VALUE), "no secret comes back: {body}");
    let added: Vec<Value> = serde_json::from_str(&body).expect("servers");
    let by_name = |n: &str| added.iter().find(|s| s["name"] == n).cloned().expect(n);
    let local = by_name("Local");
    assert_eq!((local["transport"].as_str(), local["approved"].as_bool()), (Some("stdio"), Some(false)));
    assert!(local["command_line"].as_str().is_some_and(|l| l.starts_with("API_TOKEN=<hmac:")), "{local}");
    let remote = by_name("Remote");
    assert_eq!(
        (remote["transport"].as_str(), remote["header_names"].clone()),
        (Some("http"), serde_json::json!(["Authorization"]))
    );
    assert_eq!(mcp_total(&app, &admin).await, 2);
    // An imported command runs no sooner than one added by hand.
    let (status, body) =
        text(app.call(&admin, "mcp/connect", &[("id", local["id"].as_str().expect("id"))]).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // One bad entry and nothing is created; the error names the entry and the field.
    let bad = serde_json::json!({ "mcpServers": {
        "Fine": { "url": "https://fine.example.com/mcp" },
        "foo": { "args": ["--flag"] },
    }})
    .to_string();
    let (status, body) = text(app.call(&admin, "mcp/import", &[("document", &bad)]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("mcpServers.foo.command") && body.contains("required"), "{body}");
    // A name already taken fails at the insert: the entries written before it go too.
    let taken = serde_json::json!({ "mcpServers": {
        "Another": { "url": "https://another.example.com/mcp" },
        "Local": { "url": "https://local.example.com/mcp" },
    }})
    .to_string();
    let (status, body) = text(app.call(&admin, "mcp/import", &[("document", &taken)]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("mcpServers.Local.name") && body.contains("taken"), "{body}");
    assert_eq!(mcp_total(&app, &admin).await, 2, "nothing of a refused document was created");

    // The limits are named.
    let huge = format!("{{\"mcpServers\": {{}}, \"pad\": \"{}\"}}", "x".repeat(model::mcp::IMPORT_MAX));
    let (status, body) = text(app.call(&admin, "mcp/import", &[("document", &huge)]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("\"field\":\"document\",\"rule\":\"too_large\",\"limit\":262144"), "{body}");
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("s{i}"), serde_json::json!({ "url": "https://x.example.com/mcp" }))).collect();
    let many = serde_json::json!({ "mcpServers": many }).to_string();
    let (status, body) = text(app.call(&admin, "mcp/import", &[("document", &many)]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("\"field\":\"mcpServers\",\"rule\":\"too_many\",\"limit\":50"), "{body}");
    let (status, body) = text(app.call(&admin, "mcp/import", &[("document", "{\"mcpServers\": ")]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("invalid_json"), "{body}");
    assert_eq!(mcp_total(&app, &admin).await, 2);
}

#[tokio::test]
async fn a_member_imports_local_commands_only_where_members_may_add_them() {
    let doc = serde_json::json!({ "mcpServers": {
        "Remote": { "url": "https://mcp.example.com/mcp" },
        "Local": { "command": "node", "args": [mcp_fixture()] },
    }})
    .to_string();
    let app = TestApp::spawn().await;
    let (_, member) = app.two_users().await;
    let (status, body) = text(app.call(&member, "mcp/import", &[("document", &doc)]).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("administrator"), "{body}");
    assert_eq!(mcp_total(&app, &member).await, 0, "not even the remote one was created");
    // A member's private address is refused by entry, as in the form.
    let private = serde_json::json!({ "mcpServers": { "Inside": { "url": "http://127.0.0.1:9/mcp" } } }).to_string();
    let (status, body) = text(app.call(&member, "mcp/import", &[("document", &private)]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("mcpServers.Inside.url") && body.contains("private_address"), "{body}");

    let app = TestApp::spawn_with(|s| s.mcp_stdio_for_members = true).await;
    let (_, member) = app.two_users().await;
    let added = json_ok(app.call(&member, "mcp/import", &[("document", &doc)]).await).await;
    let local = added.as_array().and_then(|a| a.iter().find(|s| s["name"] == "Local")).cloned().expect("local");
    assert_eq!(local["approved"], false, "still waits for approval");
    assert_eq!(mcp_total(&app, &member).await, 2);
}

#[tokio::test]
async fn a_form_with_fields_missing_names_each_of_them_and_stores_nothing() {
    capture_logs();
    let app = TestApp::spawn().await;
    let (admin, _) = app.two_users().await;
    let fields = |body: &str| -> Vec<String> {
        let body: Value = serde_json::from_str(body).expect("json");
        body["fields"]
            .as_array()
            .map(|f| f.iter().map(|f| f["field"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    };
    for (function, form, expected) in [
        ("providers/create", vec![("form[kind]", "openai")], vec!["name", "base_url"]),
        ("agents/create", vec![("form[slug]", "x")], vec!["name"]),
        ("mcp/create", vec![], vec!["name"]),
    ] {
        let (status, body) = text(app.call(&admin, function, &form).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{function}: {body}");
        let named = fields(&body);
        for field in expected {
            assert!(named.iter().any(|f| f == field), "{function} names {field}: {body}");
        }
    }
    for list in ["providers/list", "agents/list", "mcp/list"] {
        let body: Value = app.call(&admin, list, &[]).await.json().await.expect("list");
        let empty = body.as_array().map(|a| a.is_empty()).or_else(|| body["items"].as_array().map(|a| a.is_empty()));
        assert_eq!(empty, Some(true), "{list}: {body}");
    }
}
