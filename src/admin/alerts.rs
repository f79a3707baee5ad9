//! Owns `GET /api/v1/alerts`: this node's alerts, newest first, filtered by
//! `rule`, `user_id`, `active`, `from` and `to`, paged.

use serde_json::json;
use warp::reply::Reply;

use super::AdminContext;
use super::query::{Paging, parse_pairs, text, time};
use crate::alerts::store::AlertQuery;
use crate::http::error::ApiError;
use crate::model::AlertRule;

/// `GET /api/v1/alerts`.
pub fn list_alerts(hub: &AdminContext, query: &str) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let paging = Paging::parse(&pairs)?;
    let rule = match text(&pairs, "rule") {
        None => None,
        Some(name) => Some(AlertRule::parse(&name).ok_or_else(|| {
            ApiError::bad_parameter(
                "rule",
                format!("{name:?} is not one of multi_ip, session_flood, reconnect_loop, long_session, auth_failures, impossible_travel"),
            )
        })?),
    };
    let active = match text(&pairs, "active").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_parameter(
                "active",
                format!("{other:?} is not true or false"),
            ));
        }
    };
    let filter = AlertQuery {
        rule,
        user_id: text(&pairs, "user_id"),
        active,
        from: time(&pairs, "from")?,
        to: time(&pairs, "to")?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ApiError::bad_parameter("to", "must not be before from"));
    }
    let (total, alerts) = hub.alerts.query(&filter, paging.offset(), paging.page_size);
    let body = json!({
        "alerts": alerts,
        "total": total,
        "page": paging.page,
        "page_size": paging.page_size,
    });
    Ok(warp::reply::json(&body).into_response())
}
