//! Server functions for runs. `run_events` streams a run's events as NDJSON from a
//! sequence number, like an answer's in chat (an answer's run is the same stream).

use leptos::prelude::*;
use leptos::server_fn::codec::{ByteStream, Streaming};
use model::Page;
use model::runs::{RunDetail, RunFilter, RunSummary};

use crate::error::AppError;

/// The signed-in user's runs (or, for an admin who asks, everyone's), newest first.
#[server(endpoint = "runs/list")]
pub async fn list_runs(#[server(default)] filter: RunFilter) -> Result<Page<RunSummary>, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.list_runs(&user, &filter).await?)
}

/// One run with its events so far.
#[server(endpoint = "runs/get")]
pub async fn get_run(id: String) -> Result<RunDetail, AppError> {
    let user = crate::ssr::user()?;
    Ok(crate::ssr::engine()?.get_run(&user, &id).await?)
}

/// Stops a live run (its owner's, or any for an admin); what it produced is kept.
#[server(endpoint = "runs/stop")]
pub async fn stop_run(id: String) -> Result<(), AppError> {
    let user = crate::ssr::user()?;
    crate::ssr::engine()?.stop_run(&user, &id).await?;
    leptos_axum::redirect(&format!("/runs/{id}"));
    Ok(())
}

/// The run's events after sequence number `after`, one JSON object per line, until it
/// ends. Leaving does not stop the run.
#[server(endpoint = "runs/events", output = Streaming)]
pub async fn run_events(id: String, #[server(default)] after: u64) -> Result<ByteStream<AppError>, AppError> {
    let user = crate::ssr::user()?;
    let events = crate::ssr::engine()?.subscribe_run(&user, &id, after).await?;
    Ok(crate::ssr::ndjson(events))
}
