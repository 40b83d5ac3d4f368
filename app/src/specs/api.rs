//! Server functions for specs: the signed-in user, one engine call, the error mapped.
use leptos::prelude::*;
use model::specs::{SpecForm, SpecPage, SpecView};

use crate::error::AppError;

#[server(endpoint = "specs/list")]
pub async fn list_specs(#[server(default)] q: String, #[server(default)] page: u32) -> Result<SpecPage, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_specs(&user, &q, page).await?)
}

/// The spec at `version` (the newest when absent).
#[server(endpoint = "specs/get")]
pub async fn get_spec(id: String, #[server(default)] version: Option<i64>) -> Result<SpecView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.get_spec(&user, &id, version).await?)
}

/// Creates a spec (version 1) and opens it.
#[server(endpoint = "specs/create")]
pub async fn create_spec(#[server(default)] form: SpecForm) -> Result<SpecView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.create_spec(&user, &form).await?;
    leptos_axum::redirect(&format!("/specs/{}", view.id));
    Ok(view)
}

/// Saves a new version, unless the spec moved on past `version` since the editor opened.
#[server(endpoint = "specs/update")]
pub async fn update_spec(
    id: String,
    #[server(default)] version: Option<i64>,
    #[server(default)] form: SpecForm,
) -> Result<SpecView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.update_spec(&user, &id, version, &form).await?;
    leptos_axum::redirect(&format!("/specs/{}", view.id));
    Ok(view)
}

/// Copies a spec (history starts anew) and opens the copy.
#[server(endpoint = "specs/duplicate")]
pub async fn duplicate_spec(id: String) -> Result<SpecView, AppError> {
    let user = crate::ssr::user()?;
    let view = crate::ssr::engine()?.duplicate_spec(&user, &id).await?;
    leptos_axum::redirect(&format!("/specs/{}", view.id));
    Ok(view)
}

#[server(endpoint = "specs/delete")]
pub async fn delete_spec(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.delete_spec(&user, &id).await?;
    leptos_axum::redirect("/specs");
    Ok(())
}
