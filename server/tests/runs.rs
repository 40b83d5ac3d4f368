//! Runs over real HTTP: every run server function and the trace stream refuse another
//! member's run as not found; an admin sees everyone's runs, may stop them, and can do
//! nothing else to them; bad filters and ids are named; stopping an ended run says so.

use fake_upstream::{FakeUpstream, Reply, Script};
use reqwest::StatusCode;
use server::testing::{TestApp, fake_agent, json_ok as json};

/// Sends a slow message as `jar`; returns `(message id, run id)` of its answer.
async fn slow_answer(app: &TestApp, jar: &server::testing::Jar, agent: &str) -> (String, String) {
    let sent = json(app.call(jar, "chat/send", &[("agent_id", agent), ("text", "Take your time")]).await).await;
    let c = sent["conversation_id"].as_str().expect("c");
    let view = json(app.call(jar, "chat/get", &[("id", c)]).await).await;
    let message = sent["assistant_message_id"].as_str().expect("m").to_owned();
    let run = view["messages"][1]["run_id"].as_str().expect("the answer names its run").to_owned();
    (message, run)
}

async fn error_of(res: reqwest::Response) -> (StatusCode, serde_json::Value) {
    let status = res.status();
    (status, serde_json::from_str(&res.text().await.unwrap_or_default()).unwrap_or_default())
}

#[tokio::test]
async fn runs_are_their_owners_and_an_admin_may_only_look_and_stop() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn_with(|s| s.allow_private_networks = vec!["127.0.0.1/32".into()]).await;
    let (admin, member) = app.two_users().await;
    let admins_agent = fake_agent(&app, &admin, &up).await;
    let members_agent = fake_agent(&app, &member, &up).await;
    let slow = || Reply { cadence_ms: 300, ..Reply::text("a slow answer that keeps going for a good while yet") };
    up.push([slow(), slow()]);
    let (_, admins_run) = slow_answer(&app, &admin, &admins_agent).await;
    let (members_message, members_run) = slow_answer(&app, &member, &members_agent).await;

    // The member reaches none of the admin's run.
    for (endpoint, form) in [
        ("runs/get", vec![("id", admins_run.as_str())]),
        ("runs/stop", vec![("id", admins_run.as_str())]),
        ("runs/events", vec![("id", admins_run.as_str()), ("after", "0")]),
    ] {
        let (status, body) = error_of(app.call(&member, endpoint, &form).await).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("run_not_found")), "{endpoint}");
    }
    let mine = json(app.call(&member, "runs/list", &[("filter[everyone]", "true")]).await).await;
    assert_eq!(mine["total"], 1, "a member asking for everyone's gets their own");
    assert_eq!(mine["items"][0]["id"], members_run.as_str());

    // The admin sees their own by default, everyone's when asked, and the member's trace.
    let own = json(app.call(&admin, "runs/list", &[]).await).await;
    assert_eq!(own["total"], 1);
    let all = json(app.call(&admin, "runs/list", &[("filter[everyone]", "true")]).await).await;
    assert_eq!(all["total"], 2);
    let theirs = json(app.call(&admin, "runs/get", &[("id", &members_run)]).await).await;
    assert_eq!(
        (theirs["own"].as_bool(), theirs["run"]["owner_email"].as_str()),
        (Some(false), Some("bob@example.com"))
    );
    let res = app.call(&admin, "runs/events", &[("id", &members_run), ("after", "0")]).await;
    assert_eq!(res.status(), StatusCode::OK, "an admin may follow it");
    drop(res);
    // …but cannot act for the member in their conversation.
    let form = [("message_id", members_message.as_str()), ("call_id", "c1"), ("allow", "true")];
    let res = app.call(&admin, "chat/answer", &form).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let live =
        json(app.call(&admin, "runs/list", &[("filter[everyone]", "true"), ("filter[status]", "live")]).await).await;
    assert_eq!(live["total"], 2, "both still running");

    // An admin may stop it; then a stop says it has ended and changes nothing.
    let res = app.call(&admin, "runs/stop", &[("id", &members_run)]).await;
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    let stopped = json(app.call(&member, "runs/get", &[("id", &members_run)]).await).await;
    assert_eq!(stopped["run"]["status"], "stopped");
    let (status, body) = error_of(app.call(&member, "runs/stop", &[("id", &members_run)]).await).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("run_ended")), "{body}");
    let again = json(app.call(&member, "runs/get", &[("id", &members_run)]).await).await;
    assert_eq!(again["run"], stopped["run"], "nothing changed");
    let res = app.call(&admin, "runs/stop", &[("id", &admins_run)]).await;
    assert!(res.status().is_success() || res.status().is_redirection());
}

#[tokio::test]
async fn bad_filters_and_ids_are_named() {
    let app = TestApp::spawn().await;
    let me = app.register("ada@example.com").await;
    for (form, field) in [
        (vec![("filter[status]", "sleeping")], "status"),
        (vec![("filter[kind]", "build")], "kind"),
        (vec![("filter[agent_id]", "'; DROP TABLE runs; --")], "agent_id"),
    ] {
        let (status, body) = error_of(app.call(&me, "runs/list", &form).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], field, "{body}");
    }
    for endpoint in ["runs/get", "runs/stop"] {
        let (status, body) = error_of(app.call(&me, endpoint, &[("id", "../../etc/passwd")]).await).await;
        assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("run_id")));
    }
    let (status, body) =
        error_of(app.call(&me, "runs/get", &[("id", "00000000-0000-7000-8000-000000000000")]).await).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("run_not_found")));
}
