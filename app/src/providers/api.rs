//! Server functions for provider connections. Keys and header values go in, never out.
use leptos::prelude::*;
use model::providers::{ProviderForm, ProviderProbe, ProviderView};

use crate::error::AppError;

#[server(endpoint = "providers/list")]
pub async fn list_providers() -> Result<Vec<ProviderView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_providers(&user).await?)
}

/// One page of the connections, optionally searched by name or base URL.
#[server(endpoint = "providers/search")]
pub async fn search_providers(
    #[server(default)] q: String,
    #[server(default)] page: u32,
) -> Result<model::Page<ProviderView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.search_providers(&user, &q, page).await?)
}

#[server(endpoint = "providers/get")]
pub async fn get_provider(id: String) -> Result<ProviderView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.get_provider(&user, &id).await?)
}

/// Adds a connection and opens its page.
#[server(endpoint = "providers/create")]
pub async fn create_provider(#[server(default)] form: ProviderForm) -> Result<ProviderView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.create_provider(&user, form.parse().map_err(AppError::invalid)?).await?;
    leptos_axum::redirect(&format!("/providers/{}", view.id));
    Ok(view)
}

/// Saves a connection. An empty key or header box keeps what is stored; a changed base
/// URL drops both unless given again. Who may use it is set when it is made.
#[server(endpoint = "providers/update")]
pub async fn update_provider(id: String, #[server(default)] form: ProviderForm) -> Result<ProviderView, AppError> {
    let user = crate::ssr::user()?;
    let form = ProviderForm { shared: None, ..form };
    Ok(crate::ssr::engine()?.update_provider(&user, &id, form.parse().map_err(AppError::invalid)?).await?)
}

#[server(endpoint = "providers/delete")]
pub async fn delete_provider(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.delete_provider(&user, &id).await?;
    leptos_axum::redirect("/providers");
    Ok(())
}

/// Asks the provider for its models (and keeps the list when the caller may edit).
#[server(endpoint = "providers/test")]
pub async fn test_provider(id: String) -> Result<ProviderProbe, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.test_provider(&user, &id).await?)
}
