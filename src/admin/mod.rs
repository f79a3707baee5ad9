//! Owns everything facing admins: the live stream (`/admin/ws`) and, later,
//! the `/api/v1` management routes.

pub mod stream;

use std::sync::Arc;

use warp::Filter;
use warp::http::HeaderMap;

use crate::http::HubContext;
use crate::http::auth::{admin, query_param, raw_query};
use crate::http::error::ApiError;
use crate::http::upgrade::{UpgradeSlot, check_handshake, switch_protocols};

/// `GET /admin/ws`.
pub fn routes(
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

fn upgrade_admin(
    query: &str,
    headers: &HeaderMap,
    slot: Option<UpgradeSlot>,
    hub: &Arc<HubContext>,
) -> Result<warp::reply::Response, ApiError> {
    if hub.closing.is_cancelled() {
        return Err(ApiError::Unavailable("the hub is shutting down".into()));
    }
    let accept_key = check_handshake(headers)?;
    let org = query_param(query, "org").filter(|org| !org.is_empty());
    let hub_for_task = hub.clone();
    switch_protocols(slot, &accept_key, &hub.sockets, move |io| {
        stream::serve_admin_stream(io, hub_for_task, org)
    })
}
