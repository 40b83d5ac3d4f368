//! Idempotency keys: a client that sends a request again with the same `Idempotency-Key`
//! (a retry after a timeout, a double click) gets the first request's answer, and nothing
//! is created twice. Keys are kept per user and kind of request for 24 hours; the same
//! key with another request is refused.

use std::time::Duration;

use model::chat::Sent;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::Engine;
use crate::auth::CurrentUser;
use crate::chat::{ChatError, invalid};
use crate::infra::store::now_ms;

/// The longest key accepted (what other APIs accept, too).
pub const KEY_MAX: usize = 255;
/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// A claim whose request has not said what it started after this long was abandoned.
const ABANDONED: Duration = Duration::from_secs(30);
/// The field errors name.
pub const FIELD: &str = "idempotency_key";

/// What a key says about a request.
pub enum Claimed {
    /// The first request with this key: go on, then [`Engine::complete_idempotency`] (or
    /// [`Engine::release_idempotency`] if it fails).
    Fresh(Ticket),
    /// Sent before: this is what the first one started.
    Replay(Sent),
}

/// A claimed key, to complete or release.
pub struct Ticket {
    owner: String,
    scope: &'static str,
    key: String,
}

/// What [`Engine::once`] did.
pub enum Once<T> {
    /// Started it: the first request with its key, or one without a key.
    First(Sent, T),
    /// Did nothing: the key was sent before, and this is what that request started.
    Again(Sent),
}

/// A request's fingerprint, to tell the same request from another under the same key.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn check_key(key: &str) -> Result<(), ChatError> {
    if key.len() > KEY_MAX {
        return Err(invalid(FIELD, "too_long", Some(KEY_MAX)));
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(FIELD, "invalid", None));
    }
    Ok(())
}

impl Engine {
    /// Runs `start` once per `key` (always, without one): a request sent again with the
    /// same key and fingerprint `hash` gets what the first one started; with another
    /// fingerprint it is refused (`idempotency_key`: `reused`).
    pub async fn once<T, Fut>(
        &self,
        user: &CurrentUser,
        scope: &'static str,
        key: Option<&str>,
        hash: &str,
        start: impl FnOnce() -> Fut,
    ) -> Result<Once<T>, ChatError>
    where
        Fut: std::future::Future<Output = Result<(Sent, T), ChatError>>,
    {
        let Some(key) = key else { return start().await.map(|(sent, t)| Once::First(sent, t)) };
        let ticket = match self.claim_idempotency(user, scope, key, hash).await? {
            Claimed::Replay(sent) => return Ok(Once::Again(sent)),
            Claimed::Fresh(t) => t,
        };
        match start().await {
            Ok((sent, t)) => {
                // It started: that stands even if the key cannot be completed (a retry then
                // finds the claim abandoned and starts again, the lesser harm).
                if let Err(e) = self.complete_idempotency(ticket, &sent).await {
                    tracing::warn!(error = %e, "could not record what an idempotency key started");
                }
                Ok(Once::First(sent, t))
            }
            Err(e) => {
                self.release_idempotency(ticket).await;
                Err(e)
            }
        }
    }

    /// Claims `key` for the `scope` request whose fingerprint is `hash`. A request with the
    /// same key still starting waits for it (a few seconds at most), then replays it.
    pub async fn claim_idempotency(
        &self,
        user: &CurrentUser,
        scope: &'static str,
        key: &str,
        hash: &str,
    ) -> Result<Claimed, ChatError> {
        check_key(key)?;
        for _ in 0..100 {
            let now = now_ms();
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (owner_id, scope, idem_key, request_hash, conversation_id, \
                 user_message_id, message_id, created_at) VALUES ($1, $2, $3, $4, '', '', '', $5) \
                 ON CONFLICT (owner_id, scope, idem_key) DO NOTHING",
            )
            .bind(&user.id)
            .bind(scope)
            .bind(key)
            .bind(hash)
            .bind(now)
            .execute(&self.store.pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(Claimed::Fresh(Ticket { owner: user.id.clone(), scope, key: key.to_owned() }));
            }
            let row = sqlx::query(
                "SELECT request_hash, conversation_id, user_message_id, message_id, created_at FROM idempotency_keys \
                 WHERE owner_id = $1 AND scope = $2 AND idem_key = $3",
            )
            .bind(&user.id)
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.store.pool)
            .await?;
            let Some(row) = row else { continue };
            let created: i64 = row.try_get("created_at")?;
            let message_id: String = row.try_get("message_id")?;
            // Expired but not yet pruned, or claimed by a request that never got as far as
            // starting anything (it was dropped, its client gone): as if never sent. Only
            // that row goes: one a concurrent retry has just claimed again stays.
            let expired = created < now - KEEP.as_millis() as i64;
            let abandoned = message_id.is_empty() && created < now - ABANDONED.as_millis() as i64;
            if expired || abandoned {
                self.forget_idempotency(&user.id, scope, key, Some(created)).await?;
                continue;
            }
            if row.try_get::<String, _>("request_hash")? != hash {
                return Err(invalid(FIELD, "reused", None));
            }
            if !message_id.is_empty() {
                return Ok(Claimed::Replay(Sent {
                    conversation_id: row.try_get("conversation_id")?,
                    user_message_id: row.try_get("user_message_id")?,
                    assistant_message_id: message_id,
                }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(invalid(FIELD, "in_progress", None))
    }

    /// Records what the request of a claimed key started.
    pub async fn complete_idempotency(&self, ticket: Ticket, sent: &Sent) -> Result<(), ChatError> {
        sqlx::query(
            "UPDATE idempotency_keys SET conversation_id = $4, user_message_id = $5, message_id = $6 \
             WHERE owner_id = $1 AND scope = $2 AND idem_key = $3",
        )
        .bind(&ticket.owner)
        .bind(ticket.scope)
        .bind(&ticket.key)
        .bind(&sent.conversation_id)
        .bind(&sent.user_message_id)
        .bind(&sent.assistant_message_id)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Frees a claimed key whose request failed before it started anything, so that it
    /// can be sent again.
    pub async fn release_idempotency(&self, ticket: Ticket) {
        if let Err(e) = self.forget_idempotency(&ticket.owner, ticket.scope, &ticket.key, None).await {
            tracing::warn!(error = %e, "could not free an idempotency key");
        }
    }

    /// Deletes a key's row; with `created`, only a row claimed then or before (not one a
    /// concurrent retry claimed since).
    async fn forget_idempotency(
        &self,
        owner: &str,
        scope: &str,
        key: &str,
        created: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE owner_id = $1 AND scope = $2 AND idem_key = $3 \
             AND created_at <= $4",
        )
        .bind(owner)
        .bind(scope)
        .bind(key)
        .bind(created.unwrap_or(i64::MAX))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Forgets keys older than [`KEEP`].
    pub(crate) async fn prune_idempotency(&self) -> Result<u64, sqlx::Error> {
        let before = now_ms() - KEEP.as_millis() as i64;
        Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.store.pool)
            .await?
            .rows_affected())
    }
}
