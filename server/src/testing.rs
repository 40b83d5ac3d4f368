//! `spawn_app()`: the real router on port 0 with a fresh database, and an HTTP client
//! that talks to it the way a browser's server-function calls do.

use std::collections::HashMap;

use engine::infra::store::Backend;
use engine::{Engine, Settings};
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};

use crate::startup::Application;

pub struct TestApp {
    pub base: String,
    pub engine: Engine,
    pub http: reqwest::Client,
}

/// Cookies a response set, by name.
pub fn set_cookies(res: &reqwest::Response) -> HashMap<String, String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| {
            let (k, v) = c.split(';').next()?.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A signed-in browser, reduced to its cookies.
#[derive(Clone, Debug, Default)]
pub struct Jar(pub HashMap<String, String>);

impl Jar {
    pub fn header(&self) -> String {
        self.0.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Takes what a response set (an empty value deletes).
    pub fn update(&mut self, res: &reqwest::Response) {
        for (k, v) in set_cookies(res) {
            self.0.insert(k, v);
        }
    }

    pub fn access(&self) -> &str {
        self.0.get(engine::auth::ACCESS_COOKIE).map_or("", String::as_str)
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = engine::testing::settings(Backend::Sqlite).await;
        tweak(&mut settings);
        Self::spawn_on(settings).await
    }

    /// A server on `settings` (on port 0): several on the same settings are instances
    /// sharing one database and data dir.
    pub async fn spawn_on(mut settings: Settings) -> Self {
        settings.bind = "127.0.0.1:0".into();
        let app = Application::build(settings).await.unwrap_or_else(|e| panic!("build: {e}"));
        let base = format!("http://{}", app.addr);
        let engine = app.engine.clone();
        tokio::spawn(app.run_until(std::future::pending()));
        engine::infra::net::install_tls();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        Self { base, engine, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls a server function the way the hydrated client does (form-encoded, same Origin).
    pub async fn call(&self, jar: &Jar, endpoint: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/{endpoint}")))
            .header(ORIGIN, &self.base)
            .header(COOKIE, jar.header())
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {endpoint}: {e}"))
    }

    pub async fn get(&self, jar: &Jar, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header(COOKIE, jar.header())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The isolation scaffold over HTTP: an admin (the first account) and a member, each
    /// signed in with their own cookies.
    pub async fn two_users(&self) -> (Jar, Jar) {
        (self.register("ada@example.com").await, self.register("bob@example.com").await)
    }

    /// Registers through the server function and returns the signed-in cookie jar.
    pub async fn register(&self, email: &str) -> Jar {
        let res = self
            .call(&Jar::default(), "auth/register", &[("email", email), ("password", engine::testing::PASSWORD)])
            .await;
        assert!(res.status().is_success(), "register {email}: {}", res.status());
        let mut jar = Jar::default();
        jar.update(&res);
        jar
    }
}

/// The JSON body of a successful response (panics with the body otherwise).
pub async fn json_ok(res: reqwest::Response) -> serde_json::Value {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// A provider on the fake upstream and an agent "Helper" (slug `helper`) of `jar`'s on it;
/// returns the agent's id.
pub async fn fake_agent(app: &TestApp, jar: &Jar, up: &fake_upstream::FakeUpstream) -> String {
    let base = up.openai_base();
    let form = [
        ("form[name]", "Fake"),
        ("form[kind]", "openai"),
        ("form[base_url]", base.as_str()),
        ("form[models]", "fake-large"),
    ];
    let p = json_ok(app.call(jar, "providers/create", &form).await).await;
    let pid = p["id"].as_str().expect("provider id");
    let form = [
        ("form[name]", "Helper"),
        ("form[provider_id]", pid),
        ("form[model]", "fake-large"),
        ("form[max_output_tokens]", "512"),
        ("form[max_turns]", "5"),
    ];
    json_ok(app.call(jar, "agents/create", &form).await).await["id"].as_str().expect("agent id").to_owned()
}

/// A run's events as `chat/events` streams them (NDJSON), read as they arrive.
pub struct Events {
    res: reqwest::Response,
    buf: Vec<u8>,
}

impl Events {
    /// Subscribes to `message`'s run after sequence number `after`.
    pub async fn open(app: &TestApp, jar: &Jar, message: &str, after: u64) -> Self {
        let res = app.call(jar, "chat/events", &[("message_id", message), ("after", &after.to_string())]).await;
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        assert_ne!(res.headers().get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]), "never compressed");
        Self { res, buf: Vec::new() }
    }

    pub async fn next(&mut self) -> Option<model::chat::SeqEvent> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("an event per line"));
            }
            let chunk = self.res.chunk().await.expect("body")?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The events up to and including the first piece of text (the answer is under way).
    pub async fn until_text(&mut self) -> Vec<model::chat::SeqEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            let text = matches!(&e.event, model::chat::RunEvent::Text { .. });
            out.push(e);
            if text {
                break;
            }
        }
        out
    }

    /// Every event until the stream ends (the run's final status).
    pub async fn rest(mut self) -> Vec<model::chat::SeqEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}
