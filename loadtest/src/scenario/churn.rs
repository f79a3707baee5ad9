//! Owns the `churn` scenario: after the ramp, clients close and reopen their
//! connections, `reconnects` times in all, at a target rate; a connection the
//! hub drops (e.g. a hub restart) is reopened at once with a short backoff.
//!
//! Only reconnects are timed (`connect_ms`), so `connect_ms.count` divided by
//! `duration_s` is the accept rate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use rand::Rng as _;
use tokio::time::Instant;

use super::tab::{self, End};
use crate::client::Ws;
use crate::report::Measures;
use crate::stats::Attempt;
use crate::worker::{self, Ctx};

/// Reconnect pacing shared by every client.
#[derive(Debug, Clone, Copy)]
struct Pace {
    reconnects: u64,
    rate: f64,
}

impl Pace {
    /// When reconnect number `g` (worker-wide) is due, from the phase start.
    fn due(self, began: Instant, g: u64) -> Instant {
        if self.rate > 0.0 {
            began + Duration::from_secs_f64(g as f64 / self.rate)
        } else {
            began
        }
    }
}

/// Runs `churn`; the window ends when every reconnect is done (or at the
/// duration when there are none or they take longer).
pub async fn run(ctx: Arc<Ctx>, reconnects: u64, rate: f64) -> Result<(Measures, Duration)> {
    let pace = Pace { reconnects, rate };
    let clients = worker::spawn_clients(&ctx, move |ctx, index| churner(ctx, index, pace));
    ctx.ramp_done().await;
    let began = ctx.begin_steady();
    let bound = began + ctx.plan.duration;
    if reconnects > 0 {
        ctx.all_finished(ctx.plan.clients, bound).await;
    } else {
        ctx.sleep_until(bound).await;
    }
    let window = began.elapsed();
    worker::drain(&ctx, clients).await;
    Ok((Measures::default(), window))
}

/// One client: connect (untimed), then reconnect on its share of the schedule.
async fn churner(ctx: Arc<Ctx>, index: u64, pace: Pace) {
    let mut ws = ctx.connect_client(index, Attempt::InitialUntimed).await;
    if !wait_for_go(&ctx, &mut ws).await {
        ctx.finished.fetch_add(1, Ordering::Relaxed);
        return release(&ctx, ws).await;
    }
    let began = Instant::now();
    let local = index - ctx.plan.first_client;
    let mut g = local;
    while g < pace.reconnects {
        if !hold_until(&ctx, index, &mut ws, pace.due(began, g)).await {
            break;
        }
        if let Some(open) = ws.take() {
            tab::finish(&ctx, open, End::Due).await;
        }
        ws = ctx.connect_client(index, Attempt::Reconnect).await;
        g += ctx.plan.clients;
    }
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    hold_until(&ctx, index, &mut ws, far_future()).await;
    release(&ctx, ws).await;
}

/// Holds the connection until the measured phase starts; false when stopping.
async fn wait_for_go(ctx: &Ctx, ws: &mut Option<Ws>) -> bool {
    let Some(open) = ws.as_mut() else {
        return tokio::select! {
            () = ctx.go.cancelled() => true,
            () = ctx.stop.cancelled() => false,
        };
    };
    let end = tokio::select! {
        () = ctx.go.cancelled() => return true,
        end = tab::hold_open(ctx, open, None, None) => end,
    };
    if end == End::Lost {
        *ws = None;
    }
    end != End::Stopped
}

/// Keeps the client connected until `at`, reopening a dropped connection;
/// false when the worker is stopping.
async fn hold_until(ctx: &Ctx, index: u64, ws: &mut Option<Ws>, at: Instant) -> bool {
    loop {
        match ws.as_mut() {
            Some(open) => match tab::hold_open(ctx, open, None, Some(at)).await {
                End::Due => return true,
                End::Stopped => return false,
                End::Lost => *ws = None,
            },
            None if Instant::now() >= at => return true,
            None => {
                let pause = Duration::from_millis(rand::rng().random_range(50..250));
                if !ctx.sleep_until(Instant::now() + pause).await {
                    return false;
                }
                *ws = ctx.connect_client(index, Attempt::Reconnect).await;
            }
        }
    }
}

/// Closes the connection if it is still open.
async fn release(ctx: &Ctx, ws: Option<Ws>) {
    if let Some(open) = ws {
        tab::finish(ctx, open, End::Stopped).await;
    }
}

/// An instant no run reaches.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
