//! Owns the `resume` scenario: tabs connect and keep the `resume_token` of
//! their `welcome`, all drop at once, and come back with `?resume=<token>`,
//! spread evenly over `--storm-window` (or, with `--drop hub`, when the hub
//! closed them, after the `retry_after_ms` of its `terminated` frame).
//!
//! Timed: `resume_ms` (start of the reconnect -> `welcome`) and
//! `resume_gap_ms` (drop -> resumed `welcome`). A `welcome` with
//! `resumed:false`, or a reconnect that fails, is `resume_failed`. Admin
//! subscribers (`resume_events`) count the `ended` and `offline` events the
//! storm causes, which should be none.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use futures_util::SinkExt as _;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::resume_events::{self, RESUME_ENDED, RESUME_OFFLINE};
use super::tab::{self, End};
use crate::cli::DropKind;
use crate::client::{self, Incoming, Ws};
use crate::plan::{HUB_DROP_WAIT, ResumeShape};
use crate::report::Measures;
use crate::stats::Attempt;
use crate::worker::{self, Ctx, Open};

/// Report counter: reconnects that did not resume their session.
pub const RESUME_FAILED: &str = "resume_failed";
/// Report histogram: start of the reconnect -> `welcome`.
pub const RESUME_MS: &str = "resume_ms";
/// Report histogram: the drop -> the resumed `welcome`.
pub const RESUME_GAP_MS: &str = "resume_gap_ms";

/// Runs `resume`; the window is from the drop to the last reconnect.
pub async fn run(ctx: Arc<Ctx>, shape: ResumeShape) -> Result<(Measures, Duration)> {
    ctx.stats.declare(
        &[RESUME_FAILED, RESUME_ENDED, RESUME_OFFLINE],
        &[RESUME_MS, RESUME_GAP_MS],
    );
    let watchers = resume_events::start(&ctx, shape.admins).await?;
    let clients = worker::spawn_clients(&ctx, move |ctx, index| resume_tab(ctx, index, shape));
    ctx.ramp_done().await;
    let began = ctx.begin_steady();
    let wait = match shape.drop {
        DropKind::Hub => HUB_DROP_WAIT,
        DropKind::Eof | DropKind::Close => Duration::ZERO,
    };
    let bound = began + wait + shape.storm_window + ctx.plan.connect_timeout * 2;
    ctx.all_finished(ctx.plan.clients, bound).await;
    let window = began.elapsed();
    ctx.sleep_until(Instant::now() + ctx.plan.duration).await;
    worker::drain(&ctx, clients).await;
    worker::drain(&ctx, watchers).await;
    Ok((Measures::default(), window))
}

/// One tab: connect, hold until the storm, drop, resume, hold until stopped.
async fn resume_tab(ctx: Arc<Ctx>, index: u64, shape: ResumeShape) {
    let Some((mut ws, welcome, _)) = ctx
        .open_client(index, &Open::new(&ctx.plan.target.hub), Attempt::Initial)
        .await
    else {
        ctx.finished.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let end = if shape.drop == DropKind::Hub {
        End::Due // the hub decides when, maybe before the ramp is over
    } else {
        tokio::select! {
            () = ctx.go.cancelled() => End::Due,
            end = tab::hold_open(&ctx, &mut ws, None, None) => end,
        }
    };
    let (Some(token), End::Due) = (welcome.resume_token, end) else {
        ctx.stats.count(RESUME_FAILED, u64::from(end == End::Due));
        ctx.finished.fetch_add(1, Ordering::Relaxed);
        tab::finish(&ctx, ws, end).await;
        return;
    };
    let Some((dropped, back_at)) = drop_tab(&ctx, ws, index, shape).await else {
        ctx.finished.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if !ctx.sleep_until(back_at).await {
        return;
    }
    let resumed = reconnect(&ctx, index, &token, dropped).await;
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    if let Some(mut ws) = resumed {
        let end = tab::hold_open(&ctx, &mut ws, None, None).await;
        tab::finish(&ctx, ws, end).await;
    }
}

/// Drops the tab as `shape` says; returns when it dropped and when it
/// comes back (`None` when the worker stopped or the hub never closed it).
async fn drop_tab(
    ctx: &Ctx,
    mut ws: Ws,
    index: u64,
    shape: ResumeShape,
) -> Option<(Instant, Instant)> {
    let now = Instant::now();
    let local = index - ctx.plan.first_client;
    let spread = shape
        .storm_window
        .mul_f64(local as f64 / ctx.plan.clients.max(1) as f64);
    match shape.drop {
        DropKind::Eof => drop(ws),
        DropKind::Close => {
            let _ = ws.send(Message::Close(None)).await;
            drop(ws);
        }
        DropKind::Hub => {
            let (dropped, retry_after) = await_hub_close(ctx, &mut ws).await?;
            ctx.stats.disconnected();
            return Some((dropped, dropped + retry_after));
        }
    }
    ctx.stats.disconnected();
    Some((now, now + spread))
}

/// Reads until the hub closes the socket; returns when it said so (its
/// `terminated` frame, else the close) and the `retry_after_ms` it asked for.
async fn await_hub_close(ctx: &Ctx, ws: &mut Ws) -> Option<(Instant, Duration)> {
    let bound = Instant::now() + HUB_DROP_WAIT;
    let mut told: Option<(Instant, Duration)> = None;
    loop {
        let incoming = tokio::select! {
            () = ctx.stop.cancelled() => return None,
            () = tokio::time::sleep_until(bound) => return None,
            incoming = client::next_frame(ws) => incoming,
        };
        match incoming {
            Incoming::Frame(frame) if frame.kind == "terminated" => {
                let retry = Duration::from_millis(frame.retry_after_ms.unwrap_or(0));
                told = Some((Instant::now(), retry));
            }
            Incoming::Frame(_) | Incoming::Other => {}
            Incoming::Closed(_) | Incoming::Failed(_) => {
                return Some(told.unwrap_or((Instant::now(), Duration::ZERO)));
            }
        }
    }
}

/// Reconnects with `?resume=<token>` to the peer node (else the same one);
/// records the timings and counts a failed resume.
async fn reconnect(ctx: &Ctx, index: u64, token: &str, dropped: Instant) -> Option<Ws> {
    let open = Open {
        endpoint: ctx
            .plan
            .target
            .peer
            .as_ref()
            .unwrap_or(&ctx.plan.target.hub),
        resume: Some(token),
        config: client::client_config(),
    };
    let Some((ws, welcome, latency)) = ctx.open_client(index, &open, Attempt::Reconnect).await
    else {
        ctx.stats.count(RESUME_FAILED, 1);
        return None;
    };
    ctx.stats.record_extra(RESUME_MS, &[latency]);
    if welcome.resumed == Some(true) {
        ctx.stats.record_extra(RESUME_GAP_MS, &[dropped.elapsed()]);
    } else {
        ctx.stats.count(RESUME_FAILED, 1);
    }
    Some(ws)
}
