//! Agents: the list (search, pages), the editor, history with rollback, import and export.

pub mod api;
mod editor;
mod history;
mod page;

pub use history::AgentHistoryPage;
pub use page::{AgentPage, AgentsPage, ImportAgentPage, NewAgentPage};
