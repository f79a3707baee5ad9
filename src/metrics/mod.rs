//! Owns every Prometheus metric the hub exports, named in one place
//! (`presence_*`), and their text rendering for `/metrics`.
//!
//! Hot-path counters are resolved to their label children once, so counting
//! a ping is one atomic add.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Counters for one kind of client message.
#[derive(Debug, Clone)]
pub struct MessageCounters {
    /// `ping` frames.
    pub ping: IntCounter,
    /// `status` frames.
    pub status: IntCounter,
    /// `hello` frames.
    pub hello: IntCounter,
    /// `join`, `leave`, `watch` and `unwatch` frames.
    pub room: IntCounter,
    /// Frames that were not understood.
    pub bad: IntCounter,
}

/// Counters of the frames sent to clients, one per frame type.
#[derive(Debug, Clone)]
pub struct OutCounters {
    /// `welcome` frames.
    pub welcome: IntCounter,
    /// `pong` frames.
    pub pong: IntCounter,
    /// `status` frames.
    pub status: IntCounter,
    /// `error` frames.
    pub error: IntCounter,
    /// `terminated` frames.
    pub terminated: IntCounter,
    /// `room` frames.
    pub room: IntCounter,
    /// `presence` frames.
    pub presence: IntCounter,
}

/// The kinds of frame the hub sends to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFrame {
    /// `welcome`.
    Welcome,
    /// `pong`.
    Pong,
    /// `status`.
    Status,
    /// `error`.
    Error,
    /// `terminated`.
    Terminated,
    /// `room` (a room snapshot).
    Room,
    /// `presence` (room member changes).
    Presence,
}

impl OutCounters {
    /// Counts one frame of `kind`: a single atomic add.
    pub fn count(&self, kind: OutFrame) {
        match kind {
            OutFrame::Welcome => self.welcome.inc(),
            OutFrame::Pong => self.pong.inc(),
            OutFrame::Status => self.status.inc(),
            OutFrame::Error => self.error.inc(),
            OutFrame::Terminated => self.terminated.inc(),
            OutFrame::Room => self.room.inc(),
            OutFrame::Presence => self.presence.inc(),
        }
    }
}

/// Every metric of the hub.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Open client WebSockets.
    pub connections: IntGauge,
    /// Live sessions by status (set at scrape time).
    pub sessions: IntGaugeVec,
    /// Live sessions by transport (set at scrape time).
    pub sessions_by_transport: IntGaugeVec,
    /// Online users (set at scrape time).
    pub online_users: IntGauge,
    /// Client messages received, by type.
    pub messages_in: MessageCounters,
    /// Server frames sent, by type.
    pub messages_out: OutCounters,
    /// Bad client frames by error code.
    pub bad_frames: IntCounterVec,
    /// Open admin streams.
    pub admin_subscribers: IntGauge,
    /// Admin streams closed with 4009 for lagging.
    pub admin_lag_closes: IntCounter,
    /// Sessions ended, by cause.
    pub sessions_ended: IntCounterVec,
    /// Admin/API requests by route and status.
    pub api_requests: IntCounterVec,
    /// Ended sessions held in history.
    pub history_size: IntGauge,
    /// Ended sessions waiting to be recorded (the store is slow or down).
    pub history_backlog: IntGauge,
    /// Failed history writes (the records wait and are retried).
    pub history_write_errors: IntCounter,
    /// Ended sessions that could not be recorded, by reason (`overflow`:
    /// the backlog was full; `shutdown`: still waiting at exit).
    pub history_dropped: IntCounterVec,
    /// Redis errors (cluster mode).
    pub redis_errors: IntCounter,
    /// Replication lag seen on the last remote delta, in seconds.
    pub replication_lag: Gauge,
    /// Replication deltas by direction (in/out).
    pub deltas: IntCounterVec,
    /// Full resyncs by reason.
    pub resyncs: IntCounterVec,
    /// Nodes known in the cluster.
    pub nodes_known: IntGauge,
    /// Cluster messages dropped unread, by reason (`missing_mac`, `bad_mac`:
    /// `PRESENCE_CLUSTER_SECRET` is set and the message is not sealed with it).
    pub cluster_rejected: IntCounterVec,
    /// Connections and upgrades refused by admission control, by code.
    pub admission_refusals: IntCounterVec,
    /// JWKS fetches by result (`ok`, `error`).
    pub jwks_fetches: IntCounterVec,
    /// Certificate reloads on SIGHUP by result (`ok`, `error`).
    pub tls_reloads: IntCounterVec,
    /// Rooms with at least one member (set at scrape time).
    pub rooms: IntGauge,
    /// Members summed over every room (set at scrape time).
    pub room_members: IntGauge,
    /// Room memberships of sessions summed over every room (set at scrape time).
    pub room_sessions: IntGauge,
    /// Webhook events delivered, by endpoint.
    pub webhook_delivered: IntCounterVec,
    /// Webhook batches given up, by endpoint.
    pub webhook_failed: IntCounterVec,
    /// Webhook events dropped from a full queue, by endpoint.
    pub webhook_dropped: IntCounterVec,
    /// Webhook outbox changes (an event queued, or leaving the queue) that
    /// could not be written to the records store.
    pub webhook_outbox_lost: IntCounter,
    /// Alerts raised, by rule.
    pub alerts_raised: IntCounterVec,
    /// Engine changes dropped for a full observer queue (alerts, webhooks).
    pub observer_drops: IntCounter,
    /// Latency histograms, build info, session starts and handshake
    /// rejections.
    pub ops: OpsMetrics,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    /// Builds and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let messages_in = IntCounterVec::new(
            opts(
                "presence_messages_in_total",
                "Client messages received, by type",
            ),
            &["type"],
        )?;
        let messages_out = IntCounterVec::new(
            opts(
                "presence_messages_out_total",
                "Frames sent to clients, by type",
            ),
            &["type"],
        )?;
        let metrics = Self {
            connections: IntGauge::with_opts(opts(
                "presence_connections",
                "Open client WebSockets",
            ))?,
            sessions: IntGaugeVec::new(
                opts("presence_sessions", "Live sessions by status"),
                &["status"],
            )?,
            sessions_by_transport: IntGaugeVec::new(
                opts(
                    "presence_sessions_by_transport",
                    "Live sessions by transport",
                ),
                &["transport"],
            )?,
            online_users: IntGauge::with_opts(opts(
                "presence_online_users",
                "Users with a live session",
            ))?,
            messages_in: MessageCounters {
                ping: messages_in.with_label_values(&["ping"]),
                status: messages_in.with_label_values(&["status"]),
                hello: messages_in.with_label_values(&["hello"]),
                room: messages_in.with_label_values(&["room"]),
                bad: messages_in.with_label_values(&["invalid"]),
            },
            messages_out: OutCounters {
                welcome: messages_out.with_label_values(&["welcome"]),
                pong: messages_out.with_label_values(&["pong"]),
                status: messages_out.with_label_values(&["status"]),
                error: messages_out.with_label_values(&["error"]),
                terminated: messages_out.with_label_values(&["terminated"]),
                room: messages_out.with_label_values(&["room"]),
                presence: messages_out.with_label_values(&["presence"]),
            },
            bad_frames: IntCounterVec::new(
                opts(
                    "presence_bad_frames_total",
                    "Bad client frames, by error code",
                ),
                &["code"],
            )?,
            admin_subscribers: IntGauge::with_opts(opts(
                "presence_admin_subscribers",
                "Open admin streams",
            ))?,
            admin_lag_closes: IntCounter::with_opts(opts(
                "presence_admin_lag_closes_total",
                "Admin streams closed with 4009 for falling behind",
            ))?,
            sessions_ended: IntCounterVec::new(
                opts("presence_sessions_ended_total", "Sessions ended, by cause"),
                &["cause"],
            )?,
            api_requests: IntCounterVec::new(
                opts(
                    "presence_api_requests_total",
                    "HTTP API requests by route and status",
                ),
                &["route", "status"],
            )?,
            history_size: IntGauge::with_opts(opts(
                "presence_history_sessions",
                "Ended sessions held in history",
            ))?,
            history_backlog: IntGauge::with_opts(opts(
                "presence_history_backlog",
                "Ended sessions waiting to be recorded",
            ))?,
            history_write_errors: IntCounter::with_opts(opts(
                "presence_history_write_errors_total",
                "Failed history writes (retried)",
            ))?,
            history_dropped: IntCounterVec::new(
                opts(
                    "presence_history_dropped_total",
                    "Ended sessions that could not be recorded, by reason",
                ),
                &["reason"],
            )?,
            redis_errors: IntCounter::with_opts(opts(
                "presence_redis_errors_total",
                "Redis errors",
            ))?,
            replication_lag: Gauge::with_opts(opts(
                "presence_replication_lag_seconds",
                "Age of the last remote delta when it was applied",
            ))?,
            deltas: IntCounterVec::new(
                opts(
                    "presence_replication_deltas_total",
                    "Replication deltas by direction",
                ),
                &["direction"],
            )?,
            resyncs: IntCounterVec::new(
                opts("presence_resyncs_total", "Full resyncs by reason"),
                &["reason"],
            )?,
            nodes_known: IntGauge::with_opts(opts(
                "presence_nodes_known",
                "Nodes known in the cluster",
            ))?,
            cluster_rejected: IntCounterVec::new(
                opts(
                    "presence_cluster_rejected_total",
                    "Cluster messages dropped unread for a missing or wrong MAC, by reason",
                ),
                &["reason"],
            )?,
            admission_refusals: IntCounterVec::new(
                opts(
                    "presence_admission_refusals_total",
                    "Upgrades and connections refused by admission control, by code",
                ),
                &["code"],
            )?,
            jwks_fetches: IntCounterVec::new(
                opts(
                    "presence_jwks_fetches_total",
                    "JWKS fetches (PRESENCE_JWKS_URL) by result",
                ),
                &["result"],
            )?,
            tls_reloads: IntCounterVec::new(
                opts(
                    "presence_tls_reloads_total",
                    "Reloads of PRESENCE_TLS_CERT and PRESENCE_TLS_KEY on SIGHUP by result",
                ),
                &["result"],
            )?,
            rooms: IntGauge::with_opts(opts(
                "presence_rooms",
                "Rooms with at least one member, org: rooms included",
            ))?,
            room_members: IntGauge::with_opts(opts(
                "presence_room_members",
                "Members summed over every room",
            ))?,
            room_sessions: IntGauge::with_opts(opts(
                "presence_room_sessions",
                "Sessions in rooms, summed over every room",
            ))?,
            webhook_delivered: IntCounterVec::new(
                opts(
                    "presence_webhook_events_delivered_total",
                    "Webhook events delivered, by endpoint",
                ),
                &["url"],
            )?,
            webhook_failed: IntCounterVec::new(
                opts(
                    "presence_webhook_batches_failed_total",
                    "Webhook batches given up (attempts used up or refused), by endpoint",
                ),
                &["url"],
            )?,
            webhook_dropped: IntCounterVec::new(
                opts(
                    "presence_webhook_events_dropped_total",
                    "Webhook events dropped because the endpoint's queue was full",
                ),
                &["url"],
            )?,
            webhook_outbox_lost: IntCounter::with_opts(opts(
                "presence_webhook_outbox_lost_total",
                "Webhook outbox changes not written to the records store (outbox queue full, or the database failing at exit)",
            ))?,
            alerts_raised: IntCounterVec::new(
                opts("presence_alerts_raised_total", "Alerts raised, by rule"),
                &["rule"],
            )?,
            observer_drops: IntCounter::with_opts(opts(
                "presence_observer_drops_total",
                "Engine changes the alert task or the webhook dispatcher missed (queue full)",
            ))?,
            ops: OpsMetrics::new()?,
            registry,
        };
        metrics.register_all(messages_in, messages_out)?;
        metrics.ops.register(&metrics.registry)?;
        // Shown at 0 from the start, so a dashboard can alert on any increase.
        for reason in ["overflow", "shutdown"] {
            metrics.history_dropped.with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    fn register_all(
        &self,
        messages_in: IntCounterVec,
        messages_out: IntCounterVec,
    ) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        r.register(Box::new(self.connections.clone()))?;
        r.register(Box::new(self.sessions.clone()))?;
        r.register(Box::new(self.sessions_by_transport.clone()))?;
        r.register(Box::new(self.online_users.clone()))?;
        r.register(Box::new(messages_in))?;
        r.register(Box::new(messages_out))?;
        r.register(Box::new(self.bad_frames.clone()))?;
        r.register(Box::new(self.admin_subscribers.clone()))?;
        r.register(Box::new(self.admin_lag_closes.clone()))?;
        r.register(Box::new(self.sessions_ended.clone()))?;
        r.register(Box::new(self.api_requests.clone()))?;
        r.register(Box::new(self.history_size.clone()))?;
        r.register(Box::new(self.history_backlog.clone()))?;
        r.register(Box::new(self.history_write_errors.clone()))?;
        r.register(Box::new(self.history_dropped.clone()))?;
        r.register(Box::new(self.redis_errors.clone()))?;
        r.register(Box::new(self.replication_lag.clone()))?;
        r.register(Box::new(self.deltas.clone()))?;
        r.register(Box::new(self.resyncs.clone()))?;
        r.register(Box::new(self.nodes_known.clone()))?;
        r.register(Box::new(self.cluster_rejected.clone()))?;
        r.register(Box::new(self.admission_refusals.clone()))?;
        r.register(Box::new(self.jwks_fetches.clone()))?;
        r.register(Box::new(self.tls_reloads.clone()))?;
        r.register(Box::new(self.rooms.clone()))?;
        r.register(Box::new(self.room_members.clone()))?;
        r.register(Box::new(self.room_sessions.clone()))?;
        r.register(Box::new(self.webhook_delivered.clone()))?;
        r.register(Box::new(self.webhook_failed.clone()))?;
        r.register(Box::new(self.webhook_dropped.clone()))?;
        r.register(Box::new(self.webhook_outbox_lost.clone()))?;
        r.register(Box::new(self.alerts_raised.clone()))?;
        r.register(Box::new(self.observer_drops.clone()))?;
        Ok(())
    }

    /// Registers a metric owned by another module (it keeps its handle).
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %err, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// Latency histograms, build info, session starts and handshake rejections.
// Bucket choices are documented in docs/operations.md.
// ---------------------------------------------------------------------------

mod ops;
pub use ops::*;
