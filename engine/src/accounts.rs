//! Accounts: register, sign in and out, profile, password, and the admin's controls.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use model::accounts::{DisplayName, Email, Me, NewPassword, UserSummary, login_password, parse_locale};
use model::{FieldError, FieldErrors};
use sqlx::Row;

use crate::auth::{AuthError, ClientInfo, CurrentUser, IssuedTokens};
use crate::infra::limits::RetryAfter;
use crate::infra::store::{Backend, Constraint, StoreError, new_id, now_ms, on_constraint};
use crate::{Engine, audit};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("email or password is incorrect")]
    WrongCredentials,
    #[error("the account is disabled")]
    Disabled,
    #[error("too many failed attempts")]
    TooManyAttempts(RetryAfter),
    #[error("only an admin may do this")]
    AdminOnly,
    #[error("user not found")]
    NotFound,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<FieldError> for AccountError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(FieldErrors(vec![e]))
    }
}

const REGISTRATION_KEY: &str = "registration_open";

impl Engine {
    /// Holds the user's row until `tx` ends, so checks of what the user owns (quotas)
    /// and the write they guard cannot interleave. SQLite writers already take turns.
    pub(crate) async fn lock_user(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user_id: &str,
    ) -> Result<(), sqlx::Error> {
        if self.store.backend == crate::infra::store::Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE").bind(user_id).execute(&mut **tx).await?;
        }
        Ok(())
    }

    fn argon2(&self) -> Result<Argon2<'static>, AccountError> {
        let a = &self.settings.auth;
        let params = Params::new(a.argon2_memory_kib, a.argon2_iterations, 1, None)
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes off the async threads: argon2 is deliberately slow.
    async fn hash_password(&self, password: &NewPassword) -> Result<String, AccountError> {
        let argon = self.argon2()?;
        let pw = password.expose().to_owned();
        let salt = crate::infra::keys::random_bytes::<16>().map_err(|e| AccountError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
            argon
                .hash_password(pw.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AccountError::Hash(e.to_string()))
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }

    async fn verify_password(&self, password: &str, hash: Option<String>) -> Result<bool, AccountError> {
        let argon = self.argon2()?;
        let pw = password.to_owned();
        // Unknown emails still cost one verification, so timing does not reveal accounts.
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| AccountError::Hash(e.to_string()))?;
            Ok(argon.verify_password(pw.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }

    /// Whether self-registration is open (settings default, overridden by an admin).
    pub async fn registration_open(&self) -> Result<bool, AccountError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
            .bind(REGISTRATION_KEY)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(v.map_or(self.settings.registration_open, |v| v == "true"))
    }

    /// Creates an account and signs it in. The first account becomes admin and can be
    /// created even when registration is closed.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        client: &ClientInfo,
    ) -> Result<(Me, IssuedTokens), AccountError> {
        let mut errs = FieldErrors::default();
        let email = errs.take(Email::parse("email", email));
        let password = errs.take(NewPassword::parse("password", password, email.as_ref().map(Email::as_str)));
        let name = match (display_name.trim().is_empty(), &email) {
            (true, Some(e)) => Some(DisplayName::from_email(e)),
            _ => errs.take(DisplayName::parse("display_name", display_name)),
        };
        errs.clone().into_result().map_err(AccountError::Invalid)?;
        let (Some(email), Some(password), Some(name)) = (email, password, name) else {
            return Err(AccountError::Invalid(errs));
        };
        let any_user: Option<String> =
            sqlx::query_scalar("SELECT id FROM users LIMIT 1").fetch_optional(&self.store.pool).await?;
        if any_user.is_some() && !self.registration_open().await? {
            return Err(AccountError::RegistrationClosed);
        }
        let hash = self.hash_password(&password).await?;
        let id = new_id();
        let now = now_ms();
        // The admin flag is decided inside the INSERT, in a transaction that has the users
        // table to itself for writing, so two first registrations cannot both become admin:
        // on SQLite writers take turns anyway; on PostgreSQL, under READ COMMITTED, two
        // INSERTs would each see the table empty without the lock.
        let (mut tx, turn) = self.store.begin().await?;
        if self.store.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        }
        let res = sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, is_admin, created_at, updated_at) \
             SELECT $1, $2, $3, $4, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 0 ELSE 1 END, $5, $5",
        )
        .bind(&id)
        .bind(email.as_str())
        .bind(name.as_str())
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(match on_constraint(&e) {
                Some(Constraint::Unique) => FieldError::new("email", "taken").into(),
                _ => e.into(),
            });
        }
        tx.commit().await?;
        drop(turn);
        audit::record(self, Some(&id), "user.register", &id, serde_json::json!({}), &client.ip).await;
        let tokens = self.start_session(&id, client).await?;
        Ok((self.me(&id).await?, tokens))
    }

    /// Signs in with email and password. Failures count per account and per address;
    /// past the limit both answer "too many attempts" until the window passes.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(Me, IssuedTokens), AccountError> {
        let mut errs = FieldErrors::default();
        let email = errs.take(Email::parse("email", email));
        errs.take(login_password("password", password));
        let Some(email) = email.filter(|_| errs.is_empty()) else {
            return Err(AccountError::Invalid(errs));
        };
        let acct_key = format!("acct:{}", email.as_str());
        let ip_key = format!("ip:{}", client.ip);
        // Counted before the password is checked, so parallel guesses cannot all slip in
        // before the first one fails; a success takes its count back.
        let limits = &self.limits.logins;
        limits.attempt(&acct_key).map_err(AccountError::TooManyAttempts)?;
        if let Err(wait) = limits.attempt(&ip_key) {
            limits.forgive(&acct_key);
            return Err(AccountError::TooManyAttempts(wait));
        }
        let row = sqlx::query("SELECT id, password_hash, disabled FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.store.pool)
            .await?;
        let (id, hash, disabled) = match &row {
            Some(r) => (
                Some(r.try_get::<String, _>("id")?),
                Some(r.try_get::<String, _>("password_hash")?),
                r.try_get::<i64, _>("disabled")? != 0,
            ),
            None => (None, None, false),
        };
        let ok = self.verify_password(password, hash).await?;
        let Some(id) = id.filter(|_| ok) else {
            audit::record(self, None, "user.login_failed", email.as_str(), serde_json::json!({}), &client.ip).await;
            return Err(AccountError::WrongCredentials);
        };
        limits.clear(&acct_key);
        limits.forgive(&ip_key);
        if disabled {
            return Err(AccountError::Disabled);
        }
        audit::record(self, Some(&id), "user.login", &id, serde_json::json!({}), &client.ip).await;
        let tokens = self.start_session(&id, client).await?;
        Ok((self.me(&id).await?, tokens))
    }

    pub async fn logout(&self, user: &CurrentUser) -> Result<(), AccountError> {
        self.revoke_session(&user.session_id, "logout").await?;
        Ok(())
    }

    /// The profile as the UI shows it.
    pub async fn me(&self, user_id: &str) -> Result<Me, AccountError> {
        let r = sqlx::query("SELECT id, email, display_name, is_admin, locale FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AccountError::NotFound)?;
        Ok(Me {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            display_name: r.try_get("display_name")?,
            is_admin: r.try_get::<i64, _>("is_admin")? != 0,
            locale: r.try_get("locale")?,
        })
    }

    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn update_profile(
        &self,
        user: &CurrentUser,
        display_name: &str,
        locale: &str,
    ) -> Result<Me, AccountError> {
        let mut errs = FieldErrors::default();
        let name = errs.take(DisplayName::parse("display_name", display_name));
        let locale = errs.take(parse_locale("locale", locale));
        let (Some(name), Some(locale)) = (name, locale) else {
            return Err(AccountError::Invalid(errs));
        };
        sqlx::query("UPDATE users SET display_name = $2, locale = $3, updated_at = $4 WHERE id = $1")
            .bind(&user.id)
            .bind(name.as_str())
            .bind(&locale)
            .bind(now_ms())
            .execute(&self.store.pool)
            .await?;
        self.sessions.evict_user(&user.id);
        self.me(&user.id).await
    }

    /// Changes the password after checking the current one, ends every session of the
    /// user, and opens a new one for the device that made the change.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn change_password(
        &self,
        user: &CurrentUser,
        current: &str,
        new: &str,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, AccountError> {
        let mut errs = FieldErrors::default();
        errs.take(login_password("current_password", current));
        let new = errs.take(NewPassword::parse("new_password", new, Some(&user.email)));
        let Some(new) = new.filter(|_| errs.is_empty()) else {
            return Err(AccountError::Invalid(errs));
        };
        let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?;
        if !self.verify_password(current, Some(hash.ok_or(AccountError::NotFound)?)).await? {
            return Err(FieldError::new("current_password", "wrong_password").into());
        }
        let new_hash = self.hash_password(&new).await?;
        let (mut tx, turn) = self.store.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(&user.id)
            .bind(&new_hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        crate::auth::revoke_sessions(&mut *tx, &user.id, "password_changed").await?;
        tx.commit().await?;
        drop(turn);
        self.sessions.evict_user(&user.id);
        audit::record(self, Some(&user.id), "user.password_changed", &user.id, serde_json::json!({}), &client.ip).await;
        Ok(self.start_session(&user.id, client).await?)
    }

    fn require_admin(user: &CurrentUser) -> Result<(), AccountError> {
        if user.is_admin { Ok(()) } else { Err(AccountError::AdminOnly) }
    }

    pub async fn list_users(&self, admin: &CurrentUser) -> Result<Vec<UserSummary>, AccountError> {
        Self::require_admin(admin)?;
        let rows = sqlx::query(
            "SELECT id, email, display_name, is_admin, disabled, created_at FROM users ORDER BY created_at LIMIT 1000",
        )
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserSummary {
                    id: r.try_get("id")?,
                    email: r.try_get("email")?,
                    display_name: r.try_get("display_name")?,
                    is_admin: r.try_get::<i64, _>("is_admin")? != 0,
                    disabled: r.try_get::<i64, _>("disabled")? != 0,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Disables or re-enables a user. Disabling revokes every session at once. An admin
    /// cannot disable themself (there would be no way back).
    #[tracing::instrument(skip_all, fields(admin = %admin.id, target = user_id))]
    pub async fn set_user_disabled(
        &self,
        admin: &CurrentUser,
        user_id: &str,
        disabled: bool,
        client: &ClientInfo,
    ) -> Result<(), AccountError> {
        Self::require_admin(admin)?;
        if user_id == admin.id {
            return Err(FieldError::new("user_id", "invalid").into());
        }
        let res = sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(i64::from(disabled))
            .bind(now_ms())
            .execute(&self.store.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(AccountError::NotFound);
        }
        self.sessions.evict_user(user_id);
        if disabled {
            self.revoke_all_sessions(user_id, "disabled").await?;
            if let Err(e) = self.stop_user_runs(user_id).await {
                tracing::error!(error = %e, user = user_id, "could not stop a disabled user's runs on other instances");
            }
        }
        let action = if disabled { "user.disabled" } else { "user.enabled" };
        audit::record(self, Some(&admin.id), action, user_id, serde_json::json!({}), &client.ip).await;
        Ok(())
    }

    pub async fn set_registration_open(
        &self,
        admin: &CurrentUser,
        open: bool,
        client: &ClientInfo,
    ) -> Result<(), AccountError> {
        Self::require_admin(admin)?;
        let now = now_ms();
        let value = if open { "true" } else { "false" };
        // Portable upsert: both SQLite (≥ 3.24) and PostgreSQL accept ON CONFLICT … DO UPDATE.
        sqlx::query(
            "INSERT INTO instance_settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(REGISTRATION_KEY)
        .bind(value)
        .bind(now)
        .bind(&admin.id)
        .execute(&self.store.pool)
        .await?;
        audit::record(self, Some(&admin.id), "instance.registration", value, serde_json::json!({}), &client.ip).await;
        Ok(())
    }
}

/// A valid Argon2id hash of a random string, verified against when the email is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Jx5mPP6zDu4dG1b0HZXKs6Q7gVQk2I9bRFY0UXn1PU";
