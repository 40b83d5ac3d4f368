//! Tools an agent may call, from every source — its skills and its MCP servers, and the
//! workspace built-ins next — as one catalogue. The agent editor shows it and a run offers
//! it to the model: the same list with the same `server/tool` policy keys, from
//! [`Engine::tool_catalogue`] alone. A run calls a tool through its source, one
//! [`ToolSource`] per kind.

mod mcp;
mod skills;
pub mod workspace;

use futures::future::BoxFuture;
use model::agents::{AgentSpec, AgentTool, SKILL_TOOLS, ToolPolicy, effective_policy};
use serde_json::Value;

use crate::Engine;
use crate::auth::CurrentUser;

pub(crate) use mcp::McpSource;
pub(crate) use skills::SkillSource;

/// The most of a tool's answer given back to the model.
const RESULT_MAX: usize = 100_000;

/// Where a tool comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Agentry's own tools over the agent's attached skills.
    Skills,
    /// Agentry's own tools over a build's workspace.
    Workspace,
    Mcp {
        server_id: String,
        server: String,
    },
}

/// One tool of an agent's catalogue.
#[derive(Clone, Debug)]
pub struct CatalogTool {
    pub origin: Origin,
    /// Its own name at its source.
    pub name: String,
    /// What `tool_policies` calls it: `server/tool`, or the bare name for the skills' tools.
    pub key: String,
    pub description: String,
    /// JSON schema of its input.
    pub schema: Value,
    /// Marked as only reading (by Agentry, or by a server: a claim that counts only where
    /// an administrator trusts the server).
    pub read_only: bool,
    pub policy: ToolPolicy,
    /// The policy comes from `tool_policies`, not the default.
    pub explicit: bool,
}

impl CatalogTool {
    /// The row the agent editor shows.
    pub fn view(&self) -> AgentTool {
        let source = match &self.origin {
            Origin::Skills | Origin::Workspace => String::new(),
            Origin::Mcp { server, .. } => server.clone(),
        };
        AgentTool {
            source,
            key: self.key.clone(),
            description: self.description.clone(),
            read_only: self.read_only,
            policy: self.policy,
            explicit: self.explicit,
        }
    }
}

/// A kind of tool a run can call.
pub trait ToolSource: Send {
    /// Whether `tool` is this source's.
    fn serves(&self, tool: &CatalogTool) -> bool;

    /// Runs `tool` with `input`. `Err` is an error result for the model, not the end of
    /// the run.
    fn call<'a>(
        &'a mut self,
        engine: &'a Engine,
        user: &'a CurrentUser,
        tool: &'a CatalogTool,
        input: Value,
    ) -> BoxFuture<'a, Result<String, String>>;

    /// What the source adds to the agent's system prompt.
    fn prompt(&self) -> Option<String> {
        None
    }

    /// Ends what the source opened for the run (MCP sessions).
    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The input schemas of the skills' own tools.
fn skill_tool_schema(name: &str) -> Value {
    if name == "load_skill" {
        serde_json::json!({ "type": "object", "properties": {
            "name": { "type": "string", "description": "The skill's name." } }, "required": ["name"] })
    } else {
        serde_json::json!({ "type": "object", "properties": {
            "skill": { "type": "string", "description": "The skill's name." },
            "path": { "type": "string", "description": "The file's path in the skill." } },
            "required": ["skill", "path"] })
    }
}

/// Cuts a tool's answer to what the model is given.
pub(crate) fn cap(mut text: String) -> String {
    if text.len() > RESULT_MAX {
        let mut end = RESULT_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[cut: the answer was longer]");
    }
    text
}

impl Engine {
    /// The tools of an agent with `spec`, each with the policy that applies: the skills'
    /// two tools when it has skills, then each attached MCP server's pinned tools.
    pub async fn tool_catalogue(&self, user: &CurrentUser, spec: &AgentSpec) -> Result<Vec<CatalogTool>, sqlx::Error> {
        let mut out = Vec::new();
        if !spec.skills.is_empty() {
            for (name, description) in SKILL_TOOLS {
                // Agentry's own tools, reading only the agent's attached skills: known, not
                // claimed, to only read, so they run without asking by default.
                let (policy, explicit) = effective_policy(&spec.tool_policies, name, name, true);
                out.push(CatalogTool {
                    origin: Origin::Skills,
                    name: name.to_owned(),
                    key: name.to_owned(),
                    description: description.to_owned(),
                    schema: skill_tool_schema(name),
                    read_only: true,
                    policy,
                    explicit,
                });
            }
        }
        for id in &spec.mcp_servers {
            let Some((server, tools, trusted)) = self.mcp_pinned_tools(user, id).await? else { continue };
            for tool in tools {
                let key = format!("{server}/{}", tool.name);
                // The server's read-only hint counts only where an admin trusts the server.
                let known_read_only = trusted && tool.read_only;
                let (policy, explicit) = effective_policy(&spec.tool_policies, &key, &tool.name, known_read_only);
                let schema =
                    serde_json::from_str(&tool.schema).unwrap_or_else(|_| serde_json::json!({ "type": "object" }));
                out.push(CatalogTool {
                    origin: Origin::Mcp { server_id: id.clone(), server: server.clone() },
                    name: tool.name,
                    key,
                    description: tool.description,
                    schema,
                    read_only: tool.read_only,
                    policy,
                    explicit,
                });
            }
        }
        Ok(out)
    }
}
