//! Skills: uploaded folders in the Agent Skills layout, stored as versions (a re-upload of
//! a skill with the same name is its next version). Files go to blob storage first; the
//! rows that make a version visible are written last, in one transaction.

pub mod intake;

use futures::{StreamExt, TryStreamExt};
use model::Page;
use model::skills::{SkillFile, SkillSummary, SkillView, UploadProblem};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::Row;

use crate::auth::CurrentUser;
use crate::infra::storage::key;
use crate::infra::store::{Arg, List, StoreError, like_pattern, new_id, now_ms};

/// Skills per list page.
pub const PER_PAGE: u32 = 20;
use crate::{Engine, audit};
pub use intake::Upload;

#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    #[error("the upload was refused: {0}")]
    Refused(#[from] UploadProblem),
    #[error("skill not found")]
    NotFound,
    #[error("file not found")]
    FileNotFound,
    /// Agents still use the skill; detach it from them first.
    #[error("the skill is used by {}", .0.join(", "))]
    InUse(Vec<String>),
    /// The upload would take the user past `limits.storage_per_user_bytes`.
    #[error("the upload ({upload} bytes) would pass the storage quota of {quota} bytes ({used} used)")]
    Quota { upload: u64, used: u64, quota: u64 },
    #[error("blob storage failed: {0}")]
    Blobs(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SkillError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<object_store::Error> for SkillError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::FileNotFound,
            other => Self::Blobs(other.to_string()),
        }
    }
}

/// Bytes of files `owner` keeps: the sizes in every manifest of every skill of theirs.
pub(crate) async fn bytes_kept<'e, E>(db: E, owner: &str) -> Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let manifests: Vec<String> = sqlx::query_scalar(
        "SELECT v.manifest FROM skill_versions v JOIN skills s ON s.id = v.skill_id WHERE s.owner_id = $1",
    )
    .bind(owner)
    .fetch_all(db)
    .await?;
    Ok(manifests
        .iter()
        .flat_map(|m| serde_json::from_str::<Vec<SkillFile>>(m).unwrap_or_default())
        .map(|f| f.size)
        .sum())
}

fn blob_prefix(id: &str, version: i64) -> [String; 3] {
    ["skills".to_owned(), id.to_owned(), version.to_string()]
}

fn file_base(id: &str) -> String {
    format!("/skills/{id}/files/")
}

impl Engine {
    /// The name of the user's skill `id`, if it is theirs.
    pub(crate) async fn skill_name(&self, user: &CurrentUser, id: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT name FROM skills WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await
    }

    /// The id of the user's skill called `name`.
    pub(crate) async fn skill_named(&self, user: &CurrentUser, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM skills WHERE owner_id = $1 AND name = $2")
            .bind(&user.id)
            .bind(name)
            .fetch_optional(&self.store.pool)
            .await
    }

    /// Stores an upload as a new skill, or as the next version of the user's skill with the
    /// same name. Nothing is visible until every file is stored.
    #[tracing::instrument(skip_all, fields(user = %user.id, files = files.len()))]
    pub async fn upload_skill(&self, user: &CurrentUser, files: Vec<Upload>) -> Result<SkillView, SkillError> {
        let files = intake::check_files(files)?;
        let (name, description) = intake::front_matter(&files)?;
        let existing = sqlx::query("SELECT id, version FROM skills WHERE owner_id = $1 AND name = $2")
            .bind(&user.id)
            .bind(&name)
            .fetch_optional(&self.store.pool)
            .await?;
        let (id, version) = match &existing {
            Some(r) => (r.try_get::<String, _>("id")?, r.try_get::<i64, _>("version")? + 1),
            None => (new_id(), 1),
        };
        let md = files.iter().find(|f| f.path == "SKILL.md").map(|f| String::from_utf8_lossy(&f.bytes).into_owned());
        let html = model::markdown::render(md.as_deref().unwrap_or_default(), Some(&file_base(&id)));
        let manifest: Vec<SkillFile> =
            files.iter().map(|f| SkillFile { path: f.path.clone(), size: f.bytes.len() as u64 }).collect();
        let upload: u64 = manifest.iter().map(|f| f.size).sum();
        let (used, quota) = (self.storage_used(user).await?, self.settings.limits.storage_per_user_bytes);
        if used.saturating_add(upload) > quota {
            return Err(SkillError::Quota { upload, used, quota });
        }
        let prefix = blob_prefix(&id, version);
        let parts: Vec<&str> = prefix.iter().map(String::as_str).collect();
        for f in files {
            self.blobs.put(&key(&parts, &f.path), PutPayload::from(f.bytes)).await?;
        }
        let written = self
            .record_skill_version(user, &id, version, existing.is_none(), &name, &description, &manifest, &html)
            .await;
        if let Err(e) = written {
            self.delete_blobs(&parts).await;
            return Err(e);
        }
        audit::record(self, Some(&user.id), "skill.upload", &id, serde_json::json!({ "version": version }), "").await;
        self.get_skill(user, &id).await
    }

    /// Unpacks a zip (off the async threads: it is CPU work) and stores it as above.
    pub async fn upload_skill_zip(&self, user: &CurrentUser, archive: Vec<u8>) -> Result<SkillView, SkillError> {
        let files = tokio::task::spawn_blocking(move || intake::read_zip(&archive))
            .await
            .map_err(|e| SkillError::Blobs(format!("unpacking failed: {e}")))??;
        self.upload_skill(user, files).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_skill_version(
        &self,
        user: &CurrentUser,
        id: &str,
        version: i64,
        new: bool,
        name: &str,
        description: &str,
        manifest: &[SkillFile],
        html: &str,
    ) -> Result<(), SkillError> {
        let now = now_ms();
        let (mut tx, turn) = self.store.begin().await?;
        // The quota again, inside the transaction that records the version, so uploads at
        // once cannot each pass it: on SQLite writers take turns; on PostgreSQL the owner's
        // row is locked until this commits.
        self.lock_user(&mut tx, &user.id).await?;
        let (used, upload) =
            (crate::quota::used(&mut tx, &user.id).await?, manifest.iter().map(|f| f.size).sum::<u64>());
        let quota = self.settings.limits.storage_per_user_bytes;
        if used.saturating_add(upload) > quota {
            return Err(SkillError::Quota { upload, used, quota });
        }
        if new {
            sqlx::query(
                "INSERT INTO skills (id, owner_id, name, description, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5)",
            )
            .bind(id)
            .bind(&user.id)
            .bind(name)
            .bind(description)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        } else {
            let moved = sqlx::query(
                "UPDATE skills SET description = $3, version = $4, updated_at = $5 \
                 WHERE id = $1 AND owner_id = $2 AND version = $4 - 1",
            )
            .bind(id)
            .bind(&user.id)
            .bind(description)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                // Another upload of the same skill won the race; this one is dropped whole.
                return Err(SkillError::Refused(UploadProblem::BadArchive(
                    "another upload of this skill finished first; upload again".into(),
                )));
            }
        }
        sqlx::query(
            "INSERT INTO skill_versions (skill_id, version, description, manifest, html, author_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(version)
        .bind(description)
        .bind(serde_json::to_string(manifest).unwrap_or_else(|_| "[]".into()))
        .bind(html)
        .bind(&user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(turn);
        Ok(())
    }

    /// Best effort: removes the blobs under a prefix (a failed upload, a deleted skill).
    async fn delete_blobs(&self, prefix: &[&str]) {
        let p = object_store::path::Path::from_iter(prefix.iter().copied());
        let locations = self.blobs.list(Some(&p)).map_ok(|m| m.location).boxed();
        if let Err(e) = self.blobs.delete_stream(locations).try_collect::<Vec<_>>().await {
            tracing::warn!(error = %e, "could not remove blobs");
        }
    }

    /// The user's skills by name, optionally filtered by name or description.
    pub async fn list_skills(
        &self,
        user: &CurrentUser,
        query: &str,
        page: u32,
    ) -> Result<Page<SkillSummary>, SkillError> {
        static LIST: List = List {
            columns: "s.id, s.name, s.description, s.version, s.updated_at, v.manifest",
            from: "skills s JOIN skill_versions v ON v.skill_id = s.id AND v.version = s.version",
            filter: "s.owner_id = $1 AND (LOWER(s.name) LIKE $2 ESCAPE '\\' OR LOWER(s.description) LIKE $2 ESCAPE '\\')",
            order: "s.name, s.id",
            per_page: PER_PAGE,
        };
        let pattern = like_pattern(query);
        LIST.page(&self.store.pool, &[Arg::Text(&user.id), Arg::Text(&pattern)], page, |r| {
            let manifest: Vec<SkillFile> =
                serde_json::from_str(&r.try_get::<String, _>("manifest")?).unwrap_or_default();
            Ok::<_, SkillError>(SkillSummary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                version: r.try_get("version")?,
                files: manifest.len() as i64,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .await
    }

    pub async fn get_skill(&self, user: &CurrentUser, id: &str) -> Result<SkillView, SkillError> {
        let r = sqlx::query(
            "SELECT s.name, s.description, s.version, s.updated_at, v.manifest, v.html FROM skills s \
             JOIN skill_versions v ON v.skill_id = s.id AND v.version = s.version \
             WHERE s.id = $1 AND s.owner_id = $2",
        )
        .bind(id)
        .bind(&user.id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(SkillError::NotFound)?;
        let versions =
            sqlx::query("SELECT version, created_at FROM skill_versions WHERE skill_id = $1 ORDER BY version DESC")
                .bind(id)
                .fetch_all(&self.store.pool)
                .await?
                .iter()
                .map(|v| Ok((v.try_get("version")?, v.try_get("created_at")?)))
                .collect::<Result<_, sqlx::Error>>()?;
        Ok(SkillView {
            id: id.to_owned(),
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            version: r.try_get("version")?,
            files: serde_json::from_str(&r.try_get::<String, _>("manifest")?).unwrap_or_default(),
            html: r.try_get("html")?,
            versions,
            used_by: self.agents_using(user, "skills", id).await?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// One file of a skill version (the current one when `version` is `None`).
    pub async fn skill_file(
        &self,
        user: &CurrentUser,
        id: &str,
        version: Option<i64>,
        path: &str,
    ) -> Result<Vec<u8>, SkillError> {
        let skill = self.get_skill(user, id).await?;
        let version = version.unwrap_or(skill.version);
        let manifest: String =
            sqlx::query_scalar("SELECT manifest FROM skill_versions WHERE skill_id = $1 AND version = $2")
                .bind(id)
                .bind(version)
                .fetch_optional(&self.store.pool)
                .await?
                .ok_or(SkillError::NotFound)?;
        let files: Vec<SkillFile> = serde_json::from_str(&manifest).unwrap_or_default();
        // Only paths the manifest lists: never a key built from unchecked input.
        let file = files.iter().find(|f| f.path == path).ok_or(SkillError::FileNotFound)?;
        let prefix = blob_prefix(id, version);
        let parts: Vec<&str> = prefix.iter().map(String::as_str).collect();
        Ok(self.blobs.get(&key(&parts, &file.path)).await?.bytes().await?.to_vec())
    }

    /// Bytes of files the user keeps: every version of every skill of theirs.
    pub async fn storage_used(&self, user: &CurrentUser) -> Result<u64, SkillError> {
        let mut conn = self.store.pool.acquire().await?;
        Ok(crate::quota::used(&mut conn, &user.id).await?)
    }

    /// Deletes every version of a skill but the current one, files included; returns how
    /// many went. Agents use the current version, so nothing they see changes.
    pub async fn prune_skill_versions(&self, user: &CurrentUser, id: &str) -> Result<u64, SkillError> {
        let skill = self.get_skill(user, id).await?;
        // Only those before the current one: a version uploaded meanwhile is newer, and stays.
        let old: Vec<i64> = skill.versions.iter().map(|(v, _)| *v).filter(|v| *v < skill.version).collect();
        sqlx::query("DELETE FROM skill_versions WHERE skill_id = $1 AND version < $2")
            .bind(id)
            .bind(skill.version)
            .execute(&self.store.pool)
            .await?;
        for v in &old {
            let prefix = blob_prefix(id, *v);
            let parts: Vec<&str> = prefix.iter().map(String::as_str).collect();
            self.delete_blobs(&parts).await;
        }
        audit::record(self, Some(&user.id), "skill.prune", id, serde_json::json!({ "versions": old }), "").await;
        Ok(old.len() as u64)
    }

    /// Deletes a skill and all its versions; refused while an agent uses it.
    pub async fn delete_skill(&self, user: &CurrentUser, id: &str) -> Result<(), SkillError> {
        let skill = self.get_skill(user, id).await?;
        if !skill.used_by.is_empty() {
            return Err(SkillError::InUse(skill.used_by.into_iter().map(|(_, name)| name).collect()));
        }
        sqlx::query("DELETE FROM skills WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?;
        self.delete_blobs(&["skills", id]).await;
        audit::record(self, Some(&user.id), "skill.delete", id, serde_json::json!({}), "").await;
        Ok(())
    }
}
