//! Plumbing that is not a domain: the store and its migrations, outbound network guard,
//! secrets and keys, caches, rate limits, blob storage, idempotency records and owner-only
//! files. Domains build on these; nothing here knows about agents, chat or runs.

pub mod cache;
pub mod idempotency;
pub mod keys;
pub mod limits;
pub mod net;
pub mod owner_only;
pub mod secrets;
pub mod storage;
pub mod store;
