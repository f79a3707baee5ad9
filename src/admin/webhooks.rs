//! Owns `GET /api/v1/webhooks`: each endpoint's queue and delivery counters.

use serde_json::json;
use warp::reply::Reply;

use super::AdminContext;
use crate::http::error::ApiError;

/// `GET /api/v1/webhooks`.
pub fn list_webhooks(hub: &AdminContext) -> Result<warp::reply::Response, ApiError> {
    let body = json!({ "endpoints": hub.webhooks.endpoints() });
    Ok(warp::reply::json(&body).into_response())
}
