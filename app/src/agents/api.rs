//! Server functions for agents: the signed-in user, one engine call, the error mapped.
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use model::agents::{AgentExport, AgentForm, AgentPage, AgentView, VersionView};

use crate::error::AppError;

#[server(endpoint = "agents/list")]
pub async fn list_agents(#[server(default)] q: String, #[server(default)] page: u32) -> Result<AgentPage, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_agents(&user, &q, page).await?)
}

#[server(endpoint = "agents/get")]
pub async fn get_agent(id: String) -> Result<AgentView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.get_agent(&user, &id).await?)
}

/// Creates an agent (version 1) and opens it.
#[server(endpoint = "agents/create")]
pub async fn create_agent(#[server(default)] form: AgentForm) -> Result<AgentView, AppError> {
    let user = crate::ssr::user()?;
    // Attachments are added on their own pages.
    let form = AgentForm { skills: Vec::new(), mcp_servers: Vec::new(), ..form };
    let view = crate::ssr::engine()?.create_agent(&user, form.parse().map_err(AppError::invalid)?).await?;
    leptos_axum::redirect(&format!("/agents/{}", view.id));
    Ok(view)
}

/// Saves a new version, unless the agent moved on past `version` since the editor opened.
#[server(endpoint = "agents/update")]
pub async fn update_agent(
    id: String,
    #[server(default)] version: Option<i64>,
    #[server(default)] form: AgentForm,
) -> Result<AgentView, AppError> {
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    // Attachments are edited on their own pages; the form keeps what is there.
    let current = engine.get_agent(&user, &id).await?;
    let form = AgentForm { skills: current.spec.skills, mcp_servers: current.spec.mcp_servers, ..form };
    Ok(engine.update_agent(&user, &id, version, form.parse().map_err(AppError::invalid)?).await?)
}

#[server(endpoint = "agents/delete")]
pub async fn delete_agent(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.delete_agent(&user, &id).await?;
    leptos_axum::redirect("/agents");
    Ok(())
}

/// Copies an agent (history starts anew) and opens the copy.
#[server(endpoint = "agents/duplicate")]
pub async fn duplicate_agent(id: String) -> Result<AgentView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.duplicate_agent(&user, &id).await?;
    leptos_axum::redirect(&format!("/agents/{}", view.id));
    Ok(view)
}

#[server(endpoint = "agents/history")]
pub async fn get_agent_history(id: String) -> Result<Vec<VersionView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.agent_history(&user, &id).await?)
}

/// Makes a new version equal to `version`.
#[server(endpoint = "agents/rollback")]
pub async fn rollback_agent(id: String, version: i64) -> Result<AgentView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.rollback_agent(&user, &id, version).await?)
}

/// The export document, as a download (a GET, so a plain link works without JavaScript).
#[server(endpoint = "agents/export", input = GetUrl)]
pub async fn export_agent(id: String) -> Result<AgentExport, AppError> {
    let user = crate::ssr::user()?;
    let doc = crate::ssr::engine()?.export_agent(&user, &id).await?;
    crate::ssr::set_download(&format!("{}.agent.json", doc.slug));
    Ok(doc)
}

/// Creates an agent from an export document, all or nothing.
#[server(endpoint = "agents/import")]
pub async fn import_agent(document: String) -> Result<AgentView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.import_agent(&user, &document).await?;
    leptos_axum::redirect(&format!("/agents/{}", view.id));
    Ok(view)
}
