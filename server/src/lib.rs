//! Starts Agentry: settings, tracing, the engine (store, migrations, keys), the router
//! with its middleware, and graceful shutdown. `main.rs` and the tests both use
//! [`startup::Application`].
#![forbid(unsafe_code)]

/// mimalloc (its v2 line) instead of glibc's malloc: a request or a streamed token makes
/// many small short-lived allocations on two threads, where glibc's malloc and free took
/// 13-18% of the server's CPU. Server-function calls cost 17-19 µs of CPU instead of 23-24
/// (bench). Built without transparent huge pages (`no_thp`): with them, every 2 MiB page
/// mimalloc gave back and touched again was zeroed whole by the kernel, about a fifth of
/// the server's CPU under 1,000 streams (`clear_page`), and idle RSS was 36 MB, not 22.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod middleware;
pub mod openai;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
