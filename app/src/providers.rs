//! Model provider connections: the list, the add form, and a connection's page (edit,
//! test connection, delete).

pub mod api;
mod page;

pub use page::{NewProviderPage, ProviderPage, ProvidersPage};
