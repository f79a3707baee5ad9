//! Owns what one open client connection does while it is held: read every
//! frame, answer nothing but ping on schedule, and notice loss.
//!
//! Scenarios decide when to open, close and reconnect; this module only runs
//! one connection until it is due, stopped or lost.

use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use crate::client::{self, Incoming, OwnedFrame, Ws};
use crate::failure::Failure;
use crate::worker::Ctx;

/// Why [`hold_open`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The worker is stopping.
    Stopped,
    /// The `until` instant passed.
    Due,
    /// The connection is gone (already counted as a failure).
    Lost,
}

/// A ping awaiting its pong.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    id: u64,
    sent: Instant,
}

/// Pings on a jittered period, if any.
#[derive(Debug)]
struct Pinger {
    interval: Duration,
    next: Instant,
    next_id: u64,
    outstanding: Option<Outstanding>,
}

impl Pinger {
    /// First ping at a random point of the first period.
    fn new(interval: Duration) -> Self {
        let first = interval.mul_f64(rand::rng().random_range(0.0..1.0));
        Self {
            interval,
            next: Instant::now() + first,
            next_id: 1,
            outstanding: None,
        }
    }

    /// Sends the next ping and schedules the one after (period +-10%).
    async fn ping(&mut self, ctx: &Ctx, ws: &mut Ws) -> Result<(), Failure> {
        if self.outstanding.is_some() {
            ctx.stats.fail(&Failure::PongTimeout);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.outstanding = Some(Outstanding {
            id,
            sent: Instant::now(),
        });
        self.next = Instant::now() + self.interval.mul_f64(rand::rng().random_range(0.9..1.1));
        client::send(ws, client::ping(id)).await
    }

    /// Records the round trip if `id` answers the outstanding ping.
    fn pong(&mut self, ctx: &Ctx, id: Option<u64>) {
        if let Some(out) = self.outstanding
            && id == Some(out.id)
        {
            ctx.stats.round_trip(out.sent.elapsed());
            self.outstanding = None;
        }
    }
}

/// Holds `ws` open until the worker stops, `until` passes, or it is lost,
/// pinging every `pings` (jittered) when given.
pub async fn hold_open(
    ctx: &Ctx,
    ws: &mut Ws,
    pings: Option<Duration>,
    until: Option<Instant>,
) -> End {
    let mut pinger = pings.filter(|p| !p.is_zero()).map(Pinger::new);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let until = until.unwrap_or(far);
    loop {
        let next_ping = pinger.as_ref().map_or(far, |p| p.next);
        tokio::select! {
            () = ctx.stop.cancelled() => return End::Stopped,
            () = tokio::time::sleep_until(until) => return End::Due,
            () = tokio::time::sleep_until(next_ping) => {
                if let Some(p) = pinger.as_mut()
                    && let Err(failure) = p.ping(ctx, ws).await
                {
                    return lost(ctx, &failure);
                }
            }
            incoming = client::next_frame(ws) => {
                if let Some(end) = on_incoming(ctx, incoming, pinger.as_mut()) {
                    return end;
                }
            }
        }
    }
}

/// Handles one read; `Some` when the connection is over.
fn on_incoming(ctx: &Ctx, incoming: Incoming, pinger: Option<&mut Pinger>) -> Option<End> {
    match incoming {
        Incoming::Frame(frame) => {
            on_frame(ctx, &frame, pinger);
            None
        }
        Incoming::Other => None,
        Incoming::Closed(_) if ctx.stop.is_cancelled() => Some(End::Stopped),
        Incoming::Closed(code) => Some(lost(ctx, &Failure::Closed(code))),
        Incoming::Failed(failure) => Some(lost(ctx, &failure)),
    }
}

/// Counts what a text frame says; pongs complete round trips.
fn on_frame(ctx: &Ctx, frame: &OwnedFrame, pinger: Option<&mut Pinger>) {
    match frame.kind.as_str() {
        "pong" => {
            if let Some(p) = pinger {
                p.pong(ctx, frame.id);
            }
        }
        "error" => ctx.stats.fail(&Failure::HubError(detail(frame))),
        "terminated" => ctx.stats.fail(&Failure::Terminated(detail(frame))),
        _ => {}
    }
}

/// Counts an `error` or `terminated` frame read as raw text.
pub fn count_frame(ctx: &Ctx, text: &str) {
    if let Incoming::Frame(frame) = client::parse_frame(text) {
        on_frame(ctx, &frame, None);
    }
}

/// The frame's code or reason, or `unknown`.
fn detail(frame: &OwnedFrame) -> String {
    frame.detail.clone().unwrap_or_else(|| "unknown".into())
}

/// Counts a lost connection.
pub fn lost(ctx: &Ctx, failure: &Failure) -> End {
    ctx.stats.fail(failure);
    ctx.stats.disconnected();
    End::Lost
}

/// Ends a connection the harness still holds: close it (unless lost) and
/// count it as closed.
pub async fn finish(ctx: &Ctx, ws: Ws, end: End) {
    if end != End::Lost {
        client::close(ws).await;
        ctx.stats.disconnected();
    }
}
