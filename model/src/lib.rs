//! Types that cross the wire between the browser and the server, and the rules that parse
//! user input into them. Both the forms (for instant feedback) and the engine (as the
//! authority) call the same `parse` functions, so the limits can never drift apart.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod attachments;
pub mod chat;
pub mod fields;
pub mod highlight;
pub mod markdown;
pub mod mcp;
pub mod providers;
pub mod runs;
pub mod skills;
pub mod specs;
pub mod usage;

pub use fields::{FieldError, FieldErrors, Page, format_utc};
