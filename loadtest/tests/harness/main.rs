//! Owns the harness's end-to-end tests: the real `presence-hub` binary on
//! port 0, driven by the real `presence-loadtest` binary at small scale.
//!
//! They check the report's counts (clients connected, no errors, one
//! propagation sample per status change, no room gaps or mismatches, every
//! tab resumed, every webhook event received once), never its timings.
//!
//! The hub binary is `$PRESENCE_HUB_BIN` when set; otherwise the newest
//! `presence-hub` in the `debug/` or `release/` directory of the target
//! directory these tests were built in (or `<workspace>/target`). Build it
//! first, e.g. `cargo build -p presence-hub`. Two-node tests need
//! `redis-server` on the `PATH`; the records tests need PostgreSQL's server
//! binaries in `/usr/lib/postgresql/*/bin`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod records;
mod resume;
mod rooms;
mod scenarios;
mod support;
mod webhooks;
