//! Upgrading a database an older Agentry wrote, on both backends: a conversation with
//! branches, finished and running answers, their events, a pending control and an
//! idempotency key are written with the migrations before runs existed, then the rest are
//! applied and everything reads the same through the engine.

use engine::Engine;
use engine::auth::CurrentUser;
use engine::infra::store::Store;
use futures::StreamExt;
use model::chat::{CallState, Part, RunEvent, RunStatus, SeqEvent, Transcript};
use model::runs::RunFilter;
use serde_json::json;

/// The last migration before runs had a table of their own.
const BEFORE_RUNS: i64 = 11;

fn user(id: &str, email: &str) -> CurrentUser {
    CurrentUser {
        id: id.into(),
        email: email.into(),
        display_name: String::new(),
        is_admin: false,
        locale: "en".into(),
        session_id: String::new(),
    }
}

fn transcript(parts: Vec<Part>, status: RunStatus, tokens: (u64, u64), cost: u64) -> Transcript {
    Transcript {
        parts,
        status,
        model: "fake-large".into(),
        input_tokens: tokens.0,
        output_tokens: tokens.1,
        cost_micros: cost,
        seq: 0,
        ..Transcript::default()
    }
}

// Ids as Agentry makes them (UUIDs), fixed so the test can name them.
const ADA: &str = "00000000-0000-7000-8000-000000000001";
const BOB: &str = "00000000-0000-7000-8000-000000000002";
const AGENT: &str = "00000000-0000-7000-8000-0000000000a1";
const CONV: &str = "00000000-0000-7000-8000-0000000000c1";
const Q1: &str = "00000000-0000-7000-8000-000000000011";
const A1: &str = "00000000-0000-7000-8000-000000000012";
const Q2: &str = "00000000-0000-7000-8000-000000000013";
const A2_OLD: &str = "00000000-0000-7000-8000-000000000014";
const A2: &str = "00000000-0000-7000-8000-000000000015";

/// The rows as the older schema held them.
async fn write_old_rows(store: &Store) {
    let q = |sql: &'static str| engine::sqlx::query(sql);
    let pool = &store.pool;
    for (id, email) in [(ADA, "ada@example.com"), (BOB, "bob@example.com")] {
        q("INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at) \
           VALUES ($1, $2, '', 'x', 1, 1)")
        .bind(id)
        .bind(email)
        .execute(pool)
        .await
        .expect("user");
    }
    q("INSERT INTO agents (id, owner_id, slug, name, spec, version, created_at, updated_at) \
       VALUES ($1, $2, 'helper', 'Helper', '{}', 3, 1, 1)")
    .bind(AGENT)
    .bind(ADA)
    .execute(pool)
    .await
    .expect("agent");
    let now = engine::infra::store::now_ms();
    q("INSERT INTO conversations (id, owner_id, agent_id, title, leaf_id, created_at, updated_at) \
       VALUES ($1, $2, $3, 'Greeting', $4, $5, $5)")
    .bind(CONV)
    .bind(ADA)
    .bind(AGENT)
    .bind(A2)
    .bind(now)
    .execute(pool)
    .await
    .expect("conversation");
    let tool = model::chat::ToolCall {
        id: "c1".into(),
        name: "fx__add".into(),
        label: "fx/add".into(),
        input: json!({ "a": 1 }),
        state: CallState::Done,
        result: "2".into(),
    };
    let answer = transcript(
        vec![
            Part::Text { text: "Hi ".into() },
            Part::Tool { call: tool },
            Part::Turn,
            Part::Text { text: "there".into() },
        ],
        RunStatus::Done,
        (1000, 200),
        6000,
    );
    let stopped = transcript(vec![Part::Text { text: "Partial".into() }], RunStatus::Stopped, (300, 20), 1200);
    // The running answer's stored transcript lags its events, as it did while it ran.
    let running = transcript(Vec::new(), RunStatus::Running, (0, 0), 0);
    let text = |t: &str| serde_json::to_string(t).expect("json");
    let json = |t: &Transcript| serde_json::to_string(t).expect("json");
    // id, parent, role, content, status, (input, output, cost), instance, created_at
    type OldMessage<'a> = (&'a str, Option<&'a str>, &'a str, String, &'a str, (i64, i64, i64), Option<&'a str>, i64);
    let rows: [OldMessage; 5] = [
        (Q1, None, "user", text("Hello"), "done", (0, 0, 0), None, now),
        (A1, Some(Q1), "assistant", json(&answer), "done", (1000, 200, 6000), None, now + 1),
        (Q2, Some(A1), "user", text("And then?"), "done", (0, 0, 0), None, now + 2),
        (A2_OLD, Some(Q2), "assistant", json(&stopped), "stopped", (300, 20, 1200), None, now + 3),
        (A2, Some(Q2), "assistant", json(&running), "running", (0, 0, 0), Some("gone"), now + 4),
    ];
    for (id, parent, role, content, status, (i, o, c), instance, at) in rows {
        let assistant = role == "assistant";
        q("INSERT INTO messages (id, conversation_id, parent_id, role, content, status, error, model, \
           input_tokens, output_tokens, cost_micros, created_at, updated_at, run_instance) \
           VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $11, $11, $12)")
        .bind(id)
        .bind(CONV)
        .bind(parent)
        .bind(role)
        .bind(content)
        .bind(status)
        .bind(if assistant { "fake-large" } else { "" })
        .bind(assistant.then_some(i))
        .bind(assistant.then_some(o))
        .bind(assistant.then_some(c))
        .bind(at)
        .bind(instance)
        .execute(pool)
        .await
        .expect("message");
    }
    for (message, first, events) in [
        (A1, 1, old_events_a1()),
        (A2, 1, vec![RunEvent::Text { text: "Work".into() }, RunEvent::Text { text: " in progress".into() }]),
    ] {
        let last = first + events.len() as i64 - 1;
        q("INSERT INTO run_event_batches (message_id, first_seq, last_seq, events, created_at) \
           VALUES ($1, $2, $3, $4, $5)")
        .bind(message)
        .bind(first)
        .bind(last)
        .bind(serde_json::to_string(&events).expect("json"))
        .bind(now)
        .execute(pool)
        .await
        .expect("events");
    }
    q("INSERT INTO run_controls (id, instance_id, message_id, kind, created_at) VALUES ('k1', 'gone', $1, 'stop', $2)")
        .bind(A2)
        .bind(now)
        .execute(pool)
        .await
        .expect("control");
}

fn old_events_a1() -> Vec<RunEvent> {
    vec![
        RunEvent::Text { text: "Hi ".into() },
        RunEvent::ToolStart { id: "c1".into(), name: "fx__add".into(), label: "fx/add".into() },
        RunEvent::ToolCall { id: "c1".into(), input: json!({ "a": 1 }), asking: false },
        RunEvent::ToolResult { id: "c1".into(), content: "2".into(), state: CallState::Done, ms: 0 },
        RunEvent::Turn,
        RunEvent::Text { text: "there".into() },
        RunEvent::Usage { input_tokens: 1000, output_tokens: 200, cost_micros: 6000, model: "fake-large".into() },
        RunEvent::Status { status: RunStatus::Done, error: String::new(), limit: false },
    ]
}

#[tokio::test]
async fn a_database_from_before_runs_migrates_without_losing_a_message_an_event_or_a_cost() {
    for backend in engine::testing::backends() {
        let settings = engine::testing::settings(backend).await;
        let old = Store::connect(&settings.database_url()).await.expect("store");
        old.migrate_to(BEFORE_RUNS).await.expect("old migrations");
        write_old_rows(&old).await;
        old.close().await;

        let e = Engine::start(settings).await.expect("the engine migrates and starts");
        let ada = user(ADA, "ada@example.com");

        // The conversation reads the same: the branch shown, texts, statuses, totals.
        let c = e.get_conversation(&ada, CONV).await.expect("conversation");
        let ids: Vec<&str> = c.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, [Q1, A1, Q2, A2], "{backend:?}");
        assert_eq!(c.messages[0].text, "Hello");
        let a1 = c.messages[1].transcript.clone().expect("answer");
        assert_eq!((a1.text().as_str(), a1.status), ("Hi there", RunStatus::Done));
        assert!(matches!(&a1.parts[1], Part::Tool { call } if call.result == "2"));
        assert_eq!(c.messages[3].siblings, [A2_OLD, A2], "both answers to the second question");
        assert_eq!((c.input_tokens, c.output_tokens, c.cost_micros), (1300, 220, 7200));
        assert_eq!(c.messages[1].run_id.as_deref(), Some(A1), "an answer's run keeps its message's id");

        // Its events read the same, from the first.
        let events: Vec<SeqEvent> = e.subscribe_answer(&ada, A1, 0).await.expect("events").collect().await;
        let kinds: Vec<RunEvent> = events.iter().map(|e| e.event.clone()).collect();
        assert_eq!(kinds, old_events_a1());
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());

        // The other branch is there, stopped, and its cost counted.
        e.switch_branch(&ada, A2_OLD).await.expect("switch");
        let c = e.get_conversation(&ada, CONV).await.expect("conversation");
        let old_answer = c.messages[3].transcript.clone().expect("answer");
        assert_eq!((old_answer.text().as_str(), old_answer.status), ("Partial", RunStatus::Stopped));

        // Usage adds up the same three answers.
        let u = e.usage(&ada, 7).await.expect("usage");
        assert_eq!((u.total.answers, u.total.input_tokens, u.total.output_tokens), (3, 1300, 220));
        assert_eq!(u.total.cost_micros, 7200);
        assert_eq!(u.by_agent[0].label, "Helper");

        // The answer left running by a server that is gone ends as interrupted, its stored
        // events replayed into it, as before the upgrade.
        assert_eq!(e.recover_runs().await.expect("recover"), 1);
        e.switch_branch(&ada, A2).await.expect("switch");
        let c = e.get_conversation(&ada, CONV).await.expect("conversation");
        let a2 = c.messages[3].transcript.clone().expect("answer");
        assert_eq!((a2.text().as_str(), a2.status), ("Work in progress", RunStatus::Interrupted));

        // They are runs now: listed for their owner, for nobody else.
        let runs = e.list_runs(&ada, &RunFilter::default()).await.expect("runs");
        assert_eq!(runs.total, 3);
        assert!(runs.items.iter().all(|r| r.kind == model::runs::RunKind::Chat && r.agent_name == "Helper"));
        let bob = user(BOB, "bob@example.com");
        assert_eq!(e.list_runs(&bob, &RunFilter::default()).await.expect("runs").total, 0);
        assert!(matches!(e.get_run(&bob, A1).await, Err(engine::runs::RunError::NotFound)));

        // Deleting the conversation forgets what its runs said, not what they cost.
        e.delete_conversation(&ada, CONV).await.expect("delete");
        assert_eq!(e.usage(&ada, 7).await.expect("usage").total.cost_micros, 7200);
        let forgotten = e.get_run(&ada, A1).await.expect("the run stays");
        assert!(forgotten.events.is_empty() && forgotten.run.subject_id.is_empty(), "{forgotten:?}");

        // The old shapes are gone.
        let old_table = engine::sqlx::query("SELECT 1 FROM run_event_batches").fetch_all(&e.store.pool).await;
        assert!(old_table.is_err(), "run_event_batches dropped");
        let old_column = engine::sqlx::query("SELECT status FROM messages").fetch_all(&e.store.pool).await;
        assert!(old_column.is_err(), "a message's status is its run's");
        let controls: i64 =
            engine::sqlx::query_scalar("SELECT COUNT(*) FROM run_controls").fetch_one(&e.store.pool).await.expect("n");
        assert!(controls <= 1, "the pending control moved (or was dropped by the sweep)");
        e.store.close().await;
    }
}
