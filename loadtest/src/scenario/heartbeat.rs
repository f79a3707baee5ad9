//! Owns simulated HTTP-heartbeat clients: `POST /api/v1/heartbeat` on a
//! period, keeping the `session_id` the hub hands out, and ending the session
//! when the worker stops.

use std::time::Duration;

use rand::Rng as _;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::failure::Failure;
use crate::stats::Attempt;
use crate::worker::Ctx;

/// Report counter: heartbeats the hub accepted.
pub const HEARTBEATS: &str = "mix_heartbeats";
/// Report histogram: one heartbeat request -> answer.
pub const HEARTBEAT_MS: &str = "mix_heartbeat_ms";

/// Report counter: HTTP clients whose first session opened.
pub const HTTP_CONNECTED: &str = "mix_http_connected";

/// Bound on one heartbeat request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The part of the hub's answer the client keeps.
#[derive(Debug, Deserialize)]
struct Answer {
    session_id: String,
}

/// One HTTP client: heartbeat every `interval` until the worker stops.
pub async fn heartbeat_client(ctx: &Ctx, http: &reqwest::Client, index: u64, interval: Duration) {
    let user = ctx.plan.user_id(index);
    let mut session: Option<String> = None;
    let mut next = Instant::now();
    let mut first = true;
    let mut ever_open = false;
    loop {
        if !ctx.sleep_until(next).await {
            break;
        }
        let body = match &session {
            Some(id) => json!({ "session_id": id, "active": true }),
            None => json!({ "active": true }),
        };
        let was_open = session.is_some();
        let sent = Instant::now();
        session = post(ctx, http, &user, &body).await;
        if session.is_some() {
            ctx.stats.count(HEARTBEATS, 1);
            ctx.stats.record_extra(HEARTBEAT_MS, &[sent.elapsed()]);
        }
        let attempt = if ever_open {
            Attempt::Renewed
        } else {
            Attempt::InitialUntimed
        };
        record_transition(ctx, was_open, session.is_some(), attempt);
        if !ever_open && session.is_some() {
            ctx.stats.count(HTTP_CONNECTED, 1);
        }
        ever_open |= session.is_some();
        if first {
            ctx.settle();
            first = false;
        }
        next = Instant::now() + interval.mul_f64(rand::rng().random_range(0.9..1.1));
    }
    if let Some(id) = session {
        let body = json!({ "session_id": id, "ended": true });
        let _ = post(ctx, http, &user, &body).await;
        ctx.stats.disconnected();
    }
}

/// Counts a session that appeared or vanished.
fn record_transition(ctx: &Ctx, was_open: bool, is_open: bool, attempt: Attempt) {
    match (was_open, is_open) {
        (false, true) => ctx.stats.connected(Duration::ZERO, attempt),
        (true, false) => ctx.stats.disconnected(),
        _ => {}
    }
}

/// Sends one heartbeat; returns the session id on success.
async fn post(
    ctx: &Ctx,
    http: &reqwest::Client,
    user: &str,
    body: &serde_json::Value,
) -> Option<String> {
    let mut request = http
        .post(ctx.plan.target.hub.http_url("/api/v1/heartbeat", ""))
        .timeout(REQUEST_TIMEOUT)
        .json(body);
    request = match ctx.http_token(user) {
        Some(token) => request.bearer_auth(token),
        None => request.query(&[("user", user)]),
    };
    let Ok(response) = request.send().await else {
        ctx.stats.fail(&Failure::HeartbeatIo);
        return None;
    };
    let status = response.status();
    if !status.is_success() {
        ctx.stats.fail(&Failure::HeartbeatStatus(status.as_u16()));
        return None;
    }
    match response.json::<Answer>().await {
        Ok(answer) => Some(answer.session_id),
        Err(_) => {
            ctx.stats.fail(&Failure::HeartbeatIo);
            None
        }
    }
}
