//! Chat: conversations with an agent, answers streamed live.

#[cfg(feature = "ssr")]
pub mod answer_link;
pub mod api;
#[cfg(feature = "ssr")]
pub mod export;
#[cfg(feature = "ssr")]
pub mod files;
mod page;
mod shared;
mod sidebar;

pub use page::{ChatListPage, ConversationPage, dollars, thousands};
pub use shared::SharedPage;
