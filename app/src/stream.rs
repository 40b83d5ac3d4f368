//! Following a run's events in the browser: read the NDJSON stream from the last event
//! there is, hand each chunk's events over, and on a dropped connection start again from
//! the last one, backing off, until the run is over. The chat's answers and the trace view
//! both follow runs this way.

use leptos::prelude::*;
use leptos::server_fn::codec::ByteStream;
use model::chat::SeqEvent;

use crate::error::AppError;

/// Follows until `over()`: `open(after)` opens the stream after the sequence number
/// `seq()`, and `apply` gets every chunk's events, in order.
pub async fn follow_events<Open, Fut>(
    open: Open,
    seq: impl Fn() -> u64,
    over: impl Fn() -> bool,
    mut apply: impl FnMut(Vec<SeqEvent>),
) where
    Open: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<ByteStream<AppError>, AppError>>,
{
    use futures::StreamExt;
    let mut failures = 0u32;
    while !over() {
        if let Ok(stream) = open(seq()).await {
            let mut stream = stream.into_inner();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
                let mut events = Vec::new();
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(e) = serde_json::from_slice::<SeqEvent>(&line) {
                        events.push(e);
                    }
                }
                if !events.is_empty() {
                    failures = 0;
                    apply(events);
                }
            }
        }
        if over() {
            break;
        }
        failures += 1;
        sleep_ms(250 * failures.min(8)).await;
    }
}

pub async fn sleep_ms(ms: u32) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    set_timeout(
        move || {
            let _ = tx.send(());
        },
        std::time::Duration::from_millis(ms.into()),
    );
    let _ = rx.await;
}
