//! Owns the `mix` scenario: a realistic blend. By client index modulo 100:
//! active tabs ping on a period, churners reconnect on a period, HTTP clients
//! send heartbeats, everyone else is an idle tab; admin subscribers watch.
//!
//! Besides the shared figures (where `rtt_ms` is the active tabs'), the
//! report has per-kind ones: clients of each kind that connected
//! (`mix_<kind>_connected`), the churners' reconnects (`mix_churn_reconnects`,
//! `mix_churn_connect_ms`) and the HTTP clients' accepted heartbeats
//! (`mix_heartbeats`, `mix_heartbeat_ms`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rand::Rng as _;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::admin;
use super::heartbeat;
use super::tab::{self, End};
use crate::plan::MixShape;
use crate::report::Measures;
use crate::stats::Attempt;
use crate::worker::{self, Ctx, Open};

/// What one client of the blend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    Active,
    Churner,
    Http,
}

impl Role {
    /// The report counter of clients of this kind that connected.
    fn connected_counter(self) -> &'static str {
        match self {
            Self::Idle => "mix_idle_connected",
            Self::Active => "mix_active_connected",
            Self::Churner => "mix_churn_connected",
            Self::Http => heartbeat::HTTP_CONNECTED,
        }
    }
}

/// Report counter: churners' reconnects that got a `welcome`.
const CHURN_RECONNECTS: &str = "mix_churn_reconnects";
/// Report histogram: a churner's reconnect latency.
const CHURN_CONNECT_MS: &str = "mix_churn_connect_ms";

/// The role of client `index` under `shape`.
fn role(shape: &MixShape, index: u64) -> Role {
    let bucket = (index % 100) as u8;
    let active = shape.active_pct;
    let churn = active.saturating_add(shape.churn_pct);
    let http = churn.saturating_add(shape.http_pct);
    match bucket {
        b if b < active => Role::Active,
        b if b < churn => Role::Churner,
        b if b < http => Role::Http,
        _ => Role::Idle,
    }
}

/// Runs `mix`; the window is the duration after the ramp.
pub async fn run(ctx: Arc<Ctx>, shape: MixShape) -> Result<(Measures, Duration)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .context("cannot build HTTP client")?;
    let kinds = [Role::Idle, Role::Active, Role::Churner, Role::Http];
    let mut counters = kinds.map(Role::connected_counter).to_vec();
    counters.extend([CHURN_RECONNECTS, heartbeat::HEARTBEATS]);
    ctx.stats
        .declare(&counters, &[CHURN_CONNECT_MS, heartbeat::HEARTBEAT_MS]);
    let watchers = start_admins(&ctx, shape.admins).await;
    let clients = worker::spawn_clients(&ctx, move |ctx, index| {
        mixed_client(ctx, index, shape.clone(), http.clone())
    });
    let window = worker::hold_steady(&ctx).await;
    worker::drain(&ctx, clients).await;
    worker::drain(&ctx, watchers).await;
    let measures = Measures {
        rtt: true,
        propagation: false,
    };
    Ok((measures, window))
}

/// Starts the admin subscribers; a failed one is counted, not fatal.
async fn start_admins(ctx: &Arc<Ctx>, admins: u32) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for slot in 0..admins {
        match admin::subscribe(ctx).await {
            Ok(ws) => {
                set.spawn(admin::watch(Arc::clone(ctx), slot, ws, None));
            }
            Err(failure) => ctx.stats.fail(&failure),
        }
    }
    set
}

/// One client of the blend, by role.
async fn mixed_client(ctx: Arc<Ctx>, index: u64, shape: MixShape, http: reqwest::Client) {
    let role = role(&shape, index);
    let counter = role.connected_counter();
    match role {
        Role::Http => {
            heartbeat::heartbeat_client(&ctx, &http, index, shape.heartbeat_interval).await;
        }
        Role::Churner => churner(&ctx, index, shape.churn_interval, counter).await,
        Role::Active => tab_client(&ctx, index, Some(shape.ping_interval), counter).await,
        Role::Idle => tab_client(&ctx, index, None, counter).await,
    }
}

/// An idle or active tab: connect, hold, ping if active.
async fn tab_client(ctx: &Ctx, index: u64, pings: Option<Duration>, counter: &'static str) {
    let Some(mut ws) = ctx.connect_client(index, Attempt::Initial).await else {
        return;
    };
    ctx.stats.count(counter, 1);
    let end = tab::hold_open(ctx, &mut ws, pings, None).await;
    tab::finish(ctx, ws, end).await;
}

/// A churning tab: connect, hold for about `interval`, close, repeat.
async fn churner(ctx: &Ctx, index: u64, interval: Duration, counter: &'static str) {
    let mut first = true;
    let open = Open::new(&ctx.plan.target.hub);
    while !ctx.stop.is_cancelled() {
        let attempt = if first {
            Attempt::Initial
        } else {
            Attempt::Reconnect
        };
        let opened = ctx.open_client(index, &open, attempt).await;
        let ws = opened.map(|(ws, _, latency)| {
            if first {
                ctx.stats.count(counter, 1);
            } else {
                ctx.stats.count(CHURN_RECONNECTS, 1);
                ctx.stats.record_extra(CHURN_CONNECT_MS, &[latency]);
            }
            ws
        });
        first = false;
        let until = Instant::now() + interval.mul_f64(rand::rng().random_range(0.5..1.5));
        let Some(mut ws) = ws else {
            if !ctx.sleep_until(until).await {
                return;
            }
            continue;
        };
        let end = tab::hold_open(ctx, &mut ws, None, Some(until)).await;
        tab::finish(ctx, ws, end).await;
        if end == End::Stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_percentages() {
        let shape = MixShape {
            ping_interval: Duration::from_secs(1),
            active_pct: 15,
            churn_pct: 3,
            churn_interval: Duration::from_secs(1),
            http_pct: 2,
            heartbeat_interval: Duration::from_secs(1),
            admins: 1,
        };
        let count = |r| (0..1000).filter(|&i| role(&shape, i) == r).count();
        assert_eq!(
            [Role::Active, Role::Churner, Role::Http, Role::Idle].map(count),
            [150, 30, 20, 800]
        );
    }
}
