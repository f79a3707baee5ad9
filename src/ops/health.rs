//! Owns `/healthz` (the process runs) and `/readyz` (it can serve now, or
//! 503 with the reason).

use warp::Filter;
use warp::Reply;
use warp::http::StatusCode;

use crate::cluster::Readiness;

/// `GET` (or `HEAD`: the same status and headers, no body) of a probe.
fn get_or_head() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::get().or(warp::head()).unify()
}

/// `GET /healthz` and `GET /readyz`, and `HEAD` of both.
pub fn routes(
    readiness: Readiness,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let healthz = warp::path!("healthz")
        .and(get_or_head())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let readyz = warp::path!("readyz").and(get_or_head()).map(move || {
        let (status, body) = match readiness.problem() {
            None => (StatusCode::OK, serde_json::json!({"status": "ready"})),
            Some(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "unavailable", "reason": reason}),
            ),
        };
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    });
    healthz.or(readyz).unify()
}
