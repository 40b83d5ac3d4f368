//! MCP servers' tools: a session per server, opened at the run's first call to it and
//! closed when the run ends.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{CatalogTool, Origin, ToolSource, cap};
use crate::Engine;
use crate::auth::CurrentUser;
use crate::mcp::client::{self, McpClient};

const CALL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
pub(crate) struct McpSource {
    sessions: HashMap<String, McpClient>,
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

impl ToolSource for McpSource {
    fn serves(&self, tool: &CatalogTool) -> bool {
        matches!(tool.origin, Origin::Mcp { .. })
    }

    fn call<'a>(
        &'a mut self,
        engine: &'a Engine,
        user: &'a CurrentUser,
        tool: &'a CatalogTool,
        input: Value,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let Origin::Mcp { server_id, .. } = &tool.origin else { return Err("not an MCP tool".to_owned()) };
            if !self.sessions.contains_key(server_id) {
                let (c, _) = engine.open_mcp(user, server_id).await.map_err(|(e, tail)| {
                    format!("The MCP server could not be started: {e} {tail}").trim().to_owned()
                })?;
                self.sessions.insert(server_id.clone(), c);
            }
            let c = self.sessions.get(server_id).ok_or("no session")?;
            let result = client::call_tool(c, &tool.name, input, CALL_TIMEOUT).await?;
            let text = text_of(&result);
            if result["isError"] == true { Err(text) } else { Ok(text) }
        })
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for (_, c) in self.sessions.drain() {
                client::shutdown(c).await;
            }
        })
    }
}
