//! Runs against the fake upstream over real HTTP, on both databases: answers stream and
//! are stored; tool calls run by policy (allow, ask, deny) against our MCP fixture; stop,
//! resume from any sequence number, a broken upstream, shutdown and crash recovery,
//! branches, and another user's ids.

use std::path::PathBuf;
use std::time::Duration;

use engine::Engine;
use engine::auth::CurrentUser;
use engine::chat::ChatError;
use engine::llm::Policy;
use engine::testing::{TwoUsers, each_backend, two_users};
use fake_upstream::{FakeUpstream, Reply, Step};
use futures::StreamExt;
use model::agents::ToolPolicy;
use model::chat::{CallState, Part, Rating, RunEvent, RunStatus, SeqEvent, Transcript};
use serde_json::json;

struct Setup {
    up: FakeUpstream,
    t: TwoUsers,
    agent: String,
}

fn fixture() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end/fixtures/mcp-fixture.mjs");
    p.canonicalize().expect("fixture").display().to_string()
}

/// An admin's agent on the fake upstream, optionally with the MCP fixture attached (its
/// read-only marks trusted by the admin).
async fn setup(e: &Engine, with_tools: bool, policies: &str) -> Setup {
    setup_with(e, with_tools, policies, "").await
}

/// The same, with the agent's limit of output tokens (empty: the default).
async fn setup_with(e: &Engine, with_tools: bool, policies: &str, max_output_tokens: &str) -> Setup {
    if let Ok(mut p) = e.runs.policy.lock() {
        *p = Policy { backoff: Duration::from_millis(10), ..Policy::default() };
    }
    let up = FakeUpstream::start("127.0.0.1:0", fake_upstream::Script::default()).await.expect("upstream");
    let t = two_users(e).await;
    let me = &t.admin.user;
    let form = model::providers::ProviderForm {
        name: "Fake".into(),
        kind: "openai".into(),
        base_url: up.openai_base(),
        ..Default::default()
    };
    let p = e.create_provider(me, form.parse().expect("p")).await.expect("provider");
    let form = model::agents::AgentForm {
        name: "Helper".into(),
        provider_id: p.id,
        model: "fake-large".into(),
        system_prompt: "Be helpful.".into(),
        tool_policies: policies.into(),
        max_output_tokens: max_output_tokens.into(),
        ..Default::default()
    };
    let agent = e.create_agent(me, form.parse().expect("spec")).await.expect("agent").id;
    if with_tools {
        let d = model::mcp::McpForm {
            name: "fx".into(),
            transport: "stdio".into(),
            command: "node".into(),
            args: fixture(),
            trust_read_only: Some("on".into()),
            ..Default::default()
        };
        let s = e.create_mcp(me, d.parse().expect("d")).await.expect("mcp");
        e.approve_mcp(me, &s.id, &s.command_line).await.expect("approve");
        e.connect_mcp(me, &s.id).await.expect("connect");
        e.set_agent_attachment(me, &agent, engine::agents::Attachment::Mcp, &s.id, true).await.expect("attach");
    }
    Setup { up, t, agent }
}

/// Every event from `from` until the run ends.
async fn follow(e: &Engine, user: &CurrentUser, message: &str, from: u64) -> Vec<SeqEvent> {
    let stream = e.subscribe_answer(user, message, from).await.expect("subscribe");
    tokio::time::timeout(Duration::from_secs(30), stream.collect::<Vec<_>>()).await.expect("the run ends")
}

fn fold(events: &[SeqEvent]) -> Transcript {
    let mut t = Transcript::default();
    events.iter().for_each(|e| t.apply(e));
    t
}

/// Waits until the run has emitted an event matching `f`.
async fn wait_for(e: &Engine, user: &CurrentUser, message: &str, f: impl Fn(&RunEvent) -> bool) -> u64 {
    let mut stream = e.subscribe_answer(user, message, 0).await.expect("subscribe");
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("event").expect("open");
        if f(&ev.event) {
            return ev.seq;
        }
    }
}

#[tokio::test]
async fn an_answer_streams_and_is_stored_with_its_usage() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        s.up.push([Reply { input_tokens: 20, output_tokens: 9, ..Reply::text("Paris is the capital of France.") }]);
        let sent = e.send_message(me, &s.agent, None, None, "What is the capital of France?").await.expect("send");
        let events = follow(&e, me, &sent.assistant_message_id, 0).await;
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "numbered without gaps");
        let t = fold(&events);
        assert_eq!(t.text(), "Paris is the capital of France.");
        assert_eq!(t.status, RunStatus::Done);
        assert_eq!((t.input_tokens, t.output_tokens), (20, 9));
        if let Some(l) = e.runs.live_for(&sent.assistant_message_id) {
            l.finished().await;
        }

        let c = e.get_conversation(me, &sent.conversation_id).await.expect("conversation");
        assert_eq!(c.title, "What is the capital of France?");
        assert_eq!(c.messages.len(), 2);
        assert_eq!(c.messages[0].text, "What is the capital of France?");
        let stored = c.messages[1].transcript.clone().expect("transcript");
        assert_eq!((stored.text(), stored.status), (t.text(), RunStatus::Done));
        assert_eq!((c.input_tokens, c.output_tokens), (20, 9));
        // Later subscribers read the stored events: the same answer.
        assert_eq!(fold(&follow(&e, me, &sent.assistant_message_id, 0).await).text(), t.text());
        // What the model got: the system prompt and the question.
        let body = &s.up.chat_requests()[0];
        assert_eq!(body["messages"][0]["content"], "Be helpful.");
        assert_eq!(body["messages"][1]["content"], "What is the capital of France?");

        // The next message carries the conversation so far.
        s.up.push([Reply::text("About 2.1 million.")]);
        let next = e
            .send_message(me, &s.agent, Some(&sent.conversation_id), None, "How many people live there?")
            .await
            .expect("2");
        follow(&e, me, &next.assistant_message_id, 0).await;
        let body = &s.up.chat_requests()[1];
        let roles: Vec<&str> =
            body["messages"].as_array().expect("m").iter().filter_map(|m| m["role"].as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(body["messages"][2]["content"], "Paris is the capital of France.");
    })
    .await;
}

#[tokio::test]
async fn tool_calls_run_by_policy_and_their_results_go_back_to_the_model() {
    each_backend(|e| async move {
        // add is marked read-only on a trusted server (allowed by default); write_note may
        // write, so it asks.
        let s = setup(&e, true, "").await;
        let me = &s.t.admin.user;
        s.up.push([
            Reply::tool_call("c1", "fx__add", json!({ "a": 2, "b": 3 })),
            Reply::tool_call("c2", "fx__write_note", json!({ "text": "remember" })),
            Reply::text("2 + 3 = 5, and I noted it."),
        ]);
        let sent = e.send_message(me, &s.agent, None, None, "Add 2 and 3, then note it.").await.expect("send");
        let msg = sent.assistant_message_id.clone();
        // The run waits for the person on write_note.
        wait_for(&e, me, &msg, |ev| matches!(ev, RunEvent::Status { status: RunStatus::Waiting, .. })).await;
        let waiting = e.get_conversation(me, &sent.conversation_id).await.expect("c").messages[1].transcript.clone();
        let calls: Vec<_> = waiting
            .expect("t")
            .parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Tool { call } => Some((call.label, call.state, call.result)),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("fx/add".into(), CallState::Done, "5".into()),
                ("fx/write_note".into(), CallState::Asking, String::new()),
            ]
        );
        // Another user cannot answer for the owner.
        let err = e.answer_tool(&s.t.member.user, &msg, "c2", true).await.expect_err("not theirs");
        assert!(matches!(err, ChatError::NotFound), "{err:?}");
        e.answer_tool(me, &msg, "c2", true).await.expect("allow");
        let events = follow(&e, me, &msg, 0).await;
        let t = fold(&events);
        assert_eq!(t.status, RunStatus::Done, "{}", t.error);
        // The trace: three model calls in order, each with its figures; both tool calls
        // timed, the second allowed by its owner.
        let trace = model::runs::Trace::of(&events);
        let steps: Vec<String> = trace
            .steps
            .iter()
            .map(|s| match s {
                model::runs::Step::Model { call: Some(c), .. } => format!("model {} {}", c.model, c.stop),
                model::runs::Step::Model { call: None, .. } => "model (open)".into(),
                model::runs::Step::Tool { label, answered, .. } => format!("tool {label} {answered:?}"),
                model::runs::Step::Continues { from } => format!("continues {from}"),
                model::runs::Step::Context(cut) => format!("context {}", cut.dropped),
                model::runs::Step::Status { status, .. } => format!("status {}", status.as_str()),
            })
            .collect();
        assert_eq!(
            steps,
            [
                "model fake-large tool_use",
                "tool fx/add None",
                "model fake-large tool_use",
                "tool fx/write_note Some((true, \"ada\"))",
                "model fake-large end_turn",
            ]
        );
        assert!(
            events.iter().any(|e| matches!(&e.event, RunEvent::ModelCall(c) if c.ms >= c.ttft_ms)),
            "a call's whole time includes its first output's"
        );
        let run = e.answer_run(me, &msg).await.expect("run");
        let detail = e.get_run(me, &run).await.expect("run");
        assert_eq!((detail.run.kind, detail.run.status), (model::runs::RunKind::Chat, RunStatus::Done));
        assert_eq!(detail.run.subject_id, msg, "the run names the answer it wrote");
        assert!(detail.run.agent_version >= 1 && detail.limits.max_turns > 0);
        assert_eq!(detail.events, events, "the trace reads the stored events");
        assert!(t.text().ends_with("2 + 3 = 5, and I noted it."));
        let results: Vec<String> = t
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Tool { call } => Some(call.result.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(results, ["5", "noted: remember"]);
        // The model got each result in its own tool message.
        let third = &s.up.chat_requests()[2];
        let tool_msgs: Vec<&str> = third["messages"]
            .as_array()
            .expect("m")
            .iter()
            .filter(|m| m["role"] == "tool")
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert_eq!(tool_msgs, ["5", "noted: remember"]);
        assert_eq!(third["tools"].as_array().map(Vec::len), Some(2), "both tools offered: {}", third["tools"]);
    })
    .await;
}

/// The tool calls of a run, as `(label, state)`.
fn calls(t: &Transcript) -> Vec<(String, CallState)> {
    t.parts
        .iter()
        .filter_map(|p| match p {
            Part::Tool { call } => Some((call.label.clone(), call.state)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_tool_claiming_to_only_read_still_asks_unless_an_admin_trusts_its_server() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        // A server whose destructive tool says it only reads.
        let file = engine::testing::temp_dir("mcp-liar").join("tools.json");
        let tool = json!({
            "name": "delete_everything",
            "description": "Deletes everything.",
            "inputSchema": { "type": "object" },
            "annotations": { "readOnlyHint": true },
        });
        std::fs::write(&file, json!([tool]).to_string()).expect("tools");
        let form = |trust: Option<&str>| model::mcp::McpForm {
            name: "fx".into(),
            transport: "stdio".into(),
            command: "node".into(),
            args: format!("{}\n{}", fixture(), file.display()),
            trust_read_only: trust.map(Into::into),
            ..Default::default()
        };
        let m = e.create_mcp(me, form(None).parse().expect("d")).await.expect("mcp");
        e.approve_mcp(me, &m.id, &m.command_line).await.expect("approve");
        let m = e.connect_mcp(me, &m.id).await.expect("connect");
        assert_eq!(
            m.tools.iter().map(|t| (t.name.as_str(), t.read_only)).collect::<Vec<_>>(),
            [("delete_everything", true)]
        );
        e.set_agent_attachment(me, &s.agent, engine::agents::Attachment::Mcp, &m.id, true).await.expect("attach");

        // No policy names it: the run waits for the person, whatever the server claims.
        s.up.push([Reply::tool_call("c1", "fx__delete_everything", json!({})), Reply::text("Stopped.")]);
        let sent = e.send_message(me, &s.agent, None, None, "Clean up.").await.expect("send");
        let msg = sent.assistant_message_id.clone();
        wait_for(&e, me, &msg, |ev| matches!(ev, RunEvent::Status { status: RunStatus::Waiting, .. })).await;
        let waiting = e.get_conversation(me, &sent.conversation_id).await.expect("c").messages[1].transcript.clone();
        assert_eq!(calls(&waiting.expect("t")), [("fx/delete_everything".into(), CallState::Asking)]);
        e.answer_tool(me, &msg, "c1", false).await.expect("decline");
        assert_eq!(fold(&follow(&e, me, &msg, 0).await).status, RunStatus::Done);

        // The admin trusts this server's marks: now the call runs without asking.
        let m = e.update_mcp(me, &m.id, form(Some("on")).parse().expect("d")).await.expect("trust");
        assert!(m.trust_read_only && m.approved);
        s.up.push([Reply::tool_call("c2", "fx__delete_everything", json!({})), Reply::text("Done.")]);
        let next = e.send_message(me, &s.agent, Some(&sent.conversation_id), None, "Again.").await.expect("send");
        let events = follow(&e, me, &next.assistant_message_id, 0).await;
        assert!(
            !events.iter().any(|ev| matches!(ev.event, RunEvent::Status { status: RunStatus::Waiting, .. })),
            "a trusted read-only tool does not wait"
        );
        let t = fold(&events);
        assert_eq!((t.status, calls(&t)), (RunStatus::Done, vec![("fx/delete_everything".into(), CallState::Done)]));
    })
    .await;
}

#[tokio::test]
async fn a_declined_or_denied_call_goes_back_as_an_error_result() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, true, "fx/add=deny").await;
    let me = &s.t.admin.user;
    s.up.push([Reply::tool_call("c1", "fx__write_note", json!({ "text": "x" })), Reply::text("Understood.")]);
    let sent = e.send_message(me, &s.agent, None, None, "Note x").await.expect("send");
    let msg = sent.assistant_message_id.clone();
    wait_for(&e, me, &msg, |ev| matches!(ev, RunEvent::Status { status: RunStatus::Waiting, .. })).await;
    e.answer_tool(me, &msg, "c1", false).await.expect("deny");
    let t = fold(&follow(&e, me, &msg, 0).await);
    assert_eq!(t.status, RunStatus::Done);
    let second = &s.up.chat_requests()[1];
    let names: Vec<&str> =
        second["tools"].as_array().expect("tools").iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert!(!names.contains(&"fx__add"), "a denied tool is not offered: {names:?}");
    let tool = second["messages"].as_array().expect("m").iter().find(|m| m["role"] == "tool").expect("result");
    assert_eq!(tool["content"], "The user declined this tool call.");
}

#[tokio::test]
async fn stop_keeps_what_was_written_and_a_resumed_stream_has_no_gaps_or_repeats() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        let words = "one two three four five six seven eight nine ten eleven twelve";
        s.up.push([Reply { cadence_ms: 60, ..Reply::text(words) }, Reply { cadence_ms: 60, ..Reply::text(words) }]);
        let sent = e.send_message(me, &s.agent, None, None, "Count.").await.expect("send");
        let msg = sent.assistant_message_id.clone();
        // A reader that "reloads" at event 3 picks up from 3 and ends equal to one that never left.
        let third =
            wait_for(&e, me, &msg, |ev| matches!(ev, RunEvent::Text { text } if text.starts_with("three"))).await;
        let (whole, resumed) = tokio::join!(follow(&e, me, &msg, 0), follow(&e, me, &msg, third));
        assert_eq!(resumed.first().map(|e| e.seq), Some(third + 1));
        let mut early = fold(&whole[..third as usize]);
        resumed.iter().for_each(|ev| early.apply(ev));
        assert_eq!(early, fold(&whole));
        assert_eq!(fold(&whole).text(), words);

        // Stopping mid-answer keeps what was written.
        let again = e.send_message(me, &s.agent, Some(&sent.conversation_id), None, "Again.").await.expect("again");
        wait_for(
            &e,
            me,
            &again.assistant_message_id,
            |ev| matches!(ev, RunEvent::Text { text } if text.starts_with("two")),
        )
        .await;
        e.stop_answer(me, &again.assistant_message_id).await.expect("stop");
        let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
        let t = c.messages.last().and_then(|m| m.transcript.clone()).expect("t");
        assert_eq!(t.status, RunStatus::Stopped);
        assert!(t.text().starts_with("one two"), "{}", t.text());
        assert!(t.text().len() < words.len(), "it stopped early: {}", t.text());
        assert!(matches!(e.stop_answer(me, &again.assistant_message_id).await, Err(ChatError::NotRunning)));
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_that_falls_far_behind_still_gets_every_event_once() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        // Far more events than the live buffer holds, streamed as fast as the upstream can.
        let words = (1..=400).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        s.up.push([Reply::text(&words)]);
        let sent = e.send_message(me, &s.agent, None, None, "Count.").await.expect("send");
        let msg = sent.assistant_message_id.clone();
        // Subscribed while live, then not read at all until the run has ended.
        let slow = e.subscribe_answer(me, &msg, 0).await.expect("subscribe");
        if let Some(l) = e.runs.live_for(&msg) {
            l.finished().await;
        }
        let events = tokio::time::timeout(Duration::from_secs(30), slow.collect::<Vec<_>>()).await.expect("ends");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert!(seqs.len() > 400, "{} events", seqs.len());
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
        let t = fold(&events);
        assert_eq!((t.text(), t.status), (words.clone(), RunStatus::Done));
    })
    .await;
}

#[tokio::test]
async fn a_dying_upstream_leaves_an_incomplete_answer_and_one_that_never_answered_fails() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    let mut dying = Reply::text("The first part ");
    dying.steps.push(Step::Drop);
    s.up.push([dying]);
    let sent = e.send_message(me, &s.agent, None, None, "Tell me.").await.expect("send");
    let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
    assert_eq!(t.status, RunStatus::Incomplete);
    assert_eq!(t.text(), "The first part ");
    assert!(t.error.contains("incomplete"), "{}", t.error);

    s.up.push((0..3).map(|_| Reply::error(500, "boom")));
    let sent = e.send_message(me, &s.agent, Some(&sent.conversation_id), None, "Again?").await.expect("send");
    let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
    assert_eq!(t.status, RunStatus::Failed);
    assert!(t.error.contains("500"), "{}", t.error);
}

/// An answer that broke off can be continued: a new version of it starts with what the
/// first wrote, the model is asked to go on from there, and the first stays as the other
/// version. A finished answer cannot be continued.
#[tokio::test]
async fn an_incomplete_answer_continues_where_it_broke_off() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    let mut dying = Reply::text("The first part ");
    dying.steps.push(Step::Drop);
    s.up.push([dying, Reply::text("and the rest.")]);
    let sent = e.send_message(me, &s.agent, None, None, "Tell me.").await.expect("send");
    let first = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
    assert_eq!(first.status, RunStatus::Incomplete);

    let other = &s.t.member.user;
    let err = e.continue_answer(other, &sent.assistant_message_id).await.expect_err("not theirs");
    assert!(matches!(err, ChatError::NotFound), "{err:?}");

    let again = e.continue_answer(me, &sent.assistant_message_id).await.expect("continue");
    assert_eq!(again.user_message_id, sent.user_message_id, "a sibling of the broken answer");
    let t = fold(&follow(&e, me, &again.assistant_message_id, 0).await);
    assert_eq!((t.text(), t.status), ("The first part and the rest.".to_owned(), RunStatus::Done));
    let last = s.up.chat_requests().last().cloned().expect("request");
    let messages = last["messages"].as_array().cloned().unwrap_or_default();
    let tail = messages.last().expect("a message");
    assert_eq!(tail["role"], "assistant", "the model goes on from its own words: {messages:?}");
    assert!(tail.to_string().contains("The first part"), "{tail}");

    let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
    assert_eq!(c.messages.len(), 2);
    assert_eq!(c.messages[1].id, again.assistant_message_id);
    assert_eq!(c.messages[1].siblings, [sent.assistant_message_id.clone(), again.assistant_message_id.clone()]);
    let trace = e.get_run(me, c.messages[1].run_id.as_deref().expect("run")).await.expect("trace");
    let first_run = e.answer_run(me, &sent.assistant_message_id).await.expect("first run");
    assert!(
        trace.events.iter().any(|ev| matches!(&ev.event, RunEvent::Continues { from, .. } if *from == first_run)),
        "the trace names the run it carries on"
    );

    let err = e.continue_answer(me, &again.assistant_message_id).await.expect_err("finished");
    let fields = match err {
        ChatError::Invalid(f) => f.0.into_iter().map(|f| (f.field, f.rule)).collect::<Vec<_>>(),
        e => panic!("{e:?}"),
    };
    assert_eq!(fields, [("message_id".to_owned(), "not_continuable".to_owned())]);
}

/// A person rates an answer up or down with a note, changes or takes it back; the rating is
/// theirs alone, and a note past its limit is refused with nothing stored.
#[tokio::test]
async fn answers_are_rated_with_a_note_by_their_owner_only() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        s.up.push([Reply::text("Forty-two.")]);
        let sent = e.send_message(me, &s.agent, None, None, "The answer?").await.expect("send");
        follow(&e, me, &sent.assistant_message_id, 0).await;
        let answer = &sent.assistant_message_id;
        let rating = |up: bool, note: &str| Some(Rating { up, note: note.into() });
        let shown = |e: Engine| {
            let (conversation, me) = (sent.conversation_id.clone(), me.clone());
            async move { e.get_conversation(&me, &conversation).await.expect("c").messages[1].rating.clone() }
        };

        e.rate_answer(me, answer, rating(false, "  Too terse.  ")).await.expect("rate");
        assert_eq!(shown(e.clone()).await, rating(false, "Too terse."));
        e.rate_answer(me, answer, rating(true, "")).await.expect("change");
        assert_eq!(shown(e.clone()).await, rating(true, ""));

        let long = "x".repeat(model::chat::RATING_NOTE_MAX + 1);
        match e.rate_answer(me, answer, rating(false, &long)).await {
            Err(ChatError::Invalid(f)) => {
                assert_eq!(
                    (f.0[0].field.as_str(), f.0[0].rule.as_str(), f.0[0].limit),
                    ("note", "too_long", Some(2000))
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(shown(e.clone()).await, rating(true, ""), "nothing stored");

        let other = &s.t.member.user;
        let err = e.rate_answer(other, answer, rating(false, "mine now")).await.expect_err("not theirs");
        assert!(matches!(err, ChatError::NotFound), "{err:?}");
        let err = e.rate_answer(me, &sent.user_message_id, rating(true, "")).await.expect_err("a question");
        assert!(matches!(err, ChatError::Invalid(_)), "{err:?}");

        e.rate_answer(me, answer, None).await.expect("take back");
        assert_eq!(shown(e.clone()).await, None);
    })
    .await;
}

#[tokio::test]
async fn shutdown_interrupts_runs_and_a_crash_is_recovered_at_start() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        s.up.push([Reply { cadence_ms: 200, ..Reply::text("a b c d e f g h i j k l m n o p") }]);
        let sent = e.send_message(me, &s.agent, None, None, "Go slowly.").await.expect("send");
        wait_for(&e, me, &sent.assistant_message_id, |ev| matches!(ev, RunEvent::Text { .. })).await;
        e.drain_runs(Duration::from_millis(100)).await;
        let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
        let t = c.messages[1].transcript.clone().expect("t");
        assert_eq!(t.status, RunStatus::Interrupted);
        assert!(t.text().starts_with("a "), "content kept: {:?}", t.text());

        // A run the store says is running on another instance that still beats is left
        // alone (a second server starting must not end the first one's answers)…
        let now = engine::infra::store::now_ms();
        engine::sqlx::query("INSERT INTO instances (id, started_at, heartbeat_at) VALUES ('other', $1, $1)")
            .bind(now)
            .execute(&e.store.pool)
            .await
            .expect("other instance");
        // Its stored transcript lags its stored events (it is written about once a second).
        let empty = serde_json::to_string(&Transcript::default()).expect("json");
        let run = e.answer_run(me, &sent.assistant_message_id).await.expect("run");
        engine::sqlx::query("UPDATE runs SET status = 'running', instance_id = 'other', transcript = $2 WHERE id = $1")
            .bind(&run)
            .bind(&empty)
            .execute(&e.store.pool)
            .await
            .expect("pretend");
        assert_eq!(e.recover_runs().await.expect("recover"), 0);
        let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
        assert_eq!(c.messages[1].transcript.as_ref().map(|t| t.status), Some(RunStatus::Running));

        // …and once that instance has fallen silent (it was killed), the run is marked
        // interrupted, content kept (replayed from the stored events) — by the start-up
        // check or the periodic sweep.
        engine::sqlx::query("UPDATE instances SET heartbeat_at = 0 WHERE id = 'other'")
            .execute(&e.store.pool)
            .await
            .expect("silence");
        assert!(e.recover_runs().await.expect("recover") <= 1);
        let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
        let t = c.messages[1].transcript.clone().expect("t");
        assert_eq!(t.status, RunStatus::Interrupted);
        assert!(t.text().starts_with("a "), "content replayed: {:?}", t.text());
        let events = follow(&e, me, &sent.assistant_message_id, 0).await;
        assert_eq!(fold(&events).status, RunStatus::Interrupted, "the stored events end with it too");
    })
    .await;
}

#[tokio::test]
async fn a_second_instance_follows_answers_and_stops_runs_the_first_one_drives() {
    for backend in engine::testing::backends() {
        // Two processes on one database (and one data dir, so one set of keys).
        let settings = engine::testing::settings(backend).await;
        let a = Engine::start(settings.clone()).await.expect("a");
        let b = Engine::start(settings).await.expect("b");
        assert_ne!(a.instance_id(), b.instance_id());
        let s = setup(&a, true, "").await;
        let me = &s.t.admin.user;
        let words = "one two three four five six";
        s.up.push([
            Reply::tool_call("c1", "fx__write_note", json!({ "text": "from b" })),
            Reply { cadence_ms: 60, ..Reply::text(words) },
            Reply { cadence_ms: 200, ..Reply::text("slow slow slow slow slow slow slow slow slow slow") },
        ]);
        let sent = a.send_message(me, &s.agent, None, None, "Note it, then count.").await.expect("send");
        let msg = sent.assistant_message_id.clone();
        assert!(a.runs.live_for(&msg).is_some() && b.runs.live_for(&msg).is_none(), "a drives the run");

        // B sees the run wait for approval and approves it; A's run goes on.
        wait_for(&b, me, &msg, |ev| matches!(ev, RunEvent::Status { status: RunStatus::Waiting, .. })).await;
        b.answer_tool(me, &msg, "c1", true).await.expect("allow through b");
        let through_b = follow(&b, me, &msg, 0).await;
        let seqs: Vec<u64> = through_b.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
        let t = fold(&through_b);
        assert_eq!(t.status, RunStatus::Done, "{}", t.error);
        assert!(t.text().ends_with(words), "{}", t.text());
        assert!(t.parts.iter().any(|p| matches!(p, Part::Tool { call } if call.result == "noted: from b")));
        if let Some(l) = a.runs.live_for(&msg) {
            l.finished().await;
        }
        assert_eq!(follow(&a, me, &msg, 0).await, through_b, "both instances tell the same story");

        // A stop through B ends A's run, what was written kept.
        let slow = a.send_message(me, &s.agent, Some(&sent.conversation_id), None, "Slowly.").await.expect("send");
        let slow_msg = slow.assistant_message_id.clone();
        wait_for(&b, me, &slow_msg, |ev| matches!(ev, RunEvent::Text { .. })).await;
        let err = b.stop_answer(&s.t.member.user, &slow_msg).await.expect_err("not theirs");
        assert!(matches!(err, ChatError::NotFound), "{err:?}");
        assert!(b.subscribe_answer(&s.t.member.user, &slow_msg, 0).await.is_err(), "not theirs to follow");
        b.stop_answer(me, &slow_msg).await.expect("stop through b");
        let t = fold(&follow(&a, me, &slow_msg, 0).await);
        assert_eq!(t.status, RunStatus::Stopped);
        assert!(t.text().starts_with("slow"), "kept: {:?}", t.text());
        assert!(matches!(b.stop_answer(me, &slow_msg).await, Err(ChatError::NotRunning)));
    }
}

#[tokio::test]
async fn regenerate_and_edit_make_branches_one_can_switch_between() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    s.up.push([Reply::text("First answer."), Reply::text("Second answer."), Reply::text("Answer to the edit.")]);
    let sent = e.send_message(me, &s.agent, None, None, "Hi").await.expect("send");
    follow(&e, me, &sent.assistant_message_id, 0).await;
    let again = e.regenerate(me, &sent.assistant_message_id).await.expect("regenerate");
    follow(&e, me, &again.assistant_message_id, 0).await;
    let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
    assert_eq!(c.messages[1].siblings, [sent.assistant_message_id.clone(), again.assistant_message_id.clone()]);
    let shown = &c.messages[1].transcript;
    assert_eq!(shown.as_ref().map(Transcript::text).as_deref(), Some("Second answer."), "{shown:?}");

    let edit = e
        .send_message(me, &s.agent, Some(&sent.conversation_id), Some(&sent.user_message_id), "Hello")
        .await
        .expect("edit");
    follow(&e, me, &edit.assistant_message_id, 0).await;
    let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
    assert_eq!(c.messages[0].text, "Hello");
    assert_eq!(c.messages[0].siblings.len(), 2);

    // An edit replaces a person's message, never an answer.
    let err = e
        .send_message(me, &s.agent, Some(&sent.conversation_id), Some(&sent.assistant_message_id), "x")
        .await
        .expect_err("an answer is not editable");
    assert!(matches!(&err, ChatError::Invalid(f) if f.0[0].field == "parent_id"), "{err:?}");

    // Back to the first branch: the old question and its newest answer.
    e.switch_branch(me, &sent.user_message_id).await.expect("switch");
    let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
    assert_eq!(c.messages[0].text, "Hi");
    assert_eq!(c.messages[1].transcript.as_ref().map(Transcript::text).as_deref(), Some("Second answer."));

    // Lists find it by title or text; rename; delete.
    assert_eq!(e.list_conversations(me, None, "second answer", 1).await.expect("l").total, 1);
    assert_eq!(e.list_conversations(me, Some(&s.agent), "", 1).await.expect("l").total, 1);
    e.rename_conversation(me, &sent.conversation_id, "Greetings").await.expect("rename");
    assert_eq!(e.list_conversations(me, None, "greet", 1).await.expect("l").items[0].title, "Greetings");

    // Nobody else reaches any of it.
    let other = &s.t.member.user;
    let nf = |r: Result<(), ChatError>, what: &str| assert!(matches!(r, Err(ChatError::NotFound)), "{what}: {r:?}");
    nf(e.get_conversation(other, &sent.conversation_id).await.map(drop), "get");
    nf(e.regenerate(other, &sent.assistant_message_id).await.map(drop), "regenerate");
    nf(e.send_message(other, &s.agent, Some(&sent.conversation_id), None, "x").await.map(drop), "send");
    nf(e.switch_branch(other, &sent.user_message_id).await, "switch");
    nf(e.rename_conversation(other, &sent.conversation_id, "x").await, "rename");
    nf(e.subscribe_answer(other, &sent.assistant_message_id, 0).await.map(drop), "subscribe");
    nf(e.stop_answer(other, &sent.assistant_message_id).await, "stop");
    nf(e.delete_conversation(other, &sent.conversation_id).await, "delete");
    assert_eq!(e.list_conversations(other, None, "", 1).await.expect("l").total, 0);
    let err = e.send_message(other, &s.agent, None, None, "use their agent").await.expect_err("agent");
    assert!(matches!(err, ChatError::Agent(engine::agents::AgentError::NotFound)), "{err:?}");

    e.delete_conversation(me, &sent.conversation_id).await.expect("delete");
    assert!(matches!(e.get_conversation(me, &sent.conversation_id).await, Err(ChatError::NotFound)));
}

#[tokio::test]
async fn pinned_conversations_head_the_list_and_another_agent_can_take_over() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    let mut ids = Vec::new();
    for text in ["first", "second", "third"] {
        let sent = e.send_message(me, &s.agent, None, None, text).await.expect("send");
        follow(&e, me, &sent.assistant_message_id, 0).await;
        ids.push(sent.conversation_id);
    }
    let order = |l: model::Page<model::chat::ConversationSummary>| -> Vec<(String, bool)> {
        l.items.into_iter().map(|c| (c.title, c.pinned)).collect()
    };
    let listed = order(e.list_conversations(me, None, "", 1).await.expect("l"));
    assert_eq!(listed, [("third".into(), false), ("second".into(), false), ("first".into(), false)]);
    e.pin_conversation(me, &ids[0], true).await.expect("pin");
    let listed = order(e.list_conversations(me, None, "", 1).await.expect("l"));
    assert_eq!(listed, [("first".into(), true), ("third".into(), false), ("second".into(), false)]);
    e.pin_conversation(me, &ids[0], false).await.expect("unpin");
    assert_eq!(order(e.list_conversations(me, None, "", 1).await.expect("l"))[0], ("third".into(), false));
    let other = &s.t.member.user;
    assert!(matches!(e.pin_conversation(other, &ids[1], true).await, Err(ChatError::NotFound)));
    assert!(!e.list_conversations(me, None, "", 1).await.expect("l").items.iter().any(|c| c.pinned));

    // Another agent picked in the composer answers, and stays the conversation's agent.
    let second = e.duplicate_agent(me, &s.agent).await.expect("duplicate").id;
    let sent = e.send_message(me, &second, Some(&ids[2]), None, "and you?").await.expect("send");
    follow(&e, me, &sent.assistant_message_id, 0).await;
    assert_eq!(e.get_conversation(me, &ids[2]).await.expect("c").agent_id, second);
    let again = e.regenerate(me, &sent.assistant_message_id).await.expect("regenerate");
    follow(&e, me, &again.assistant_message_id, 0).await;
    assert_eq!(e.get_conversation(me, &ids[2]).await.expect("c").agent_id, second);
    // Someone else's agent cannot take over; nothing is written.
    let shared = model::providers::ProviderForm {
        name: "Team".into(),
        kind: "openai".into(),
        base_url: s.up.openai_base(),
        shared: Some("on".into()),
        ..Default::default()
    };
    let shared = e.create_provider(me, shared.parse().expect("p")).await.expect("shared provider");
    let form = model::agents::AgentForm {
        name: "Theirs".into(),
        provider_id: shared.id,
        model: "fake-large".into(),
        ..Default::default()
    };
    let theirs = e.create_agent(other, form.parse().expect("spec")).await.expect("their agent").id;
    let err = e.send_message(me, &theirs, Some(&ids[2]), None, "x").await.expect_err("their agent");
    assert!(matches!(err, ChatError::Agent(engine::agents::AgentError::NotFound)), "{err:?}");
    let c = e.get_conversation(me, &ids[2]).await.expect("c");
    assert_eq!((c.agent_id, c.messages.len()), (second, 4));
}

#[tokio::test]
async fn bad_messages_are_refused_by_field() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    for (text, rule) in [("   ", "required"), (&"x".repeat(100_001)[..], "too_long")] {
        match e.send_message(me, &s.agent, None, None, text).await {
            Err(ChatError::Invalid(f)) => assert_eq!(f.0[0].rule, rule),
            other => panic!("expected invalid, got {other:?}"),
        }
    }
    assert_eq!(e.list_conversations(me, None, "", 1).await.expect("l").total, 0, "nothing was written");
}

#[tokio::test]
async fn a_changed_or_deleted_provider_counts_from_the_next_answer() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        let ask = |text: &'static str| {
            let (e, agent) = (e.clone(), s.agent.clone());
            async move {
                let sent = e.send_message(me, &agent, None, None, text).await.expect("send");
                fold(&follow(&e, me, &sent.assistant_message_id, 0).await)
            }
        };
        s.up.push([Reply::text("From the first.")]);
        assert_eq!(ask("One").await.text(), "From the first.");

        // The connection moves to another upstream: the next answer comes from there.
        let other = FakeUpstream::start("127.0.0.1:0", fake_upstream::Script::default()).await.expect("upstream");
        other.push([Reply::text("From the second.")]);
        let p = e.list_providers(me).await.expect("providers").remove(0);
        let form = model::providers::ProviderForm {
            name: "Fake".into(),
            kind: "openai".into(),
            base_url: other.openai_base(),
            ..Default::default()
        };
        e.update_provider(me, &p.id, form.parse().expect("p")).await.expect("update");
        assert_eq!(ask("Two").await.text(), "From the second.");
        assert_eq!(s.up.chat_requests().len(), 1, "the old address is not called again");

        // Deleted, it is gone for the next answer too.
        e.delete_provider(me, &p.id).await.expect("delete");
        let t = ask("Three").await;
        assert_eq!(t.status, RunStatus::Failed, "{t:?}");
        assert_eq!(other.chat_requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn many_runs_at_once_are_all_stored_whole() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        let n = 30;
        s.up.push((0..n).map(|i| Reply { cadence_ms: 3, ..Reply::text(&format!("Answer {i} in a few words")) }));
        let mut sent = Vec::new();
        for i in 0..n {
            sent.push(e.send_message(me, &s.agent, None, None, &format!("Question {i}")).await.expect("send"));
        }
        for m in &sent {
            follow(&e, me, &m.assistant_message_id, 0).await;
            if let Some(l) = e.runs.live_for(&m.assistant_message_id) {
                l.finished().await;
            }
        }
        let mut texts = Vec::new();
        for m in &sent {
            // The row and the stored events (read by a later subscriber) agree, whole.
            let c = e.get_conversation(me, &m.conversation_id).await.expect("conversation");
            let stored = c.messages[1].transcript.clone().expect("transcript");
            assert_eq!(stored.status, RunStatus::Done);
            let events = follow(&e, me, &m.assistant_message_id, 0).await;
            let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "stored without gaps");
            assert_eq!(fold(&events).text(), stored.text());
            texts.push(stored.text());
        }
        texts.sort();
        let mut expected: Vec<String> = (0..n).map(|i| format!("Answer {i} in a few words")).collect();
        expected.sort();
        assert_eq!(texts, expected);
    })
    .await;
}

#[tokio::test]
async fn api_requests_at_once_store_whole_conversations() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        let n = 20;
        s.up.push((0..n).map(|i| Reply { cadence_ms: 2, ..Reply::text(&format!("API answer {i}")) }));
        let msg = |role: &str, text: &str| engine::chat::v1::ApiMessage { role: role.into(), text: text.into() };
        // Started back to back, so that one flusher round writes several conversations.
        let mut started = Vec::new();
        for i in 0..n {
            let history = [
                msg("system", "Be brief."),
                msg("user", "Hello"),
                msg("assistant", "Hi, how can I help?"),
                msg("user", &format!("Question {i}")),
            ];
            started.push(e.api_chat(me, "helper", &history).await.expect("api chat"));
        }
        let mut answers = Vec::new();
        for (sent, events) in started {
            let events: Vec<SeqEvent> = events.collect().await;
            if let Some(l) = e.runs.live_for(&sent.assistant_message_id) {
                l.finished().await;
            }
            let c = e.get_conversation(me, &sent.conversation_id).await.expect("conversation");
            let texts: Vec<String> =
                c.messages.iter().map(|m| m.transcript.as_ref().map_or(m.text.clone(), Transcript::text)).collect();
            assert_eq!(texts.len(), 4, "the whole exchange, shown as the conversation's branch: {texts:?}");
            assert!(texts[0].ends_with("Hello"), "{texts:?}");
            assert_eq!(texts[1], "Hi, how can I help?");
            assert!(texts[2].starts_with("Question "), "{texts:?}");
            assert_eq!(c.messages[3].id, sent.assistant_message_id);
            assert_eq!(c.messages[3].transcript.as_ref().map(|t| t.status), Some(RunStatus::Done));
            // What the caller was streamed is what was stored.
            assert_eq!(fold(&events).text(), texts[3]);
            answers.push(texts[3].clone());
        }
        answers.sort();
        let mut expected: Vec<String> = (0..n).map(|i| format!("API answer {i}")).collect();
        expected.sort();
        assert_eq!(answers, expected);
    })
    .await;
}

/// A provider that ignores `max_tokens` cannot make an answer longer than the agent allows:
/// what is received is counted, and the answer ends near the limit, marked incomplete.
#[tokio::test]
async fn a_16_token_agent_stops_near_16_tokens_whatever_the_provider_sends() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup_with(&e, false, "", "16").await;
    let me = &s.t.admin.user;
    s.up.push([Reply::text(&"word ".repeat(2_000))]);
    let sent = e.send_message(me, &s.agent, None, None, "Talk forever.").await.expect("send");
    let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
    assert_eq!(s.up.chat_requests()[0]["max_tokens"], 16, "the limit is asked for");
    assert_eq!(t.status, RunStatus::Incomplete);
    assert!(t.error.contains("16 output tokens"), "{}", t.error);
    let words = t.text().split_whitespace().count();
    assert!((16..=22).contains(&words), "{words} words kept");
    let stored = e.get_conversation(me, &sent.conversation_id).await.expect("c").messages[1].transcript.clone();
    assert_eq!(stored.map(|t| t.text().split_whitespace().count()), Some(words), "the store holds the same");
}

/// An answer holds at most `ANSWER_MAX_BYTES`: past it the run ends, incomplete, with what
/// it had (a provider sending megabytes per delta cannot fill the store or the memory).
#[tokio::test]
async fn an_answer_is_capped_in_size_and_ends_incomplete() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup_with(&e, false, "", "1000000").await;
    let me = &s.t.admin.user;
    let piece = "x".repeat(10_000);
    s.up.push([Reply { steps: (0..300).map(|_| Step::Text(piece.clone())).collect(), ..Reply::default() }]);
    let sent = e.send_message(me, &s.agent, None, None, "Fill the disk.").await.expect("send");
    let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
    assert_eq!(t.status, RunStatus::Incomplete);
    assert!(t.error.contains("most one answer may hold"), "{}", t.error);
    let max = engine::runs::ANSWER_MAX_BYTES;
    let stored = e.get_conversation(me, &sent.conversation_id).await.expect("c").messages[1].transcript.clone();
    let len = stored.map(|t| t.text().len()).unwrap_or_default();
    assert!(len <= max + piece.len() && len > max - piece.len(), "stored {len} bytes, cap {max}");
}

/// Nobody answers an approval: after `approval_timeout_secs` the run ends as stopped and
/// says why, and the call can no longer be answered.
#[tokio::test]
async fn an_unanswered_approval_times_out_and_the_run_stops_saying_why() {
    let mut settings = engine::testing::settings(engine::infra::store::Backend::Sqlite).await;
    settings.limits.approval_timeout_secs = 1;
    let e = Engine::start(settings).await.expect("engine");
    let s = setup(&e, true, "").await;
    let me = &s.t.admin.user;
    s.up.push([Reply::tool_call("c1", "fx__write_note", json!({ "text": "x" }))]);
    let sent = e.send_message(me, &s.agent, None, None, "Note x").await.expect("send");
    let msg = sent.assistant_message_id.clone();
    wait_for(&e, me, &msg, |ev| matches!(ev, RunEvent::Status { status: RunStatus::Waiting, .. })).await;
    let t = fold(&follow(&e, me, &msg, 0).await);
    assert_eq!(t.status, RunStatus::Stopped);
    assert!(t.error.contains("Nobody allowed or declined fx/write_note within 1 second"), "{}", t.error);
    assert!(e.answer_tool(me, &msg, "c1", true).await.is_err(), "too late to answer");
    assert_eq!(s.up.chat_requests().len(), 1, "the tool never ran and the model was not called again");
}

/// A conversation holds at most `messages_per_conversation` messages; past it a new
/// message or a regeneration is refused with the limit, and nothing is written.
#[tokio::test]
async fn a_full_conversation_refuses_new_messages_naming_the_limit() {
    let mut settings = engine::testing::settings(engine::infra::store::Backend::Sqlite).await;
    settings.limits.messages_per_conversation = 4;
    let e = Engine::start(settings).await.expect("engine");
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    s.up.push([Reply::text("One."), Reply::text("Two.")]);
    let first = e.send_message(me, &s.agent, None, None, "1").await.expect("send");
    follow(&e, me, &first.assistant_message_id, 0).await;
    let second = e.send_message(me, &s.agent, Some(&first.conversation_id), None, "2").await.expect("send");
    follow(&e, me, &second.assistant_message_id, 0).await;
    let full = |r: Result<model::chat::Sent, ChatError>| match r {
        Err(ChatError::Invalid(f)) => {
            assert_eq!(
                (f.0[0].field.as_str(), f.0[0].rule.as_str(), f.0[0].limit),
                ("conversation_id", "full", Some(4))
            )
        }
        other => panic!("expected the conversation to be full, got {other:?}"),
    };
    full(e.send_message(me, &s.agent, Some(&first.conversation_id), None, "3").await);
    full(e.regenerate(me, &second.assistant_message_id).await);
    let c = e.get_conversation(me, &first.conversation_id).await.expect("c");
    assert_eq!(c.messages.len(), 4, "nothing was added");
}

/// A run is given the path it answers, not the conversation's other branches.
#[tokio::test]
async fn a_run_is_given_only_the_branch_it_answers() {
    let e = engine::testing::engine(engine::infra::store::Backend::Sqlite).await;
    let s = setup(&e, false, "").await;
    let me = &s.t.admin.user;
    s.up.push([Reply::text("Alpha answer."), Reply::text("Beta answer."), Reply::text("Gamma answer.")]);
    let a = e.send_message(me, &s.agent, None, None, "Alpha question").await.expect("send");
    follow(&e, me, &a.assistant_message_id, 0).await;
    let b = e
        .send_message(me, &s.agent, Some(&a.conversation_id), Some(&a.user_message_id), "Beta question")
        .await
        .expect("edit");
    follow(&e, me, &b.assistant_message_id, 0).await;
    let c = e.send_message(me, &s.agent, Some(&a.conversation_id), None, "Gamma question").await.expect("send");
    follow(&e, me, &c.assistant_message_id, 0).await;
    let sent: Vec<String> = s.up.chat_requests()[2]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sent, ["Beta question", "Beta answer.", "Gamma question"]);
}

#[tokio::test]
async fn the_meter_is_asked_before_a_model_call_and_runs_are_listed_by_kind() {
    each_backend(|e| async move {
        let s = setup(&e, true, "fx/add=allow").await;
        let me = &s.t.admin.user;

        // The meter is asked before the model is called: a refusal ends the run, saying
        // why, and the model is never called.
        struct Refuse;
        impl engine::runs::meter::Meter for Refuse {
            fn before<'a>(
                &'a self,
                _: &'a Engine,
                _: engine::runs::meter::Asking<'a>,
                call: engine::runs::meter::Call<'a>,
            ) -> futures::future::BoxFuture<'a, Result<(), String>> {
                let why = format!("over budget for {call:?}");
                Box::pin(async move { Err(why) })
            }
        }
        let allow_all = e.runs.meter.lock().map(|m| m.clone()).expect("meter");
        *e.runs.meter.lock().expect("meter") = std::sync::Arc::new(Refuse);
        let sent = e.send_message(me, &s.agent, None, None, "Hi").await.expect("send");
        let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
        assert_eq!(t.status, RunStatus::Incomplete);
        assert!(t.error.contains("over budget for Model"), "{}", t.error);
        assert!(s.up.chat_requests().is_empty(), "no model call was made");
        *e.runs.meter.lock().expect("meter") = allow_all;

        // Chat answers and API answers are runs of their kinds, filtered apart.
        s.up.push([Reply::text("Hello over the API.")]);
        let hi = engine::chat::v1::ApiMessage { role: "user".into(), text: "Hi".into() };
        let (_, events) = e.api_chat(me, "helper", &[hi]).await.expect("api");
        let _: Vec<_> = events.collect().await;
        let filter = |kind: &str| model::runs::RunFilter { kind: kind.into(), ..Default::default() };
        assert_eq!(e.list_runs(me, &filter("api")).await.expect("list").total, 1);
        assert_eq!(e.list_runs(me, &filter("chat")).await.expect("list").total, 1);
        let bad = model::runs::RunFilter { status: "sleeping".into(), ..Default::default() };
        let err = e.list_runs(me, &bad).await.expect_err("unknown status");
        assert!(matches!(&err, engine::runs::RunError::Invalid(f) if f.0[0].field == "status"), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn tool_calls_and_wall_time_past_the_limits_end_the_run() {
    for backend in engine::testing::backends() {
        let mut settings = engine::testing::settings(backend).await;
        settings.limits.run_tool_calls = 1;
        let e = Engine::start(settings).await.expect("engine");
        let s = setup(&e, true, "fx/add=allow").await;
        let me = &s.t.admin.user;
        s.up.push([
            Reply::tool_call("c1", "fx__add", json!({ "a": 1, "b": 1 })),
            Reply::tool_call("c2", "fx__add", json!({ "a": 2, "b": 2 })),
            Reply::text("never"),
        ]);
        let sent = e.send_message(me, &s.agent, None, None, "Add twice").await.expect("send");
        let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
        assert_eq!(t.status, RunStatus::Incomplete);
        assert!(t.error.contains("most tool calls it may (1)"), "{}", t.error);
        assert_eq!(s.up.chat_requests().len(), 2, "the model is not called after the limit");
        e.store.close().await;

        let mut settings = engine::testing::settings(backend).await;
        settings.limits.run_wall_secs = 1;
        let e = Engine::start(settings).await.expect("engine");
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        s.up.push([Reply { cadence_ms: 200, ..Reply::text("one two three four five six seven eight nine ten") }]);
        let sent = e.send_message(me, &s.agent, None, None, "Slowly").await.expect("send");
        let t = fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
        assert_eq!(t.status, RunStatus::Incomplete);
        assert!(t.error.contains("passed its limit of 1 second"), "{}", t.error);
        assert!(t.text().starts_with("one"), "what it wrote is kept: {}", t.text());
    }
}

#[tokio::test]
async fn a_child_run_inherits_what_its_parent_has_left_and_stops_with_it() {
    each_backend(|e| async move {
        let s = setup(&e, false, "").await;
        let me = &s.t.admin.user;
        s.up.push([
            Reply { cadence_ms: 200, ..Reply::text("parent parent parent parent parent parent parent parent") },
            Reply { cadence_ms: 200, ..Reply::text("child child child child child child child child child") },
        ]);
        let sent = e.send_message(me, &s.agent, None, None, "Delegate").await.expect("send");
        wait_for(&e, me, &sent.assistant_message_id, |ev| matches!(ev, RunEvent::Text { .. })).await;
        let parent = e.answer_run(me, &sent.assistant_message_id).await.expect("run");
        let agent = e.get_agent(me, &s.agent).await.expect("agent");
        let head = engine::runs::RunHead::new(model::runs::RunKind::Api, me, &s.agent, "", "");
        let input = engine::runs::Input::Ready {
            agent: Box::new(agent),
            history: vec![engine::runs::Turn::new("", vec![model::chat::Message::user("Sub-task")])],
        };
        // Only the owner of the parent may start its children.
        let theirs = engine::runs::RunHead::new(model::runs::RunKind::Api, &s.t.member.user, &s.agent, "", "");
        let other_input = engine::runs::Input::Ready {
            agent: Box::new(e.get_agent(me, &s.agent).await.expect("a")),
            history: vec![],
        };
        assert!(e.start_child(&s.t.member.user, &parent, theirs, other_input).is_err());
        let child = e.start_child(me, &parent, head, input).expect("child");
        assert_eq!(child.parent_id(), Some(parent.as_str()));
        let child_id = child.id().to_owned();
        wait_for_run(&e, me, &child_id, |ev| matches!(ev, RunEvent::Text { .. })).await;
        let parent_limits = e.runs.live(&parent).expect("parent live").limits();
        let child_limits = child.limits();
        assert!(child_limits.max_turns < parent_limits.max_turns, "{child_limits:?} vs {parent_limits:?}");
        assert!(child_limits.wall_secs <= parent_limits.wall_secs);

        e.stop_run(me, &parent).await.expect("stop the parent");
        child.finished().await;
        let d = e.get_run(me, &child_id).await.expect("child run");
        assert_eq!(d.run.status, RunStatus::Stopped, "the child stopped with its parent");
        assert_eq!(d.run.parent_id.as_deref(), Some(parent.as_str()));
        // Stopping what has ended says so and changes nothing.
        assert!(matches!(e.stop_run(me, &parent).await, Err(engine::runs::RunError::Ended)));
        assert!(matches!(e.stop_run(me, &child_id).await, Err(engine::runs::RunError::Ended)));
    })
    .await;
}

/// Waits until the run `run_id` has emitted an event matching `f`.
async fn wait_for_run(e: &Engine, user: &CurrentUser, run_id: &str, f: impl Fn(&RunEvent) -> bool) {
    let mut stream = e.subscribe_run(user, run_id, 0).await.expect("subscribe");
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("event").expect("open");
        if f(&ev.event) {
            return;
        }
    }
}

#[tokio::test]
async fn the_editor_and_a_run_offer_the_same_tools_under_the_same_policies() {
    each_backend(|e| async move {
        let s = setup(&e, true, "fx/add=deny").await;
        let me = &s.t.admin.user;
        let shown = e.get_agent(me, &s.agent).await.expect("agent").tools;
        assert!(shown.iter().any(|t| t.key == "fx/add" && t.policy == ToolPolicy::Deny && t.explicit));
        s.up.push([Reply::text("ok")]);
        let sent = e.send_message(me, &s.agent, None, None, "Which tools?").await.expect("send");
        follow(&e, me, &sent.assistant_message_id, 0).await;
        let offered: Vec<String> = s.up.chat_requests()[0]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect();
        let allowed: Vec<String> =
            shown.iter().filter(|t| t.policy != ToolPolicy::Deny).map(|t| t.key.replace('/', "__")).collect();
        assert!(!allowed.is_empty());
        assert_eq!(offered, allowed, "a denied tool is not offered; every other one is, as the editor shows it");
    })
    .await;
}

/// Agents on a model whose window (from the model table) holds about three long messages,
/// one per context rule.
async fn small_window(backend: engine::infra::store::Backend) -> (Engine, FakeUpstream, TwoUsers, [String; 3]) {
    let mut settings = engine::testing::settings(backend).await;
    let model = engine::settings::Price { context_window: 3000, ..Default::default() };
    settings.pricing.insert("fake-small".into(), model);
    let e = Engine::start(settings).await.expect("engine");
    let up = FakeUpstream::start("127.0.0.1:0", fake_upstream::Script::default()).await.expect("upstream");
    let t = two_users(&e).await;
    let me = &t.admin.user;
    let form = model::providers::ProviderForm {
        name: "Fake".into(),
        kind: "openai".into(),
        base_url: up.openai_base(),
        ..Default::default()
    };
    let p = e.create_provider(me, form.parse().expect("p")).await.expect("provider");
    let mut agents = Vec::new();
    for rule in ["summarize", "drop_oldest", "refuse"] {
        let form = model::agents::AgentForm {
            name: format!("Small {rule}"),
            provider_id: p.id.clone(),
            model: "fake-small".into(),
            system_prompt: "Be helpful.".into(),
            max_output_tokens: "256".into(),
            context_rule: rule.into(),
            ..Default::default()
        };
        agents.push(e.create_agent(me, form.parse().expect("spec")).await.expect("agent").id);
    }
    let agents: [String; 3] = agents.try_into().expect("three");
    (e, up, t, agents)
}

/// Sends `text` (into `conversation`, or a new one) and waits for the answer.
async fn turn(
    e: &Engine,
    me: &CurrentUser,
    agent: &str,
    conversation: Option<&str>,
    text: &str,
) -> (String, Transcript) {
    let sent = e.send_message(me, agent, conversation, None, text).await.expect("send");
    let t = fold(&follow(e, me, &sent.assistant_message_id, 0).await);
    (sent.conversation_id, t)
}

fn cut_of(t: &Transcript) -> Option<model::chat::ContextCut> {
    t.parts.iter().find_map(|p| match p {
        Part::Context { cut } => Some(cut.clone()),
        _ => None,
    })
}

/// A conversation longer than the model's window keeps answering: the oldest messages are
/// summarised (and a summary is summarised again later), left out with a note, or the
/// answer is refused with the window named, by the agent's rule. Every request the
/// upstream gets fits the window, and the transcript marks where the cut was made.
#[tokio::test]
async fn a_conversation_longer_than_the_window_keeps_answering_by_the_agents_rule() {
    for backend in engine::testing::backends() {
        let (e, up, t, [summarize, drop_oldest, refuse]) = small_window(backend).await;
        let me = &t.admin.user;
        let long = |i: usize| format!("Message {i}: {}", "words ".repeat(450));
        let reply = |i: usize| Reply::text(&format!("Answer {i}: {}", "ok ".repeat(200)));
        // Whatever the model table says, a request must fit: its messages, at three bytes a
        // token, within the window less the output asked for.
        let fits = |req: &serde_json::Value| {
            assert_eq!(req["max_tokens"], 256);
            let bytes = req["messages"].to_string().len();
            assert!(bytes <= 3 * (3000 - 256), "{bytes} bytes sent");
        };

        // Summarise: the third message no longer fits with the first two exchanges.
        up.push([reply(1), reply(2), Reply::text("SUMMARY-ONE of the start."), reply(3)]);
        let (c, a1) = turn(&e, me, &summarize, None, &long(1)).await;
        let (_, a2) = turn(&e, me, &summarize, Some(&c), &long(2)).await;
        assert_eq!((cut_of(&a1), cut_of(&a2)), (None, None));
        let (_, a3) = turn(&e, me, &summarize, Some(&c), &long(3)).await;
        assert_eq!(a3.status, RunStatus::Done, "{}", a3.error);
        let first = cut_of(&a3).expect("a cut in the third answer");
        assert_eq!((first.summary.as_str(), first.window), ("SUMMARY-ONE of the start.", 3000));
        let reqs = up.chat_requests();
        assert_eq!(reqs.len(), 4);
        let summary_req = reqs[2].to_string();
        assert!(summary_req.contains("summarise") && summary_req.contains("Message 2:"), "{summary_req}");
        fits(&reqs[3]);
        let answer_req = reqs[3]["messages"].to_string();
        assert!(answer_req.contains("SUMMARY-ONE") && !answer_req.contains("Message 1:"), "{answer_req}");
        assert!(answer_req.contains("Message 3:"));

        // The next answer starts from that cut; the one after summarises the summary.
        up.push([reply(4), Reply::text("SUMMARY-TWO of more."), reply(5)]);
        let (_, a4) = turn(&e, me, &summarize, Some(&c), &long(4)).await;
        assert_eq!(cut_of(&a4), None, "the first cut still holds");
        let reqs = up.chat_requests();
        fits(&reqs[4]);
        assert!(reqs[4]["messages"].to_string().contains("SUMMARY-ONE"));
        let (_, a5) = turn(&e, me, &summarize, Some(&c), &long(5)).await;
        let second = cut_of(&a5).expect("a second cut");
        assert!(second.dropped > first.dropped, "{second:?} after {first:?}");
        let reqs = up.chat_requests();
        assert!(reqs[5].to_string().contains("SUMMARY-ONE"), "the summary is summarised with what follows");
        fits(&reqs[6]);
        let answer_req = reqs[6]["messages"].to_string();
        assert!(answer_req.contains("SUMMARY-TWO") && !answer_req.contains("SUMMARY-ONE"), "{answer_req}");
        let stored = e.get_conversation(me, &c).await.expect("c");
        assert_eq!(stored.messages.len(), 10, "every message is kept; only the request is shorter");

        // Drop oldest: the request says what was left out, and nothing is summarised.
        up.push([reply(1), reply(2), reply(3)]);
        let (c, _) = turn(&e, me, &drop_oldest, None, &long(1)).await;
        turn(&e, me, &drop_oldest, Some(&c), &long(2)).await;
        let (_, a3) = turn(&e, me, &drop_oldest, Some(&c), &long(3)).await;
        let cut = cut_of(&a3).expect("a cut");
        assert_eq!((cut.summary.as_str(), cut.dropped), ("", 1));
        let reqs = up.chat_requests();
        assert_eq!(reqs.len(), 10, "no summary was asked for");
        fits(&reqs[9]);
        let answer_req = reqs[9]["messages"].to_string();
        assert!(answer_req.contains("left out") && !answer_req.contains("Message 1:"), "{answer_req}");

        // Refuse: the answer fails naming the window, and the upstream is not asked.
        up.push([reply(1), reply(2)]);
        let (c, _) = turn(&e, me, &refuse, None, &long(1)).await;
        turn(&e, me, &refuse, Some(&c), &long(2)).await;
        let (_, a3) = turn(&e, me, &refuse, Some(&c), &long(3)).await;
        assert_eq!(a3.status, RunStatus::Failed);
        assert!(a3.error.contains("context window of 3000 tokens"), "{}", a3.error);
        assert_eq!(up.chat_requests().len(), 12);

        // One message bigger than the window fails the same way under any rule.
        let (_, huge) = turn(&e, me, &summarize, None, &"x".repeat(10_000)).await;
        assert_eq!(huge.status, RunStatus::Failed);
        assert!(huge.error.contains("Send a shorter message"), "{}", huge.error);
        assert_eq!(up.chat_requests().len(), 12);
    }
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn upload(name: &str, bytes: &[u8]) -> engine::chat::attachments::NewFile {
    engine::chat::attachments::NewFile { name: name.into(), bytes: bytes.to_vec() }
}

fn refused(e: ChatError) -> String {
    match e {
        ChatError::Attachment(p) => p.rule().to_owned(),
        ChatError::Invalid(f) => f.0[0].rule.clone(),
        ChatError::Quota { .. } => "quota".into(),
        e => panic!("{e:?}"),
    }
}

/// An image and a text file go with a message: the image in each provider's own format,
/// the text file as text with its name; both are the owner's alone, and kept with the
/// message (a regenerated answer gets them again). Files that are not what their name
/// says, too large, too many, past the quota, or images for a text-only model are
/// refused with the reason, and nothing is stored.
#[tokio::test]
async fn attachments_reach_each_provider_in_its_own_format() {
    for backend in engine::testing::backends() {
        let mut settings = engine::testing::settings(backend).await;
        settings.pricing.insert("fake-text".into(), engine::settings::Price { vision: false, ..Default::default() });
        settings.limits.attachment_max_bytes = 64 * 1024;
        settings.limits.storage_per_user_bytes = 200 * 1024;
        let e = Engine::start(settings).await.expect("engine");
        let up = FakeUpstream::start("127.0.0.1:0", fake_upstream::Script::default()).await.expect("upstream");
        let t = two_users(&e).await;
        let me = &t.admin.user;
        let mut agents = Vec::new();
        for (kind, model) in [("anthropic", "fake-large"), ("openai", "fake-large"), ("openai", "fake-text")] {
            let base = if kind == "anthropic" { up.anthropic_base() } else { up.openai_base() };
            let form = model::providers::ProviderForm {
                name: format!("Fake {kind} {model}"),
                kind: kind.into(),
                base_url: base,
                api_key: "k".into(),
                ..Default::default()
            };
            let p = e.create_provider(me, form.parse().expect("p")).await.expect("provider");
            let form = model::agents::AgentForm {
                name: format!("Looker {kind} {model}"),
                provider_id: p.id,
                model: model.into(),
                ..Default::default()
            };
            agents.push(e.create_agent(me, form.parse().expect("spec")).await.expect("agent").id);
        }
        let notes = "fn main() {\n    println!(\"```\");\n}\n";
        let files = |e: Engine, me: CurrentUser| async move {
            let up = e.upload_attachments(&me, vec![upload("shot.png", PNG), upload("main.rs", notes.as_bytes())]);
            up.await.expect("upload").into_iter().map(|a| a.id).collect::<Vec<_>>()
        };

        // Anthropic: an image block with base64 data, the file as named text.
        let ids = files(e.clone(), me.clone()).await;
        up.push([Reply::text("A red pixel."), Reply::text("Still a red pixel.")]);
        let out = engine::chat::Outgoing {
            agent_id: &agents[0],
            conversation_id: None,
            parent_id: None,
            text: "What is in these?",
            attachments: &ids,
        };
        let sent = e.send(me, out).await.expect("send");
        fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
        let req = up.chat_requests().pop().expect("request");
        let content = &req["messages"][0]["content"];
        assert_eq!(content[0]["type"], "text");
        let file = content[0]["text"].as_str().unwrap_or_default();
        assert!(file.starts_with("Attached file `main.rs`:") && file.contains("````\nfn main()"), "{file}");
        assert_eq!(content[1]["type"], "image");
        assert_eq!(content[1]["source"]["media_type"], "image/png");
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(PNG);
        assert_eq!(content[1]["source"]["data"], data.as_str());
        assert_eq!(content[2]["text"], "What is in these?");
        // The conversation shows them with the message; a regenerated answer gets them again.
        let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
        let shown: Vec<(&str, &str)> =
            c.messages[0].attachments.iter().map(|a| (a.name.as_str(), a.media_type.as_str())).collect();
        assert_eq!(shown, [("shot.png", "image/png"), ("main.rs", "text/plain")]);
        let again = e.regenerate(me, &sent.assistant_message_id).await.expect("regenerate");
        fold(&follow(&e, me, &again.assistant_message_id, 0).await);
        assert_eq!(
            up.chat_requests().pop().expect("request")["messages"][0]["content"][1]["source"]["data"],
            data.as_str()
        );
        let (a, bytes) = e.attachment(me, &ids[0]).await.expect("owner reads it");
        assert_eq!((a.name.as_str(), bytes.as_slice()), ("shot.png", PNG));

        // OpenAI: content parts, the image as a data URL.
        let ids = files(e.clone(), me.clone()).await;
        up.push([Reply::text("A red pixel.")]);
        let out = engine::chat::Outgoing {
            agent_id: &agents[1],
            conversation_id: None,
            parent_id: None,
            text: "",
            attachments: &ids,
        };
        let sent = e.send(me, out).await.expect("send without text");
        fold(&follow(&e, me, &sent.assistant_message_id, 0).await);
        let req = up.chat_requests().pop().expect("request");
        let user = req["messages"].as_array().and_then(|m| m.iter().find(|m| m["role"] == "user")).cloned();
        let parts = user.expect("a user message")["content"].clone();
        assert_eq!(parts[0]["type"], "text");
        assert_eq!(parts[1]["type"], "image_url");
        assert_eq!(parts[1]["image_url"]["url"], format!("data:image/png;base64,{data}").as_str());
        assert_eq!(parts.as_array().map(Vec::len), Some(2), "no empty text part");
        let c = e.get_conversation(me, &sent.conversation_id).await.expect("c");
        assert_eq!(c.title, "shot.png", "titled by its file when nothing was written");

        // Another user can neither read, send nor discard them.
        let other = &t.member.user;
        assert!(matches!(e.attachment(other, &ids[0]).await, Err(ChatError::AttachmentNotFound)));
        let theirs = files(e.clone(), other.clone()).await;
        let out = engine::chat::Outgoing {
            agent_id: &agents[1],
            conversation_id: None,
            parent_id: None,
            text: "Mine now",
            attachments: &theirs[..1],
        };
        assert_eq!(refused(e.send(me, out).await.expect_err("not mine")), "not_found");
        assert!(matches!(e.discard_attachment(me, &theirs[0]).await, Err(ChatError::NotFound)));
        // A sent file cannot go with a second message.
        let out = engine::chat::Outgoing {
            agent_id: &agents[1],
            conversation_id: None,
            parent_id: None,
            text: "Again",
            attachments: &ids[..1],
        };
        assert_eq!(refused(e.send(me, out).await.expect_err("already sent")), "not_found");

        // A text-only model gets no images; the files stay unsent, nothing else is stored.
        let ids = files(e.clone(), me.clone()).await;
        let before = e.list_conversations(me, None, "", 1).await.expect("list").total;
        let out = engine::chat::Outgoing {
            agent_id: &agents[2],
            conversation_id: None,
            parent_id: None,
            text: "Look",
            attachments: &ids,
        };
        let err = e.send(me, out).await.expect_err("text only");
        assert!(err.to_string().contains("fake-text reads text only"), "{err}");
        assert_eq!(refused(err), "text_only_model");
        assert_eq!(e.list_conversations(me, None, "", 1).await.expect("list").total, before);
        e.discard_attachment(me, &ids[0]).await.expect("discard");
        assert!(matches!(e.attachment(me, &ids[0]).await, Err(ChatError::AttachmentNotFound)));

        // Refused uploads store nothing.
        let used = e.storage_used(me).await.expect("used");
        let cases: [(Vec<engine::chat::attachments::NewFile>, &str); 5] = [
            (vec![upload("cat.png", b"not an image at all")], "mismatch"),
            (vec![upload("notes.txt", PNG)], "mismatch"),
            (vec![upload("big.txt", &vec![b'a'; 64 * 1024 + 1])], "too_large"),
            ((0..6).map(|i| upload(&format!("{i}.txt"), b"x")).collect(), "too_many"),
            (
                vec![upload("ok.txt", b"fine"), upload("tool.exe", b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff")],
                "unsupported_file",
            ),
        ];
        for (files, rule) in cases {
            assert_eq!(refused(e.upload_attachments(me, files).await.expect_err(rule)), rule);
        }
        let fill: Vec<_> = (0..4).map(|i| upload(&format!("{i}.txt"), &vec![b'a'; 60 * 1024])).collect();
        assert_eq!(refused(e.upload_attachments(me, fill).await.expect_err("quota")), "quota");
        assert_eq!(e.storage_used(me).await.expect("used"), used, "nothing stored");

        // Deleting the conversation deletes its files.
        let c = sent.conversation_id.clone();
        let kept = e.get_conversation(me, &c).await.expect("c").messages[0].attachments[0].id.clone();
        e.delete_conversation(me, &c).await.expect("delete");
        assert!(matches!(e.attachment(me, &kept).await, Err(ChatError::AttachmentNotFound)));
    }
}
