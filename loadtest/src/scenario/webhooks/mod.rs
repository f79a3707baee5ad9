//! Owns the `webhooks` scenario: the run's own receivers on loopback (a
//! healthy one, optionally a slow one; a dead endpoint is an address
//! nothing listens on), short sessions at a set rate making the events,
//! and pinging clients whose RTT shows whether webhook delivery slows
//! clients down.
//!
//! The hub must list the receivers in PRESENCE_WEBHOOK_URLS and share the
//! secret. The report adds `webhook_events_per_s` (received within the
//! measured window), `webhook_delivery_ms` (event `at` to receipt),
//! `webhook_events`, `webhook_duplicates`, `webhook_expected`,
//! `webhook_missing` (events the short sessions caused that never came),
//! `webhook_sessions`, `webhook_slow_batches` and the hub's own figures per
//! endpoint (`hub_healthy_delivered`, `hub_dead_failed`, ...); a request
//! whose signature does not verify is an error (`webhook_bad_signature`).

mod hub_status;
mod receiver;
mod sessions;
mod tally;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::rtt;
use crate::failure::Failure;
use crate::plan::WebhooksShape;
use crate::report::Measures;
use crate::worker::{self, Ctx};
use receiver::Role;
use tally::Tally;

/// Runs `webhooks`; the window is the measured phase of the pinging clients.
pub async fn run(ctx: Arc<Ctx>, shape: WebhooksShape) -> Result<(Measures, Duration)> {
    declare(&ctx, &shape);
    let tally = Arc::new(Tally::new(&ctx.plan.run_id, ctx.plan.clients_total));
    let stop = CancellationToken::new();
    let _stop_receivers = stop.clone().drop_guard();
    start_receivers(&ctx, &shape, &tally, &stop).await?;
    if let Some(addr) = shape.dead_endpoint {
        check_dead(&ctx, addr).await;
    }
    let gap = Duration::from_secs_f64(1.0 / shape.client_rate);
    let clients = worker::spawn_clients(&ctx, move |ctx, index| {
        rtt::rtt_client(ctx, index, Some(gap))
    });
    ctx.ramp_done().await;
    let began = ctx.begin_steady();
    tally.open_window(ctx.plan.duration);
    let first = ctx.plan.clients_total;
    let until = began + ctx.plan.duration;
    sessions::drive(
        Arc::clone(&ctx),
        Arc::clone(&tally),
        shape.sessions_per_s,
        until,
        first,
    )
    .await;
    let window = began.elapsed();
    worker::drain(&ctx, clients).await;
    settle(&tally, shape.settle).await;
    let addrs = hub_status::Addrs {
        healthy: shape.receiver,
        slow: shape.slow_receiver,
        dead: shape.dead_endpoint,
    };
    hub_status::record(&ctx, addrs).await;
    let per_s = tally.in_window() as f64 / ctx.plan.duration.as_secs_f64();
    ctx.stats.count(tally::PER_S, per_s.round() as u64);
    ctx.stats.count(tally::EXPECTED, tally.expected());
    ctx.stats.count(tally::MISSING, tally.missing());
    let measures = Measures {
        rtt: true,
        propagation: false,
    };
    Ok((measures, window))
}

/// Names the report's figures so they show even when 0.
fn declare(ctx: &Ctx, shape: &WebhooksShape) {
    let mut counters = vec![
        tally::RECEIVED,
        tally::DUPLICATES,
        tally::MISSING,
        tally::EXPECTED,
        tally::PER_S,
        sessions::SESSIONS,
    ];
    if shape.slow_receiver.is_some() {
        counters.push(receiver::SLOW_BATCHES);
    }
    ctx.stats.declare(&counters, &[tally::DELIVERY_MS]);
}

/// Starts the healthy receiver and, when asked for, the slow one.
async fn start_receivers(
    ctx: &Arc<Ctx>,
    shape: &WebhooksShape,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
) -> Result<()> {
    let healthy = Role::Healthy(Arc::clone(tally));
    receiver::start(
        Arc::clone(ctx),
        shape.receiver,
        &shape.secret,
        healthy,
        stop.clone(),
    )
    .await?;
    if let Some(addr) = shape.slow_receiver {
        let slow = Role::Slow(shape.slow_delay);
        receiver::start(Arc::clone(ctx), addr, &shape.secret, slow, stop.clone()).await?;
    }
    Ok(())
}

/// Counts an error when something accepts connections on the dead endpoint.
async fn check_dead(ctx: &Ctx, addr: SocketAddr) {
    let connect = tokio::net::TcpStream::connect(addr);
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), connect).await {
        ctx.stats.fail(&Failure::WebhookDeadListening);
    }
}

/// Waits until every expected event arrived, at most `limit`.
async fn settle(tally: &Tally, limit: Duration) {
    let bound = Instant::now() + limit;
    while tally.missing() > 0 && Instant::now() < bound {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
