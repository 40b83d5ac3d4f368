//! Model calls over real HTTP against the fake upstream, in both wire formats: text and
//! tool calls streamed as canonical events, usage, retries before the first output only
//! (honouring Retry-After), fallbacks, and the timeouts.

use std::time::Duration;

use engine::Engine;
use engine::infra::store::Backend;
use engine::llm::{ChatRequest, LlmError, Policy, Started, start};
use engine::providers::ProviderSecrets;
use engine::testing::two_users;
use fake_upstream::{FakeUpstream, Reply, Script, Step};
use futures::StreamExt;
use model::chat::{Block, Message, Role, StopReason, StreamEvent, ToolSpec, Usage};
use serde_json::json;

struct Setup {
    up: FakeUpstream,
    client: reqwest::Client,
    secrets: ProviderSecrets,
    _engine: Engine,
}

async fn setup(kind: &str) -> Setup {
    let up = FakeUpstream::start("127.0.0.1:0", Script { api_key: Some("sk-test".into()), ..Script::default() })
        .await
        .expect("upstream");
    let e = engine::testing::engine(Backend::Sqlite).await;
    let t = two_users(&e).await;
    let base = if kind == "anthropic" { up.anthropic_base() } else { up.openai_base() };
    let form = model::providers::ProviderForm {
        name: "Fake".into(),
        kind: kind.into(),
        base_url: base,
        api_key: "sk-test".into(),
        ..Default::default()
    };
    let p = e.create_provider(&t.admin.user, form.parse().expect("form")).await.expect("provider");
    let (client, secrets) = e.model_client(&t.admin.user, &p.id).await.expect("client");
    Setup { up, client, secrets, _engine: e }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "fake-large".into(),
        system: "Be brief.".into(),
        messages: vec![Message::user("What is 2+3?")],
        tools: vec![ToolSpec {
            name: "add".into(),
            description: "Adds.".into(),
            schema: json!({ "type": "object", "properties": { "a": { "type": "number" } } }),
        }],
        temperature: Some(0.5),
        max_tokens: 256,
    }
}

fn fast() -> Policy {
    Policy {
        backoff: Duration::from_millis(10),
        first_output: Duration::from_secs(5),
        idle: Duration::from_secs(5),
        ..Policy::default()
    }
}

async fn collect(s: Started) -> (Vec<StreamEvent>, Option<LlmError>) {
    let mut events = s.events;
    let mut out = Vec::new();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(ev) => out.push(ev),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn text_streams_with_usage_in_both_formats() {
    for kind in ["anthropic", "openai"] {
        let s = setup(kind).await;
        s.up.push([Reply { input_tokens: 12, output_tokens: 7, ..Reply::text("Five, since 2 and 3 make 5.") }]);
        let started = start(&s.client, &s.secrets, &request(), &[], fast()).await.map_err(|e| e.0).expect("start");
        assert_eq!(started.model, "fake-large");
        let (events, err) = collect(started).await;
        assert_eq!(err, None, "{kind}");
        assert_eq!(text(&events), "Five, since 2 and 3 make 5.", "{kind}");
        assert!(events.iter().filter(|e| matches!(e, StreamEvent::TextDelta { .. })).count() > 3, "streamed in pieces");
        let usage = events.iter().rev().find_map(|e| match e {
            StreamEvent::Usage { usage } => Some(*usage),
            _ => None,
        });
        assert_eq!(usage, Some(Usage { input_tokens: Some(12), output_tokens: Some(7) }), "{kind}");
        assert_eq!(events.last(), Some(&StreamEvent::Stop { reason: StopReason::EndTurn }), "{kind}");
        // What was sent: the key, the system prompt, the tool, the limits.
        let seen = s.up.seen();
        let body = seen[0].body.clone().expect("body");
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 256);
        if kind == "anthropic" {
            assert_eq!(seen[0].headers["x-api-key"], "sk-test");
            assert_eq!(body["system"], "Be brief.");
            assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
        } else {
            assert_eq!(seen[0].headers["authorization"], "Bearer sk-test");
            assert_eq!(body["messages"][0]["role"], "system");
            assert_eq!(body["tools"][0]["function"]["name"], "add");
        }
    }
}

#[tokio::test]
async fn tool_calls_arrive_whole_and_results_go_back_in_each_format() {
    for kind in ["anthropic", "openai"] {
        let s = setup(kind).await;
        let mut reply = Reply::tool_call("call_1", "add", json!({ "a": 2, "b": 3, "note": "ünïcode" }));
        reply.steps.insert(0, Step::Text("Let me add. ".into()));
        s.up.push([reply]);
        let started = start(&s.client, &s.secrets, &request(), &[], fast()).await.map_err(|e| e.0).expect("start");
        let (events, err) = collect(started).await;
        assert_eq!(err, None, "{kind}");
        assert_eq!(text(&events), "Let me add. ");
        assert!(events.contains(&StreamEvent::ToolStart { id: "call_1".into(), name: "add".into() }), "{events:?}");
        assert!(events.iter().any(|e| matches!(e, StreamEvent::ToolDelta { .. })));
        assert!(events.contains(&StreamEvent::ToolEnd {
            id: "call_1".into(),
            name: "add".into(),
            input: json!({ "a": 2, "b": 3, "note": "ünïcode" })
        }));
        assert_eq!(events.last(), Some(&StreamEvent::Stop { reason: StopReason::ToolUse }));

        // The result goes back in the format's own shape.
        let mut req = request();
        req.messages.push(Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse { id: "call_1".into(), name: "add".into(), input: json!({ "a": 2, "b": 3 }) }],
        });
        req.messages.push(Message {
            role: Role::User,
            content: vec![Block::ToolResult { tool_use_id: "call_1".into(), content: "5".into(), is_error: false }],
        });
        s.up.push([Reply::text("It is 5.")]);
        let (events, _) =
            collect(start(&s.client, &s.secrets, &req, &[], fast()).await.map_err(|e| e.0).expect("2")).await;
        assert_eq!(text(&events), "It is 5.");
        let body = s.up.chat_requests()[1].clone();
        let messages = body["messages"].as_array().expect("messages");
        let last = messages.last().expect("last");
        if kind == "anthropic" {
            assert_eq!(last["content"][0]["type"], "tool_result");
            assert_eq!(last["content"][0]["tool_use_id"], "call_1");
            assert_eq!(messages[1]["content"][0]["input"]["b"], 3);
        } else {
            assert_eq!((last["role"].as_str(), last["tool_call_id"].as_str()), (Some("tool"), Some("call_1")));
            let args = messages[2]["tool_calls"][0]["function"]["arguments"].as_str().expect("arguments string");
            assert_eq!(serde_json::from_str::<serde_json::Value>(args).expect("json")["b"], 3);
        }
    }
}

#[tokio::test]
async fn a_rate_limit_before_output_is_waited_out_then_a_failing_model_falls_back() {
    for kind in ["anthropic", "openai"] {
        let s = setup(kind).await;
        s.up.push([Reply { retry_after_ms: Some(30), ..Reply::error(429, "slow down") }, Reply::text("ok")]);
        let started = start(&s.client, &s.secrets, &request(), &[], fast()).await.map_err(|e| e.0).expect("start");
        assert_eq!(started.failures.len(), 1);
        assert!(matches!(started.failures[0].1, LlmError::Http { status: 429, retry_after: Some(_), .. }));
        assert_eq!(text(&collect(started).await.0), "ok");

        // The first model keeps failing: after its retries the next model answers.
        let broken: Vec<Reply> = (0..3).map(|_| Reply::error(529, "Overloaded").for_model("fake-large")).collect();
        s.up.push(broken);
        s.up.push([Reply::text("from the fallback").for_model("fake-small")]);
        let started = start(&s.client, &s.secrets, &request(), &["fake-small".into()], fast())
            .await
            .map_err(|e| e.0)
            .expect("fallback");
        assert_eq!(started.model, "fake-small");
        assert_eq!(started.failures.len(), 3, "{kind}: three attempts of the first model");
        assert_eq!(text(&collect(started).await.0), "from the fallback");
    }
}

#[tokio::test]
async fn a_wrong_key_is_not_retried_nor_hidden_behind_a_fallback() {
    let s = setup("openai").await;
    let mut secrets = s.secrets.clone();
    secrets.api_key = Some("sk-wrong".to_owned().into());
    let (err, _) = start(&s.client, &secrets, &request(), &["fake-small".into()], fast()).await.err().expect("refused");
    assert!(matches!(&err, LlmError::Http { status: 401, .. }), "{err:?}");
    assert!(!err.to_string().contains("sk-wrong"), "the key is scrubbed from the message: {err}");
    assert_eq!(s.up.chat_requests().len(), 1);
}

#[tokio::test]
async fn once_output_is_visible_a_broken_stream_ends_with_the_error_and_no_retry() {
    for kind in ["anthropic", "openai"] {
        let s = setup(kind).await;
        let mut reply = Reply::text("Partial answer ");
        reply.steps.push(Step::Drop);
        s.up.push([reply, Reply::text("must not be used")]);
        let started = start(&s.client, &s.secrets, &request(), &["fake-small".into()], fast())
            .await
            .map_err(|e| e.0)
            .expect("start");
        let (events, err) = collect(started).await;
        assert_eq!(text(&events), "Partial answer ");
        assert!(matches!(err, Some(LlmError::Broken(_))), "{kind}: {err:?}");
        assert_eq!(s.up.chat_requests().len(), 1, "{kind}: nothing retried after output");

        // An error event before any output is retried.
        s.up.set_script(Script::default());
        s.up.push([Reply { steps: vec![Step::Error("Overloaded".into())], ..Reply::default() }, Reply::text("fine")]);
        let started = start(&s.client, &s.secrets, &request(), &[], fast()).await.map_err(|e| e.0).expect("retry");
        assert!(matches!(started.failures[0].1, LlmError::Upstream(_)), "{:?}", started.failures);
        assert_eq!(text(&collect(started).await.0), "fine");
    }
}

#[tokio::test]
async fn stalls_time_out_before_and_after_the_first_output() {
    let s = setup("anthropic").await;
    let policy =
        Policy { first_output: Duration::from_millis(300), idle: Duration::from_millis(300), retries: 0, ..fast() };
    s.up.push([Reply { steps: vec![Step::SleepMs(3000), Step::Text("late".into())], ..Reply::default() }]);
    let (err, _) = start(&s.client, &s.secrets, &request(), &[], policy).await.err().expect("timeout");
    assert!(matches!(err, LlmError::FirstOutputTimeout(_)), "{err:?}");

    s.up.push([Reply { steps: vec![Step::Text("Hi ".into()), Step::SleepMs(3000)], ..Reply::default() }]);
    let started = start(&s.client, &s.secrets, &request(), &[], policy).await.map_err(|e| e.0).expect("start");
    let (events, err) = collect(started).await;
    assert_eq!(text(&events), "Hi ");
    assert!(matches!(err, Some(LlmError::Idle(_))), "{err:?}");

    // A slow but steady cadence is not a stall.
    s.up.push([Reply { cadence_ms: 100, ..Reply::text("one two three four") }]);
    let started = start(&s.client, &s.secrets, &request(), &[], policy).await.map_err(|e| e.0).expect("start");
    let (events, err) = collect(started).await;
    assert_eq!((text(&events).as_str(), err), ("one two three four", None));
}

/// The benchmark's yardstick for cadence: the fake upstream, asked to, keeps the gaps
/// between the paced steps it sent, one fewer than the tokens, none shorter than the pause.
#[tokio::test]
async fn the_fake_upstream_times_its_paced_sends() {
    let s = setup("openai").await;
    s.up.push([Reply { cadence_ms: 30, ..Reply::text("one two three four five") }]);
    let started = start(&s.client, &s.secrets, &request(), &[], fast()).await.map_err(|e| e.0).expect("start");
    collect(started).await;
    assert!(s.up.take_sent_gaps().is_empty(), "untimed unless asked");

    s.up.set_script(Script { api_key: Some("sk-test".into()), time_sends: true, ..Script::default() });
    s.up.push([Reply { cadence_ms: 30, ..Reply::text("one two three four five") }]);
    let started = start(&s.client, &s.secrets, &request(), &[], fast()).await.map_err(|e| e.0).expect("start");
    let (events, err) = collect(started).await;
    assert_eq!((text(&events).as_str(), err), ("one two three four five", None));
    let gaps = s.up.take_sent_gaps();
    assert_eq!(gaps.len(), 4, "{gaps:?}");
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(30)), "{gaps:?}");
    assert!(s.up.take_sent_gaps().is_empty(), "taken once");
}
