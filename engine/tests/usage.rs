//! The usage report, on both databases: answers add up per day, agent and model with their
//! tokens and cost; models without a price are named; another user sees none of it; a
//! period that is not offered is refused by field.

use engine::Engine;
use engine::chat::ChatError;
use engine::settings::Price;
use engine::testing::two_users;
use fake_upstream::{FakeUpstream, Reply, Script};
use futures::StreamExt;

async fn agent(e: &Engine, user: &engine::CurrentUser, up: &FakeUpstream, name: &str, model: &str) -> String {
    let form = model::providers::ProviderForm {
        name: format!("{name} provider"),
        kind: "openai".into(),
        base_url: up.openai_base(),
        ..Default::default()
    };
    let p = e.create_provider(user, form.parse().expect("p")).await.expect("provider");
    let form =
        model::agents::AgentForm { name: name.into(), provider_id: p.id, model: model.into(), ..Default::default() };
    e.create_agent(user, form.parse().expect("spec")).await.expect("agent").id
}

async fn ask(e: &Engine, user: &engine::CurrentUser, agent: &str) {
    let sent = e.send_message(user, agent, None, None, "Hello").await.expect("send");
    let events = e.subscribe_answer(user, &sent.assistant_message_id, 0).await.expect("subscribe");
    tokio::time::timeout(std::time::Duration::from_secs(20), events.collect::<Vec<_>>()).await.expect("the run ends");
    if let Some(l) = e.runs.live_for(&sent.assistant_message_id) {
        l.finished().await;
    }
}

#[tokio::test]
async fn answers_add_up_per_day_agent_and_model() {
    for backend in engine::testing::backends() {
        let mut settings = engine::testing::settings(backend).await;
        settings
            .pricing
            .insert("fake-large".into(), Price { input_per_mtok: 3.0, output_per_mtok: 15.0, ..Price::default() });
        let e = Engine::start(settings).await.expect("engine");
        let t = two_users(&e).await;
        let me = &t.admin.user;
        let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
        let writer = agent(&e, me, &up, "Writer", "fake-large").await;
        let cheap = agent(&e, me, &up, "Cheap", "fake-small").await;
        up.push([
            Reply { input_tokens: 1000, output_tokens: 200, ..Reply::text("One.") },
            Reply { input_tokens: 2000, output_tokens: 400, ..Reply::text("Two.") },
            Reply { input_tokens: 50, output_tokens: 5, ..Reply::text("Three.") },
        ]);
        ask(&e, me, &writer).await;
        ask(&e, me, &writer).await;
        ask(&e, me, &cheap).await;

        let r = e.usage(me, 30).await.expect("usage");
        assert_eq!(r.days, 30);
        assert_eq!(r.by_day.len(), 30, "every day of the period");
        // 3000 input tokens at $3/M and 600 output at $15/M: 9000 + 9000 micro-dollars.
        assert_eq!((r.total.answers, r.total.input_tokens, r.total.output_tokens), (3, 3050, 605));
        assert_eq!(r.total.cost_micros, 18_000);
        let today = r.by_day.last().expect("today");
        assert_eq!(today.tally, r.total, "all of it today");
        assert!(r.by_day[..29].iter().all(|d| d.tally.answers == 0));
        let agents: Vec<(&str, u64, u64)> =
            r.by_agent.iter().map(|a| (a.label.as_str(), a.tally.answers, a.tally.cost_micros)).collect();
        assert_eq!(agents, [("Writer", 2, 18_000), ("Cheap", 1, 0)], "most expensive first");
        assert_eq!(r.by_agent[0].key, writer);
        let models: Vec<&str> = r.by_model.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(models, ["fake-large", "fake-small"]);
        assert_eq!(r.unpriced, ["fake-small"], "named so a $0 cost is not taken for free");

        // Another user's report is empty; periods are 7, 30 or 90 days.
        let theirs = e.usage(&t.member.user, 90).await.expect("usage");
        assert_eq!(theirs.total.answers, 0);
        assert!(theirs.by_agent.is_empty());
        let err = e.usage(me, 31).await.expect_err("not offered");
        assert!(matches!(&err, ChatError::Invalid(f) if f.0[0].field == "days"), "{err:?}");
    }
}
