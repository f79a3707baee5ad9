//! Owns the `hold` scenario: ramp N clients, each pinging every P (jittered),
//! and hold them for the duration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::tab;
use crate::report::Measures;
use crate::stats::Attempt;
use crate::worker::{self, Ctx};

/// Runs `hold`; the measured window is the hold after the ramp.
pub async fn run(ctx: Arc<Ctx>, ping_interval: Duration) -> Result<(Measures, Duration)> {
    let pings = (!ping_interval.is_zero()).then_some(ping_interval);
    let clients = worker::spawn_clients(&ctx, move |ctx, index| hold_client(ctx, index, pings));
    let window = worker::hold_steady(&ctx).await;
    worker::drain(&ctx, clients).await;
    let measures = Measures {
        rtt: pings.is_some(),
        propagation: false,
    };
    Ok((measures, window))
}

/// One client: connect (timed), hold until stopped or lost.
async fn hold_client(ctx: Arc<Ctx>, index: u64, pings: Option<Duration>) {
    let Some(mut ws) = ctx.connect_client(index, Attempt::Initial).await else {
        return;
    };
    let end = tab::hold_open(&ctx, &mut ws, pings, None).await;
    tab::finish(&ctx, ws, end).await;
}
