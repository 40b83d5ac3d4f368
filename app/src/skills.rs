//! Skills: the list with the upload form, a skill's page (rendered SKILL.md, files,
//! versions, the agents using it, attach and detach), and file downloads.

pub mod api;
#[cfg(feature = "ssr")]
pub mod download;
mod page;

pub use page::{SkillPage, SkillsPage};
