//! Chat over real HTTP: an answer streams to the browser as it is written (not held back
//! by compression or buffering), a second reader resumes from any sequence number, and
//! every chat function refuses another user's ids.

use fake_upstream::{FakeUpstream, Reply, Script};
use model::chat::{RunStatus, Transcript};
use reqwest::StatusCode;
use server::testing::{Events, TestApp, fake_agent, json_ok as json};

#[tokio::test]
async fn an_answer_streams_live_and_a_second_reader_resumes_without_gaps() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let me = app.register("ada@example.com").await;
    let agent = fake_agent(&app, &me, &up).await;
    let words = "one two three four five six seven eight nine ten";
    up.push([Reply { cadence_ms: 80, ..Reply::text(words) }]);
    let sent = json(app.call(&me, "chat/send", &[("agent_id", &agent), ("text", "Count to ten.")]).await).await;
    let (conversation, message) = (
        sent["conversation_id"].as_str().expect("c").to_owned(),
        sent["assistant_message_id"].as_str().expect("m").to_owned(),
    );

    let mut live = Events::open(&app, &me, &message, 0).await;
    let mut first = live.until_text().await;
    // The first words arrive while the answer is still being written.
    let c = json(app.call(&me, "chat/get", &[("id", &conversation)]).await).await;
    assert_eq!(c["messages"][1]["transcript"]["status"], "running", "streamed before the end: {c}");

    let resume_at = first.last().map(|e| e.seq).expect("seq");
    let resumed = Events::open(&app, &me, &message, resume_at).await.rest().await;
    first.extend(live.rest().await);
    let mut whole = Transcript::default();
    first.iter().for_each(|e| whole.apply(e));
    assert_eq!((whole.text().as_str(), whole.status), (words, RunStatus::Done));
    assert_eq!(resumed.first().map(|e| e.seq), Some(resume_at + 1), "no gap");
    assert_eq!(&first[resume_at as usize..], &resumed[..], "the same events, none repeated");

    // After the end the stored answer reads the same.
    let again = Events::open(&app, &me, &message, 0).await.rest().await;
    assert_eq!(again, first);
}

#[tokio::test]
async fn every_chat_function_refuses_another_users_ids() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let agent = fake_agent(&app, &admin, &up).await;
    up.push([Reply { cadence_ms: 300, ..Reply::text("a slow answer that is still running") }]);
    let sent = json(app.call(&admin, "chat/send", &[("agent_id", &agent), ("text", "Hello")]).await).await;
    let c = sent["conversation_id"].as_str().expect("c");
    let m = sent["assistant_message_id"].as_str().expect("m");
    let u = sent["user_message_id"].as_str().expect("u");
    for (endpoint, form) in [
        ("chat/get", vec![("id", c)]),
        ("chat/send", vec![("agent_id", agent.as_str()), ("conversation_id", c), ("text", "hijack")]),
        ("chat/send", vec![("agent_id", agent.as_str()), ("text", "use their agent")]),
        ("chat/regenerate", vec![("message_id", m)]),
        ("chat/continue", vec![("message_id", m)]),
        ("chat/rate", vec![("message_id", m), ("rating", "down"), ("note", "theirs")]),
        ("chat/switch", vec![("message_id", u)]),
        ("chat/stop", vec![("message_id", m)]),
        ("chat/answer", vec![("message_id", m), ("call_id", "x"), ("allow", "true")]),
        ("chat/rename", vec![("id", c), ("title", "mine now")]),
        ("chat/delete", vec![("id", c)]),
        ("chat/events", vec![("message_id", m), ("after", "0")]),
    ] {
        let res = app.call(&member, endpoint, &form).await;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        // A new conversation with their agent names the agent.
        let code = if form.iter().any(|(k, _)| *k == "conversation_id") || endpoint != "chat/send" {
            "conversation_not_found"
        } else {
            "agent_not_found"
        };
        assert!(body.contains(&format!("\"code\":\"{code}\"")), "{endpoint}: {body}");
    }
    let list = json(app.call(&member, "chat/list", &[]).await).await;
    assert_eq!(list["total"], 0);
    // The owner's conversation is untouched and its answer still running.
    let view = json(app.call(&admin, "chat/get", &[("id", c)]).await).await;
    assert_eq!(view["title"], "Hello");
    assert_eq!(view["messages"].as_array().map(Vec::len), Some(2));
    json(app.call(&admin, "chat/stop", &[("message_id", m)]).await).await;
    let view = json(app.call(&admin, "chat/get", &[("id", c)]).await).await;
    assert_eq!(view["messages"][1]["transcript"]["status"], "stopped");

    // A message too long is refused by field, naming the limit.
    let long = "x".repeat(100_001);
    let res = app.call(&admin, "chat/send", &[("agent_id", &agent), ("text", &long)]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap_or_default().contains("100000"), "the limit is named");
}

/// `chat/send` with an `Idempotency-Key` sent twice (a retried request) makes one
/// question and one answer; the same key with other text is refused.
#[tokio::test]
async fn a_repeated_send_with_the_same_idempotency_key_creates_nothing_new() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let me = app.register("ada@example.com").await;
    let agent = fake_agent(&app, &me, &up).await;
    let send = |text: &'static str| {
        app.http
            .post(app.url("/api/chat/send"))
            .header(reqwest::header::ORIGIN, &app.base)
            .header(reqwest::header::COOKIE, me.header())
            .header("idempotency-key", "send-1")
            .form(&[("agent_id", agent.as_str()), ("text", text)])
            .send()
    };
    let first = json(send("Hello once").await.expect("send")).await;
    let again = json(send("Hello once").await.expect("send")).await;
    assert_eq!(first, again);
    let res = send("Something else").await.expect("send");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let count = |table: &'static str| {
        let pool = app.engine.store.pool.clone();
        async move {
            engine::sqlx::query_scalar::<_, i64>(engine::sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    assert_eq!((count("conversations").await, count("messages").await), (1, 2));
}

#[tokio::test]
async fn export_downloads_the_branch_and_a_share_link_shows_only_it_to_anyone_until_revoked() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let (me, other) = app.two_users().await;
    let agent = fake_agent(&app, &me, &up).await;
    up.push([Reply::text("The **first** answer."), Reply::text("A later, private answer.")]);
    let sent = json(app.call(&me, "chat/send", &[("agent_id", &agent), ("text", "Tell me something")]).await).await;
    let c = sent["conversation_id"].as_str().expect("c").to_owned();
    Events::open(&app, &me, sent["assistant_message_id"].as_str().expect("m"), 0).await.rest().await;

    // Export: the whole branch, as Markdown and JSON, for the owner only.
    let md = app.get(&me, &format!("/chat/{c}/export?format=md")).await;
    assert_eq!(md.status(), StatusCode::OK);
    assert!(md.headers()["content-disposition"].to_str().unwrap_or("").contains("tell-me-something.md"));
    let md = md.text().await.expect("md");
    assert!(md.starts_with("# Tell me something"), "{md}");
    assert!(
        md.contains("## You ·") && md.contains("Tell me something") && md.contains("The **first** answer."),
        "{md}"
    );
    let exported: serde_json::Value =
        app.get(&me, &format!("/chat/{c}/export?format=json")).await.json().await.expect("json");
    assert_eq!(exported["messages"].as_array().map(Vec::len), Some(2), "{exported}");
    assert_eq!(exported["messages"][1]["status"], "done");
    assert_eq!(app.get(&other, &format!("/chat/{c}/export?format=md")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&me, &format!("/chat/{c}/export?format=pdf")).await.status(), StatusCode::BAD_REQUEST);

    // Nobody else can see, make or end its link.
    for endpoint in ["chat/share/get", "chat/share", "chat/unshare"] {
        let res = app.call(&other, endpoint, &[("id", &c)]).await;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(body.contains("\"code\":\"conversation_not_found\""), "{endpoint}: {body}");
    }
    assert_eq!(json(app.call(&me, "chat/share/get", &[("id", &c)]).await).await, serde_json::Value::Null);

    // Shared, it reads the same for someone signed out, as the branch was then.
    let share = json(app.call(&me, "chat/share", &[("id", &c)]).await).await;
    let path = share["path"].as_str().expect("path").to_owned();
    let token = path.strip_prefix("/s/").expect("a /s/ path").to_owned();
    assert_eq!(json(app.call(&me, "chat/share", &[("id", &c)]).await).await["path"], path.as_str(), "one link");
    let later = json(
        app.call(&me, "chat/send", &[("agent_id", &agent), ("conversation_id", &c), ("text", "Secret follow-up")])
            .await,
    )
    .await;
    Events::open(&app, &me, later["assistant_message_id"].as_str().expect("m"), 0).await.rest().await;
    let anon = server::testing::Jar(Default::default());
    let shown = json(app.call(&anon, "chat/shared", &[("token", &token)]).await).await;
    assert_eq!(shown["title"], "Tell me something");
    assert_eq!(shown["messages"].as_array().map(Vec::len), Some(2), "later messages stay private: {shown}");
    assert!(!shown.to_string().contains("Secret follow-up"));
    let page = app.get(&anon, &path).await;
    assert_eq!(page.status(), StatusCode::OK, "no sign-in asked");
    let html = page.text().await.expect("html");
    assert!(html.contains("The <strong>first</strong> answer.") && !html.contains("Secret follow-up"), "{html}");
    // The token opens nothing else: not the conversation, not its messages.
    assert_eq!(app.call(&anon, "chat/get", &[("id", &c)]).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&anon, &format!("/chat/{c}")).await.status(), StatusCode::SEE_OTHER);

    // Revoked, the link is gone for everyone; a made-up or malformed token is the same.
    assert!(app.call(&me, "chat/unshare", &[("id", &c)]).await.status().is_success());
    for t in [token.as_str(), "A".repeat(43).as_str(), "../etc", ""] {
        let res = app.call(&anon, "chat/shared", &[("token", t)]).await;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NOT_FOUND, "{t}: {body}");
        assert!(body.contains("\"code\":\"share_not_found\""), "{t}: {body}");
    }
    let page = app.get(&anon, &path).await.text().await.expect("html");
    assert!(page.contains("This link does not work") && !page.contains("first</strong> answer"), "{page}");
    assert_eq!(json(app.call(&me, "chat/share/get", &[("id", &c)]).await).await, serde_json::Value::Null);
}

async fn attach(app: &TestApp, jar: &server::testing::Jar, files: &[(&str, &[u8])]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes) in files {
        form = form.part("files", reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()));
    }
    app.http
        .post(app.url("/api/chat/attach"))
        .header(reqwest::header::ORIGIN, &app.base)
        .header(reqwest::header::COOKIE, jar.header())
        .multipart(form)
        .send()
        .await
        .expect("attach")
}

/// Files are uploaded as multipart, sent with a message by id, and served to their owner
/// only, as what their content is; a file whose content is not what its name says is
/// refused naming it, and nothing is stored.
#[tokio::test]
async fn attached_files_are_served_to_their_owner_only_and_checked_against_their_names() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let (me, other) = app.two_users().await;
    let agent = fake_agent(&app, &me, &up).await;
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let files = json(attach(&app, &me, &[("a.png", png), ("notes.md", b"# Notes")]).await).await;
    let ids: Vec<&str> = files.as_array().expect("list").iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(files[0]["media_type"], "image/png");
    assert_eq!(files[1]["kind"], "text");
    up.push([Reply::text("Seen.")]);
    let joined = ids.join(",");
    let sent =
        json(app.call(&me, "chat/send", &[("agent_id", &agent), ("text", "Look"), ("attachments", &joined)]).await)
            .await;
    let c = sent["conversation_id"].as_str().expect("c");
    let view = json(app.call(&me, "chat/get", &[("id", c)]).await).await;
    assert_eq!(view["messages"][0]["attachments"].as_array().map(Vec::len), Some(2));

    let res = app.get(&me, &format!("/chat/attachments/{}", ids[0])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.expect("body").as_ref(), png);
    let res = app.get(&me, &format!("/chat/attachments/{}", ids[1])).await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    for id in &ids {
        let res = app.get(&other, &format!("/chat/attachments/{id}")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let res = app.call(&other, "chat/detach", &[("id", ids[0])]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = attach(&app, &me, &[("cat.png", b"<svg onload=alert(1)>")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap_or_default();
    assert!(body.contains("cat.png") && body.contains("not a PNG image") && body.contains("mismatch"), "{body}");
    let res = attach(&app, &me, &[("big.txt", &vec![b'a'; 5 * 1024 * 1024 + 1])]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap_or_default().contains("5242880"), "the limit is named");
    let res = app.call(&me, "chat/attach", &[("files", "x")]).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "multipart only");
}
