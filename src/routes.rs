//! Owns the route tree: every route of the hub composed in one place, the
//! one `recover` that turns every rejection into the JSON error body, and
//! the request counter. It is the only module that knows every edge.

use std::sync::Arc;

use warp::Filter;
use warp::reply::Reply;

use crate::admin::AdminContext;
use crate::client::ClientContext;
use crate::http::{error, panel, route_label};
use crate::metrics::Metrics;
use crate::ops::OpsContext;

/// Every route of the hub, with JSON errors for every rejection.
pub fn all(
    client: Arc<ClientContext>,
    admin: Arc<AdminContext>,
    ops: OpsContext,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let metrics: Metrics = ops.metrics.clone();
    crate::client::routes(client)
        .or(crate::admin::routes(admin))
        .unify()
        .or(crate::ops::routes(ops))
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
