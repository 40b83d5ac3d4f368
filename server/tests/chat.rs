//! Chat over real HTTP: an answer streams to the browser as it is written (not held back
//! by compression or buffering), a second reader resumes from any sequence number, and
//! every chat function refuses another user's ids.

use fake_upstream::{FakeUpstream, Reply, Script};
use model::chat::{RunEvent, RunStatus, SeqEvent, Transcript};
use reqwest::StatusCode;
use serde_json::Value;
use server::testing::{Jar, TestApp};

async fn json(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// An agent of `jar`'s on the fake upstream.
async fn agent(app: &TestApp, jar: &Jar, up: &FakeUpstream) -> String {
    let base = up.openai_base();
    let p = json(
        app.call(
            jar,
            "providers/create",
            &[("name", "Fake"), ("kind", "openai"), ("base_url", &base), ("models", "fake-large")],
        )
        .await,
    )
    .await;
    let pid = p["id"].as_str().expect("provider id");
    let form = [
        ("name", "Helper"),
        ("provider_id", pid),
        ("model", "fake-large"),
        ("max_output_tokens", "512"),
        ("max_turns", "5"),
    ];
    json(app.call(jar, "agents/create", &form).await).await["id"].as_str().expect("agent id").to_owned()
}

/// Reads NDJSON events from a streaming response until the run's final status.
struct Lines {
    res: reqwest::Response,
    buf: Vec<u8>,
}

impl Lines {
    async fn next(&mut self) -> Option<SeqEvent> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("an event per line"));
            }
            let chunk = self.res.chunk().await.expect("body")?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    async fn rest(mut self) -> Vec<SeqEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

async fn events(app: &TestApp, jar: &Jar, message: &str, after: u64) -> Lines {
    let res = app.call(jar, "chat/events", &[("message_id", message), ("after", &after.to_string())]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ne!(res.headers().get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]), "never compressed");
    Lines { res, buf: Vec::new() }
}

#[tokio::test]
async fn an_answer_streams_live_and_a_second_reader_resumes_without_gaps() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let me = app.register("ada@example.com").await;
    let agent = agent(&app, &me, &up).await;
    let words = "one two three four five six seven eight nine ten";
    up.push([Reply { cadence_ms: 80, ..Reply::text(words) }]);
    let sent = json(app.call(&me, "chat/send", &[("agent_id", &agent), ("text", "Count to ten.")]).await).await;
    let (conversation, message) = (
        sent["conversation_id"].as_str().expect("c").to_owned(),
        sent["assistant_message_id"].as_str().expect("m").to_owned(),
    );

    let mut live = events(&app, &me, &message, 0).await;
    let mut first = Vec::new();
    while let Some(e) = live.next().await {
        let text = matches!(&e.event, RunEvent::Text { .. });
        first.push(e);
        if text {
            break;
        }
    }
    // The first words arrive while the answer is still being written.
    let c = json(app.call(&me, "chat/get", &[("id", &conversation)]).await).await;
    assert_eq!(c["messages"][1]["transcript"]["status"], "running", "streamed before the end: {c}");

    let resume_at = first.last().map(|e| e.seq).expect("seq");
    let resumed = events(&app, &me, &message, resume_at).await.rest().await;
    first.extend(live.rest().await);
    let mut whole = Transcript::default();
    first.iter().for_each(|e| whole.apply(e));
    assert_eq!((whole.text().as_str(), whole.status), (words, RunStatus::Done));
    assert_eq!(resumed.first().map(|e| e.seq), Some(resume_at + 1), "no gap");
    assert_eq!(&first[resume_at as usize..], &resumed[..], "the same events, none repeated");

    // After the end the stored answer reads the same.
    let again = events(&app, &me, &message, 0).await.rest().await;
    assert_eq!(again, first);
}

#[tokio::test]
async fn every_chat_function_refuses_another_users_ids() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn().await;
    let (admin, member) = app.two_users().await;
    let agent = agent(&app, &admin, &up).await;
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
