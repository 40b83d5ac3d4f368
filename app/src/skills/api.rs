//! Server functions for skills. The upload is multipart (a zip, or a folder's files) so a
//! plain HTML form can post it; everything else is one engine call.

use leptos::prelude::*;
use leptos::server_fn::codec::{MultipartData, MultipartFormData};
use model::Page;
use model::skills::{SkillSummary, SkillView};

use crate::error::AppError;

#[server(endpoint = "skills/list")]
pub async fn list_skills(
    #[server(default)] q: String,
    #[server(default)] page: u32,
) -> Result<Page<SkillSummary>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_skills(&user, &q, page).await?)
}

#[server(endpoint = "skills/get")]
pub async fn get_skill(id: String) -> Result<SkillView, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.get_skill(&user, &id).await?)
}

/// Stores an uploaded skill (`archive`: one zip; or `files`: a folder's files, named by
/// their relative paths) and opens its page. Re-uploading a skill of the same name makes
/// its next version.
#[server(endpoint = "skills/upload", input = MultipartFormData)]
pub async fn upload_skill(data: MultipartData) -> Result<SkillView, AppError> {
    use model::skills::{MAX_FILES, MAX_TOTAL_BYTES, UploadProblem};
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    let refused = |p: UploadProblem| AppError::from(engine::skills::SkillError::Refused(p));
    let unreadable =
        |e: &dyn std::fmt::Display| refused(UploadProblem::BadArchive(format!("the upload broke off: {e}")));
    let mut parts = data.into_inner().ok_or_else(|| refused(UploadProblem::Empty))?;
    let (mut archive, mut files, mut total) = (None::<Vec<u8>>, Vec::new(), 0u64);
    while let Some(mut field) = parts.next_field().await.map_err(|e| unreadable(&e))? {
        let kind = field.name().unwrap_or_default().to_owned();
        let name = field.file_name().unwrap_or_default().to_owned();
        if name.is_empty() || !(kind == "archive" || kind == "files") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e))? {
            total += chunk.len() as u64;
            if total > MAX_TOTAL_BYTES {
                return Err(refused(UploadProblem::TooLarge(MAX_TOTAL_BYTES)));
            }
            bytes.extend_from_slice(&chunk);
        }
        if kind == "archive" {
            archive = Some(bytes);
        } else {
            files.push(engine::skills::Upload { path: name, bytes });
            if files.len() > MAX_FILES {
                return Err(refused(UploadProblem::TooManyFiles(MAX_FILES)));
            }
        }
    }
    let view = match archive {
        Some(zip) if files.is_empty() => engine.upload_skill_zip(&user, zip).await?,
        _ => engine.upload_skill(&user, files).await?,
    };
    leptos_axum::redirect(&format!("/skills/{}", view.id));
    Ok(view)
}

/// Deletes a skill; refused while an agent uses it (the error names them).
/// Deletes every version of a skill but the current one (to free storage).
#[server(endpoint = "skills/prune")]
pub async fn prune_skill_versions(id: String) -> Result<u64, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.prune_skill_versions(&user, &id).await?)
}

#[server(endpoint = "skills/delete")]
pub async fn delete_skill(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.delete_skill(&user, &id).await?;
    leptos_axum::redirect("/skills");
    Ok(())
}

/// Attaches the skill to an agent (a new version of the agent), or detaches it.
#[server(endpoint = "skills/attach")]
pub async fn attach_skill(skill_id: String, agent_id: String, #[server(default)] detach: bool) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    let engine = crate::ssr::engine()?;
    engine.get_skill(&user, &skill_id).await?;
    engine.set_agent_attachment(&user, &agent_id, engine::agents::Attachment::Skill, &skill_id, !detach).await?;
    Ok(())
}
