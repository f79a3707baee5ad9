//! The records stores (contract v1.1 §10): one conformance suite run
//! against every `HistoryStore`, store-specific checks (indexes, schema
//! migrations), and the hub binary on SQLite and PostgreSQL, alone and in a
//! cluster, through database outages; the webhook outbox across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod conformance;
mod postgres_hubs;
mod process;
mod schema;
mod stores;
mod webhook_outbox;
