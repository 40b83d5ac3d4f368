//! Starts Agentry: settings, tracing, the engine (store, migrations, keys), the router
//! with its middleware, and graceful shutdown. `main.rs` and the tests both use
//! [`startup::Application`].
#![forbid(unsafe_code)]

pub mod middleware;
pub mod openai;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
