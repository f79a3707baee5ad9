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
//!   memory (optionally a replayed file) or Redis, behind a trait.
//! - [`keyspace`]: every Redis key and channel name, shared by `cluster`
//!   and `history`.
//! - [`webhooks`]: signed batches of presence events to HTTP endpoints.
//! - [`alerts`]: the alert rules, evaluated from the engine's changes.
//! - [`geo`]: IP geolocation from a MaxMind database.
//! - [`peaks`]: today's `peak_online` kept across restarts (between the
//!   presence map and the records store).
//! - [`metrics`]: every Prometheus metric.
//! - [`telemetry`], [`shutdown`]: logging and signals.
//!
//! Invariants are listed in `docs/architecture.md`.

pub mod admin;
pub mod alerts;
pub mod analytics;
pub mod app;
pub mod audit;
pub mod auth;
pub mod client;
pub mod cluster;
pub mod config;
pub mod device;
pub mod feed;
pub mod geo;
pub mod history;
pub mod http;
pub mod keyspace;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod peaks;
pub mod presence;
pub mod revocation;
pub mod routes;
pub mod shutdown;
pub mod telemetry;
pub mod webhooks;

pub use app::{RunningHub, run, start};
pub use config::{Config, Settings};
