//! Append-only audit log of sensitive actions (sign-ins, password changes, admin actions).

use crate::Engine;
use crate::infra::store::{new_id, now_ms};

/// Appends one entry. A failure to write is logged, never returned: the action it
/// describes has already happened and must not be reported as failed.
pub async fn record(
    engine: &Engine,
    actor: Option<&str>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    ip: &str,
) {
    let res = sqlx::query(
        "INSERT INTO audit_log (id, actor_id, action, target, detail, ip, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail.to_string())
    .bind(ip)
    .bind(now_ms())
    .execute(&engine.store.pool)
    .await;
    if let Err(e) = res {
        tracing::error!(error = %e, action, "could not write the audit log");
    }
}

/// The newest entries, for admins and tests.
pub async fn recent(engine: &Engine, limit: i64) -> Result<Vec<(Option<String>, String, String)>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT actor_id, action, target FROM audit_log ORDER BY created_at DESC, id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(&engine.store.pool)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("actor_id")?, r.try_get("action")?, r.try_get("target")?))).collect()
}
