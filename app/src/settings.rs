//! The signed-in user's settings: profile, password, appearance.

pub mod api;
mod page;

pub use page::SettingsPage;
