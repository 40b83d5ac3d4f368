//! The meter: asked before every model call and every tool call of a run, so that a budget
//! can stop a run before the call that would pass it. Usage itself is recorded by the run
//! (its totals, from the model's usage events); the meter that ships allows every call.

use futures::future::BoxFuture;

use crate::Engine;

/// The call about to be made.
#[derive(Clone, Debug)]
pub enum Call<'a> {
    Model { model: &'a str },
    Tool { label: &'a str },
}

/// The run asking.
#[derive(Clone, Debug)]
pub struct Asking<'a> {
    pub run_id: &'a str,
    pub owner: &'a str,
    pub agent_id: &'a str,
    /// Its cost so far, in micro-dollars.
    pub cost_micros: u64,
}

pub trait Meter: Send + Sync {
    /// `Err(why)` refuses the call: the run ends as incomplete, showing `why`.
    fn before<'a>(&'a self, engine: &'a Engine, run: Asking<'a>, call: Call<'a>) -> BoxFuture<'a, Result<(), String>>;
}

/// Usage recording only: every call is allowed.
pub struct Usage;

impl Meter for Usage {
    fn before<'a>(&'a self, _: &'a Engine, _: Asking<'a>, _: Call<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }
}
