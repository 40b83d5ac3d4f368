//! Chat: conversations with an agent, answers streamed live.

#[cfg(feature = "ssr")]
pub mod answer_link;
pub mod api;
mod page;
mod sidebar;

pub use page::{ChatListPage, ConversationPage, dollars, thousands};
