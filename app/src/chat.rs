//! Chat: conversations with an agent, answers streamed live.

pub mod api;
