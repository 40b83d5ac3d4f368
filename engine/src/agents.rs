//! Agents with versions: every save appends a version; rollback appends a copy of an old
//! one; export and import carry an agent between users by names, never ids or secrets.

use model::agents::{
    AgentExport, AgentPage, AgentSpec, AgentSummary, AgentTool, AgentView, EXPORT_FORMAT, VersionView, diff, slugify,
};
use model::{FieldError, FieldErrors};
use sqlx::Row;

use crate::auth::CurrentUser;
use crate::infra::store::{Arg, Constraint, List, StoreError, like_pattern, new_id, now_ms, on_constraint};
use crate::{Engine, audit};

pub const PER_PAGE: u32 = 20;
/// The most versions one history page lists.
const HISTORY_MAX: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("agent not found")]
    NotFound,
    /// The agent was saved elsewhere since the editor opened it.
    #[error("the agent changed since it was opened (now version {current})")]
    Conflict { current: i64 },
    /// An import document that is not a valid export; the text says where.
    #[error("the document could not be read: {0}")]
    BadDocument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AgentError {
    fn from(e: sqlx::Error) -> Self {
        match on_constraint(&e) {
            Some(Constraint::Unique) => Self::Invalid(FieldErrors(vec![FieldError::new("slug", "taken")])),
            _ => Self::Store(e.into()),
        }
    }
}

fn invalid(field: &str, rule: &str) -> AgentError {
    AgentError::Invalid(FieldErrors(vec![FieldError::new(field, rule)]))
}

fn to_json(spec: &AgentSpec) -> Result<String, AgentError> {
    serde_json::to_string(spec).map_err(|_| invalid("spec", "invalid"))
}

fn from_json(raw: &str) -> Result<AgentSpec, AgentError> {
    serde_json::from_str(raw).map_err(|e| AgentError::Store(StoreError::Query(sqlx::Error::Decode(Box::new(e)))))
}

/// What can be attached to an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    Skill,
    Mcp,
}

impl Attachment {
    fn field(self) -> &'static str {
        match self {
            Self::Skill => "skills",
            Self::Mcp => "mcp_servers",
        }
    }

    fn ids(self, spec: &AgentSpec) -> &[String] {
        match self {
            Self::Skill => &spec.skills,
            Self::Mcp => &spec.mcp_servers,
        }
    }
}

impl Engine {
    /// `(id, name)` of the user's agents whose spec lists `id` under `field`.
    pub(crate) async fn agents_using(
        &self,
        user: &CurrentUser,
        field: &str,
        id: &str,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, name, spec FROM agents WHERE owner_id = $1 AND spec LIKE $2 ORDER BY name")
            .bind(&user.id)
            .bind(format!("%{id}%"))
            .fetch_all(&self.store.pool)
            .await?;
        Ok(rows
            .iter()
            .filter(|r| {
                r.try_get::<String, _>("spec")
                    .ok()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| v.get(field).and_then(|a| a.as_array()).map(|a| a.iter().any(|x| x == id)))
                    .unwrap_or(false)
            })
            .filter_map(|r| Some((r.try_get("id").ok()?, r.try_get("name").ok()?)))
            .collect())
    }

    /// The name of `owner_id`'s agent `id` (empty if it is gone): what a shared
    /// conversation shows as who answered.
    pub(crate) async fn agent_name(&self, owner_id: &str, id: &str) -> String {
        sqlx::query_scalar("SELECT name FROM agents WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(owner_id)
            .fetch_optional(&self.store.pool)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The caller's agents as `(slug, created_at)`, by slug: the models of the `/v1` API.
    pub async fn agent_slugs(&self, user: &CurrentUser) -> Result<Vec<(String, i64)>, AgentError> {
        Ok(sqlx::query_as("SELECT slug, created_at FROM agents WHERE owner_id = $1 ORDER BY slug")
            .bind(&user.id)
            .fetch_all(&self.store.pool)
            .await?)
    }

    /// Checks what a spec refers to: the provider must be one the user may use.
    async fn check_refs(&self, user: &CurrentUser, spec: &AgentSpec) -> Result<(), AgentError> {
        spec.check().map_err(AgentError::Invalid)?;
        if self.get_provider(user, &spec.provider_id).await.is_err() {
            return Err(invalid("provider_id", "not_found"));
        }
        for kind in [Attachment::Skill, Attachment::Mcp] {
            for id in kind.ids(spec) {
                if self.attachment_name(user, kind, id).await?.is_none() {
                    return Err(invalid(kind.field(), "not_found"));
                }
            }
        }
        Ok(())
    }

    /// The name of the user's skill or MCP server `id`, if it is theirs.
    async fn attachment_name(
        &self,
        user: &CurrentUser,
        kind: Attachment,
        id: &str,
    ) -> Result<Option<String>, AgentError> {
        Ok(match kind {
            Attachment::Skill => self.skill_name(user, id).await?,
            Attachment::Mcp => self.mcp_server_name(user, id).await?,
        })
    }

    /// The id of the user's skill or MCP server called `name`.
    async fn attachment_id(
        &self,
        user: &CurrentUser,
        kind: Attachment,
        name: &str,
    ) -> Result<Option<String>, AgentError> {
        Ok(match kind {
            Attachment::Skill => self.skill_named(user, name).await?,
            Attachment::Mcp => self.mcp_server_named(user, name).await?,
        })
    }

    /// `(id, name)` of the attachments of one kind, in order (any no longer there skipped).
    async fn attachment_names(
        &self,
        user: &CurrentUser,
        kind: Attachment,
        spec: &AgentSpec,
    ) -> Result<Vec<(String, String)>, AgentError> {
        let mut out = Vec::new();
        for id in kind.ids(spec) {
            if let Some(name) = self.attachment_name(user, kind, id).await? {
                out.push((id.clone(), name));
            }
        }
        Ok(out)
    }

    /// The tools the agent's skills and MCP servers bring, with the policy for each.
    async fn agent_tools(&self, user: &CurrentUser, spec: &AgentSpec) -> Result<Vec<AgentTool>, AgentError> {
        Ok(self.tool_catalogue(user, spec).await?.iter().map(crate::tools::CatalogTool::view).collect())
    }

    async fn agent_row(&self, user: &CurrentUser, id: &str) -> Result<(AgentSpec, i64, i64), AgentError> {
        let row = sqlx::query("SELECT spec, version, updated_at FROM agents WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AgentError::NotFound)?;
        Ok((from_json(&row.try_get::<String, _>("spec")?)?, row.try_get("version")?, row.try_get("updated_at")?))
    }

    /// What a run needs of an agent: its spec and its skills' and MCP servers' names (not
    /// the provider's name or the tool catalogue the editor shows).
    pub(crate) async fn agent_for_run(&self, user: &CurrentUser, id: &str) -> Result<AgentView, AgentError> {
        let (spec, version, updated_at) = self.agent_row(user, id).await?;
        self.run_view(user, id.to_owned(), spec, version, updated_at).await
    }

    /// [`Self::agent_for_run`] for the agent with the slug `slug`.
    pub(crate) async fn agent_for_run_by_slug(&self, user: &CurrentUser, slug: &str) -> Result<AgentView, AgentError> {
        let row = sqlx::query("SELECT id, spec, version, updated_at FROM agents WHERE owner_id = $1 AND slug = $2")
            .bind(&user.id)
            .bind(slug)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AgentError::NotFound)?;
        let spec = from_json(&row.try_get::<String, _>("spec")?)?;
        self.run_view(user, row.try_get("id")?, spec, row.try_get("version")?, row.try_get("updated_at")?).await
    }

    async fn run_view(
        &self,
        user: &CurrentUser,
        id: String,
        spec: AgentSpec,
        version: i64,
        updated_at: i64,
    ) -> Result<AgentView, AgentError> {
        let skill_names = self.attachment_names(user, Attachment::Skill, &spec).await?;
        let mcp_names = self.attachment_names(user, Attachment::Mcp, &spec).await?;
        let (provider_name, tools) = (String::new(), Vec::new());
        Ok(AgentView { id, version, spec, provider_name, skill_names, mcp_names, tools, updated_at })
    }

    /// That `user` has the agent `id` (one query, for callers that need nothing of it).
    pub(crate) async fn check_agent(&self, user: &CurrentUser, id: &str) -> Result<(), AgentError> {
        self.agent_row(user, id).await.map(|_| ())
    }

    async fn agent_view(&self, user: &CurrentUser, id: &str) -> Result<AgentView, AgentError> {
        let (spec, version, updated_at) = self.agent_row(user, id).await?;
        let provider_name = self.get_provider(user, &spec.provider_id).await.map(|p| p.name).unwrap_or_default();
        let skill_names = self.attachment_names(user, Attachment::Skill, &spec).await?;
        let mcp_names = self.attachment_names(user, Attachment::Mcp, &spec).await?;
        let tools = self.agent_tools(user, &spec).await?;
        Ok(AgentView { id: id.to_owned(), version, spec, provider_name, skill_names, mcp_names, tools, updated_at })
    }

    /// Inserts a new agent with its first version, in one transaction.
    async fn insert_agent(&self, user: &CurrentUser, spec: &AgentSpec) -> Result<String, AgentError> {
        let id = new_id();
        let now = now_ms();
        let json = to_json(spec)?;
        let (mut tx, turn) = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO agents (id, owner_id, slug, name, description, model, spec, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
        )
        .bind(&id)
        .bind(&user.id)
        .bind(&spec.slug)
        .bind(&spec.name)
        .bind(&spec.description)
        .bind(&spec.model)
        .bind(&json)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO agent_versions (agent_id, version, spec, author_id, created_at) VALUES ($1, 1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(&json)
        .bind(&user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(turn);
        Ok(id)
    }

    /// Appends a version. `base` is the version the editor started from: when the agent
    /// has moved on since, nothing is written and the caller hears of the conflict.
    async fn append_version(
        &self,
        user: &CurrentUser,
        id: &str,
        base: i64,
        spec: &AgentSpec,
        restored_from: Option<i64>,
    ) -> Result<(), AgentError> {
        let json = to_json(spec)?;
        let now = now_ms();
        let (mut tx, turn) = self.store.begin().await?;
        let moved = sqlx::query(
            "UPDATE agents SET slug = $3, name = $4, description = $5, model = $6, spec = $7, version = version + 1, \
             updated_at = $8 WHERE id = $1 AND owner_id = $2 AND version = $9",
        )
        .bind(id)
        .bind(&user.id)
        .bind(&spec.slug)
        .bind(&spec.name)
        .bind(&spec.description)
        .bind(&spec.model)
        .bind(&json)
        .bind(now)
        .bind(base)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            let (_, current, _) = self.agent_row(user, id).await?;
            return Err(AgentError::Conflict { current });
        }
        sqlx::query(
            "INSERT INTO agent_versions (agent_id, version, spec, author_id, restored_from, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(base + 1)
        .bind(&json)
        .bind(&user.id)
        .bind(restored_from)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(turn);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn create_agent(&self, user: &CurrentUser, spec: AgentSpec) -> Result<AgentView, AgentError> {
        self.check_refs(user, &spec).await?;
        let id = self.insert_agent(user, &spec).await?;
        audit::record(self, Some(&user.id), "agent.create", &id, serde_json::json!({}), "").await;
        self.agent_view(user, &id).await
    }

    /// The user's agents, newest change first, optionally filtered by name, slug or
    /// description.
    pub async fn list_agents(&self, user: &CurrentUser, query: &str, page: u32) -> Result<AgentPage, AgentError> {
        static LIST: List = List {
            columns: "id, name, slug, description, model, version, updated_at",
            from: "agents",
            filter: "owner_id = $1 AND (LOWER(name) LIKE $2 ESCAPE '\\' OR slug LIKE $2 ESCAPE '\\' \
                     OR LOWER(description) LIKE $2 ESCAPE '\\')",
            order: "updated_at DESC, id DESC",
            per_page: PER_PAGE,
        };
        let pattern = like_pattern(query);
        LIST.page(&self.store.pool, &[Arg::Text(&user.id), Arg::Text(&pattern)], page, |r| {
            Ok::<_, AgentError>(AgentSummary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                slug: r.try_get("slug")?,
                description: r.try_get("description")?,
                model: r.try_get("model")?,
                version: r.try_get("version")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .await
    }

    pub async fn get_agent(&self, user: &CurrentUser, id: &str) -> Result<AgentView, AgentError> {
        self.agent_view(user, id).await
    }

    /// Saves a new version. `base_version`, when given, must still be the current one.
    #[tracing::instrument(skip_all, fields(user = %user.id, agent = id))]
    pub async fn update_agent(
        &self,
        user: &CurrentUser,
        id: &str,
        base_version: Option<i64>,
        spec: AgentSpec,
    ) -> Result<AgentView, AgentError> {
        let (current_spec, current, _) = self.agent_row(user, id).await?;
        if base_version.is_some_and(|b| b != current) {
            return Err(AgentError::Conflict { current });
        }
        self.check_refs(user, &spec).await?;
        if spec != current_spec {
            self.append_version(user, id, current, &spec, None).await?;
            audit::record(self, Some(&user.id), "agent.update", id, serde_json::json!({ "version": current + 1 }), "")
                .await;
        }
        self.agent_view(user, id).await
    }

    pub async fn delete_agent(&self, user: &CurrentUser, id: &str) -> Result<(), AgentError> {
        let n = sqlx::query("DELETE FROM agents WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(AgentError::NotFound);
        }
        audit::record(self, Some(&user.id), "agent.delete", id, serde_json::json!({}), "").await;
        Ok(())
    }

    /// A new agent equal to this one, named "… (copy)" with a free slug; its history starts anew.
    pub async fn duplicate_agent(&self, user: &CurrentUser, id: &str) -> Result<AgentView, AgentError> {
        let (mut spec, _, _) = self.agent_row(user, id).await?;
        spec.name = format!("{} (copy)", spec.name).chars().take(model::agents::NAME_MAX).collect();
        spec.slug = self.free_slug(user, &format!("{}-copy", spec.slug)).await?;
        let new = self.insert_agent(user, &spec).await?;
        audit::record(self, Some(&user.id), "agent.duplicate", &new, serde_json::json!({ "from": id }), "").await;
        self.agent_view(user, &new).await
    }

    /// `base`, or `base-2`, `base-3`… whichever the user does not have yet.
    async fn free_slug(&self, user: &CurrentUser, base: &str) -> Result<String, AgentError> {
        let base = slugify(base);
        let base = if base.is_empty() { "agent".to_owned() } else { base };
        for n in 1..1000 {
            let candidate = if n == 1 {
                base.clone()
            } else {
                let suffix = format!("-{n}");
                let keep = model::agents::SLUG_MAX - suffix.len();
                format!("{}{suffix}", base.chars().take(keep).collect::<String>().trim_end_matches('-'))
            };
            let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE owner_id = $1 AND slug = $2")
                .bind(&user.id)
                .bind(&candidate)
                .fetch_one(&self.store.pool)
                .await?;
            if taken == 0 {
                return Ok(candidate);
            }
        }
        Err(invalid("slug", "taken"))
    }

    /// Every version, newest first, each with what changed from the one before.
    pub async fn agent_history(&self, user: &CurrentUser, id: &str) -> Result<Vec<VersionView>, AgentError> {
        self.agent_row(user, id).await?;
        // One more than shown, so the oldest shown version still has something to diff against.
        let rows = sqlx::query(
            "SELECT v.version, v.spec, v.restored_from, v.created_at, COALESCE(u.display_name, '') AS author \
             FROM agent_versions v LEFT JOIN users u ON u.id = v.author_id \
             WHERE v.agent_id = $1 ORDER BY v.version DESC LIMIT $2",
        )
        .bind(id)
        .bind(HISTORY_MAX + 1)
        .fetch_all(&self.store.pool)
        .await?;
        let specs: Vec<AgentSpec> =
            rows.iter().map(|r| from_json(&r.try_get::<String, _>("spec")?)).collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate().take(HISTORY_MAX as usize) {
            let changes = match specs.get(i + 1) {
                Some(before) => diff(before, &specs[i]),
                None => Vec::new(),
            };
            out.push(VersionView {
                version: r.try_get("version")?,
                author: r.try_get("author")?,
                created_at: r.try_get("created_at")?,
                changes,
                restored_from: r.try_get("restored_from")?,
            });
        }
        Ok(out)
    }

    /// Appends a version equal to `version`. Its references are checked again: a provider
    /// deleted since is reported, not restored blindly.
    #[tracing::instrument(skip_all, fields(user = %user.id, agent = id, version))]
    pub async fn rollback_agent(&self, user: &CurrentUser, id: &str, version: i64) -> Result<AgentView, AgentError> {
        let (_, current, _) = self.agent_row(user, id).await?;
        let raw: String = sqlx::query_scalar("SELECT spec FROM agent_versions WHERE agent_id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or_else(|| invalid("version", "not_found"))?;
        let spec = from_json(&raw)?;
        self.check_refs(user, &spec).await?;
        self.append_version(user, id, current, &spec, Some(version)).await?;
        audit::record(self, Some(&user.id), "agent.rollback", id, serde_json::json!({ "to": version }), "").await;
        self.agent_view(user, id).await
    }

    /// The portable document: the provider by name, no ids, no secrets.
    pub async fn export_agent(&self, user: &CurrentUser, id: &str) -> Result<AgentExport, AgentError> {
        let view = self.agent_view(user, id).await?;
        let s = view.spec;
        Ok(AgentExport {
            format: EXPORT_FORMAT.to_owned(),
            name: s.name,
            slug: s.slug,
            description: s.description,
            provider: view.provider_name,
            model: s.model,
            fallback_models: s.fallback_models,
            system_prompt: s.system_prompt,
            temperature: s.temperature,
            max_output_tokens: s.max_output_tokens,
            max_turns: s.max_turns,
            context_rule: s.context_rule,
            tool_policies: s.tool_policies,
            skills: view.skill_names.into_iter().map(|(_, n)| n).collect(),
            mcp_servers: view.mcp_names.into_iter().map(|(_, n)| n).collect(),
        })
    }

    /// Attaches (or detaches) a skill or MCP server: a new version of the agent with it
    /// added at the end of its list (or removed). Nothing changes when it is already so.
    #[tracing::instrument(skip_all, fields(user = %user.id, agent = agent_id))]
    pub async fn set_agent_attachment(
        &self,
        user: &CurrentUser,
        agent_id: &str,
        kind: Attachment,
        id: &str,
        attached: bool,
    ) -> Result<AgentView, AgentError> {
        let (mut spec, version, _) = self.agent_row(user, agent_id).await?;
        let list = match kind {
            Attachment::Skill => &mut spec.skills,
            Attachment::Mcp => &mut spec.mcp_servers,
        };
        let has = list.iter().any(|s| s == id);
        if attached && !has {
            list.push(id.to_owned());
        } else if !attached && has {
            list.retain(|s| s != id);
        }
        self.update_agent(user, agent_id, Some(version), spec).await
    }

    /// Creates an agent from an export document. Every problem is reported by field, and
    /// nothing is written unless everything is right.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn import_agent(&self, user: &CurrentUser, document: &str) -> Result<AgentView, AgentError> {
        if document.len() > model::agents::DOCUMENT_MAX {
            return Err(AgentError::Invalid(FieldErrors(vec![FieldError::with_limit(
                "document",
                "too_large",
                model::agents::DOCUMENT_MAX as u64,
            )])));
        }
        let doc: AgentExport = serde_json::from_str(document).map_err(|e| {
            let msg = e.to_string();
            // serde names a missing field: report it as that field.
            match msg.strip_prefix("missing field `").and_then(|r| r.split_once('`')) {
                Some((field, _)) => invalid(field, "required"),
                None => AgentError::BadDocument(msg),
            }
        })?;
        if doc.format != EXPORT_FORMAT {
            return Err(invalid("format", "unsupported_format"));
        }
        let providers = self.list_providers(user).await.map_err(|_| invalid("provider", "not_found"))?;
        // A personal connection of that name wins over a shared one.
        let provider = providers.iter().filter(|p| p.name == doc.provider).min_by_key(|p| p.shared);
        let mut errs = FieldErrors::default();
        if provider.is_none() {
            errs.push(FieldError::new("provider", "not_found"));
        }
        let (mut skills, mut mcp_servers) = (Vec::new(), Vec::new());
        for (kind, names, ids) in
            [(Attachment::Skill, &doc.skills, &mut skills), (Attachment::Mcp, &doc.mcp_servers, &mut mcp_servers)]
        {
            for name in names.iter().take(model::agents::ATTACHMENTS_MAX + 1) {
                match self.attachment_id(user, kind, name).await? {
                    Some(id) => ids.push(id),
                    None => {
                        errs.push(FieldError::new(kind.field(), "not_found"));
                        break;
                    }
                }
            }
        }
        let spec = AgentSpec {
            name: doc.name,
            slug: doc.slug,
            description: doc.description,
            provider_id: provider.map(|p| p.id.clone()).unwrap_or_else(|| "-".into()),
            model: doc.model,
            fallback_models: doc.fallback_models,
            system_prompt: doc.system_prompt,
            temperature: doc.temperature,
            max_output_tokens: doc.max_output_tokens,
            max_turns: doc.max_turns,
            context_rule: doc.context_rule,
            tool_policies: doc.tool_policies,
            skills,
            mcp_servers,
        };
        if let Err(more) = spec.check() {
            errs.0.extend(more.0);
        }
        errs.into_result().map_err(AgentError::Invalid)?;
        self.create_agent(user, spec).await
    }
}
