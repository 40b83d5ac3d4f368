//! Agents on both backends: versions, rollback, conflicts, isolation, export and import.

use engine::Engine;
use engine::agents::AgentError;
use engine::testing::{TwoUsers, each_backend, two_users};
use model::agents::{AgentForm, AgentSpec};
use model::providers::ProviderForm;

async fn shared_provider(e: &Engine, t: &TwoUsers) -> String {
    let d = ProviderForm {
        name: "Team".into(),
        kind: "openai".into(),
        base_url: "https://api.example.com/v1".into(),
        shared: Some("on".into()),
        ..Default::default()
    }
    .parse()
    .expect("draft");
    e.create_provider(&t.admin.user, d).await.expect("provider").id
}

fn spec(provider_id: &str, name: &str) -> AgentSpec {
    AgentForm {
        name: name.into(),
        provider_id: provider_id.into(),
        model: "fake-large".into(),
        system_prompt: "You are helpful.".into(),
        temperature: "0.5".into(),
        tool_policies: "fs/write=deny".into(),
        ..Default::default()
    }
    .parse()
    .expect("spec")
}

async fn count(e: &Engine, table: &str) -> i64 {
    engine::sqlx::query_scalar(engine::sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&e.store.pool)
        .await
        .expect("count")
}

fn rules(e: &AgentError) -> Vec<(String, String)> {
    match e {
        AgentError::Invalid(f) => f.0.iter().map(|f| (f.field.clone(), f.rule.clone())).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn edit_twice_then_rollback_to_v1_makes_v4_equal_to_v1() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = shared_provider(&e, &t).await;
        let me = &t.member.user;
        let v1 = e.create_agent(me, spec(&p, "Reviewer")).await.expect("create");
        assert_eq!(v1.version, 1);
        let mut s2 = v1.spec.clone();
        s2.system_prompt = "Be brief.".into();
        let v2 = e.update_agent(me, &v1.id, Some(1), s2).await.expect("v2");
        let mut s3 = v2.spec.clone();
        s3.temperature = Some(1.5);
        s3.name = "Strict reviewer".into();
        e.update_agent(me, &v1.id, Some(2), s3).await.expect("v3");
        let v4 = e.rollback_agent(me, &v1.id, 1).await.expect("rollback");
        assert_eq!(v4.version, 4);
        assert_eq!(v4.spec, v1.spec);

        let h = e.agent_history(me, &v1.id).await.expect("history");
        assert_eq!(h.iter().map(|v| v.version).collect::<Vec<_>>(), [4, 3, 2, 1]);
        assert_eq!(h[0].restored_from, Some(1));
        let fields = |i: usize| h[i].changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>();
        assert_eq!(fields(1), ["name", "temperature"]);
        assert_eq!(fields(2), ["system_prompt"]);
        assert_eq!(
            (h[2].changes[0].before.as_str(), h[2].changes[0].after.as_str()),
            ("You are helpful.", "Be brief.")
        );
        assert_eq!(fields(0), ["name", "system_prompt", "temperature"]);
        assert_eq!(h[3].author, "bob");
        // Saving without a change adds no version.
        let same = e.update_agent(me, &v1.id, Some(4), v4.spec.clone()).await.expect("no-op");
        assert_eq!(same.version, 4);
    })
    .await;
}

#[tokio::test]
async fn a_stale_editor_gets_a_conflict_and_nothing_is_written() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = shared_provider(&e, &t).await;
        let me = &t.member.user;
        let a = e.create_agent(me, spec(&p, "A")).await.expect("create");
        let mut s = a.spec.clone();
        s.model = "fake-small".into();
        e.update_agent(me, &a.id, Some(1), s.clone()).await.expect("v2");
        s.model = "other".into();
        let err = e.update_agent(me, &a.id, Some(1), s).await.expect_err("stale");
        assert!(matches!(err, AgentError::Conflict { current: 2 }), "{err:?}");
        assert_eq!(e.get_agent(me, &a.id).await.expect("get").spec.model, "fake-small");
        assert_eq!(count(&e, "agent_versions").await, 2);
    })
    .await;
}

#[tokio::test]
async fn another_users_agent_is_not_found_for_every_operation_and_unchanged() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = shared_provider(&e, &t).await;
        let (owner, other) = (&t.admin.user, &t.member.user);
        let a = e.create_agent(owner, spec(&p, "Private")).await.expect("create");
        let nf = |r: Result<(), AgentError>, what: &str| assert!(matches!(r, Err(AgentError::NotFound)), "{what}");
        nf(e.get_agent(other, &a.id).await.map(drop), "get");
        nf(e.update_agent(other, &a.id, None, spec(&p, "Stolen")).await.map(drop), "update");
        nf(e.delete_agent(other, &a.id).await, "delete");
        nf(e.duplicate_agent(other, &a.id).await.map(drop), "duplicate");
        nf(e.agent_history(other, &a.id).await.map(drop), "history");
        nf(e.rollback_agent(other, &a.id, 1).await.map(drop), "rollback");
        nf(e.export_agent(other, &a.id).await.map(drop), "export");
        assert_eq!(e.list_agents(other, "", 1).await.expect("list").total, 0);
        let after = e.get_agent(owner, &a.id).await.expect("owner still sees it");
        assert_eq!((after.version, after.spec), (1, a.spec));
        assert_eq!(count(&e, "agents").await, 1);
    })
    .await;
}

#[tokio::test]
async fn slugs_are_unique_per_owner_and_duplicates_get_a_free_one() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = shared_provider(&e, &t).await;
        let a = e.create_agent(&t.member.user, spec(&p, "Helper")).await.expect("a");
        let err = e.create_agent(&t.member.user, spec(&p, "Helper")).await.expect_err("same slug");
        assert_eq!(rules(&err), [("slug".to_owned(), "taken".to_owned())]);
        e.create_agent(&t.admin.user, spec(&p, "Helper")).await.expect("another owner may");
        let c1 = e.duplicate_agent(&t.member.user, &a.id).await.expect("dup");
        let c2 = e.duplicate_agent(&t.member.user, &a.id).await.expect("dup 2");
        assert_eq!((c1.spec.slug.as_str(), c2.spec.slug.as_str()), ("helper-copy", "helper-copy-2"));
        assert_eq!(c1.spec.name, "Helper (copy)");
        assert_eq!(c1.version, 1);
    })
    .await;
}

#[tokio::test]
async fn a_provider_the_user_cannot_see_is_refused() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let d = ProviderForm {
            name: "Ada's".into(),
            kind: "openai".into(),
            base_url: "https://api.example.com/v1".into(),
            ..Default::default()
        }
        .parse()
        .expect("draft");
        let private = e.create_provider(&t.admin.user, d).await.expect("provider");
        let err = e.create_agent(&t.member.user, spec(&private.id, "Sneaky")).await.expect_err("not visible");
        assert_eq!(rules(&err), [("provider_id".to_owned(), "not_found".to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn export_then_import_into_another_user_gives_an_equal_agent() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = shared_provider(&e, &t).await;
        let mut s = spec(&p, "Portable");
        s.fallback_models = vec!["fake-small".into()];
        s.description = "Travels well.".into();
        let a = e.create_agent(&t.admin.user, s).await.expect("create");
        let doc = e.export_agent(&t.admin.user, &a.id).await.expect("export");
        let json = serde_json::to_string_pretty(&doc).expect("json");
        assert!(json.contains("\"provider\": \"Team\"") && !json.contains(&p), "{json}");
        let b = e.import_agent(&t.member.user, &json).await.expect("import");
        assert_eq!(b.spec, a.spec);
        assert_ne!(b.id, a.id);
        assert_eq!(b.version, 1);
    })
    .await;
}

#[tokio::test]
async fn a_bad_import_names_each_problem_and_writes_nothing() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        shared_provider(&e, &t).await;
        let me = &t.member.user;
        let doc = serde_json::json!({
            "format": "agentry.agent/v1", "name": "", "slug": "Bad Slug", "provider": "Nope",
            "model": "m", "temperature": 9.0, "max_output_tokens": 0, "max_turns": 5
        });
        let err = e.import_agent(me, &doc.to_string()).await.expect_err("bad");
        let got: Vec<String> = rules(&err).into_iter().map(|(f, r)| format!("{f}:{r}")).collect();
        assert_eq!(
            got,
            [
                "provider:not_found",
                "name:required",
                "slug:invalid_slug",
                "temperature:out_of_range",
                "max_output_tokens:out_of_range"
            ]
        );
        let missing = e.import_agent(me, r#"{"format":"agentry.agent/v1","name":"x"}"#).await.expect_err("missing");
        assert_eq!(rules(&missing)[0].1, "required");
        assert!(matches!(e.import_agent(me, "{not json").await, Err(AgentError::BadDocument(_))));
        let secret = r#"{"format":"agentry.agent/v1","name":"x","slug":"x","provider":"Team","model":"m","max_output_tokens":1,"max_turns":1,"api_key":"sk"}"#;
        assert!(matches!(e.import_agent(me, secret).await, Err(AgentError::BadDocument(m)) if m.contains("api_key")));
        assert_eq!(count(&e, "agents").await, 0);
        assert_eq!(count(&e, "agent_versions").await, 0);
    })
    .await;
}

#[tokio::test]
async fn the_list_searches_and_pages() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = shared_provider(&e, &t).await;
        let me = &t.member.user;
        for i in 0..25 {
            e.create_agent(me, spec(&p, &format!("Agent {i:02}"))).await.expect("create");
        }
        e.create_agent(me, spec(&p, "100% Special_one")).await.expect("special");
        let first = e.list_agents(me, "", 1).await.expect("page 1");
        assert_eq!((first.total, first.items.len()), (26, 20));
        assert_eq!(first.items[0].name, "100% Special_one", "newest first");
        assert_eq!(e.list_agents(me, "", 2).await.expect("page 2").items.len(), 6);
        assert_eq!(e.list_agents(me, "AGENT 1", 1).await.expect("search").total, 10);
        // % and _ are literal.
        assert_eq!(e.list_agents(me, "100%", 1).await.expect("pct").total, 1);
        assert_eq!(e.list_agents(me, "l_o", 1).await.expect("underscore").total, 1);
        assert_eq!(e.list_agents(&t.admin.user, "", 1).await.expect("other").total, 0);
    })
    .await;
}
