//! Owns the HTTP plumbing shared by `client/` and `admin/`: the context every
//! route reads, the composition of all routes with the one `recover`, the
//! listener, and the upgrade hand-off.

pub mod auth;
pub mod body;
pub mod client_ip;
pub mod error;
pub mod health;
pub mod origin;
pub mod panel;
pub mod server;
pub mod streamed;
pub mod upgrade;
pub mod websocket;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use warp::Filter;
use warp::reply::Reply;

use crate::auth::Authenticator;
use crate::client::socket::ConnectionContext;
use crate::cluster::Readiness;
use crate::metrics::Metrics;
use crate::model::{SessionStatus, Transport};
use crate::presence::PresenceHandle;

/// What every route handler may use.
pub struct HubContext {
    /// The presence engine.
    pub presence: PresenceHandle,
    /// Token checks.
    pub auth: Authenticator,
    /// Admin auth plus rate limit.
    pub gate: auth::AdminGate,
    /// Shared by every client connection.
    pub connections: Arc<ConnectionContext>,
    /// `/readyz` state.
    pub readiness: Readiness,
    /// Metrics.
    pub metrics: Metrics,
    /// Serve `/metrics`.
    pub metrics_enabled: bool,
    /// HTTP-heartbeat session expiry, told to heartbeat clients.
    pub http_session_ttl: std::time::Duration,
    /// Ended sessions.
    pub history: Arc<dyn crate::history::HistoryStore>,
    /// Every WebSocket task (clients and admins), for shutdown.
    pub sockets: TaskTracker,
    /// Fires when shutdown begins: refuse upgrades, close admin streams.
    pub closing: CancellationToken,
}

impl std::fmt::Debug for HubContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubContext").finish_non_exhaustive()
    }
}

/// Every route of the hub, with JSON errors for every rejection.
pub fn routes(
    hub: Arc<HubContext>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let metrics = hub.metrics.clone();
    crate::client::routes(hub.clone())
        .or(crate::admin::routes(hub.clone()))
        .unify()
        .or(health::routes(hub.readiness.clone()))
        .unify()
        .or(metrics_route(hub))
        .unify()
        .or(panel::routes())
        .unify()
        .recover(error::handle_rejection)
        .unify()
        .with(warp::log::custom(move |info| {
            let route = route_label(info.path());
            metrics
                .api_requests
                .with_label_values(&[route, info.status().as_str()])
                .inc();
        }))
}

/// The route template of a path, so ids do not explode metric labels.
pub fn route_label(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["ws"] => "/ws",
        ["admin", "ws"] => "/admin/ws",
        ["api", "v1", "heartbeat"] => "/api/v1/heartbeat",
        ["api", "v1", "users"] => "/api/v1/users",
        ["api", "v1", "users", _] => "/api/v1/users/{user_id}",
        ["api", "v1", "users", _, "sessions"] => "/api/v1/users/{user_id}/sessions",
        ["api", "v1", "sessions"] => "/api/v1/sessions",
        ["api", "v1", "sessions", "export"] => "/api/v1/sessions/export",
        ["api", "v1", "sessions", _] => "/api/v1/sessions/{session_id}",
        ["api", "v1", "stats"] => "/api/v1/stats",
        ["api", "v1", "openapi.json"] => "/api/v1/openapi.json",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        _ => "other",
    }
}

/// `GET /metrics`: Prometheus text (404 when disabled).
fn metrics_route(
    hub: Arc<HubContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).and_then(move || {
        let hub = hub.clone();
        async move {
            if !hub.metrics_enabled {
                return Err(warp::reject::not_found());
            }
            refresh_gauges(&hub).await;
            Ok(warp::reply::with_header(
                hub.metrics.render(),
                "content-type",
                "text/plain; version=0.0.4",
            )
            .into_response())
        }
    })
}

/// Copies the engine's counters into the gauges before a scrape.
async fn refresh_gauges(hub: &HubContext) {
    let Ok((counters, users)) = hub
        .presence
        .inspect(|state, _| (state.counters().clone(), state.online_users()))
        .await
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
        hub.metrics
            .sessions
            .with_label_values(&[status.as_str()])
            .set(gauge(n));
    }
    for (transport, name) in [(Transport::Ws, "ws"), (Transport::Http, "http")] {
        let n = counters.by_transport.get(&transport).copied().unwrap_or(0);
        hub.metrics
            .sessions_by_transport
            .with_label_values(&[name])
            .set(gauge(n));
    }
    hub.metrics.online_users.set(gauge(users));
}
