use leptos::prelude::*;
use model::accounts::Me;
use model::api_keys::{ApiKeyView, NewApiKey};

use crate::error::AppError;

#[server(endpoint = "settings/profile")]
pub async fn update_profile(display_name: String, #[server(default)] locale: String) -> Result<Me, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.update_profile(&user, &display_name, &locale).await?)
}

/// Changes the password; every other session ends, this one gets fresh cookies.
#[server(endpoint = "settings/password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    let tokens = engine.change_password(&user, &current_password, &new_password, &crate::ssr::client()).await?;
    crate::ssr::set_session(&engine, &tokens);
    Ok(())
}

#[server(endpoint = "settings/keys")]
pub async fn list_api_keys() -> Result<Vec<ApiKeyView>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_api_keys(&user).await?)
}

/// Creates a personal API key; the answer is the only time the whole key is shown.
#[server(endpoint = "settings/keys/create")]
pub async fn create_api_key(name: String) -> Result<NewApiKey, AppError> {
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    let new = engine.create_api_key(&user, &name).await?;
    if crate::ssr::plain_form_post() {
        crate::ssr::flash_new_key(&engine, &new.key);
    }
    Ok(new)
}

/// The key just created by a form posted without JavaScript, once (see `create_api_key`).
#[server(endpoint = "settings/keys/new")]
pub async fn take_new_api_key() -> Result<Option<String>, AppError> {
    crate::ssr::user()?;
    Ok(crate::ssr::take_new_key(&crate::ssr::engine()?))
}

#[server(endpoint = "settings/keys/revoke")]
pub async fn revoke_api_key(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.revoke_api_key(&user, &id).await?)
}
