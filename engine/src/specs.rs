//! App specs with versions: every save appends a version (the text as it was is never
//! rewritten); a duplicate starts a history of its own; deleting removes every version.
//! Each query names the owner: another user's spec is not found.

use model::FieldErrors;
use model::specs::{SpecForm, SpecPage, SpecSummary, SpecVersion, SpecView, line_count, preview};
use sqlx::Row;

use crate::auth::CurrentUser;
use crate::infra::store::{Arg, List, StoreError, like_pattern, new_id, now_ms};
use crate::{Engine, audit};

pub const PER_PAGE: u32 = 24;
/// The most versions a spec page lists.
const VERSIONS_MAX: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("spec not found")]
    NotFound,
    /// The spec was saved elsewhere since the editor opened it.
    #[error("the spec changed since it was opened (now version {current})")]
    Conflict { current: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SpecError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Appends version `version` of spec `id` (its text as `form` has it).
async fn add_version(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    version: i64,
    form: &SpecForm,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO spec_versions (spec_id, version, name, body, size, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(version)
    .bind(&form.name)
    .bind(&form.body)
    .bind(form.body.len() as i64)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Engine {
    /// A new spec, version 1.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn create_spec(&self, user: &CurrentUser, form: &SpecForm) -> Result<SpecView, SpecError> {
        let form = form.parse().map_err(SpecError::Invalid)?;
        let id = self.insert_spec(user, &form).await?;
        audit::record(self, Some(&user.id), "spec.create", &id, serde_json::json!({}), "").await;
        self.get_spec(user, &id, None).await
    }

    async fn insert_spec(&self, user: &CurrentUser, form: &SpecForm) -> Result<String, SpecError> {
        let id = new_id();
        let now = now_ms();
        let (size, lines) = (form.body.len() as i64, line_count(&form.body));
        let (mut tx, turn) = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO specs (id, owner_id, name, body, size, lines, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(&id)
        .bind(&user.id)
        .bind(&form.name)
        .bind(&form.body)
        .bind(size)
        .bind(lines)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        add_version(&mut tx, &id, 1, form, now).await?;
        tx.commit().await?;
        drop(turn);
        Ok(id)
    }

    /// The user's specs, newest change first, optionally filtered by name or text.
    pub async fn list_specs(&self, user: &CurrentUser, query: &str, page: u32) -> Result<SpecPage, SpecError> {
        static LIST: List = List {
            columns: "id, name, SUBSTR(body, 1, 1000) AS head, size, lines, version, updated_at",
            from: "specs",
            filter: "owner_id = $1 AND (LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(body) LIKE $2 ESCAPE '\\')",
            order: "updated_at DESC, id DESC",
            per_page: PER_PAGE,
        };
        let pattern = like_pattern(query);
        LIST.page(&self.store.pool, &[Arg::Text(&user.id), Arg::Text(&pattern)], page, |r| {
            Ok::<_, SpecError>(SpecSummary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                preview: preview(&r.try_get::<String, _>("head")?),
                size: r.try_get("size")?,
                lines: r.try_get("lines")?,
                version: r.try_get("version")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .await
    }

    /// The spec at `version` (the newest when `None`), with its list of versions.
    pub async fn get_spec(&self, user: &CurrentUser, id: &str, version: Option<i64>) -> Result<SpecView, SpecError> {
        let row = sqlx::query("SELECT version, created_at, updated_at FROM specs WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(SpecError::NotFound)?;
        let latest: i64 = row.try_get("version")?;
        let shown = version.unwrap_or(latest);
        let v = sqlx::query("SELECT name, body, size FROM spec_versions WHERE spec_id = $1 AND version = $2")
            .bind(id)
            .bind(shown)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(SpecError::NotFound)?;
        let body: String = v.try_get("body")?;
        let versions = sqlx::query(
            "SELECT version, name, size, created_at FROM spec_versions WHERE spec_id = $1 ORDER BY version DESC LIMIT $2",
        )
        .bind(id)
        .bind(VERSIONS_MAX)
        .fetch_all(&self.store.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(SpecVersion {
                version: r.try_get("version")?,
                name: r.try_get("name")?,
                size: r.try_get("size")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(SpecView {
            id: id.to_owned(),
            name: v.try_get("name")?,
            lines: line_count(&body),
            body,
            version: shown,
            latest,
            size: v.try_get("size")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            versions,
        })
    }

    /// Saves a new version, unless nothing changed. `base_version`, when given, must still
    /// be the newest: otherwise nothing is written and the caller hears of the conflict.
    #[tracing::instrument(skip_all, fields(user = %user.id, spec = id))]
    pub async fn update_spec(
        &self,
        user: &CurrentUser,
        id: &str,
        base_version: Option<i64>,
        form: &SpecForm,
    ) -> Result<SpecView, SpecError> {
        let form = form.parse().map_err(SpecError::Invalid)?;
        let current = self.get_spec(user, id, None).await?;
        if base_version.is_some_and(|b| b != current.latest) {
            return Err(SpecError::Conflict { current: current.latest });
        }
        if current.name == form.name && current.body == form.body {
            return Ok(current);
        }
        let now = now_ms();
        let (size, lines) = (form.body.len() as i64, line_count(&form.body));
        let (mut tx, turn) = self.store.begin().await?;
        let moved = sqlx::query(
            "UPDATE specs SET name = $3, body = $4, size = $5, lines = $6, version = version + 1, updated_at = $7 \
             WHERE id = $1 AND owner_id = $2 AND version = $8",
        )
        .bind(id)
        .bind(&user.id)
        .bind(&form.name)
        .bind(&form.body)
        .bind(size)
        .bind(lines)
        .bind(now)
        .bind(current.latest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            drop(turn);
            let now_latest = self.get_spec(user, id, None).await?.latest;
            return Err(SpecError::Conflict { current: now_latest });
        }
        add_version(&mut tx, id, current.latest + 1, &form, now).await?;
        tx.commit().await?;
        drop(turn);
        audit::record(
            self,
            Some(&user.id),
            "spec.update",
            id,
            serde_json::json!({ "version": current.latest + 1 }),
            "",
        )
        .await;
        self.get_spec(user, id, None).await
    }

    /// A new spec with this one's newest text, named "… (copy)"; its history starts anew.
    pub async fn duplicate_spec(&self, user: &CurrentUser, id: &str) -> Result<SpecView, SpecError> {
        let current = self.get_spec(user, id, None).await?;
        let name: String = format!("{} (copy)", current.name).chars().take(model::specs::NAME_MAX).collect();
        let new = self.insert_spec(user, &SpecForm { name, body: current.body }).await?;
        audit::record(self, Some(&user.id), "spec.duplicate", &new, serde_json::json!({ "from": id }), "").await;
        self.get_spec(user, &new, None).await
    }

    /// Deletes the spec and every version of it.
    pub async fn delete_spec(&self, user: &CurrentUser, id: &str) -> Result<(), SpecError> {
        let n = sqlx::query("DELETE FROM specs WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(SpecError::NotFound);
        }
        audit::record(self, Some(&user.id), "spec.delete", id, serde_json::json!({}), "").await;
        Ok(())
    }
}
