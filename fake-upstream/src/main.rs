//! `fake-upstream [bind]`: serves the fake provider until killed (the end-to-end suite and
//! the benchmark run it as a process). Prints `listening on <addr>` once ready.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(fake_upstream::nodelay(listener), fake_upstream::router_for_bin(fake_upstream::Script::default())).await
}
