//! Administration: users and registration.

pub mod api;
mod page;

pub use page::AdminPage;
