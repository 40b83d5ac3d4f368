//! Agentry's user interface: Leptos pages and components, rendered on the server and
//! hydrated in the browser, and the `#[server]` functions they call. A server function
//! finds the signed-in user, calls one engine function and maps its error; nothing more.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod admin;
pub mod agents;
pub mod auth;
pub mod chat;
pub mod components;
pub mod data;
pub mod error;
pub mod i18n;
pub mod mcp;
pub mod pages;
pub mod providers;
pub mod runs;
pub mod settings;
pub mod shell;
pub mod skills;
pub mod specs;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod stream;
pub mod usage;

pub use error::{AppError, ErrorCode};
pub use shell::{App, shell};
