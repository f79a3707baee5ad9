//! Single-node behaviour of the hub, over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod admin_stream;
mod api;
mod audit;
mod auth;
mod heartbeat;
mod limits;
mod me;
mod openapi;
mod process;
mod records;
mod status_timing;
mod ws_protocol;
