//! Chat: conversations with an agent, answers streamed live.

pub mod api;
mod page;

pub use page::{ChatListPage, ConversationPage, dollars, thousands};
