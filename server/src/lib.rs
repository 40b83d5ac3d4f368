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

/// The runtime Agentry serves on: tokio's multi-threaded scheduler (a thread per core),
/// taking at most 32 ready sockets from the kernel per poll instead of 1,024. A worker
/// runs what one poll hands it in order, so with a big batch a few hundred ready
/// connections queued behind one thread while the other had little, and sat there whole
/// whenever the kernel paused that thread: at 200 busy clients the slowest 1% of
/// server-function calls took 6.4-8.4 ms, and 4.5-4.8 ms with 32 (16 also did, but at
/// 1,000 streams a smaller batch means more polls and later first tokens).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().max_io_events_per_tick(32).enable_all().build()
}

pub mod assets;
pub mod middleware;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod v1;
