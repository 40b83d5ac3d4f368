//! Server functions for MCP servers. Env and header values go in, never out; a stdio
//! server runs only after its owner approved the exact command line shown.
use leptos::prelude::*;
use model::Page;
use model::mcp::{McpForm, McpView};

use crate::error::AppError;

#[server(endpoint = "mcp/list")]
pub async fn list_mcp(#[server(default)] q: String, #[server(default)] page: u32) -> Result<Page<McpView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_mcp(&user, &q, page).await?)
}

#[server(endpoint = "mcp/get")]
pub async fn get_mcp(id: String) -> Result<McpView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.get_mcp(&user, &id).await?)
}

/// Adds a server and opens its page (where a stdio one waits for approval).
#[server(endpoint = "mcp/create")]
pub async fn create_mcp(#[server(default)] form: McpForm) -> Result<McpView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.create_mcp(&user, form.parse().map_err(AppError::invalid)?).await?;
    leptos_axum::redirect(&format!("/mcp/{}", view.id));
    Ok(view)
}

/// Saves a server. Empty env or header boxes keep what is stored; a changed command line
/// must be approved again. Only an administrator may tick `trust_read_only`.
#[server(endpoint = "mcp/update")]
pub async fn update_mcp(id: String, #[server(default)] form: McpForm) -> Result<McpView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.update_mcp(&user, &id, form.parse().map_err(AppError::invalid)?).await?)
}

/// Creates every server of an `mcpServers` document from another MCP client, all or
/// nothing; local commands still wait for approval.
#[server(endpoint = "mcp/import")]
pub async fn import_mcp(document: String) -> Result<Vec<McpView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.import_mcp(&user, &document).await?)
}

/// Deletes a server; refused while an agent uses it (the error names them).
#[server(endpoint = "mcp/delete")]
pub async fn delete_mcp(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.delete_mcp(&user, &id).await?;
    leptos_axum::redirect("/mcp");
    Ok(())
}

/// Approves `line` to run; it must be exactly the command line the page showed.
#[server(endpoint = "mcp/approve")]
pub async fn approve_mcp(id: String, line: String) -> Result<McpView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.approve_mcp(&user, &id, &line).await?)
}

/// Starts or reaches the server and lists its tools. A failure is kept as the status.
#[server(endpoint = "mcp/connect")]
pub async fn connect_mcp(id: String) -> Result<McpView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.connect_mcp(&user, &id).await?)
}

/// Pins the changed tool list seen at the last connect.
#[server(endpoint = "mcp/approve-tools")]
pub async fn approve_mcp_tools(id: String) -> Result<McpView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.approve_mcp_tools(&user, &id).await?)
}

/// Attaches the server to an agent (a new version of the agent), or detaches it.
#[server(endpoint = "mcp/attach")]
pub async fn attach_mcp(mcp_id: String, agent_id: String, #[server(default)] detach: bool) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    engine.get_mcp(&user, &mcp_id).await?;
    engine.set_agent_attachment(&user, &agent_id, engine::agents::Attachment::Mcp, &mcp_id, !detach).await?;
    Ok(())
}
