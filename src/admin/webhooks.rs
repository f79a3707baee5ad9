//! Owns `GET /api/v1/webhooks`: each endpoint's queue and delivery counters.

use serde_json::json;
use warp::reply::Reply;

use super::AdminContext;

/// `GET /api/v1/webhooks`.
pub fn list_webhooks(hub: &AdminContext) -> warp::reply::Response {
    let body = json!({ "endpoints": hub.webhooks.endpoints() });
    warp::reply::json(&body).into_response()
}
