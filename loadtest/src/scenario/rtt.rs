//! Owns the `rtt` scenario: every client runs a closed loop of ping -> pong
//! during the measured phase.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

use super::tab::{self, End};
use crate::client::{self, Incoming, Ws};
use crate::failure::Failure;
use crate::report::Measures;
use crate::stats::Attempt;
use crate::worker::{self, Ctx};

/// A pong that takes longer than this counts as lost.
const PONG_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `rtt`; the measured window starts once every client is connected.
pub async fn run(ctx: Arc<Ctx>, client_rate: f64) -> Result<(Measures, Duration)> {
    let gap = (client_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / client_rate));
    let clients = worker::spawn_clients(&ctx, move |ctx, index| rtt_client(ctx, index, gap));
    let window = worker::hold_steady(&ctx).await;
    worker::drain(&ctx, clients).await;
    let measures = Measures {
        rtt: true,
        propagation: false,
    };
    Ok((measures, window))
}

/// One client: connect, wait for the start, ping in a closed loop, at most
/// one ping per `gap` when given.
pub(super) async fn rtt_client(ctx: Arc<Ctx>, index: u64, gap: Option<Duration>) {
    let Some(mut ws) = ctx.connect_client(index, Attempt::Initial).await else {
        return;
    };
    let end = tokio::select! {
        () = ctx.go.cancelled() => closed_loop(&ctx, &mut ws, gap).await,
        end = tab::hold_open(&ctx, &mut ws, None, None) => end,
    };
    tab::finish(&ctx, ws, end).await;
}

/// Ping, wait for its pong, repeat, until stopped or lost.
async fn closed_loop(ctx: &Ctx, ws: &mut Ws, gap: Option<Duration>) -> End {
    let mut id = 0;
    // Paced clients start at random points of their period, so they do not
    // all send in the same millisecond.
    let mut next =
        Instant::now() + gap.map_or(Duration::ZERO, |g| g.mul_f64(rand::random::<f64>()));
    loop {
        if let Some(gap) = gap {
            if !ctx.sleep_until(next).await {
                return End::Stopped;
            }
            next = Instant::now().max(next + gap);
        }
        id += 1;
        let sent = Instant::now();
        if let Err(failure) = client::send(ws, client::ping(id)).await {
            return tab::lost(ctx, &failure);
        }
        match await_pong(ctx, ws, id, sent + PONG_TIMEOUT).await {
            Ok(()) => ctx.stats.round_trip(sent.elapsed()),
            Err(end) => return end,
        }
    }
}

/// Reads until the pong for `id`; `Err` ends the loop.
async fn await_pong(ctx: &Ctx, ws: &mut Ws, id: u64, deadline: Instant) -> Result<(), End> {
    loop {
        let incoming = tokio::select! {
            () = ctx.stop.cancelled() => return Err(End::Stopped),
            () = tokio::time::sleep_until(deadline) => return Err(tab::lost(ctx, &Failure::PongTimeout)),
            incoming = client::next_frame(ws) => incoming,
        };
        match incoming {
            Incoming::Frame(frame) if frame.kind == "pong" && frame.id == Some(id) => return Ok(()),
            Incoming::Frame(frame) if frame.kind == "error" => {
                ctx.stats
                    .fail(&Failure::HubError(frame.detail.unwrap_or_default()));
            }
            Incoming::Frame(_) | Incoming::Other => {}
            Incoming::Closed(_) if ctx.stop.is_cancelled() => return Err(End::Stopped),
            Incoming::Closed(code) => return Err(tab::lost(ctx, &Failure::Closed(code))),
            Incoming::Failed(failure) => return Err(tab::lost(ctx, &failure)),
        }
    }
}
