//! Owns the operational metrics: latency histograms and their buckets,
//! build info, readiness, session starts and handshake rejections.

use super::*;

/// Sub-millisecond to a quarter second: in-process work (ping handling,
/// admin fan-out).
const FAST_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];
/// One millisecond to ten seconds: HTTP requests, handshakes, cross-node
/// propagation through Redis.
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// One second to a day: how long sessions last.
const SESSION_BUCKETS: &[f64] = &[
    1.0, 10.0, 60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 28_800.0, 86_400.0,
];

/// Why a WebSocket upgrade (`/ws`, `/admin/ws`) was refused: the label
/// values of `presence_handshake_rejections_total`.
pub const HANDSHAKE_REJECTION_REASONS: &[&str] = &[
    "unauthorized",
    "forbidden",
    "origin",
    "limits",
    "bad_handshake",
    "shutdown",
    "other",
];

/// The version and commit the binary was built from.
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `git rev-parse --short HEAD` at build time, or `unknown`.
pub const BUILD_COMMIT: &str = env!("PRESENCE_BUILD_COMMIT");

/// Histograms and counters an operator alerts on.
#[derive(Debug, Clone)]
pub struct OpsMetrics {
    /// From a `ping` frame read to its `pong` written, in seconds.
    pub ping_latency: Histogram,
    /// From an upgrade request to its 101 answer, in seconds, by endpoint.
    pub handshake_duration: HistogramVec,
    /// HTTP request duration by route template, in seconds.
    pub http_duration: HistogramVec,
    /// From the engine's publish to an admin stream's write, in seconds.
    pub admin_fanout_delay: Histogram,
    /// From a remote delta's origin timestamp to its apply, in seconds.
    pub propagation_delay: Histogram,
    /// Length of ended sessions, in seconds.
    pub session_duration: Histogram,
    /// Sessions started (WebSocket and HTTP heartbeat).
    pub sessions_started: IntCounter,
    /// Refused WebSocket upgrades by reason.
    pub handshake_rejections: IntCounterVec,
    /// `presence_build_info{version,commit}`, always 1.
    pub build_info: IntGaugeVec,
    /// 1 when `/readyz` answers 200, else 0 (set at scrape time).
    pub ready: IntGauge,
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(buckets.to_vec())
}

impl OpsMetrics {
    pub(super) fn new() -> Result<Self, prometheus::Error> {
        let ops = Self {
            ping_latency: Histogram::with_opts(histogram(
                "presence_ping_latency_seconds",
                "From a ping frame read to its pong written",
                FAST_BUCKETS,
            ))?,
            handshake_duration: HistogramVec::new(
                histogram(
                    "presence_handshake_duration_seconds",
                    "From a WebSocket upgrade request to its 101 answer, by endpoint",
                    REQUEST_BUCKETS,
                ),
                &["endpoint"],
            )?,
            http_duration: HistogramVec::new(
                histogram(
                    "presence_http_request_duration_seconds",
                    "HTTP request duration by route template",
                    REQUEST_BUCKETS,
                ),
                &["route"],
            )?,
            admin_fanout_delay: Histogram::with_opts(histogram(
                "presence_admin_fanout_delay_seconds",
                "From the engine publishing a change to an admin stream writing it",
                FAST_BUCKETS,
            ))?,
            propagation_delay: Histogram::with_opts(histogram(
                "presence_replication_propagation_seconds",
                "From a remote delta's origin timestamp to its apply on this node",
                REQUEST_BUCKETS,
            ))?,
            session_duration: Histogram::with_opts(histogram(
                "presence_session_duration_seconds",
                "Length of ended sessions",
                SESSION_BUCKETS,
            ))?,
            sessions_started: IntCounter::with_opts(opts(
                "presence_sessions_started_total",
                "Sessions started (WebSocket and HTTP heartbeat)",
            ))?,
            handshake_rejections: IntCounterVec::new(
                opts(
                    "presence_handshake_rejections_total",
                    "Refused WebSocket upgrades, by reason",
                ),
                &["reason"],
            )?,
            build_info: IntGaugeVec::new(
                opts(
                    "presence_build_info",
                    "The hub's version and commit (always 1)",
                ),
                &["version", "commit"],
            )?,
            ready: IntGauge::with_opts(opts(
                "presence_ready",
                "1 when /readyz answers 200, 0 when it answers 503",
            ))?,
        };
        ops.build_info
            .with_label_values(&[BUILD_VERSION, BUILD_COMMIT])
            .set(1);
        // Shown at 0 from the start, so an alert can use increase().
        for reason in HANDSHAKE_REJECTION_REASONS {
            ops.handshake_rejections.with_label_values(&[reason]);
        }
        Ok(ops)
    }

    pub(super) fn register(&self, r: &Registry) -> Result<(), prometheus::Error> {
        r.register(Box::new(self.ping_latency.clone()))?;
        r.register(Box::new(self.handshake_duration.clone()))?;
        r.register(Box::new(self.http_duration.clone()))?;
        r.register(Box::new(self.admin_fanout_delay.clone()))?;
        r.register(Box::new(self.propagation_delay.clone()))?;
        r.register(Box::new(self.session_duration.clone()))?;
        r.register(Box::new(self.sessions_started.clone()))?;
        r.register(Box::new(self.handshake_rejections.clone()))?;
        r.register(Box::new(self.build_info.clone()))?;
        r.register(Box::new(self.ready.clone()))?;
        Ok(())
    }

    /// Counts a refused upgrade; `reason` is one of
    /// `HANDSHAKE_REJECTION_REASONS`.
    pub fn handshake_rejected(&self, reason: &str) {
        self.handshake_rejections.with_label_values(&[reason]).inc();
    }
}
