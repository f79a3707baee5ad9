//! Owns the route tree: every route of the hub composed in one place, the
//! one `recover` that turns every rejection into the JSON error body, and
//! the request counter and the count of 401s per client IP (for the
//! `auth_failures` alert). It is the only module that knows every edge.

use std::sync::Arc;

use warp::Filter;
use warp::reply::Reply;

use crate::admin::AdminContext;
use crate::alerts::AuthFailures;
use crate::client::ClientContext;
use crate::http::client_ip::client_ip;
use crate::http::upgrade::PeerAddr;
use crate::http::{error, panel, route_label};
use crate::metrics::Metrics;
use crate::ops::OpsContext;

/// Every route of the hub, with JSON errors for every rejection.
pub fn all(
    client: Arc<ClientContext>,
    admin: Arc<AdminContext>,
    ops: OpsContext,
    auth_failures: AuthFailures,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let metrics: Metrics = ops.metrics.clone();
    let trusted = client.connections.limits.trusted_proxies.clone();
    let tree = crate::client::routes(client)
        .or(crate::admin::routes(admin))
        .unify()
        .or(crate::ops::routes(ops))
        .unify()
        .or(panel::routes())
        .unify()
        .recover(error::handle_rejection)
        .unify();
    warp::ext::optional::<PeerAddr>()
        .and(
            warp::header::optional::<String>("x-forwarded-for")
                .or(warp::any().map(|| None))
                .unify(),
        )
        .and(tree)
        .map(
            move |peer: Option<PeerAddr>,
                  forwarded: Option<String>,
                  reply: warp::reply::Response| {
                if reply.status() == warp::http::StatusCode::UNAUTHORIZED {
                    let peer = peer.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
                    auth_failures.record(client_ip(peer, forwarded.as_deref(), &trusted));
                }
                reply
            },
        )
        .with(warp::log::custom(move |info| {
            let route = route_label(info.path());
            metrics
                .api_requests
                .with_label_values(&[route, info.status().as_str()])
                .inc();
        }))
}
