//! Owns everything facing admins: the live stream (`/admin/ws`) and the
//! `/api/v1` management routes (users, sessions, export, stats). Every
//! route here checks the admin token first (401/403) and the API routes are
//! rate limited per token.

pub mod export;
pub mod query;
pub mod sessions;
pub mod stats;
pub mod stream;
pub mod users;

use std::sync::Arc;

use warp::Filter;
use warp::http::HeaderMap;

use crate::http::HubContext;
use crate::http::auth::{admin, admin_api, query_param, raw_query};
use crate::http::error::ApiError;
use crate::http::upgrade::{UpgradeSlot, check_handshake, switch_protocols};

type Route = warp::filters::BoxedFilter<(warp::reply::Response,)>;

/// `GET /admin/ws` and the `/api/v1` admin routes.
pub fn routes(
    hub: Arc<HubContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    stream_route(hub.clone()).or(api_routes(hub)).unify()
}

fn stream_route(
    hub: Arc<HubContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("admin" / "ws")
        .and(warp::get())
        .and(admin(hub.gate.clone()))
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<UpgradeSlot>())
        .and(warp::any().map(move || hub.clone()))
        .and_then(
            |_admin,
             query: String,
             headers: HeaderMap,
             slot: Option<UpgradeSlot>,
             hub: Arc<HubContext>| async move {
                upgrade_admin(&query, &headers, slot, &hub).map_err(warp::reject::custom)
            },
        )
}

fn with_hub(
    hub: Arc<HubContext>,
) -> impl Filter<Extract = (Arc<HubContext>,), Error = std::convert::Infallible> + Clone {
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

fn api_routes(hub: Arc<HubContext>) -> Route {
    // Path and method first, then the token: a wrong path is 404 and a wrong
    // method 405 without touching the rate limit.
    let gate = hub.gate.clone();
    let authorized = move || admin_api(gate.clone()).map(|_| ()).untuple_one();
    let users_list = warp::path!("api" / "v1" / "users")
        .and(warp::get())
        .and(authorized())
        .and(raw_query())
        .and(with_hub(hub.clone()))
        .and_then(|query: String, hub: Arc<HubContext>| async move {
            reply(users::list_users(&hub, &query).await)
        });
    let user_get = warp::path!("api" / "v1" / "users" / ..)
        .and(segment())
        .and(warp::path::end())
        .and(warp::get())
        .and(authorized())
        .and(with_hub(hub.clone()))
        .and_then(|id: String, hub: Arc<HubContext>| async move {
            reply(users::get_user(&hub, &id).await)
        });
    let user_revoke = warp::path!("api" / "v1" / "users" / ..)
        .and(segment())
        .and(warp::path!("sessions"))
        .and(warp::delete())
        .and(authorized())
        .and(with_hub(hub.clone()))
        .and_then(|id: String, hub: Arc<HubContext>| async move {
            reply(users::revoke_user(&hub, &id).await)
        });
    let sessions_list = warp::path!("api" / "v1" / "sessions")
        .and(warp::get())
        .and(authorized())
        .and(raw_query())
        .and(with_hub(hub.clone()))
        .and_then(|query: String, hub: Arc<HubContext>| async move {
            reply(sessions::list_sessions(&hub, &query).await)
        });
    let sessions_export = warp::path!("api" / "v1" / "sessions" / "export")
        .and(warp::get())
        .and(authorized())
        .and(raw_query())
        .and(with_hub(hub.clone()))
        .and_then(|query: String, hub: Arc<HubContext>| async move {
            reply(export::export_sessions(hub, &query).await)
        });
    let session_get = warp::path!("api" / "v1" / "sessions" / ..)
        .and(segment())
        .and(warp::path::end())
        .and(warp::get())
        .and(authorized())
        .and(with_hub(hub.clone()))
        .and_then(|id: String, hub: Arc<HubContext>| async move {
            reply(sessions::get_session(&hub, &id).await)
        });
    let session_delete = warp::path!("api" / "v1" / "sessions" / ..)
        .and(segment())
        .and(warp::path::end())
        .and(warp::delete())
        .and(authorized())
        .and(with_hub(hub.clone()))
        .and_then(|id: String, hub: Arc<HubContext>| async move {
            reply(sessions::terminate_session(&hub, &id).await)
        });
    let stats = warp::path!("api" / "v1" / "stats")
        .and(warp::get())
        .and(authorized())
        .and(with_hub(hub))
        .and_then(|hub: Arc<HubContext>| async move { reply(stats::stats(&hub).await) });
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
        });
    users_list
        .or(user_get)
        .unify()
        .or(user_revoke)
        .unify()
        .or(sessions_export)
        .unify()
        .or(sessions_list)
        .unify()
        .or(session_get)
        .unify()
        .or(session_delete)
        .unify()
        .or(stats)
        .unify()
        .or(openapi)
        .unify()
        .boxed()
}

/// The OpenAPI 3 description of the HTTP API.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

use warp::Reply;

fn upgrade_admin(
    query: &str,
    headers: &HeaderMap,
    slot: Option<UpgradeSlot>,
    hub: &Arc<HubContext>,
) -> Result<warp::reply::Response, ApiError> {
    if hub.closing.is_cancelled() {
        return Err(ApiError::Unavailable("the hub is shutting down".into()));
    }
    crate::client::check_origin(headers, hub.connections.limits.allowed_origins.as_deref())?;
    let accept_key = check_handshake(headers)?;
    let org = query_param(query, "org").filter(|org| !org.is_empty());
    let hub_for_task = hub.clone();
    switch_protocols(slot, &accept_key, &hub.sockets, move |io| {
        stream::serve_admin_stream(io, hub_for_task, org)
    })
}
