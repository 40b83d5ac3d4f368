//! MCP servers: definitions per owner (env and header values sealed), approval of the exact
//! command line before a stdio server may run, "connect" to list its tools, and the pinned
//! tool list that a later change must be approved against.

pub mod client;

use std::time::Duration;

pub use model::mcp::tool_changes;
use model::mcp::{IMPORT_MAX, McpDraft, McpView, Status, ToolInfo, Transport, command_line};
use model::{FieldError, FieldErrors, Page};
use secrecy::ExposeSecret;
use sqlx::Row;

use crate::auth::CurrentUser;
use crate::infra::secrets::{self, SecretError};
use crate::infra::store::{Arg, Constraint, List, StoreError, like_pattern, new_id, now_ms, on_constraint};

/// Servers per list page.
pub const PER_PAGE: u32 = 20;
use crate::{Engine, audit};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("MCP server not found")]
    NotFound,
    /// A stdio server whose current command line the owner has not approved.
    #[error("this command line has not been approved to run")]
    NotApproved,
    /// Members may not run local commands on this server.
    #[error("only an administrator may add servers that run local commands")]
    StdioAdminOnly,
    /// An import document that is not JSON; the text says where.
    #[error("the document could not be read: {0}")]
    BadDocument(String),
    /// Only an administrator may trust a server's read-only hints.
    #[error("only an administrator may set trust_read_only")]
    TrustAdminOnly,
    #[error("{0}")]
    Connect(String),
    /// Agents still use the server; detach it from them first.
    #[error("the MCP server is used by {}", .0.join(", "))]
    InUse(Vec<String>),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for McpError {
    fn from(e: sqlx::Error) -> Self {
        match on_constraint(&e) {
            Some(Constraint::Unique) => Self::Invalid(FieldErrors(vec![FieldError::new("name", "taken")])),
            _ => Self::Store(e.into()),
        }
    }
}

const COLUMNS: &str = "id, name, transport, command, args, env_sealed, env_names, url, headers_sealed, header_names, \
                       approved_line, status, last_error, stderr_tail, tools, discovered, trust_read_only, updated_at";

fn ctx(id: &str, what: &str) -> String {
    format!("mcp:{id}:{what}")
}

fn json_list<T: serde::de::DeserializeOwned>(raw: &str) -> Vec<T> {
    serde_json::from_str(raw).unwrap_or_default()
}

/// The stored trust flag counts only while the owner is an administrator: a member (or a
/// demoted admin) never gets it, whatever the row says.
fn trusted(row: &sqlx::any::AnyRow, owner_is_admin: bool) -> Result<bool, sqlx::Error> {
    Ok(owner_is_admin && row.try_get::<i64, _>("trust_read_only")? != 0)
}

/// The server as its owner sees it, `line` being its command line ([`Engine::mcp_line`]).
fn view(row: &sqlx::any::AnyRow, line: String, owner_is_admin: bool) -> Result<McpView, McpError> {
    let transport = Transport::parse(&row.try_get::<String, _>("transport")?).unwrap_or(Transport::Stdio);
    let approved: Option<String> = row.try_get("approved_line")?;
    let status = match row.try_get::<String, _>("status")?.as_str() {
        "connected" => Status::Connected,
        "failed" => Status::Failed,
        _ => Status::NeverConnected,
    };
    let discovered: Option<String> = row.try_get("discovered")?;
    Ok(McpView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        transport,
        approved: transport == Transport::Http || approved.as_deref() == Some(line.as_str()),
        trust_read_only: trusted(row, owner_is_admin)?,
        command_line: if transport == Transport::Stdio { line } else { String::new() },
        command: row.try_get("command")?,
        args: json_list(&row.try_get::<String, _>("args")?),
        url: row.try_get("url")?,
        env_names: json_list(&row.try_get::<String, _>("env_names")?),
        header_names: json_list(&row.try_get::<String, _>("header_names")?),
        status,
        last_error: row.try_get("last_error")?,
        stderr_tail: row.try_get("stderr_tail")?,
        tools: json_list(&row.try_get::<String, _>("tools")?),
        changed_tools: discovered.map(|d| json_list(&d)),
        used_by: Vec::new(),
        updated_at: row.try_get("updated_at")?,
    })
}

fn names(pairs: &[(String, String)]) -> String {
    serde_json::to_string(&pairs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// Where a stdio server runs, its `HOME` and working directory: a directory per server
/// inside one this process made in the system's temp dir, all owner-only. Not under the
/// data dir: the child runs as our user, and from there the keys and the database were two
/// levels up. (It can still name them by absolute path: only a sandbox will stop that.)
/// The parent's name is random and made with an exclusive create, so no other local user
/// can have made it first or put a link in its place; the price is that what a server
/// keeps in its `HOME` (npx's cache, say) lasts as long as the process.
fn stdio_home(server_id: &str) -> std::io::Result<std::path::PathBuf> {
    /// The root made, and who owned it then (this process's user).
    static ROOT: std::sync::Mutex<Option<(std::path::PathBuf, u32)>> = std::sync::Mutex::new(None);
    let mut root = ROOT.lock().unwrap_or_else(|e| e.into_inner());
    // Made again if the temp dir's cleaner removed it, or if what is there now is not the
    // directory we made (another user may have taken the name once it was removed).
    let (root, owner) = match root.as_ref().filter(|(r, uid)| private_dir_of(r, *uid)) {
        Some(r) => r.clone(),
        None => {
            let random = crate::infra::keys::random_bytes::<16>().map_err(std::io::Error::other)?;
            let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let dir = std::env::temp_dir().join(format!("agentry-mcp-{name}"));
            crate::infra::owner_only::new_dir(&dir)?;
            root.insert((dir.clone(), owner_of(&dir)?)).clone()
        }
    };
    let home = root.join(server_id);
    match crate::infra::owner_only::new_dir(&home) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ if !private_dir_of(&home, owner) => {
            Err(std::io::Error::other(format!("{} is not a private directory of this server's user", home.display())))
        }
        _ => Ok(home),
    }
}

#[cfg(unix)]
fn owner_of(path: &std::path::Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::symlink_metadata(path)?.uid())
}

#[cfg(not(unix))]
fn owner_of(_: &std::path::Path) -> std::io::Result<u32> {
    Ok(0)
}

/// `path` is a directory (not a link to one) of user `uid` that nobody else may open.
#[cfg(unix)]
fn private_dir_of(path: &std::path::Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private_dir_of(path: &std::path::Path, _: u32) -> bool {
    path.is_dir()
}

impl Engine {
    /// The name of the user's MCP server `id`, if it is theirs.
    pub(crate) async fn mcp_server_name(&self, user: &CurrentUser, id: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT name FROM mcp_servers WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await
    }

    /// The id of the user's MCP server called `name`.
    pub(crate) async fn mcp_server_named(&self, user: &CurrentUser, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM mcp_servers WHERE owner_id = $1 AND name = $2")
            .bind(&user.id)
            .bind(name)
            .fetch_optional(&self.store.pool)
            .await
    }

    /// The command line an owner approves ([`command_line`]): each env name with a keyed
    /// fingerprint of its value ([`secrets::fingerprint`], under the secrets key, for this
    /// server and name), so that a changed value changes the line and withdraws the
    /// approval, and the line shows nothing that would help guess a value.
    fn line_for(&self, id: &str, command: &str, args: &[String], env: &[(String, String)]) -> String {
        let marks: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| {
                (k.clone(), format!("<hmac:{}>", secrets::fingerprint(&self.keys, &ctx(id, &format!("env:{k}")), v)))
            })
            .collect();
        command_line(command, args, &marks)
    }

    /// The stored server's command line ([`Self::line_for`]).
    fn mcp_line(&self, row: &sqlx::any::AnyRow) -> Result<String, McpError> {
        let id: String = row.try_get("id")?;
        let command: String = row.try_get("command")?;
        let args: Vec<String> = json_list(&row.try_get::<String, _>("args")?);
        match self.open_pairs(&id, "env", row.try_get("env_sealed")?) {
            Ok(env) => Ok(self.line_for(&id, &command, &args, &env)),
            // Sealed under another secrets key: the line matches no approval (and the
            // server could not be given its env anyway), but the list still shows.
            Err(_) => {
                let names: Vec<String> = json_list(&row.try_get::<String, _>("env_names")?);
                let marks: Vec<(String, String)> = names.into_iter().map(|n| (n, "<unreadable>".into())).collect();
                Ok(command_line(&command, &args, &marks))
            }
        }
    }

    fn mcp_view(&self, row: &sqlx::any::AnyRow, owner_is_admin: bool) -> Result<McpView, McpError> {
        view(row, self.mcp_line(row)?, owner_is_admin)
    }

    async fn mcp_row(&self, user: &CurrentUser, id: &str) -> Result<sqlx::any::AnyRow, McpError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mcp_servers WHERE id = $1 AND owner_id = $2")))
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(McpError::NotFound)
    }

    fn seal_pairs(&self, id: &str, what: &str, pairs: &[(String, String)]) -> Result<String, McpError> {
        let json = serde_json::to_string(pairs).map_err(|e| SecretError::Seal(e.to_string()))?;
        Ok(secrets::seal(&self.keys, &ctx(id, what), &json)?)
    }

    fn open_pairs(&self, id: &str, what: &str, sealed: Option<String>) -> Result<Vec<(String, String)>, McpError> {
        match sealed {
            Some(s) => Ok(serde_json::from_str(secrets::open(&self.keys, &ctx(id, what), &s)?.expose_secret())
                .map_err(|_| SecretError::Open)?),
            None => Ok(Vec::new()),
        }
    }

    fn check_mcp_draft(&self, user: &CurrentUser, d: &McpDraft) -> Result<(), McpError> {
        if d.transport == Transport::Stdio && !user.is_admin && !self.settings.mcp_stdio_for_members {
            return Err(McpError::StdioAdminOnly);
        }
        if d.trust_read_only && !user.is_admin {
            return Err(McpError::TrustAdminOnly);
        }
        if d.transport == Transport::Http {
            let url = reqwest::Url::parse(&d.url)
                .map_err(|_| McpError::Invalid(FieldErrors(vec![FieldError::new("url", "invalid_url")])))?;
            self.guard(user.is_admin)
                .check_url(&url)
                .map_err(|_| McpError::Invalid(FieldErrors(vec![FieldError::new("url", "private_address")])))?;
        }
        Ok(())
    }

    /// Inserts a checked draft as server `id` of the user's, within `tx`.
    async fn insert_mcp(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user: &CurrentUser,
        id: &str,
        d: &McpDraft,
    ) -> Result<(), McpError> {
        let env = d.env.clone().unwrap_or_default();
        let headers = d.headers.clone().unwrap_or_default();
        let env_sealed = if env.is_empty() { None } else { Some(self.seal_pairs(id, "env", &env)?) };
        let headers_sealed = if headers.is_empty() { None } else { Some(self.seal_pairs(id, "headers", &headers)?) };
        sqlx::query(
            "INSERT INTO mcp_servers (id, owner_id, name, transport, command, args, env_sealed, env_names, url, \
             headers_sealed, header_names, trust_read_only, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(id)
        .bind(&user.id)
        .bind(&d.name)
        .bind(d.transport.as_str())
        .bind(&d.command)
        .bind(serde_json::to_string(&d.args).unwrap_or_else(|_| "[]".into()))
        .bind(env_sealed)
        .bind(names(&env))
        .bind(&d.url)
        .bind(headers_sealed)
        .bind(names(&headers))
        .bind(i64::from(d.trust_read_only))
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn audit_create(&self, user: &CurrentUser, id: &str, d: &McpDraft, imported: bool) {
        let detail = serde_json::json!({
            "transport": d.transport.as_str(),
            "trust_read_only": d.trust_read_only,
            "imported": imported,
        });
        audit::record(self, Some(&user.id), "mcp.create", id, detail, "").await;
    }

    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn create_mcp(&self, user: &CurrentUser, d: McpDraft) -> Result<McpView, McpError> {
        self.check_mcp_draft(user, &d)?;
        let id = new_id();
        let (mut tx, turn) = self.store.begin().await?;
        self.insert_mcp(&mut tx, user, &id, &d).await?;
        tx.commit().await?;
        drop(turn);
        self.audit_create(user, &id, &d, false).await;
        self.get_mcp(user, &id).await
    }

    /// Creates every server of an `mcpServers` document (as other MCP clients keep them:
    /// [`model::mcp::parse_import`]) as the user's, each under the same rules and
    /// permissions as one added by hand, so a stdio one still waits for approval. All or
    /// nothing: any problem, named `mcpServers.<name>.<field>`, and nothing is created.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn import_mcp(&self, user: &CurrentUser, document: &str) -> Result<Vec<McpView>, McpError> {
        let invalid = |e: FieldError| McpError::Invalid(FieldErrors(vec![e]));
        if document.len() > IMPORT_MAX {
            return Err(invalid(FieldError::with_limit("document", "too_large", IMPORT_MAX as u64)));
        }
        let doc: serde_json::Value =
            serde_json::from_str(document).map_err(|e| McpError::BadDocument(e.to_string()))?;
        let drafts = model::mcp::parse_import(&doc).map_err(McpError::Invalid)?;
        let named = |name: &str, errs: FieldErrors| {
            FieldErrors(
                errs.0
                    .into_iter()
                    .map(|e| FieldError { field: format!("mcpServers.{name}.{}", e.field), ..e })
                    .collect(),
            )
        };
        let mut errs = FieldErrors::default();
        for (name, d) in &drafts {
            match self.check_mcp_draft(user, d) {
                Ok(()) => {}
                Err(McpError::Invalid(f)) => errs.0.extend(named(name, f).0),
                Err(e) => return Err(e),
            }
        }
        errs.into_result().map_err(McpError::Invalid)?;
        let (mut tx, turn) = self.store.begin().await?;
        let mut ids = Vec::with_capacity(drafts.len());
        for (name, d) in &drafts {
            let id = new_id();
            match self.insert_mcp(&mut tx, user, &id, d).await {
                Ok(()) => ids.push(id),
                // Dropping the transaction rolls back the ones before.
                Err(McpError::Invalid(f)) => return Err(McpError::Invalid(named(name, f))),
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        drop(turn);
        let mut out = Vec::with_capacity(ids.len());
        for (id, (_, d)) in ids.iter().zip(&drafts) {
            self.audit_create(user, id, d, true).await;
            out.push(self.get_mcp(user, id).await?);
        }
        Ok(out)
    }

    /// The user's servers by name, optionally filtered by name, command or URL.
    pub async fn list_mcp(&self, user: &CurrentUser, query: &str, page: u32) -> Result<Page<McpView>, McpError> {
        static LIST: List = List {
            columns: COLUMNS,
            from: "mcp_servers",
            filter: "owner_id = $1 AND (LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(command) LIKE $2 ESCAPE '\\' \
                     OR LOWER(url) LIKE $2 ESCAPE '\\')",
            order: "name, id",
            per_page: PER_PAGE,
        };
        let pattern = like_pattern(query);
        LIST.page(&self.store.pool, &[Arg::Text(&user.id), Arg::Text(&pattern)], page, |r| {
            self.mcp_view(r, user.is_admin)
        })
        .await
    }

    pub async fn get_mcp(&self, user: &CurrentUser, id: &str) -> Result<McpView, McpError> {
        let mut v = self.mcp_view(&self.mcp_row(user, id).await?, user.is_admin)?;
        v.used_by = self.agents_using(user, "mcp_servers", id).await?;
        Ok(v)
    }

    /// Saves a definition. Approval stays only while the command line is the same: any
    /// change to the command, its arguments or its env (names or values) withdraws it for
    /// good (changing it back does not bring it back). A changed URL drops stored headers
    /// unless given again (they go only where entered).
    /// `trust_read_only` is set as given (an unticked box clears it), by an admin only.
    #[tracing::instrument(skip_all, fields(user = %user.id, mcp = id))]
    pub async fn update_mcp(&self, user: &CurrentUser, id: &str, d: McpDraft) -> Result<McpView, McpError> {
        let row = self.mcp_row(user, id).await?;
        self.check_mcp_draft(user, &d)?;
        let old_url: String = row.try_get("url")?;
        let was_trusted = row.try_get::<i64, _>("trust_read_only")? != 0;
        let mut env_sealed: Option<String> = row.try_get("env_sealed")?;
        let mut env_names: String = row.try_get("env_names")?;
        let mut headers_sealed: Option<String> = row.try_get("headers_sealed")?;
        let mut header_names: String = row.try_get("header_names")?;
        let new_line = match &d.env {
            Some(env) => Some(self.line_for(id, &d.command, &d.args, env)),
            None => self
                .open_pairs(id, "env", env_sealed.clone())
                .ok()
                .map(|env| self.line_for(id, &d.command, &d.args, &env)),
        };
        // A different line loses the stored approval, not only its match: editing it back
        // later must not quietly bring the approval back.
        let approved_line: Option<String> = if new_line.is_some_and(|l| l == self.mcp_line(&row).unwrap_or_default()) {
            row.try_get("approved_line")?
        } else {
            None
        };
        if let Some(env) = &d.env {
            env_sealed = Some(self.seal_pairs(id, "env", env)?);
            env_names = names(env);
        }
        if old_url != d.url {
            (headers_sealed, header_names) = (None, "[]".into());
        }
        if let Some(h) = &d.headers {
            headers_sealed = Some(self.seal_pairs(id, "headers", h)?);
            header_names = names(h);
        }
        sqlx::query(
            "UPDATE mcp_servers SET name = $3, transport = $4, command = $5, args = $6, env_sealed = $7, \
             env_names = $8, url = $9, headers_sealed = $10, header_names = $11, trust_read_only = $12, \
             approved_line = $13, updated_at = $14 WHERE id = $1 AND owner_id = $2",
        )
        .bind(id)
        .bind(&user.id)
        .bind(&d.name)
        .bind(d.transport.as_str())
        .bind(&d.command)
        .bind(serde_json::to_string(&d.args).unwrap_or_else(|_| "[]".into()))
        .bind(env_sealed)
        .bind(env_names)
        .bind(&d.url)
        .bind(headers_sealed)
        .bind(header_names)
        .bind(i64::from(d.trust_read_only))
        .bind(approved_line)
        .bind(now_ms())
        .execute(&self.store.pool)
        .await?;
        if was_trusted != d.trust_read_only {
            let detail = serde_json::json!({ "trust_read_only": d.trust_read_only });
            audit::record(self, Some(&user.id), "mcp.trust_read_only", id, detail, "").await;
        }
        self.get_mcp(user, id).await
    }

    /// Deletes a server; refused while an agent uses it (the error names them).
    pub async fn delete_mcp(&self, user: &CurrentUser, id: &str) -> Result<(), McpError> {
        self.mcp_row(user, id).await?;
        let users = self.agents_using(user, "mcp_servers", id).await?;
        if !users.is_empty() {
            return Err(McpError::InUse(users.into_iter().map(|(_, name)| name).collect()));
        }
        sqlx::query("DELETE FROM mcp_servers WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .execute(&self.store.pool)
            .await?;
        audit::record(self, Some(&user.id), "mcp.delete", id, serde_json::json!({}), "").await;
        Ok(())
    }

    /// Approves `line` to run. It must be exactly the current command line (what the owner
    /// was shown), or nothing is approved.
    pub async fn approve_mcp(&self, user: &CurrentUser, id: &str, line: &str) -> Result<McpView, McpError> {
        let row = self.mcp_row(user, id).await?;
        if self.mcp_line(&row)? != line {
            return Err(McpError::NotApproved);
        }
        sqlx::query("UPDATE mcp_servers SET approved_line = $3 WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .bind(line)
            .execute(&self.store.pool)
            .await?;
        audit::record(self, Some(&user.id), "mcp.approve", id, serde_json::json!({ "line": line }), "").await;
        self.get_mcp(user, id).await
    }

    /// Starts (stdio, only when approved) or reaches (HTTP) the server: a live session for
    /// calling its tools, with the stdio server's stderr tail. The caller shuts it down.
    pub async fn open_mcp(
        &self,
        user: &CurrentUser,
        id: &str,
    ) -> Result<(client::McpClient, Option<client::StderrTail>), (McpError, String)> {
        let row = self.mcp_row(user, id).await.map_err(|e| (e, String::new()))?;
        let v = self.mcp_view(&row, user.is_admin).map_err(|e| (e, String::new()))?;
        if !v.approved {
            return Err((McpError::NotApproved, String::new()));
        }
        match v.transport {
            Transport::Stdio => {
                let sealed = row.try_get("env_sealed").map_err(|e| (McpError::from(e), String::new()))?;
                let env = self.open_pairs(id, "env", sealed).map_err(|e| (e, String::new()))?;
                let home = stdio_home(id).map_err(|e| {
                    (McpError::Connect(format!("cannot prepare the server's home: {e}")), String::new())
                })?;
                match client::connect_stdio(&v.command, &v.args, &env, &home, CONNECT_TIMEOUT).await {
                    Ok((c, tail)) => Ok((c, Some(tail))),
                    Err((e, tail)) => Err((McpError::Connect(e), tail.text())),
                }
            }
            Transport::Http => {
                let sealed = row.try_get("headers_sealed").map_err(|e| (McpError::from(e), String::new()))?;
                let headers = self.open_pairs(id, "headers", sealed).map_err(|e| (e, String::new()))?;
                let guard = self.guard(user.is_admin);
                // A literal address never reaches the guarded resolver, and the user may no
                // longer be the admin who saved it.
                let url = reqwest::Url::parse(&v.url).map_err(|e| (McpError::Connect(e.to_string()), String::new()))?;
                guard.check_url(&url).map_err(|e| (McpError::Connect(e), String::new()))?;
                let http = guard.streaming_client().map_err(|e| (McpError::Connect(e), String::new()))?;
                client::connect_http(&v.url, &headers, http, CONNECT_TIMEOUT)
                    .await
                    .map(|c| (c, None))
                    .map_err(|e| (McpError::Connect(e), String::new()))
            }
        }
    }

    /// Starts (stdio) or reaches (HTTP) the server, lists its tools and closes it again.
    /// The first list is pinned; a later different one is kept aside and flagged.
    #[tracing::instrument(skip_all, fields(user = %user.id, mcp = id))]
    pub async fn connect_mcp(&self, user: &CurrentUser, id: &str) -> Result<McpView, McpError> {
        let v = self.mcp_view(&self.mcp_row(user, id).await?, user.is_admin)?;
        let (result, tail) = match self.open_mcp(user, id).await {
            Ok((c, tail)) => {
                let tools = client::list_tools(&c, CONNECT_TIMEOUT).await;
                client::shutdown(c).await;
                (tools, tail.map(|t| t.text()).unwrap_or_default())
            }
            Err((McpError::Connect(e), tail)) => (Err(e), tail),
            Err((e, _)) => return Err(e),
        };
        let now = now_ms();
        match result {
            Ok(tools) => {
                let json = serde_json::to_string(&tools).unwrap_or_else(|_| "[]".into());
                let first = v.tools.is_empty() && v.status == Status::NeverConnected;
                let (pinned, discovered) = if first || tools == v.tools {
                    (json, None)
                } else {
                    (serde_json::to_string(&v.tools).unwrap_or_else(|_| "[]".into()), Some(json))
                };
                sqlx::query(
                    "UPDATE mcp_servers SET status = 'connected', last_error = '', stderr_tail = $3, tools = $4, \
                     discovered = $5, updated_at = $6 WHERE id = $1 AND owner_id = $2",
                )
                .bind(id)
                .bind(&user.id)
                .bind(&tail)
                .bind(pinned)
                .bind(discovered)
                .bind(now)
                .execute(&self.store.pool)
                .await?;
            }
            Err(e) => {
                sqlx::query(
                    "UPDATE mcp_servers SET status = 'failed', last_error = $3, stderr_tail = $4, updated_at = $5 \
                     WHERE id = $1 AND owner_id = $2",
                )
                .bind(id)
                .bind(&user.id)
                .bind(&e)
                .bind(&tail)
                .bind(now)
                .execute(&self.store.pool)
                .await?;
            }
        }
        self.get_mcp(user, id).await
    }

    /// What an agent's tool list needs of the user's server `id`: its name, its pinned
    /// tools and whether their read-only hints count ([`McpView::trust_read_only`]).
    pub(crate) async fn mcp_pinned_tools(
        &self,
        user: &CurrentUser,
        id: &str,
    ) -> Result<Option<(String, Vec<ToolInfo>, bool)>, sqlx::Error> {
        let row = sqlx::query("SELECT name, tools, trust_read_only FROM mcp_servers WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(&user.id)
            .fetch_optional(&self.store.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let tools = json_list(&row.try_get::<String, _>("tools")?);
        Ok(Some((row.try_get("name")?, tools, trusted(&row, user.is_admin)?)))
    }

    /// Pins the tool list seen at the last connect (after a change was flagged).
    pub async fn approve_mcp_tools(&self, user: &CurrentUser, id: &str) -> Result<McpView, McpError> {
        self.mcp_row(user, id).await?;
        sqlx::query(
            "UPDATE mcp_servers SET tools = COALESCE(discovered, tools), discovered = NULL WHERE id = $1 AND owner_id = $2",
        )
        .bind(id)
        .bind(&user.id)
        .execute(&self.store.pool)
        .await?;
        self.get_mcp(user, id).await
    }
}
