//! App specs: the list, a new spec, and a spec's page (read, edit, versions, copy,
//! download, duplicate, delete).
pub mod api;
#[cfg(feature = "ssr")]
pub mod download;
mod page;

pub use page::{NewSpecPage, SpecPage, SpecsPage};
