//! Test support, shared by every crate's tests: an engine on a fresh database of either
//! backend, and the two-user scaffold every isolation test starts from.

use crate::Engine;
use crate::auth::{ClientInfo, CurrentUser, IssuedTokens};
use crate::infra::store::{Backend, Store};
use crate::settings::Settings;
use std::path::PathBuf;

/// The backends to run the store suite on: SQLite always, PostgreSQL when
/// `TEST_DATABASE_URL` names a server (the test script starts one and sets it).
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        v.push(Backend::Postgres);
    }
    v
}

/// Runs `f` once per backend, each on a fresh database: the store suite's shape.
pub async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Engine) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for b in backends() {
        f(engine(b).await).await;
    }
}

/// A fresh temp directory (left behind on purpose when a test fails, for inspection).
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentry-{tag}-{}", uuid::Uuid::now_v7()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A URL for a database no other test uses: a new SQLite file, or a new PostgreSQL database.
pub async fn fresh_database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/agentry.db?mode=rwc", dir.display()),
        Backend::Postgres => {
            let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
            let name = format!("t_{}", uuid::Uuid::now_v7().simple());
            let store = Store::connect(&admin).await.unwrap_or_else(|e| panic!("cannot reach TEST_DATABASE_URL: {e}"));
            // The name is generated above, never user input.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&store.pool)
                .await
                .unwrap_or_else(|e| panic!("create database: {e}"));
            store.close().await;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
    }
}

/// Settings for tests: a temp data dir, a fresh database, cheap password hashing.
pub async fn settings(backend: Backend) -> Settings {
    let dir = temp_dir("test");
    let mut s = Settings { data_dir: dir.clone(), ..Settings::default() };
    s.database_url = fresh_database_url(backend, &dir).await;
    // Argon2's minimum cost: the tests check behaviour, not hashing strength.
    s.auth.argon2_memory_kib = 64;
    s.auth.argon2_iterations = 1;
    s
}

pub async fn engine(backend: Backend) -> Engine {
    Engine::start(settings(backend).await).await.unwrap_or_else(|e| panic!("engine start: {e}"))
}

/// A signed-up user with their tokens and the identity the middleware would see.
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub tokens: IssuedTokens,
    pub user: CurrentUser,
}

pub const PASSWORD: &str = "correct horse battery";

pub async fn sign_up(engine: &Engine, email: &str) -> TestUser {
    let client = ClientInfo { ip: "127.0.0.1".into(), user_agent: "test".into() };
    let (_, tokens) =
        engine.register(email, PASSWORD, "", &client).await.unwrap_or_else(|e| panic!("register {email}: {e}"));
    let user = engine.authenticate(&tokens.access).await.unwrap_or_else(|e| panic!("authenticate {email}: {e}"));
    TestUser { email: email.to_owned(), password: PASSWORD.to_owned(), tokens, user }
}

/// Two users on one engine: `admin` (the first, so an admin) and `member`. Isolation
/// tests create something as one and try to reach it as the other.
pub struct TwoUsers {
    pub admin: TestUser,
    pub member: TestUser,
}

pub async fn two_users(engine: &Engine) -> TwoUsers {
    let admin = sign_up(engine, "ada@example.com").await;
    let member = sign_up(engine, "bob@example.com").await;
    TwoUsers { admin, member }
}
