//! The tools of one run: the agent's catalogue ([`Engine::tool_catalogue`], the list the
//! agent editor shows) under names a model accepts, and the sources that run them. Models
//! see names made of letters, digits, `_` and `-`; people see the catalogue's key
//! (`server/tool`), which is also what tool policies name.

use model::agents::{AgentView, ToolPolicy};
use model::chat::ToolSpec;
use serde_json::Value;

use crate::Engine;
use crate::auth::CurrentUser;
use crate::tools::{CatalogTool, McpSource, Origin, SkillSource, ToolSource};

struct Tool {
    /// The name the model calls it by.
    api_name: String,
    entry: CatalogTool,
}

pub struct Toolbox {
    tools: Vec<Tool>,
    sources: Vec<Box<dyn ToolSource>>,
}

/// A model-safe tool name: `[A-Za-z0-9_-]`, at most 64 characters, not yet `taken`.
fn api_name(raw: &str, taken: &[Tool]) -> String {
    let base: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(60).collect();
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|t| t.api_name == name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

impl Toolbox {
    /// The agent's catalogue; a catalogue that cannot be read leaves the run without tools.
    pub async fn build(engine: &Engine, user: &CurrentUser, agent: &AgentView) -> Self {
        let catalogue = match engine.tool_catalogue(user, &agent.spec).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, agent = %agent.id, "could not read the agent's tools");
                Vec::new()
            }
        };
        let mut tools: Vec<Tool> = Vec::with_capacity(catalogue.len());
        for entry in catalogue {
            let raw = match &entry.origin {
                Origin::Skills | Origin::Workspace => entry.name.clone(),
                Origin::Mcp { server, .. } => format!("{server}__{}", entry.name),
            };
            tools.push(Tool { api_name: api_name(&raw, &tools), entry });
        }
        let skills: Vec<String> = agent.skill_names.iter().map(|(id, _)| id.clone()).collect();
        let sources: Vec<Box<dyn ToolSource>> =
            vec![Box::new(SkillSource::load(engine, user, &skills).await), Box::new(McpSource::default())];
        Self { tools, sources }
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .filter(|t| t.entry.policy != ToolPolicy::Deny)
            .map(|t| ToolSpec {
                name: t.api_name.clone(),
                description: t.entry.description.clone(),
                schema: t.entry.schema.clone(),
            })
            .collect()
    }

    /// The agent's prompt, and what the sources add to it (the skills it may load).
    pub fn system_prompt(&self, prompt: &str) -> String {
        let mut out = prompt.to_owned();
        for extra in self.sources.iter().filter_map(|s| s.prompt()) {
            out.push_str("\n\n");
            out.push_str(&extra);
        }
        out
    }

    fn find(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.api_name == name)
    }

    /// What people call the tool the model calls `name`.
    pub fn label(&self, name: &str) -> String {
        self.find(name).map_or_else(|| name.to_owned(), |t| t.entry.key.clone())
    }

    /// The policy for a call; a name the agent does not have is denied.
    pub fn policy(&self, name: &str) -> ToolPolicy {
        self.find(name).map_or(ToolPolicy::Deny, |t| t.entry.policy)
    }

    /// Runs a call. `Err` is an error result for the model (not the end of the run).
    pub async fn call(
        &mut self,
        engine: &Engine,
        user: &CurrentUser,
        name: &str,
        input: Value,
    ) -> Result<String, String> {
        let Some(tool) = self.tools.iter().find(|t| t.api_name == name) else {
            return Err(format!("There is no tool called {name}."));
        };
        let Some(source) = self.sources.iter_mut().find(|s| s.serves(&tool.entry)) else {
            return Err(format!("Nothing can run {name} here."));
        };
        source.call(engine, user, &tool.entry, input).await
    }

    pub async fn shutdown(&mut self) {
        for s in &mut self.sources {
            s.shutdown().await;
        }
    }
}
