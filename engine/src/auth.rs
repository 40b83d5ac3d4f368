//! Sessions: a short-lived JWT access token (HS256, pinned) and an opaque refresh token
//! that rotates on every use. A session row is the family of all refresh tokens rotated
//! from one sign-in; presenting an already-rotated token (after a short grace for racing
//! tabs) revokes the family. Every authenticated request checks the session and the user
//! in the store, so logout, a password change or disabling a user takes effect at once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::infra::store::{StoreError, new_id, now_ms};
use crate::{Engine, audit};

pub const ACCESS_COOKIE: &str = "agentry_access";
pub const REFRESH_COOKIE: &str = "agentry_refresh";

/// Who is making a request, checked against the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub locale: String,
    pub session_id: String,
}

impl From<CurrentUser> for model::accounts::Me {
    fn from(u: CurrentUser) -> Self {
        Self { id: u.id, email: u.email, display_name: u.display_name, is_admin: u.is_admin, locale: u.locale }
    }
}

/// Where a request came from, for the audit log and per-address limits.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// Tokens to put in cookies. `refresh` is `None` when only the access token was renewed.
#[derive(Clone)]
pub struct IssuedTokens {
    pub access: String,
    pub access_max_age_secs: u64,
    pub refresh: Option<String>,
    pub refresh_max_age_secs: u64,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedTokens(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("not signed in, or the token is invalid or expired")]
    Unauthenticated,
    #[error("the session was revoked")]
    Revoked,
    #[error("the account is disabled")]
    Disabled,
    #[error("a refresh token was used twice; the session was revoked")]
    Reused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    sid: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// How long a rotated refresh token is remembered, to catch its reuse.
const ROTATED_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// Who issues access tokens, and for whom: Agentry, for itself. A token signed with the
/// same key for another purpose (or by another tool sharing the key) is refused.
const TOKEN_ISSUER: &str = "agentry";
const TOKEN_AUDIENCE: &str = "agentry";
/// The JOSE `typ` of an access token (RFC 9068), checked so no other kind of JWT passes.
const TOKEN_TYPE: &str = "at+jwt";

pub fn hash_token(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_refresh_token() -> Result<String, StoreError> {
    let bytes = crate::infra::keys::random_bytes::<32>()
        .map_err(|e| StoreError::Query(sqlx::Error::Protocol(e.to_string())))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Signed-in users by session id (and API-key owners by the key's hash, under
/// `apikey:<hash>`), so an authenticated request costs no query; see [`crate::infra::cache`].
/// Every write that ends a session, revokes a key or changes a user evicts here.
pub type SessionCache = crate::infra::cache::Cache<CurrentUser>;

impl SessionCache {
    /// Forgets one session (an API key's is `key:<id>`).
    pub fn evict_session(&self, sid: &str) {
        self.remove(sid);
        self.remove_where(|u| u.session_id == sid);
    }

    /// Forgets every session and API key of a user (password change, disabled, profile edited).
    pub fn evict_user(&self, user_id: &str) {
        self.remove_where(|u| u.id == user_id);
    }
}

/// How access tokens are checked: the key and the rules (HS256 only, `exp` and `sub`
/// required, no leeway) built once, and the tokens already verified, by their whole text,
/// until they expire (at most [`crate::infra::cache::TTL_MS`]). A signed-in request then skips the
/// HMAC, the base64 and the two JSON parses (about a tenth of a server-function call's
/// CPU). Only a token whose signature checked out is kept, so a forged one always goes
/// through the check; whether its session still stands is checked on every request.
pub struct AccessTokens {
    key: DecodingKey,
    rules: Validation,
    /// `(sub, sid)` of each verified token.
    verified: crate::infra::cache::Cache<std::sync::Arc<(String, String)>>,
}

impl AccessTokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut rules = Validation::new(Algorithm::HS256);
        rules.leeway = 0;
        rules.validate_nbf = true;
        rules.set_issuer(&[TOKEN_ISSUER]);
        rules.set_audience(&[TOKEN_AUDIENCE]);
        rules.set_required_spec_claims(&["exp", "nbf", "sub", "iss", "aud"]);
        // The cache holds nothing from the store, so it is right on every backend.
        Self { key: DecodingKey::from_secret(secret), rules, verified: crate::infra::cache::Cache::new(true) }
    }

    /// The user and session ids a valid, unexpired token carries.
    fn verify(&self, token: &str, now: i64) -> Result<std::sync::Arc<(String, String)>, AuthError> {
        if let Some(ids) = self.verified.get(token, now) {
            return Ok(ids);
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.rules).map_err(|_| AuthError::Unauthenticated)?;
        if data.header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(AuthError::Unauthenticated);
        }
        let claims = data.claims;
        let ids = std::sync::Arc::new((claims.sub, claims.sid));
        // `exp` is in seconds; the token counts while it has not passed.
        let until = i64::try_from(claims.exp).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
        self.verified.put(token, ids.clone(), until, now);
        Ok(ids)
    }
}

const SESSION_USER: &str = "SELECT u.id, u.email, u.display_name, u.is_admin, u.disabled, u.locale, \
     s.revoked_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";

/// The user of a session row, and when the session expires.
fn current_user(row: &sqlx::any::AnyRow, session_id: &str) -> Result<(CurrentUser, i64), AuthError> {
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    let expires: i64 = row.try_get("expires_at")?;
    if revoked.is_some() || expires <= now_ms() {
        return Err(AuthError::Revoked);
    }
    if row.try_get::<i64, _>("disabled")? != 0 {
        return Err(AuthError::Disabled);
    }
    let user = CurrentUser {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        locale: row.try_get("locale")?,
        session_id: session_id.to_owned(),
    };
    Ok((user, expires))
}

/// Stores a new refresh token of a session family (only its hash).
async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token: &str,
    session_id: &str,
    now: i64,
    expires: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(hash_token(token))
        .bind(session_id)
        .bind(now)
        .bind(expires)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Engine {
    fn access_token(&self, user_id: &str, session_id: &str) -> Result<String, AuthError> {
        let iat = (now_ms() / 1000) as u64;
        let claims = Claims {
            iss: TOKEN_ISSUER.to_owned(),
            aud: TOKEN_AUDIENCE.to_owned(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat,
            nbf: iat,
            exp: iat + self.settings.auth.access_ttl_secs,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(self.keys.jwt.expose_secret()))
            .map_err(|_| AuthError::Unauthenticated)
    }

    fn tokens(&self, access: String, refresh: Option<String>) -> IssuedTokens {
        IssuedTokens {
            access,
            access_max_age_secs: self.settings.auth.access_ttl_secs,
            refresh,
            refresh_max_age_secs: self.settings.auth.refresh_ttl_secs,
        }
    }

    /// Checks an access token: signature with HS256 only (`alg: none` and every other
    /// algorithm are refused), expiry with no leeway, then the session and the user.
    pub async fn authenticate(&self, access: &str) -> Result<CurrentUser, AuthError> {
        let now = now_ms();
        let ids = self.access_tokens.verify(access, now)?;
        let (sub, sid) = (&ids.0, &ids.1);
        if let Some(user) = self.sessions.get(sid, now) {
            return if user.id == *sub { Ok(user) } else { Err(AuthError::Unauthenticated) };
        }
        let row = sqlx::query(SESSION_USER)
            .bind(sid)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let (user, expires) = current_user(&row, sid)?;
        if user.id != *sub {
            return Err(AuthError::Unauthenticated);
        }
        self.sessions.put(&user.session_id, user.clone(), expires, now);
        Ok(user)
    }

    /// Forgets refresh tokens nobody can use any more: expired ones, and those rotated more
    /// than [`ROTATED_KEPT_MS`] ago (kept until then so that a stolen one presented again
    /// revokes its family); and sessions that ended that long ago.
    pub(crate) async fn prune_sessions(&self) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let old = now - ROTATED_KEPT_MS;
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1 OR rotated_at < $2")
            .bind(now)
            .bind(old)
            .execute(&self.store.pool)
            .await?
            .rows_affected();
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(old)
            .execute(&self.store.pool)
            .await?
            .rows_affected();
        Ok(tokens + sessions)
    }

    /// Opens a new session (a new refresh-token family) for a user who just proved who they are.
    pub(crate) async fn start_session(&self, user_id: &str, client: &ClientInfo) -> Result<IssuedTokens, AuthError> {
        let now = now_ms();
        let sid = new_id();
        let refresh = new_refresh_token()?;
        let expires = now + (self.settings.auth.refresh_ttl_secs as i64) * 1000;
        let (mut tx, turn) = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, user_agent, ip) \
             VALUES ($1, $2, $3, $3, $4, $5, $6)",
        )
        .bind(&sid)
        .bind(user_id)
        .bind(now)
        .bind(expires)
        .bind(client.user_agent.chars().take(300).collect::<String>())
        .bind(&client.ip)
        .execute(&mut *tx)
        .await?;
        insert_refresh_token(&mut tx, &refresh, &sid, now, expires).await?;
        tx.commit().await?;
        drop(turn);
        Ok(self.tokens(self.access_token(user_id, &sid)?, Some(refresh)))
    }

    /// Rotates a refresh token: the presented one is spent and a new one issued in the
    /// same family. A spent token presented again revokes the family, unless it was spent
    /// less than `refresh_reuse_grace_secs` ago (two tabs refreshing at once): then only a
    /// new access token is issued.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh: &str, client: &ClientInfo) -> Result<(CurrentUser, IssuedTokens), AuthError> {
        let now = now_ms();
        let hash = hash_token(refresh);
        let row = sqlx::query("SELECT session_id, expires_at, rotated_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let sid: String = row.try_get("session_id")?;
        let expires: i64 = row.try_get("expires_at")?;
        let rotated: Option<i64> = row.try_get("rotated_at")?;
        if expires <= now {
            return Err(AuthError::Unauthenticated);
        }
        let session_row = sqlx::query(SESSION_USER)
            .bind(&sid)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let (user, _) = current_user(&session_row, &sid)?;
        let grace = (self.settings.auth.refresh_reuse_grace_secs as i64) * 1000;
        if let Some(at) = rotated {
            if now - at < grace {
                return Ok((user.clone(), self.tokens(self.access_token(&user.id, &sid)?, None)));
            }
            self.revoke_session(&sid, "refresh_reuse").await?;
            audit::record(self, Some(&user.id), "session.refresh_reuse", &sid, serde_json::json!({}), &client.ip).await;
            return Err(AuthError::Reused);
        }
        let next = new_refresh_token()?;
        let next_expires = now + (self.settings.auth.refresh_ttl_secs as i64) * 1000;
        let (mut tx, turn) = self.store.begin().await?;
        let spent =
            sqlx::query("UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL")
                .bind(&hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if spent.rows_affected() == 0 {
            // Another request rotated it between our read and this write: a race, not theft.
            tx.rollback().await?;
            return Ok((user.clone(), self.tokens(self.access_token(&user.id, &sid)?, None)));
        }
        insert_refresh_token(&mut tx, &next, &sid, now, next_expires).await?;
        sqlx::query("UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE id = $1")
            .bind(&sid)
            .bind(now)
            .bind(next_expires)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(turn);
        let access = self.access_token(&user.id, &sid)?;
        Ok((user, self.tokens(access, Some(next))))
    }

    /// Ends one session: its access tokens stop working at the next request.
    pub async fn revoke_session(&self, session_id: &str, reason: &str) -> Result<(), AuthError> {
        self.sessions.evict_session(session_id);
        sqlx::query("UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(session_id)
            .bind(now_ms())
            .bind(reason)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a user.
    pub async fn revoke_all_sessions(&self, user_id: &str, reason: &str) -> Result<(), AuthError> {
        self.sessions.evict_user(user_id);
        revoke_sessions(&self.store.pool, user_id, reason).await?;
        Ok(())
    }
}

/// Marks every live session of a user revoked for `reason`, in `db` (a pool or the
/// caller's transaction); the session cache is the caller's to evict.
pub(crate) async fn revoke_sessions<'c, E>(db: E, user_id: &str, reason: &str) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(now_ms())
        .bind(reason)
        .execute(db)
        .await?;
    Ok(())
}
