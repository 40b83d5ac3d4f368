//! The tools of one run: the pinned tools of the agent's MCP servers (sessions opened on
//! the first call and closed when the run ends) and, when skills are attached, the two
//! skill tools. Models see names made of letters, digits, `_` and `-`; people see
//! `server/tool`, which is also what tool policies name.

use std::collections::HashMap;
use std::time::Duration;

use model::agents::{AgentView, SKILL_TOOLS, ToolPolicy, effective_policy};
use model::chat::ToolSpec;
use model::mcp::ToolInfo;
use serde_json::{Value, json};

use crate::Engine;
use crate::auth::CurrentUser;
use crate::mcp::client::{self, McpClient};

const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of a tool's answer given back to the model.
const RESULT_MAX: usize = 100_000;

enum Source {
    Mcp { server_id: String, tool: String },
    LoadSkill,
    ReadSkillFile,
}

struct Tool {
    spec: ToolSpec,
    label: String,
    policy: ToolPolicy,
    source: Source,
}

pub struct Toolbox {
    tools: Vec<Tool>,
    /// Attached skills: `(id, name, description)`.
    skills: Vec<(String, String, String)>,
    sessions: HashMap<String, McpClient>,
}

/// A model-safe tool name: `[A-Za-z0-9_-]`, at most 64 characters, not yet `taken`.
fn api_name(raw: &str, taken: &[Tool]) -> String {
    let base: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(60).collect();
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|t| t.spec.name == name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn text_of(result: &Value) -> String {
    let parts: Vec<String> = result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|p| match p["type"].as_str() {
                    Some("text") => p["text"].as_str().unwrap_or_default().to_owned(),
                    _ => p.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let text = if parts.is_empty() { result.to_string() } else { parts.join("\n") };
    cap(text)
}

fn cap(mut text: String) -> String {
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

impl Toolbox {
    pub async fn build(engine: &Engine, user: &CurrentUser, agent: &AgentView) -> Self {
        let spec = &agent.spec;
        let mut tools: Vec<Tool> = Vec::new();
        let mut skills = Vec::new();
        for (id, _) in &agent.skill_names {
            if let Ok(s) = engine.get_skill(user, id).await {
                skills.push((s.id, s.name, s.description));
            }
        }
        if !skills.is_empty() {
            for (name, description) in SKILL_TOOLS {
                // Ours, and they only read the attached skills (see `agent_tools`).
                let (policy, _) = effective_policy(&spec.tool_policies, name, name, true);
                let schema = if name == "load_skill" {
                    json!({ "type": "object", "properties": { "name": { "type": "string", "description": "The skill's name." } }, "required": ["name"] })
                } else {
                    json!({ "type": "object", "properties": {
                        "skill": { "type": "string", "description": "The skill's name." },
                        "path": { "type": "string", "description": "The file's path in the skill." } },
                        "required": ["skill", "path"] })
                };
                let source = if name == "load_skill" { Source::LoadSkill } else { Source::ReadSkillFile };
                tools.push(Tool {
                    spec: ToolSpec { name: name.to_owned(), description: description.to_owned(), schema },
                    label: name.to_owned(),
                    policy,
                    source,
                });
            }
        }
        for (server_id, server) in &agent.mcp_names {
            let Ok(view) = engine.get_mcp(user, server_id).await else { continue };
            for t in &view.tools {
                tools.push(mcp_tool(&tools, spec, server_id, server, view.trust_read_only, t));
            }
        }
        Self { tools, skills, sessions: HashMap::new() }
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().filter(|t| t.policy != ToolPolicy::Deny).map(|t| t.spec.clone()).collect()
    }

    /// The agent's prompt, and the skills it may load (names and descriptions only).
    pub fn system_prompt(&self, prompt: &str) -> String {
        if self.skills.is_empty() {
            return prompt.to_owned();
        }
        let mut out = prompt.to_owned();
        out.push_str("\n\nYou have these skills. Call load_skill with a skill's name to read its instructions when it is relevant; read_skill_file reads the files it mentions.\n");
        for (_, name, description) in &self.skills {
            out.push_str(&format!("- {name}: {description}\n"));
        }
        out
    }

    pub fn label(&self, name: &str) -> String {
        self.tools.iter().find(|t| t.spec.name == name).map_or_else(|| name.to_owned(), |t| t.label.clone())
    }

    /// The policy for a call; a name the agent does not have is denied.
    pub fn policy(&self, name: &str) -> ToolPolicy {
        self.tools.iter().find(|t| t.spec.name == name).map_or(ToolPolicy::Deny, |t| t.policy)
    }

    /// Runs a call. `Err` is an error result for the model (not the end of the run).
    pub async fn call(
        &mut self,
        engine: &Engine,
        user: &CurrentUser,
        name: &str,
        input: Value,
    ) -> Result<String, String> {
        let Some(tool) = self.tools.iter().find(|t| t.spec.name == name) else {
            return Err(format!("There is no tool called {name}."));
        };
        match &tool.source {
            Source::Mcp { server_id, tool } => {
                let (server_id, tool) = (server_id.clone(), tool.clone());
                if !self.sessions.contains_key(&server_id) {
                    let (c, _) = engine.open_mcp(user, &server_id).await.map_err(|(e, tail)| {
                        format!("The MCP server could not be started: {e} {tail}").trim().to_owned()
                    })?;
                    self.sessions.insert(server_id.clone(), c);
                }
                let c = self.sessions.get(&server_id).ok_or("no session")?;
                let result = client::call_tool(c, &tool, input, CALL_TIMEOUT).await?;
                let text = text_of(&result);
                if result["isError"] == true { Err(text) } else { Ok(text) }
            }
            Source::LoadSkill => {
                let skill = input["name"].as_str().unwrap_or_default();
                self.skill_file(engine, user, skill, "SKILL.md").await
            }
            Source::ReadSkillFile => {
                let skill = input["skill"].as_str().unwrap_or_default();
                let path = input["path"].as_str().unwrap_or_default();
                self.skill_file(engine, user, skill, path).await
            }
        }
    }

    async fn skill_file(&self, engine: &Engine, user: &CurrentUser, skill: &str, path: &str) -> Result<String, String> {
        let Some((id, _, _)) = self.skills.iter().find(|(_, n, _)| n == skill) else {
            let names: Vec<&str> = self.skills.iter().map(|(_, n, _)| n.as_str()).collect();
            return Err(format!("No attached skill is called {skill:?}. The skills are: {}.", names.join(", ")));
        };
        let bytes = engine.skill_file(user, id, None, path).await.map_err(|e| format!("{path}: {e}"))?;
        String::from_utf8(bytes).map(cap).map_err(|_| format!("{path} is not text."))
    }

    pub async fn shutdown(&mut self) {
        for (_, c) in self.sessions.drain() {
            client::shutdown(c).await;
        }
    }
}

/// `trusted`: an admin trusts the server's read-only hints; otherwise a tool's claim to
/// only read changes nothing and it asks like any other.
fn mcp_tool(
    taken: &[Tool],
    spec: &model::agents::AgentSpec,
    server_id: &str,
    server: &str,
    trusted: bool,
    t: &ToolInfo,
) -> Tool {
    let label = format!("{server}/{}", t.name);
    let (policy, _) = effective_policy(&spec.tool_policies, &label, &t.name, trusted && t.read_only);
    let schema = serde_json::from_str(&t.schema).unwrap_or_else(|_| json!({ "type": "object" }));
    Tool {
        spec: ToolSpec {
            name: api_name(&format!("{server}__{}", t.name), taken),
            description: t.description.clone(),
            schema,
        },
        label,
        policy,
        source: Source::Mcp { server_id: server_id.to_owned(), tool: t.name.clone() },
    }
}
