//! Owns the operational routes: `/healthz`, `/readyz` and the Prometheus
//! `/metrics` scrape (gauges refreshed from the presence counters first).

pub mod health;

use warp::Filter;
use warp::reply::Reply;

use crate::cluster::Readiness;
use crate::metrics::Metrics;
use crate::model::{SessionStatus, Transport};
use crate::presence::{LiveCounts, PresenceHandle};

/// What the operational routes use.
#[derive(Debug, Clone)]
pub struct OpsContext {
    /// The presence engine, for the gauges.
    pub presence: PresenceHandle,
    /// `/readyz` state.
    pub readiness: Readiness,
    /// Metrics.
    pub metrics: Metrics,
    /// Serve `/metrics`.
    pub metrics_enabled: bool,
    /// Changes the engine could not hand to an observer (alerts, webhooks).
    pub observer_drops: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn routes(
    ops: OpsContext,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    health::routes(ops.readiness.clone())
        .or(metrics_route(ops))
        .unify()
}

/// `GET /metrics` alone, with JSON errors for anything else: what the
/// `PRESENCE_METRICS_BIND` listener serves.
pub fn metrics_only(
    ops: OpsContext,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    metrics_route(ops)
        .recover(crate::http::error::handle_rejection)
        .unify()
}

/// `GET /metrics`: Prometheus text (404 when disabled).
fn metrics_route(
    ops: OpsContext,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).and_then(move || {
        let ops = ops.clone();
        async move {
            if !ops.metrics_enabled {
                return Err(warp::reject::not_found());
            }
            refresh_gauges(&ops).await;
            Ok(warp::reply::with_header(
                ops.metrics.render(),
                "content-type",
                "text/plain; version=0.0.4",
            )
            .into_response())
        }
    })
}

/// Copies the engine's counters into the gauges before a scrape.
async fn refresh_gauges(ops: &OpsContext) {
    ops.metrics
        .ops
        .ready
        .set(i64::from(ops.readiness.problem().is_none()));
    let Ok(LiveCounts {
        counters,
        online_users: users,
    }) = ops.presence.live_counts().await
    else {
        return;
    };
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    for status in [
        SessionStatus::Active,
        SessionStatus::Idle,
        SessionStatus::Away,
    ] {
        let n = counters.by_status.get(&status).copied().unwrap_or(0);
        ops.metrics
            .sessions
            .with_label_values(&[status.as_str()])
            .set(gauge(n));
    }
    for (transport, name) in [(Transport::Ws, "ws"), (Transport::Http, "http")] {
        let n = counters.by_transport.get(&transport).copied().unwrap_or(0);
        ops.metrics
            .sessions_by_transport
            .with_label_values(&[name])
            .set(gauge(n));
    }
    ops.metrics.online_users.set(gauge(users));
    if let Ok(rooms) = ops.presence.room_counts().await {
        ops.metrics.rooms.set(gauge(rooms.rooms));
        ops.metrics.room_members.set(gauge(rooms.members));
        ops.metrics.room_sessions.set(gauge(rooms.sessions));
    }
    let dropped = ops
        .observer_drops
        .load(std::sync::atomic::Ordering::Relaxed);
    let counted = ops.metrics.observer_drops.get();
    if dropped > counted {
        ops.metrics.observer_drops.inc_by(dropped - counted);
    }
}
