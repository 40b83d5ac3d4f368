//! Two Agentry servers on one database (PostgreSQL in the test script, and SQLite): an
//! answer started through one is followed live through the other, and a third server
//! starting up leaves the running answer alone.

use fake_upstream::{FakeUpstream, Reply, Script};
use model::chat::{RunEvent, RunStatus, Transcript};
use server::testing::{Events, TestApp, fake_agent, json_ok};

#[tokio::test]
async fn an_answer_started_through_one_server_is_followed_live_through_another() {
    for backend in engine::testing::backends() {
        let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
        let settings = engine::testing::settings(backend).await;
        let (one, two) = (TestApp::spawn_on(settings.clone()).await, TestApp::spawn_on(settings.clone()).await);
        // One account, signed in through the first server; the cookies work on both.
        let me = one.register("ada@example.com").await;
        let agent = fake_agent(&one, &me, &up).await;
        let words = "one two three four five six seven eight nine ten eleven twelve";
        up.push([Reply { cadence_ms: 120, ..Reply::text(words) }]);
        let sent = json_ok(one.call(&me, "chat/send", &[("agent_id", &agent), ("text", "Count.")]).await).await;
        let message = sent["assistant_message_id"].as_str().expect("m").to_owned();
        assert!(one.engine.runs.live_for(&message).is_some(), "the first server drives the answer");

        let mut live = Events::open(&two, &me, &message, 0).await;
        let mut seen = live.until_text().await;
        // Words come through the second server while the first is still writing…
        let c = json_ok(two.call(&me, "chat/get", &[("id", sent["conversation_id"].as_str().expect("c"))]).await).await;
        assert_eq!(c["messages"][1]["transcript"]["status"], "running", "followed before the end: {c}");
        // …and a third server starting on the same database does not take the answer for
        // one a crash left behind.
        let third = TestApp::spawn_on(settings).await;
        assert!(one.engine.runs.live_for(&message).is_some(), "still running on the first server");

        seen.extend(live.rest().await);
        let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
        let mut whole = Transcript::default();
        seen.iter().for_each(|e| whole.apply(e));
        assert_eq!((whole.text().as_str(), whole.status), (words, RunStatus::Done), "{}", whole.error);
        assert!(seen.iter().filter(|e| matches!(e.event, RunEvent::Text { .. })).count() >= 6, "word by word");
        // All three servers tell the same story afterwards.
        assert_eq!(Events::open(&one, &me, &message, 0).await.rest().await, seen);
        assert_eq!(Events::open(&third, &me, &message, 0).await.rest().await, seen);
    }
}
