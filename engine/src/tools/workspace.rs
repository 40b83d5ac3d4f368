//! The workspace tools of a run that has a workspace (a build): run a command in the
//! sandbox, read, write and edit a file, list and search files, and keep the plan (the
//! build's feature checklist). Files are handled by [`Workspace`] (confined to it);
//! commands by the server's sandbox, and never anywhere else: without a working sandbox,
//! `run_command` answers why not.

use std::sync::Arc;

use futures::future::BoxFuture;
use model::agents::ToolPolicy;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CatalogTool, Origin, ToolSource, cap};
use crate::Engine;
use crate::auth::CurrentUser;
use crate::sandbox::workspace::Workspace;
use crate::sandbox::{Command, Health, Limits, Sandboxes};

/// The tools, with what they tell the model.
pub const WORKSPACE_TOOLS: [(&str, &str); 7] = [
    (
        "run_command",
        "Runs a shell command (sh -c) in the workspace, inside the sandbox: no network, only the workspace is \
         writable, limits on time, memory and processes. Answers the exit code, stdout and stderr.",
    ),
    ("read_file", "Reads a text file of the workspace, with line numbers; offset and limit page through it."),
    ("write_file", "Writes a whole file in the workspace (made with its directories if new)."),
    (
        "edit_file",
        "Replaces an exact piece of text in a workspace file with another; the piece must be there once (or set \
         replace_all).",
    ),
    ("list_files", "Lists files and directories of the workspace, a few levels down, with sizes."),
    ("search_files", "Finds the lines containing a text (as written, not a pattern) in the workspace's files."),
    (
        "update_plan",
        "Replaces the plan: the features to build, each with a status (todo, doing, done, failed) and, when tests \
         ran, how many passed and failed. Keep it current: people follow the build by it.",
    ),
];

fn schema(name: &str) -> Value {
    let path = json!({ "type": "string", "description": "A path relative to the workspace." });
    match name {
        "run_command" => json!({ "type": "object", "properties": {
            "command": { "type": "string", "description": "The shell command." },
            "timeout_secs": { "type": "integer", "description": "Seconds before it is killed (at most the server's limit)." } },
            "required": ["command"] }),
        "read_file" => json!({ "type": "object", "properties": {
            "path": path, "offset": { "type": "integer", "description": "The first line (1-based)." },
            "limit": { "type": "integer", "description": "How many lines (default 2000)." } }, "required": ["path"] }),
        "write_file" => json!({ "type": "object", "properties": {
            "path": path, "content": { "type": "string" } }, "required": ["path", "content"] }),
        "edit_file" => json!({ "type": "object", "properties": {
            "path": path, "old_text": { "type": "string" }, "new_text": { "type": "string" },
            "replace_all": { "type": "boolean" } }, "required": ["path", "old_text", "new_text"] }),
        "list_files" => json!({ "type": "object", "properties": {
            "path": path, "depth": { "type": "integer", "description": "Levels down (default 2, at most 10)." } } }),
        "search_files" => json!({ "type": "object", "properties": {
            "text": { "type": "string" }, "path": path }, "required": ["text"] }),
        _ => json!({ "type": "object", "properties": { "features": { "type": "array", "items": {
            "type": "object", "properties": {
                "name": { "type": "string" },
                "status": { "type": "string", "enum": ["todo", "doing", "done", "failed"] },
                "tests_passed": { "type": "integer" }, "tests_failed": { "type": "integer" } },
            "required": ["name", "status"] } } }, "required": ["features"] }),
    }
}

/// The catalogue entries of the workspace tools under `policies`. They act only inside the
/// workspace and the sandbox, so they run without asking unless a policy says otherwise.
pub fn catalogue(policies: &std::collections::BTreeMap<String, ToolPolicy>) -> Vec<CatalogTool> {
    WORKSPACE_TOOLS
        .iter()
        .map(|(name, description)| {
            let (policy, explicit) = model::agents::effective_policy(policies, name, name, true);
            CatalogTool {
                origin: Origin::Workspace,
                name: (*name).to_owned(),
                key: (*name).to_owned(),
                description: (*description).to_owned(),
                schema: schema(name),
                read_only: matches!(*name, "read_file" | "list_files" | "search_files"),
                policy,
                explicit,
            }
        })
        .collect()
}

/// One feature of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub tests_passed: Option<u32>,
    #[serde(default)]
    pub tests_failed: Option<u32>,
}

/// The most features a plan holds.
pub const PLAN_MAX: usize = 200;

pub struct WorkspaceTools {
    pub workspace: Workspace,
    sandbox: Arc<Sandboxes>,
    limits: Limits,
    /// The plan as the agent last gave it.
    pub plan: Vec<PlanItem>,
}

fn text_field<'a>(input: &'a Value, name: &str) -> Result<&'a str, String> {
    input[name].as_str().ok_or_else(|| format!("`{name}` is required (a string)."))
}

impl WorkspaceTools {
    pub fn new(workspace: Workspace, sandbox: Arc<Sandboxes>, limits: Limits) -> Self {
        Self { workspace, sandbox, limits, plan: Vec::new() }
    }

    /// Runs workspace tool `name`; `Err` is an error result for the model.
    pub async fn call(&mut self, name: &str, input: &Value) -> Result<String, String> {
        let ws = &self.workspace;
        let num = |k: &str, d: u64| input[k].as_u64().unwrap_or(d) as usize;
        match name {
            "run_command" => self.run(input).await,
            "read_file" => {
                ws.read(text_field(input, "path")?, num("offset", 1), num("limit", 2000)).map_err(|e| e.to_string())
            }
            "write_file" => {
                let path = text_field(input, "path")?;
                let content = text_field(input, "content")?;
                ws.write(path, content)
                    .map(|w| format!("{path}: {w:?} ({} bytes).", content.len()))
                    .map_err(|e| e.to_string())
            }
            "edit_file" => {
                let path = text_field(input, "path")?;
                let n = ws
                    .edit(
                        path,
                        text_field(input, "old_text")?,
                        text_field(input, "new_text")?,
                        input["replace_all"].as_bool().unwrap_or(false),
                    )
                    .map_err(|e| e.to_string())?;
                Ok(format!("{path}: replaced {n} time{}.", if n == 1 { "" } else { "s" }))
            }
            "list_files" => ws.list(input["path"].as_str().unwrap_or("."), num("depth", 2)).map_err(|e| e.to_string()),
            "search_files" => {
                ws.search(text_field(input, "text")?, input["path"].as_str().unwrap_or(".")).map_err(|e| e.to_string())
            }
            "update_plan" => {
                let items: Vec<PlanItem> = serde_json::from_value(input["features"].clone())
                    .map_err(|e| format!("`features` must be a list of {{name, status}}: {e}"))?;
                if items.len() > PLAN_MAX {
                    return Err(format!("A plan holds at most {PLAN_MAX} features; this one has {}.", items.len()));
                }
                if let Some(bad) =
                    items.iter().find(|i| !matches!(i.status.as_str(), "todo" | "doing" | "done" | "failed"))
                {
                    return Err(format!(
                        "Feature {:?}: status must be todo, doing, done or failed, not {:?}.",
                        bad.name, bad.status
                    ));
                }
                let done = items.iter().filter(|i| i.status == "done").count();
                let total = items.len();
                self.plan = items;
                Ok(format!("Plan updated: {done} of {total} features done."))
            }
            other => Err(format!("There is no workspace tool called {other:?}.")),
        }
    }

    async fn run(&self, input: &Value) -> Result<String, String> {
        let command = text_field(input, "command")?;
        if let Health::Unavailable(why) = self.sandbox.health() {
            return Err(format!("Commands cannot run on this server: {why}"));
        }
        let mut limits = self.limits;
        if let Some(t) = input["timeout_secs"].as_u64() {
            limits.wall_secs = t.clamp(1, self.limits.wall_secs);
        }
        let cmd = Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), command.to_owned()],
            workspace: self.workspace.root().to_path_buf(),
            env: Vec::new(),
            network: false,
            limits,
        };
        let out = self.sandbox.backend.run(&cmd).await.map_err(|e| e.to_string())?;
        let mut text = match out.failure(&limits) {
            None => "exit code 0".to_owned(),
            Some(why) => why,
        };
        text.push_str(&format!(" ({} ms)\n", out.elapsed.as_millis()));
        if !out.stdout.is_empty() {
            text.push_str("--- stdout ---\n");
            text.push_str(&out.stdout);
            text.push('\n');
        }
        if !out.stderr.is_empty() {
            text.push_str("--- stderr ---\n");
            text.push_str(&out.stderr);
            text.push('\n');
        }
        Ok(cap(text))
    }
}

impl ToolSource for WorkspaceTools {
    fn serves(&self, tool: &CatalogTool) -> bool {
        tool.origin == Origin::Workspace
    }

    fn call<'a>(
        &'a mut self,
        _engine: &'a Engine,
        _user: &'a CurrentUser,
        tool: &'a CatalogTool,
        input: Value,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { WorkspaceTools::call(self, &tool.name, &input).await })
    }

    fn prompt(&self) -> Option<String> {
        Some(
            "You work in a workspace directory (your tools' paths are relative to it). Commands run in a sandbox \
             without network. Keep the plan current with update_plan as you go."
                .to_owned(),
        )
    }
}
