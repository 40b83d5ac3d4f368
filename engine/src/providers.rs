//! Provider connections: personal ones, and shared ones an admin makes for everyone.
//! Keys and headers are sealed with AES-256-GCM, bound to their row; views carry only
//! the key's last four characters and the header names.

use model::providers::{ProviderDraft, ProviderKind, ProviderView};
use model::{FieldError, FieldErrors, Page};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

use crate::auth::CurrentUser;
use crate::infra::secrets::{self, SecretError};
use crate::infra::store::{Arg, Constraint, List, StoreError, like_pattern, new_id, now_ms, on_constraint};
use crate::{Engine, audit};

pub mod probe;

const SHARED: &str = "shared";
/// Connections per list page.
pub const PER_PAGE: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("provider connection not found")]
    NotFound,
    #[error("only an admin may change a shared connection")]
    AdminOnly,
    /// The address is refused by the SSRF guard, or nothing answers there.
    #[error("cannot reach the provider: {0}")]
    Unreachable(String),
    /// The provider answered, but not with what was asked for.
    #[error("the provider refused: {0}")]
    Upstream(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProviderError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What a request to the provider needs: never leaves the server.
#[derive(Clone)]
pub struct ProviderSecrets {
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub headers: Vec<(String, SecretString)>,
    /// Admin-made (shared) connections may reach private addresses, such as a local Ollama.
    pub shared: bool,
}

const COLUMNS: &str = "id, scope, owner_id, kind, name, base_url, api_key_sealed, api_key_hint, \
     headers_sealed, header_names, models, updated_at";

fn key_context(id: &str) -> String {
    format!("provider:{id}:api_key")
}

fn headers_context(id: &str) -> String {
    format!("provider:{id}:headers")
}

fn view(row: &sqlx::any::AnyRow, viewer: &CurrentUser) -> Result<ProviderView, ProviderError> {
    let scope: String = row.try_get("scope")?;
    let shared = scope == SHARED;
    let kind: String = row.try_get("kind")?;
    let names: String = row.try_get("header_names")?;
    let models: String = row.try_get("models")?;
    Ok(ProviderView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: ProviderKind::parse("kind", &kind).unwrap_or(ProviderKind::Openai),
        base_url: row.try_get("base_url")?,
        api_key_hint: row.try_get("api_key_hint")?,
        header_names: serde_json::from_str(&names).unwrap_or_default(),
        models: serde_json::from_str(&models).unwrap_or_default(),
        shared,
        editable: if shared { viewer.is_admin } else { scope == viewer.id },
        updated_at: row.try_get("updated_at")?,
    })
}

impl Engine {
    fn seal_headers(&self, id: &str, headers: &[(String, String)]) -> Result<String, ProviderError> {
        let json = serde_json::to_string(headers).map_err(|e| SecretError::Seal(e.to_string()))?;
        Ok(secrets::seal(&self.keys, &headers_context(id), &json)?)
    }

    /// The row, if `user` may see it (their own, or shared).
    async fn visible_provider(&self, user: &CurrentUser, id: &str) -> Result<sqlx::any::AnyRow, ProviderError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM providers WHERE id = $1 AND (scope = $2 OR scope = 'shared')"
        )))
        .bind(id)
        .bind(&user.id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(ProviderError::NotFound)
    }

    /// The row, if `user` may change it: their own, or a shared one when admin.
    async fn editable_provider(&self, user: &CurrentUser, id: &str) -> Result<sqlx::any::AnyRow, ProviderError> {
        let row = self.visible_provider(user, id).await?;
        let scope: String = row.try_get("scope")?;
        if scope == SHARED && !user.is_admin {
            return Err(ProviderError::AdminOnly);
        }
        Ok(row)
    }

    fn name_taken(e: sqlx::Error) -> ProviderError {
        match on_constraint(&e) {
            Some(Constraint::Unique) => ProviderError::Invalid(FieldErrors(vec![FieldError::new("name", "taken")])),
            _ => e.into(),
        }
    }

    /// A member's URL naming a private address literally is refused when saved (names
    /// that resolve to one are refused when connecting).
    fn check_literal_url(&self, user: &CurrentUser, url: &str) -> Result<(), ProviderError> {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Err(ProviderError::Invalid(FieldErrors(vec![FieldError::new("base_url", "invalid_url")])));
        };
        self.guard(user.is_admin)
            .check_url(&parsed)
            .map_err(|_| ProviderError::Invalid(FieldErrors(vec![FieldError::new("base_url", "private_address")])))
    }

    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn create_provider(&self, user: &CurrentUser, d: ProviderDraft) -> Result<ProviderView, ProviderError> {
        if d.shared && !user.is_admin {
            return Err(ProviderError::AdminOnly);
        }
        self.check_literal_url(user, &d.base_url)?;
        let id = new_id();
        let now = now_ms();
        let (scope, owner) =
            if d.shared { (SHARED.to_owned(), None) } else { (user.id.clone(), Some(user.id.clone())) };
        let key_sealed = d.api_key.as_deref().map(|k| secrets::seal(&self.keys, &key_context(&id), k)).transpose()?;
        let headers = d.headers.clone().unwrap_or_default();
        let headers_sealed = if headers.is_empty() { None } else { Some(self.seal_headers(&id, &headers)?) };
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        sqlx::query(
            "INSERT INTO providers (id, scope, owner_id, created_by, kind, name, base_url, api_key_sealed, api_key_hint, \
             headers_sealed, header_names, models, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(&id)
        .bind(&scope)
        .bind(owner)
        .bind(&user.id)
        .bind(d.kind.as_str())
        .bind(&d.name)
        .bind(&d.base_url)
        .bind(key_sealed)
        .bind(d.api_key.as_deref().map(secrets::mask).unwrap_or_default())
        .bind(headers_sealed)
        .bind(serde_json::to_string(&names).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&d.models).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .execute(&self.store.pool)
        .await
        .map_err(Self::name_taken)?;
        audit::record(self, Some(&user.id), "provider.create", &id, serde_json::json!({ "shared": d.shared }), "")
            .await;
        self.get_provider(user, &id).await
    }

    /// The viewer's own connections and the shared ones, shared first, then by name.
    pub async fn list_providers(&self, user: &CurrentUser) -> Result<Vec<ProviderView>, ProviderError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM providers WHERE scope = $1 OR scope = 'shared' \
             ORDER BY CASE WHEN scope = 'shared' THEN 0 ELSE 1 END, name LIMIT 500"
        )))
        .bind(&user.id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(|r| view(r, user)).collect()
    }

    /// One page of the connections the user may use (shared first), optionally filtered by
    /// name or base URL.
    pub async fn search_providers(
        &self,
        user: &CurrentUser,
        query: &str,
        page: u32,
    ) -> Result<Page<ProviderView>, ProviderError> {
        static LIST: List = List {
            columns: COLUMNS,
            from: "providers",
            filter: "(scope = $1 OR scope = 'shared') AND (LOWER(name) LIKE $2 ESCAPE '\\' \
                     OR LOWER(base_url) LIKE $2 ESCAPE '\\')",
            order: "CASE WHEN scope = 'shared' THEN 0 ELSE 1 END, name, id",
            per_page: PER_PAGE,
        };
        let pattern = like_pattern(query);
        LIST.page(&self.store.pool, &[Arg::Text(&user.id), Arg::Text(&pattern)], page, |r| view(r, user)).await
    }

    pub async fn get_provider(&self, user: &CurrentUser, id: &str) -> Result<ProviderView, ProviderError> {
        view(&self.visible_provider(user, id).await?, user)
    }

    /// Updates a connection. Sharing cannot be switched here (make a new one). When the URL
    /// changes, the stored key and headers are dropped unless given again.
    #[tracing::instrument(skip_all, fields(user = %user.id, provider = id))]
    pub async fn update_provider(
        &self,
        user: &CurrentUser,
        id: &str,
        d: ProviderDraft,
    ) -> Result<ProviderView, ProviderError> {
        let row = self.editable_provider(user, id).await?;
        self.check_literal_url(user, &d.base_url)?;
        let old_url: String = row.try_get("base_url")?;
        let url_changed = old_url != d.base_url;
        let mut key_sealed: Option<String> = row.try_get("api_key_sealed")?;
        let mut key_hint: String = row.try_get("api_key_hint")?;
        let mut headers_sealed: Option<String> = row.try_get("headers_sealed")?;
        let mut header_names: String = row.try_get("header_names")?;
        if url_changed {
            (key_sealed, key_hint, headers_sealed, header_names) = (None, String::new(), None, "[]".into());
        }
        if let Some(k) = d.api_key.as_deref() {
            key_sealed = Some(secrets::seal(&self.keys, &key_context(id), k)?);
            key_hint = secrets::mask(k);
        }
        if let Some(h) = d.headers.as_deref() {
            headers_sealed = Some(self.seal_headers(id, h)?);
            header_names =
                serde_json::to_string(&h.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()).unwrap_or_default();
        }
        sqlx::query(
            "UPDATE providers SET kind = $2, name = $3, base_url = $4, api_key_sealed = $5, api_key_hint = $6, \
             headers_sealed = $7, header_names = $8, models = $9, updated_at = $10 WHERE id = $1",
        )
        .bind(id)
        .bind(d.kind.as_str())
        .bind(&d.name)
        .bind(&d.base_url)
        .bind(key_sealed)
        .bind(key_hint)
        .bind(headers_sealed)
        .bind(header_names)
        .bind(serde_json::to_string(&d.models).unwrap_or_else(|_| "[]".into()))
        .bind(now_ms())
        .execute(&self.store.pool)
        .await
        .map_err(Self::name_taken)?;
        self.provider_cache.remove(id);
        audit::record(
            self,
            Some(&user.id),
            "provider.update",
            id,
            serde_json::json!({ "url_changed": url_changed }),
            "",
        )
        .await;
        self.get_provider(user, id).await
    }

    pub async fn delete_provider(&self, user: &CurrentUser, id: &str) -> Result<(), ProviderError> {
        self.editable_provider(user, id).await?;
        sqlx::query("DELETE FROM providers WHERE id = $1").bind(id).execute(&self.store.pool).await?;
        self.provider_cache.remove(id);
        audit::record(self, Some(&user.id), "provider.delete", id, serde_json::json!({}), "").await;
        Ok(())
    }

    /// Decrypted connection details, for calling the provider from the server.
    /// Kept in [`crate::infra::cache`] (on SQLite), so a run does not wait on a read and a decryption.
    pub async fn provider_secrets(&self, user: &CurrentUser, id: &str) -> Result<ProviderSecrets, ProviderError> {
        let now = crate::infra::store::now_ms();
        if let Some((scope, secrets)) = self.provider_cache.get(id, now) {
            return if scope == user.id || scope == SHARED { Ok(secrets) } else { Err(ProviderError::NotFound) };
        }
        let row = self.visible_provider(user, id).await?;
        let scope: String = row.try_get("scope")?;
        let kind: String = row.try_get("kind")?;
        let key: Option<String> = row.try_get("api_key_sealed")?;
        let headers: Option<String> = row.try_get("headers_sealed")?;
        let headers: Vec<(String, String)> = match headers {
            Some(h) => serde_json::from_str(secrets::open(&self.keys, &headers_context(id), &h)?.expose_secret())
                .map_err(|_| SecretError::Open)?,
            None => Vec::new(),
        };
        let secrets = ProviderSecrets {
            kind: ProviderKind::parse("kind", &kind).unwrap_or(ProviderKind::Openai),
            base_url: row.try_get("base_url")?,
            api_key: key.map(|k| secrets::open(&self.keys, &key_context(id), &k)).transpose()?,
            headers: headers.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect(),
            shared: scope == SHARED,
        };
        self.provider_cache.put(id, (scope, secrets.clone()), now + crate::infra::cache::TTL_MS, now);
        Ok(secrets)
    }
}
