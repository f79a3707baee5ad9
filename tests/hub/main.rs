//! Single-node behaviour of the hub, over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod admin_stream;
mod admission;
mod alerts;
mod analytics;
mod api;
mod audit;
mod auth;
mod continuity;
mod cors;
mod hardening;
mod heartbeat;
mod identity;
mod limits;
mod location;
mod me;
mod observability;
mod openapi;
mod process;
mod records;
mod revocation;
mod rooms;
mod series;
mod status_timing;
mod tls;
mod webhooks;
mod ws_protocol;
