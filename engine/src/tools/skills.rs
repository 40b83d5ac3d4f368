//! The skills' own tools: `load_skill` reads an attached skill's SKILL.md, and
//! `read_skill_file` one of its files (progressive disclosure: the system prompt names the
//! skills, the model reads what it needs).

use futures::future::BoxFuture;
use serde_json::Value;

use super::{CatalogTool, Origin, ToolSource, cap};
use crate::Engine;
use crate::auth::CurrentUser;

pub(crate) struct SkillSource {
    /// Attached skills: `(id, name, description)`.
    skills: Vec<(String, String, String)>,
}

impl SkillSource {
    /// The attached skills `ids` that `user` can read.
    pub async fn load(engine: &Engine, user: &CurrentUser, ids: &[String]) -> Self {
        let mut skills = Vec::new();
        for id in ids {
            if let Ok(s) = engine.get_skill(user, id).await {
                skills.push((s.id, s.name, s.description));
            }
        }
        Self { skills }
    }

    async fn file(&self, engine: &Engine, user: &CurrentUser, skill: &str, path: &str) -> Result<String, String> {
        let Some((id, _, _)) = self.skills.iter().find(|(_, n, _)| n == skill) else {
            let names: Vec<&str> = self.skills.iter().map(|(_, n, _)| n.as_str()).collect();
            return Err(format!("No attached skill is called {skill:?}. The skills are: {}.", names.join(", ")));
        };
        let bytes = engine.skill_file(user, id, None, path).await.map_err(|e| format!("{path}: {e}"))?;
        String::from_utf8(bytes).map(cap).map_err(|_| format!("{path} is not text."))
    }
}

impl ToolSource for SkillSource {
    fn serves(&self, tool: &CatalogTool) -> bool {
        tool.origin == Origin::Skills
    }

    fn call<'a>(
        &'a mut self,
        engine: &'a Engine,
        user: &'a CurrentUser,
        tool: &'a CatalogTool,
        input: Value,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            if tool.name == "load_skill" {
                let skill = input["name"].as_str().unwrap_or_default();
                self.file(engine, user, skill, "SKILL.md").await
            } else {
                let skill = input["skill"].as_str().unwrap_or_default();
                let path = input["path"].as_str().unwrap_or_default();
                self.file(engine, user, skill, path).await
            }
        })
    }

    /// The skills it may load, by name and description only.
    fn prompt(&self) -> Option<String> {
        if self.skills.is_empty() {
            return None;
        }
        let mut out = String::from(
            "You have these skills. Call load_skill with a skill's name to read its instructions when it is \
             relevant; read_skill_file reads the files it mentions.\n",
        );
        for (_, name, description) in &self.skills {
            out.push_str(&format!("- {name}: {description}\n"));
        }
        Some(out)
    }
}
