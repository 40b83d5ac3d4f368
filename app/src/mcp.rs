//! MCP servers: the list, the add form, and a server's page (approve its command line,
//! connect, its tools and schemas, a changed tool list to approve, the agents using it,
//! edit, delete).

pub mod api;
mod page;

pub use page::{McpPage, McpServerPage, NewMcpPage};
