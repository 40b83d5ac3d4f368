//! Runs: every piece of agent work, listed with filters, and one run's trace, live while
//! it runs.

pub mod api;
mod page;

pub use page::{RunPage, RunsPage};
