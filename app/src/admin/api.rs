use leptos::prelude::*;
use model::accounts::UserSummary;

use crate::error::AppError;

/// What the admin page shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdminOverview {
    pub registration_open: bool,
    pub users: Vec<UserSummary>,
    pub me: String,
    /// `None` when the sandbox works; else why not (`"probing"` while it is being checked).
    pub sandbox_problem: Option<String>,
}

#[server(endpoint = "admin/overview")]
pub async fn get_admin_overview() -> Result<AdminOverview, AppError> {
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    let users = engine.list_users(&user).await?;
    let sandbox_problem = match engine.sandbox.health() {
        engine::sandbox::Health::Ready => None,
        engine::sandbox::Health::Probing => Some("probing".to_owned()),
        engine::sandbox::Health::Unavailable(why) => Some(why),
    };
    Ok(AdminOverview { registration_open: engine.registration_open().await?, users, me: user.id, sandbox_problem })
}

#[server(endpoint = "admin/registration")]
pub async fn set_registration(open: bool) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.set_registration_open(&user, open, &crate::ssr::client()).await?)
}

#[server(endpoint = "admin/user-disabled")]
pub async fn set_user_disabled(user_id: String, disabled: bool) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.set_user_disabled(&user, &user_id, disabled, &crate::ssr::client()).await?)
}
