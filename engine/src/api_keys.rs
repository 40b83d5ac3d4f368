//! Personal API keys: created shown once, stored as a SHA-256 hash with a visible
//! prefix, revocable. A key acts as its owner, and stops working the moment the owner is
//! disabled or the key is revoked (every request reads the store).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use model::api_keys::{ApiKeyView, KEY_PREFIX, KEYS_MAX, NAME_MAX, NewApiKey};
use model::{FieldError, FieldErrors};
use sqlx::Row;

use crate::auth::{AuthError, CurrentUser, hash_token};
use crate::infra::store::{StoreError, new_id, now_ms};
use crate::{Engine, audit};

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("API key not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApiKeyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

fn view(r: &sqlx::any::AnyRow) -> Result<ApiKeyView, sqlx::Error> {
    Ok(ApiKeyView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl Engine {
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn create_api_key(&self, user: &CurrentUser, name: &str) -> Result<NewApiKey, ApiKeyError> {
        let name = name.trim();
        let invalid = |rule: &str, limit: Option<u64>| {
            let e = match limit {
                Some(n) => FieldError::with_limit("name", rule, n),
                None => FieldError::new("name", rule),
            };
            ApiKeyError::Invalid(FieldErrors(vec![e]))
        };
        if name.is_empty() {
            return Err(invalid("required", None));
        }
        if model::fields::char_len(name) > NAME_MAX {
            return Err(invalid("too_long", Some(NAME_MAX as u64)));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("control_chars", None));
        }
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE owner_id = $1")
            .bind(&user.id)
            .fetch_one(&self.store.pool)
            .await?;
        if held as u64 >= KEYS_MAX {
            return Err(invalid("too_many", Some(KEYS_MAX)));
        }
        let bytes = crate::infra::keys::random_bytes::<32>()
            .map_err(|e| StoreError::Query(sqlx::Error::Protocol(e.to_string())))?;
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let v = ApiKeyView {
            id: new_id(),
            name: name.to_owned(),
            prefix: key.chars().take(KEY_PREFIX.len() + 6).collect(),
            created_at: now_ms(),
            last_used_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, owner_id, name, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&v.id)
        .bind(&user.id)
        .bind(&v.name)
        .bind(&v.prefix)
        .bind(hash_token(&key))
        .bind(v.created_at)
        .execute(&self.store.pool)
        .await?;
        audit::record(self, Some(&user.id), "api_key.create", &v.id, serde_json::json!({ "name": v.name }), "").await;
        Ok(NewApiKey { key, view: v })
    }

    pub async fn list_api_keys(&self, user: &CurrentUser) -> Result<Vec<ApiKeyView>, ApiKeyError> {
        let rows = sqlx::query(
            "SELECT id, name, prefix, created_at, last_used_at FROM api_keys WHERE owner_id = $1 \
             ORDER BY created_at DESC, id",
        )
        .bind(&user.id)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
    }

    pub async fn revoke_api_key(&self, user: &CurrentUser, id: &str) -> Result<(), ApiKeyError> {
        let res = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(ApiKeyError::NotFound);
        }
        self.sessions.evict_session(&format!("key:{id}"));
        audit::record(self, Some(&user.id), "api_key.revoke", id, serde_json::json!({}), "").await;
        Ok(())
    }

    /// The owner of an API key, if the key exists and its owner is not disabled.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<CurrentUser, AuthError> {
        if !key.starts_with(KEY_PREFIX) || key.len() > 200 {
            return Err(AuthError::Unauthenticated);
        }
        let hash = hash_token(key);
        let cached = format!("apikey:{hash}");
        let now = now_ms();
        if let Some(user) = self.sessions.get(&cached, now) {
            return Ok(user);
        }
        let row = sqlx::query(
            "SELECT k.id AS key_id, k.last_used_at, u.id, u.email, u.display_name, u.is_admin, u.disabled, u.locale \
             FROM api_keys k JOIN users u ON u.id = k.owner_id WHERE k.hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(AuthError::Unauthenticated)?;
        if row.try_get::<i64, _>("disabled")? != 0 {
            return Err(AuthError::Disabled);
        }
        let key_id: String = row.try_get("key_id")?;
        // When a key was last used, to the minute: a write once a minute, not per request
        // (a cached key is read again, and this written, when its entry ages out).
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        if last_used.is_none_or(|at| at < now - 60_000) {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(&key_id)
            .bind(now)
            .bind(now - 60_000)
            .execute(&self.store.pool)
            .await?;
        }
        let user = CurrentUser {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            is_admin: row.try_get::<i64, _>("is_admin")? != 0,
            locale: row.try_get("locale")?,
            session_id: format!("key:{key_id}"),
        };
        self.sessions.put(&cached, user.clone(), now + crate::infra::cache::TTL_MS, now);
        Ok(user)
    }
}
