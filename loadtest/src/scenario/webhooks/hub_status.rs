//! Owns reading the hub's own delivery figures, `GET /api/v1/webhooks`,
//! at the end of a run, per endpoint (healthy, slow, dead) by port.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::failure::Failure;
use crate::worker::Ctx;

/// The endpoints of the route's answer.
#[derive(Debug, Deserialize)]
struct Status {
    endpoints: Vec<Endpoint>,
}

/// One endpoint's figures.
#[derive(Debug, Deserialize)]
struct Endpoint {
    url: String,
    #[serde(default)]
    queued: u64,
    #[serde(default)]
    delivered: u64,
    #[serde(default)]
    failed: u64,
    #[serde(default)]
    dropped: u64,
}

/// Report counters for one endpoint role, `hub_<role>_<figure>`.
struct Names {
    delivered: &'static str,
    dropped: &'static str,
    failed: &'static str,
    queued: &'static str,
}

const HEALTHY: Names = Names {
    delivered: "hub_healthy_delivered",
    dropped: "hub_healthy_dropped",
    failed: "hub_healthy_failed",
    queued: "hub_healthy_queued",
};
const SLOW: Names = Names {
    delivered: "hub_slow_delivered",
    dropped: "hub_slow_dropped",
    failed: "hub_slow_failed",
    queued: "hub_slow_queued",
};
const DEAD: Names = Names {
    delivered: "hub_dead_delivered",
    dropped: "hub_dead_dropped",
    failed: "hub_dead_failed",
    queued: "hub_dead_queued",
};

/// The addresses of the run's endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    /// Healthy receiver.
    pub healthy: SocketAddr,
    /// Slow receiver.
    pub slow: Option<SocketAddr>,
    /// Dead endpoint.
    pub dead: Option<SocketAddr>,
}

/// Reads the route and adds each known endpoint's figures to the report;
/// a failure is counted as an error.
pub async fn record(ctx: &Ctx, addrs: Addrs) {
    let Some(status) = fetch(ctx).await else {
        return;
    };
    let roles = [
        (Some(addrs.healthy), &HEALTHY),
        (addrs.slow, &SLOW),
        (addrs.dead, &DEAD),
    ];
    for endpoint in &status.endpoints {
        let Some((_, names)) = roles
            .iter()
            .find(|(addr, _)| addr.is_some_and(|a| same_port(&endpoint.url, &a)))
        else {
            continue;
        };
        ctx.stats.declare(
            &[names.delivered, names.dropped, names.failed, names.queued],
            &[],
        );
        ctx.stats.count(names.delivered, endpoint.delivered);
        ctx.stats.count(names.dropped, endpoint.dropped);
        ctx.stats.count(names.failed, endpoint.failed);
        ctx.stats.count(names.queued, endpoint.queued);
    }
}

/// True when `url`'s authority is `addr`.
fn same_port(url: &str, addr: &SocketAddr) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.port() == Some(addr.port()))
}

/// `GET /api/v1/webhooks` on the admin node.
async fn fetch(ctx: &Ctx) -> Option<Status> {
    let url = ctx.plan.target.admin.http_url("/api/v1/webhooks", "");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let mut request = http.get(&url);
    if let Some(token) = ctx.admin_token().ok().flatten() {
        request = request.bearer_auth(token);
    }
    let Ok(response) = request.send().await else {
        ctx.stats.fail(&Failure::WebhookStatus(0));
        return None;
    };
    let code = response.status().as_u16();
    if code != 200 {
        ctx.stats.fail(&Failure::WebhookStatus(code));
        return None;
    }
    let parsed = response.json::<Status>().await.ok();
    if parsed.is_none() {
        ctx.stats.fail(&Failure::WebhookStatus(0));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_matched_by_port() {
        let addr: SocketAddr = "127.0.0.1:4100".parse().unwrap();
        assert!(same_port("http://127.0.0.1:4100/hook", &addr));
        assert!(!same_port("http://127.0.0.1:4101/hook", &addr));
        assert!(!same_port("not a url", &addr));
    }
}
