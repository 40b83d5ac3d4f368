//! The OpenAI-compatible API over real HTTP: personal API keys (shown once, hashed,
//! revocable), `/v1/models` and `/v1/chat/completions` streamed and whole, OpenAI's error
//! shape, isolation between users and keys, and a disabled user's keys and open streams.
//! The official Python client is exercised by the end-to-end suite.

use fake_upstream::{FakeUpstream, Reply, Script};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::testing::{Jar, TestApp, fake_agent as agent, json_ok};

async fn new_key(app: &TestApp, jar: &Jar, name: &str) -> String {
    let k = json_ok(app.call(jar, "settings/keys/create", &[("name", name)]).await).await;
    k["key"].as_str().expect("key").to_owned()
}

fn v1(app: &TestApp, key: &str, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().get(app.url(path)).bearer_auth(key)
}

async fn complete(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// The `data:` payloads of an SSE response, as they arrive.
async fn sse(res: reqwest::Response) -> Vec<String> {
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap_or("").starts_with("text/event-stream"));
    let text = res.text().await.expect("body");
    text.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_owned).collect()
}

async fn error_code(res: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(res.status(), status);
    let v: Value = res.json().await.expect("error json");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn agents_are_models_and_answer_streamed_and_whole() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn_with(|s| s.allow_private_networks = vec!["127.0.0.1/32".into()]).await;
    let (ada, bob) = app.two_users().await;
    agent(&app, &ada, &up).await;
    let key = new_key(&app, &ada, "laptop").await;
    assert!(key.starts_with("agk_") && key.len() > 40, "{key}");

    // The list shows the prefix, never the key; the store holds only a hash.
    let keys = json_ok(app.call(&ada, "settings/keys", &[]).await).await;
    assert_eq!(keys[0]["name"], "laptop");
    assert!(key.starts_with(keys[0]["prefix"].as_str().unwrap_or("-")));
    assert!(!keys.to_string().contains(&key));
    let stored: Vec<String> =
        engine::sqlx::query_scalar("SELECT hash FROM api_keys").fetch_all(&app.engine.store.pool).await.expect("rows");
    assert!(stored.iter().all(|h| h != &key && h.len() == 64));

    // Models: the caller's agents by slug.
    let models = json_ok(v1(&app, &key, "/v1/models").send().await.expect("models")).await;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "helper");
    assert_eq!(models["data"][0]["object"], "model");
    let one = json_ok(v1(&app, &key, "/v1/models/helper").send().await.expect("model")).await;
    assert_eq!(one["id"], "helper");

    // Whole.
    let body = json!({ "model": "helper", "messages": [
        { "role": "system", "content": "Be kind." },
        { "role": "user", "content": "Hi there" },
    ]});
    let done = json_ok(complete(&app, &key, body).await).await;
    assert_eq!(done["object"], "chat.completion");
    assert_eq!(done["model"], "helper");
    let text = done["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(text.starts_with("Hello from the fake model. You said:") && text.ends_with("Hi there"), "{text}");
    assert_eq!(done["choices"][0]["finish_reason"], "stop");
    assert!(done["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0, "{done}");
    // The system message reached the model as context.
    let sent = up.chat_requests().last().cloned().expect("a request");
    assert!(sent.to_string().contains("Be kind."), "{sent}");

    // Streamed, in OpenAI's chunk format, with a usage chunk.
    up.push([Reply { cadence_ms: 5, ..Reply::text("one two three") }]);
    let body = json!({ "model": "helper", "stream": true, "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Count" }] }] });
    let data = sse(complete(&app, &key, body).await).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).expect("chunk")).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "helper"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert_eq!(streamed, "one two three");
    assert!(chunks.iter().filter(|c| c["choices"][0]["delta"]["content"].is_string()).count() >= 3, "token by token");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let last = chunks.last().expect("usage chunk");
    assert_eq!(last["choices"], json!([]));
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0, "{last}");

    // The API's conversations are kept like any other.
    let list = json_ok(app.call(&ada, "chat/list", &[]).await).await;
    assert_eq!(list["total"], 2);

    // Bad requests name what is wrong, in OpenAI's shape.
    assert_eq!(
        error_code(
            complete(&app, &key, json!({ "model": "nope", "messages": [{ "role": "user", "content": "x" }] })).await,
            StatusCode::NOT_FOUND
        )
        .await,
        "model_not_found"
    );
    let res = complete(&app, &key, json!({ "model": "helper" })).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap_or_default().contains("messages"));
    let res = complete(
        &app,
        &key,
        json!({ "model": "helper", "messages": [{ "role": "user", "content": "x".repeat(100_001) }] }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap_or_default().contains("messages[0].content: too_long (limit 100000)"));
    let res =
        complete(&app, &key, json!({ "model": "helper", "messages": [{ "role": "assistant", "content": "x" }] })).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // No key, a wrong key, another user's key: nothing of Ada's.
    let res = reqwest::Client::new().get(app.url("/v1/models")).send().await.expect("no key");
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await, "missing_api_key");
    let res = v1(&app, "agk_wrong", "/v1/models").send().await.expect("wrong key");
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await, "invalid_api_key");
    let bobs = new_key(&app, &bob, "bob").await;
    let theirs = json_ok(v1(&app, &bobs, "/v1/models").send().await.expect("models")).await;
    assert_eq!(theirs["data"], json!([]));
    let res =
        complete(&app, &bobs, json!({ "model": "helper", "messages": [{ "role": "user", "content": "x" }] })).await;
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await, "model_not_found");
    assert_eq!(v1(&app, &bobs, "/v1/models/helper").send().await.expect("m").status(), StatusCode::NOT_FOUND);
    // Bob cannot revoke Ada's key.
    let id = keys[0]["id"].as_str().unwrap_or_default();
    assert_eq!(app.call(&bob, "settings/keys/revoke", &[("id", id)]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(v1(&app, &key, "/v1/models").send().await.expect("m").status(), StatusCode::OK);

    // Revoked, the key stops at once.
    json_ok(app.call(&ada, "settings/keys/revoke", &[("id", id)]).await).await;
    let res = v1(&app, &key, "/v1/models").send().await.expect("revoked");
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await, "invalid_api_key");
    assert_eq!(json_ok(app.call(&ada, "settings/keys", &[]).await).await, json!([]));

    // A key needs a name.
    let res = app.call(&ada, "settings/keys/create", &[("name", " ")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_disabled_users_keys_and_open_streams_stop() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn_with(|s| s.allow_private_networks = vec!["127.0.0.1/32".into()]).await;
    let (admin, member) = app.two_users().await;
    agent(&app, &member, &up).await;
    let key = new_key(&app, &member, "ci").await;
    let me = json_ok(app.call(&member, "auth/me", &[]).await).await;
    let member_id = me["id"].as_str().expect("id").to_owned();

    // A long, slow answer is streaming when the account is disabled: the stream ends.
    let words = (1..=200).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    up.push([Reply { cadence_ms: 50, ..Reply::text(&words) }]);
    let body = json!({ "model": "helper", "stream": true, "messages": [{ "role": "user", "content": "Go" }] });
    let mut res = complete(&app, &key, body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first = res.chunk().await.expect("chunk").expect("some");
    assert!(!first.is_empty());
    json_ok(app.call(&admin, "admin/user-disabled", &[("user_id", &member_id), ("disabled", "true")]).await).await;
    let rest = tokio::time::timeout(std::time::Duration::from_secs(5), res.text()).await.expect("the stream ended");
    let rest = rest.unwrap_or_default();
    assert!(rest.contains("[DONE]"), "{rest}");
    assert!(!rest.contains("w200"), "stopped before the end");

    let res = v1(&app, &key, "/v1/models").send().await.expect("disabled");
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await, "account_disabled");
}

/// Answers that start and end faster than the store's rounds, some while the store is
/// busy: each is complete (the client has it all) only once its conversation is stored,
/// written once and whole, and none fails for it.
#[tokio::test]
async fn many_quick_answers_are_each_stored_once_and_whole() {
    let up = FakeUpstream::start("127.0.0.1:0", Script { record: false, ..Script::default() }).await.expect("upstream");
    let app = TestApp::spawn_with(|s| s.allow_private_networks = vec!["127.0.0.1/32".into()]).await;
    let (ada, _) = app.two_users().await;
    agent(&app, &ada, &up).await;
    let key = new_key(&app, &ada, "burst").await;
    let body = json!({ "model": "helper", "messages": [{ "role": "user", "content": "Quick" }] });
    let quick = |n: usize| {
        let calls: Vec<_> = (0..n).map(|_| complete(&app, &key, body.clone())).collect();
        async move {
            for res in futures::future::join_all(calls).await {
                let done = json_ok(res).await;
                let text = done["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned();
                assert!(text.ends_with("Quick"), "{done}");
            }
        }
    };
    quick(1).await;
    // While the store is held (on SQLite, this process's turn to write), answers start
    // and end; each is complete only once it is stored.
    let held = app.engine.store.begin().await.expect("begin");
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(held);
    };
    tokio::join!(quick(30), release);
    quick(59).await;
    // Nothing to wait for: an answer is complete once stored.
    assert_eq!(app.engine.runs.count(), 0, "every run over");
    let list = json_ok(app.call(&ada, "chat/list", &[]).await).await;
    assert_eq!(list["total"], 90);
    let statuses: Vec<String> = engine::sqlx::query_scalar("SELECT status FROM runs WHERE kind = 'api'")
        .fetch_all(&app.engine.store.pool)
        .await
        .expect("rows");
    assert_eq!(statuses.len(), 90);
    assert!(statuses.iter().all(|s| s == "done"), "{statuses:?}");
}

/// An answer that breaks off is an error the way OpenAI clients see one: an `error` event
/// in the stream (never a finish reason), or an error status when nothing was sent yet.
/// An answer cut at the agent's token limit finishes as `length`.
#[tokio::test]
async fn failures_are_errors_and_only_a_limit_is_length() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn_with(|s| s.allow_private_networks = vec!["127.0.0.1/32".into()]).await;
    let ada = app.register("ada@example.com").await;
    agent(&app, &ada, &up).await;
    let key = new_key(&app, &ada, "ci").await;
    let ask = |stream: bool| json!({ "model": "helper", "stream": stream, "messages": [{ "role": "user", "content": "Go" }] });

    // Mid-stream: the text so far, then an error event; no finish reason.
    let mut dying = Reply::text("half an ");
    dying.steps.push(fake_upstream::Step::Drop);
    up.push([dying.clone()]);
    let data = sse(complete(&app, &key, ask(true)).await).await;
    let chunks: Vec<Value> = data.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "half an ");
    let err = chunks.iter().find(|c| c.get("error").is_some()).unwrap_or_else(|| panic!("an error event: {data:?}"));
    assert_eq!(err["error"]["code"], "upstream_failed");
    assert!(chunks.iter().all(|c| c["choices"][0]["finish_reason"].is_null()), "no finish reason: {data:?}");

    // Whole: an error status, not a 200 with half an answer.
    up.push([dying]);
    let res = complete(&app, &key, ask(false)).await;
    assert_eq!(error_code(res, StatusCode::BAD_GATEWAY).await, "upstream_failed");

    // Before the first token, streamed too: the status line says it.
    up.push((0..3).map(|_| Reply::error(500, "boom")));
    let res = complete(&app, &key, ask(true)).await;
    assert_eq!(error_code(res, StatusCode::BAD_GATEWAY).await, "upstream_failed");

    // The provider says it hit the token limit: `length`, whole and streamed.
    let limited = Reply { stop: Some("max_tokens".into()), ..Reply::text("cut short") };
    up.push([limited.clone(), limited]);
    let whole = json_ok(complete(&app, &key, ask(false)).await).await;
    assert_eq!(whole["choices"][0]["finish_reason"], "length");
    let data = sse(complete(&app, &key, ask(true)).await).await;
    assert!(data.iter().any(|d| d.contains(r#""finish_reason":"length""#)), "{data:?}");
}

async fn complete_once(app: &TestApp, key: &str, idem: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("idempotency-key", idem)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn conversations(app: &TestApp) -> i64 {
    engine::sqlx::query_scalar("SELECT COUNT(*) FROM conversations").fetch_one(&app.engine.store.pool).await.expect("n")
}

/// A retry with the same `Idempotency-Key` gets the first answer again and starts
/// nothing; the same key with another request is refused; keys are per user.
#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_response_and_creates_nothing() {
    let up = FakeUpstream::start("127.0.0.1:0", Script::default()).await.expect("upstream");
    let app = TestApp::spawn_with(|s| s.allow_private_networks = vec!["127.0.0.1/32".into()]).await;
    let (ada, bob) = app.two_users().await;
    agent(&app, &ada, &up).await;
    agent(&app, &bob, &up).await;
    let (key, bob_key) = (new_key(&app, &ada, "ci").await, new_key(&app, &bob, "ci").await);
    up.push([Reply::text("The first answer."), Reply::text("Streamed once.")]);

    let body = json!({ "model": "helper", "messages": [{ "role": "user", "content": "Once" }] });
    let first = json_ok(complete_once(&app, &key, "retry-1", &body).await).await;
    let again = json_ok(complete_once(&app, &key, "retry-1", &body).await).await;
    assert_eq!(first["choices"][0]["message"]["content"], "The first answer.");
    assert_eq!((&again["id"], &again["choices"]), (&first["id"], &first["choices"]), "{again}");
    assert_eq!(conversations(&app).await, 1);

    let streamed = json!({ "model": "helper", "stream": true, "messages": [{ "role": "user", "content": "Once" }] });
    let a = sse(complete_once(&app, &key, "retry-2", &streamed).await).await;
    let b = sse(complete_once(&app, &key, "retry-2", &streamed).await).await;
    let text = |data: &[String]| -> String {
        data.iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!((text(&a), text(&b)), ("Streamed once.".to_owned(), "Streamed once.".to_owned()));
    assert_eq!(conversations(&app).await, 2);
    assert_eq!(up.chat_requests().len(), 2, "the provider was asked once per key");

    // The same key for another request: 422, nothing started.
    let other = json!({ "model": "helper", "messages": [{ "role": "user", "content": "Something else" }] });
    let res = complete_once(&app, &key, "retry-1", &other).await;
    assert_eq!(error_code(res, StatusCode::UNPROCESSABLE_ENTITY).await, "idempotency_key_reused");
    assert_eq!(conversations(&app).await, 2);

    // Another user's identical key is theirs alone: a fresh answer, not ada's.
    up.push([Reply::text("Bob's own answer.")]);
    let theirs = json_ok(complete_once(&app, &bob_key, "retry-1", &body).await).await;
    assert_eq!(theirs["choices"][0]["message"]["content"], "Bob's own answer.");
    assert_ne!(theirs["id"], first["id"]);

    let res = complete_once(&app, &key, &"k".repeat(256), &body).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a key over 255 characters is refused");
}
