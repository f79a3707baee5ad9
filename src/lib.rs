//! presence-hub: a real-time presence service.
//!
//! Browser tabs keep a WebSocket open; their pings mark activity in an
//! in-memory presence map; the hub derives each session's status (active,
//! idle, away) and each user's, and pushes changes to admin streams.
//!
//! The code map (each module says what it owns in its own doc comment):
//!
//! - [`app`]: composition root and shutdown order.
//! - [`config`]: every `PRESENCE_*` variable, validated once.
//! - [`model`]: ids, statuses and the contract's JSON shapes.
//! - [`presence`]: the presence map, the single source of truth, owned by
//!   one engine task; [`presence::PresenceHandle`] is its only API.
//! - [`feed`]: the admin event fan-out with bounded queues.
//! - [`client`]: `/ws`, one task per client connection.
//! - [`admin`]: `/admin/ws` and the admin API.
//! - [`routes`]: the route tree, composed in one place.
//! - [`revocation`]: the deny list of revoked users' tokens.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`http`]: transport: listener, upgrade hand-off, WebSocket close,
//!   errors, auth filters, origin check, client IPs, the embedded panel.
//! - [`analytics`]: heatmap, durations and daily figures, pure, over
//!   sessions.
//! - [`audit`]: the audit trail: admin actions and refused authentication,
//!   folded, stored and shown on the admin streams.
//! - [`auth`]: JWT and dev-mode identities.
//! - [`device`]: User-Agent parsing.
//! - [`cluster`]: replication between nodes, behind a trait (single node by
//!   default, Redis pub/sub for clusters); readiness.
//! - [`history`]: ended sessions, in SQLite (the default), PostgreSQL,
//!   memory (optionally a replayed file) or Redis, behind a trait; the
//!   webhook outbox seam beside it.
//! - [`keyspace`]: every Redis key and channel name, shared by `cluster`
//!   and `history`.
//! - [`redis_access`]: one Redis instance or a Redis Cluster, from the
//!   URL: command connections, (sharded) subscriptions, the kind check.
//! - [`webhooks`]: signed batches of presence events to HTTP endpoints,
//!   their queues kept in the records store's outbox on SQLite and
//!   PostgreSQL.
//! - [`alerts`]: the alert rules, evaluated from the engine's changes.
//! - [`geo`]: IP geolocation from a MaxMind database.
//! - [`peaks`]: today's `peak_online` kept across restarts (between the
//!   presence map and the records store).
//! - [`series`]: the online series (users and sessions every 10 s for
//!   24 h), sampled from the presence map into the records store.
//! - [`metrics`]: every Prometheus metric.
//! - [`telemetry`], [`shutdown`]: logging and signals.
//!
//! The public surface is what the binary, the load tester and the test
//! suites use: [`Config`], [`Settings`], [`start`], [`run`], [`RunningHub`],
//! [`route_label`] and [`telemetry`], plus [`model`], [`history`],
//! [`audit`] and [`revocation`], whose stores the records conformance suite
//! runs against. Every other module is private, so rustc reports what
//! nothing uses.
//!
//! Invariants are listed in `docs/architecture.md`.

mod admin;
mod alerts;
mod analytics;
mod app;
pub mod audit;
mod auth;
mod client;
mod cluster;
pub mod config;
mod device;
mod feed;
mod geo;
pub mod history;
mod http;
mod keyspace;
mod metrics;
pub mod model;
mod ops;
mod peaks;
mod presence;
mod redis_access;
pub mod revocation;
mod routes;
mod series;
mod shutdown;
pub mod telemetry;
mod webhooks;

pub use app::{RunningHub, run, start};
pub use config::{Config, Settings};
pub use http::route_label;
