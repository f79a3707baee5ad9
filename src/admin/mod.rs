//! Owns everything facing admins: the live stream (`/admin/ws`) and the
//! `/api/v1` management routes (users, sessions, export, stats and their
//! series, rooms).
//! Every route here checks the admin token first (401/403) and the API
//! routes are rate limited per token; the one exception is
//! `GET /api/v1/rooms/{room}`, which a client allowed to watch the room may
//! read too (`rooms.rs`).

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod export;
pub mod query;
pub mod rooms;
pub mod series;
pub mod sessions;
pub mod stats;
pub mod stream;
pub mod tabular;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use warp::Filter;
use warp::Reply;
use warp::http::HeaderMap;

use futures_util::future::BoxFuture;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use ipnet::IpNet;

use crate::audit::store::AuditStore;
use crate::audit::{Auditor, Caller};
use crate::auth::{Principal, Role};
use crate::history::HistoryStore;
use crate::http::admission::Admission;
use crate::http::auth::{AdminGate, admin, admin_api, query_param, raw_query};
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::http::origin::OriginPolicy;
use crate::http::upgrade::{PeerAddr, UpgradeSlot, check_handshake, switch_protocols};
use crate::metrics::Metrics;
use crate::model::{AuditAction, AuditTarget};
use crate::presence::PresenceHandle;

type Route = warp::filters::BoxedFilter<(warp::reply::Response,)>;

/// What the admin routes use.
pub struct AdminContext {
    /// The presence engine.
    pub presence: PresenceHandle,
    /// Admin auth plus rate limit.
    pub gate: AdminGate,
    /// Ended sessions.
    pub history: Arc<dyn HistoryStore>,
    /// Metrics.
    pub metrics: Metrics,
    /// Which `Origin`s may open `/admin/ws`.
    pub origins: OriginPolicy,
    /// The audit trail: where events are recorded and where they are read.
    pub auditor: Auditor,
    /// The stored audit trail.
    pub audit: Arc<dyn AuditStore>,
    /// Proxies whose `X-Forwarded-For` is honoured (the actor's IP).
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// The alerts this node raised.
    pub alerts: crate::alerts::store::AlertStore,
    /// Webhook endpoints' queues and counters.
    pub webhooks: crate::webhooks::WebhookStatus,
    /// Every WebSocket task, for shutdown.
    pub sockets: TaskTracker,
    /// Fires when shutdown begins: upgrades are refused, streams close.
    pub closing: CancellationToken,
    /// Open-socket limits (contract v1.1 section 13).
    pub admission: Admission,
    /// How long one write to an admin stream may take.
    pub write_timeout: std::time::Duration,
    /// The bucket length of the online series.
    pub series_interval: std::time::Duration,
}

impl std::fmt::Debug for AdminContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminContext").finish_non_exhaustive()
    }
}

/// `GET /admin/ws` and the `/api/v1` admin routes.
pub fn routes(
    hub: Arc<AdminContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let api = api_routes(&hub);
    stream_route(hub).or(api).unify()
}

fn stream_route(
    hub: Arc<AdminContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("admin" / "ws")
        .and(warp::get())
        .and(admin(hub.gate.clone()))
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<UpgradeSlot>())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::any().map(move || hub.clone()))
        .and_then(
            |_admin,
             query: String,
             headers: HeaderMap,
             slot: Option<UpgradeSlot>,
             peer: Option<PeerAddr>,
             hub: Arc<AdminContext>| async move {
                upgrade_admin(&query, &headers, (slot, peer), &hub).map_err(warp::reject::custom)
            },
        )
}

fn with_hub(
    hub: Arc<AdminContext>,
) -> impl Filter<Extract = (Arc<AdminContext>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || hub.clone())
}

/// A path segment, percent-decoded.
fn segment() -> impl Filter<Extract = (String,), Error = warp::Rejection> + Clone {
    warp::path::param::<String>().map(|raw: String| {
        percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned()
    })
}

/// A matched route's answer is final: its errors become responses here, so
/// no other route is tried (a rejection would be merged with theirs).
fn reply(
    result: Result<warp::reply::Response, ApiError>,
) -> Result<warp::reply::Response, warp::Rejection> {
    Ok(result.unwrap_or_else(|error| error.to_response()))
}

/// A handler of one admin API route: the hub, and the route's one input
/// (its query string, or the id in its path).
type Handler =
    fn(Arc<AdminContext>, String) -> BoxFuture<'static, Result<warp::reply::Response, ApiError>>;

/// One admin API route: path and method first, then the token, so a wrong
/// path is 404 and a wrong method 405 without touching the rate limit.
fn admin_route(
    hub: &Arc<AdminContext>,
    path: impl Filter<Extract = (String,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    method: impl Filter<Extract = (), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    handler: Handler,
) -> Route {
    path.and(method)
        .and(admin_api(hub.gate.clone()))
        .and(with_hub(hub.clone()))
        .and_then(
            move |input: String, _admin, hub: Arc<AdminContext>| async move {
                reply(handler(hub, input).await)
            },
        )
        .boxed()
}

/// A handler of an audited admin route: as `Handler`, plus who calls.
type AuditedHandler = fn(
    Arc<AdminContext>,
    String,
    Caller,
) -> BoxFuture<'static, Result<warp::reply::Response, ApiError>>;

/// An admin API route whose handler records an audit event: as
/// `admin_route`, and the handler learns the caller (user, role, IP).
fn audited_route(
    hub: &Arc<AdminContext>,
    path: impl Filter<Extract = (String,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    method: impl Filter<Extract = (), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    handler: AuditedHandler,
) -> Route {
    let proxies = hub.trusted_proxies.clone();
    path.and(method)
        .and(admin_api(hub.gate.clone()))
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::header::headers_cloned())
        .and(with_hub(hub.clone()))
        .and_then(
            move |input: String,
                  admin: Principal,
                  peer: Option<PeerAddr>,
                  headers: HeaderMap,
                  hub: Arc<AdminContext>| {
                let caller = caller_of(&admin, peer, &headers, &proxies);
                async move { reply(handler(hub, input, caller).await) }
            },
        )
        .boxed()
}

/// Who an admin request is, for the audit trail.
fn caller_of(
    principal: &Principal,
    peer: Option<PeerAddr>,
    headers: &HeaderMap,
    proxies: &[IpNet],
) -> Caller {
    let peer_ip = peer.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    Caller {
        user_id: principal.user_id.to_string(),
        role: match principal.role {
            Role::Admin => "admin",
            Role::Client => "client",
        },
        ip: client_ip(peer_ip, forwarded, proxies).to_string(),
    }
}

/// Records `action` with the outcome of the request: `ok`, or the code of
/// the error it answered.
pub fn audit_outcome<T>(
    hub: &AdminContext,
    action: AuditAction,
    caller: &Caller,
    target: AuditTarget,
    reason: Option<String>,
    outcome: &Result<T, ApiError>,
) {
    let result = match outcome {
        Ok(_) => "ok",
        Err(error) => error.code(),
    };
    hub.auditor.action(action, caller, target, reason, result);
}

/// `/api/v1/<resource>` with its query string.
fn list(
    resource: &'static str,
) -> impl Filter<Extract = (String,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path(resource))
        .and(warp::path::end())
        .and(raw_query())
}

/// `/api/v1/<resource>/<id>` with the decoded id.
fn item(
    resource: &'static str,
) -> impl Filter<Extract = (String,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path(resource))
        .and(segment())
        .and(warp::path::end())
}

fn api_routes(hub: &Arc<AdminContext>) -> Route {
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
        })
        .boxed();
    people_routes(hub)
        .into_iter()
        .chain(record_routes(hub))
        .fold(openapi, |all, route| all.or(route).unify().boxed())
}

/// Users and sessions: listing, detail, timelines, export, terminate and revoke.
fn people_routes(hub: &Arc<AdminContext>) -> Vec<Route> {
    vec![
        admin_route(hub, list("users"), warp::get(), |hub, query| {
            Box::pin(async move { users::list_users(&hub, &query).await })
        }),
        admin_route(hub, item("users"), warp::get(), |hub, id| {
            Box::pin(async move { users::get_user(&hub, &id).await })
        }),
        audited_route(
            hub,
            warp::path!("api" / "v1" / "users" / ..)
                .and(segment())
                .and(warp::path!("sessions")),
            warp::delete(),
            |hub, id, caller| Box::pin(async move { users::revoke_user(&hub, &id, &caller).await }),
        ),
        audited_route(
            hub,
            warp::path!("api" / "v1" / "sessions" / "export").and(raw_query()),
            warp::get(),
            |hub, query, caller| {
                Box::pin(async move { export::export_sessions(hub, &query, &caller).await })
            },
        ),
        admin_route(hub, list("sessions"), warp::get(), |hub, query| {
            Box::pin(async move { sessions::list_sessions(&hub, &query).await })
        }),
        admin_route(hub, item("sessions"), warp::get(), |hub, id| {
            Box::pin(async move { sessions::get_session(&hub, &id).await })
        }),
        admin_route(
            hub,
            warp::path!("api" / "v1" / "sessions" / ..)
                .and(segment())
                .and(warp::path!("timeline")),
            warp::get(),
            |hub, id| Box::pin(async move { sessions::get_timeline(&hub, &id).await }),
        ),
        audited_route(hub, item("sessions"), warp::delete(), |hub, id, caller| {
            Box::pin(async move { sessions::terminate_session(&hub, &id, &caller).await })
        }),
    ]
}

/// Records and state beside the sessions: audit, analytics, stats, rooms,
/// alerts and webhooks.
fn record_routes(hub: &Arc<AdminContext>) -> Vec<Route> {
    vec![
        admin_route(
            hub,
            warp::path!("api" / "v1" / "audit" / "export").and(raw_query()),
            warp::get(),
            |hub, query| Box::pin(async move { audit::export_audit(hub, &query) }),
        ),
        admin_route(hub, list("audit"), warp::get(), |hub, query| {
            Box::pin(async move { audit::list_audit(&hub, &query).await })
        }),
        admin_route(
            hub,
            warp::path!("api" / "v1" / "analytics" / "heatmap").and(raw_query()),
            warp::get(),
            |hub, query| Box::pin(async move { analytics::heatmap(&hub, &query).await }),
        ),
        admin_route(
            hub,
            warp::path!("api" / "v1" / "analytics" / "durations").and(raw_query()),
            warp::get(),
            |hub, query| Box::pin(async move { analytics::durations(&hub, &query).await }),
        ),
        admin_route(
            hub,
            warp::path!("api" / "v1" / "analytics" / "daily").and(raw_query()),
            warp::get(),
            |hub, query| Box::pin(async move { analytics::daily(&hub, &query).await }),
        ),
        admin_route(hub, list("stats"), warp::get(), |hub, _| {
            Box::pin(async move { stats::stats(&hub).await })
        }),
        admin_route(
            hub,
            warp::path!("api" / "v1" / "stats" / "series").and(raw_query()),
            warp::get(),
            |hub, query| Box::pin(async move { series::series(&hub, &query).await }),
        ),
        admin_route(hub, list("rooms"), warp::get(), |hub, query| {
            Box::pin(async move { rooms::list_rooms(&hub, &query).await })
        }),
        rooms::room_route(hub.clone()),
        admin_route(hub, list("alerts"), warp::get(), |hub, query| {
            Box::pin(async move { alerts::list_alerts(&hub, &query) })
        }),
        admin_route(hub, list("webhooks"), warp::get(), |hub, _| {
            Box::pin(async move { Ok(webhooks::list_webhooks(&hub)) })
        }),
    ]
}

/// The OpenAPI 3 description of the HTTP API.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

fn upgrade_admin(
    query: &str,
    headers: &HeaderMap,
    (slot, peer): (Option<UpgradeSlot>, Option<PeerAddr>),
    hub: &Arc<AdminContext>,
) -> Result<warp::reply::Response, ApiError> {
    if hub.closing.is_cancelled() {
        return Err(ApiError::Unavailable("the hub is shutting down".into()));
    }
    crate::http::origin::check_origin(headers, &hub.origins)?;
    crate::http::query::check_utf8(query)?;
    let accept_key = check_handshake(headers)?;
    let org = query_param(query, "org").filter(|org| !org.is_empty());
    let permit = hub.admission.admit_socket(headers, peer)?;
    let hub_for_task = hub.clone();
    switch_protocols(slot, &accept_key, &hub.sockets, permit, move |io| {
        stream::serve_admin_stream(io, hub_for_task, org)
    })
}
