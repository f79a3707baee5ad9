//! Owns the `propagation` scenario: clients toggle their manual status
//! (busy, null, busy, ...) on a schedule while admin subscribers time the
//! `updated` events those changes cause.
//!
//! Each change causes exactly one event per subscriber, so the report's
//! sample count equals changes x subscribers; anything unmatched is counted
//! as `propagation_missing`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::admin::{self, Pending};
use super::tab::{self, End};
use crate::client::{self, Ws};
use crate::failure::Failure;
use crate::report::Measures;
use crate::stats::Attempt;
use crate::worker::{self, Ctx};

/// How long to wait for the last events after the last change.
const GRACE: Duration = Duration::from_secs(3);

/// The schedule every client follows.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    interval: Duration,
    changes: u32,
    admins: u32,
}

/// Runs `propagation`; the window is from the first change to the last event.
pub async fn run(
    ctx: Arc<Ctx>,
    interval: Duration,
    changes: u32,
    admins: u32,
) -> Result<(Measures, Duration)> {
    let schedule = Schedule {
        interval,
        changes,
        admins,
    };
    let pending = Arc::new(Pending::new(admins, ctx.plan.clients));
    let watchers = start_admins(&ctx, admins, &pending).await?;
    let clients = worker::spawn_clients(&ctx, {
        let pending = Arc::clone(&pending);
        move |ctx, index| changer(ctx, index, schedule, Arc::clone(&pending))
    });
    ctx.ramp_done().await;
    let began = ctx.begin_steady();
    let bound = began + interval.saturating_mul(changes) + GRACE;
    ctx.all_finished(ctx.plan.clients, bound).await;
    await_events(&pending, Instant::now() + GRACE).await;
    let window = began.elapsed();
    ctx.stats
        .fail_n(&Failure::PropagationMissing, pending.outstanding());
    worker::drain(&ctx, clients).await;
    worker::drain(&ctx, watchers).await;
    let measures = Measures {
        rtt: false,
        propagation: true,
    };
    Ok((measures, window))
}

/// Connects the admin subscribers (snapshot read) before any client.
async fn start_admins(ctx: &Arc<Ctx>, admins: u32, pending: &Arc<Pending>) -> Result<JoinSet<()>> {
    let mut set = JoinSet::new();
    for admin in 0..admins {
        let ws = match admin::subscribe(ctx).await {
            Ok(ws) => ws,
            Err(failure) => bail!("admin stream did not open: {}", failure.key()),
        };
        set.spawn(admin::watch(
            Arc::clone(ctx),
            admin,
            ws,
            Some(Arc::clone(pending)),
        ));
    }
    Ok(set)
}

/// Waits until every change was matched, or `bound`.
async fn await_events(pending: &Pending, bound: Instant) {
    while pending.outstanding() > 0 && Instant::now() < bound {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One client: connect, then make its changes, spread evenly over the interval.
async fn changer(ctx: Arc<Ctx>, index: u64, schedule: Schedule, pending: Arc<Pending>) {
    let Some(mut ws) = ctx.connect_client(index, Attempt::Initial).await else {
        ctx.finished.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut end = tokio::select! {
        () = ctx.go.cancelled() => End::Due,
        end = tab::hold_open(&ctx, &mut ws, None, None) => end,
    };
    if end == End::Due {
        end = make_changes(&ctx, &mut ws, index, schedule, &pending).await;
    }
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    if end == End::Due {
        end = tab::hold_open(&ctx, &mut ws, None, None).await;
    }
    tab::finish(&ctx, ws, end).await;
}

/// Sends `changes` manual-status toggles on schedule, reading in between.
async fn make_changes(
    ctx: &Ctx,
    ws: &mut Ws,
    index: u64,
    schedule: Schedule,
    pending: &Pending,
) -> End {
    let local = index - ctx.plan.first_client;
    let offset = schedule
        .interval
        .mul_f64(local as f64 / ctx.plan.clients.max(1) as f64);
    let first = Instant::now() + offset;
    for k in 0..schedule.changes {
        let at = first + schedule.interval.saturating_mul(k);
        let end = tab::hold_open(ctx, ws, None, Some(at)).await;
        if end != End::Due {
            return end;
        }
        let busy = k % 2 == 0;
        let missed = pending.mark(schedule.admins, local, ctx.now_ns(), busy);
        ctx.stats.fail_n(&Failure::PropagationMissing, missed);
        if let Err(failure) = client::send(ws, client::manual_status(busy)).await {
            return tab::lost(ctx, &failure);
        }
        ctx.stats.status_changed();
    }
    End::Due
}
