//! Owns the short sessions that make the webhook traffic: at a set rate,
//! each opens a fresh user's WebSocket, sends `end` (the session ends at
//! once, whatever the hub's resume grace) and closes; each such session
//! makes session.started, user.online, session.ended and user.offline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::tally::{ALL_FOUR, STARTED_ONLY, Tally};
use crate::client;
use crate::scenario::tab;
use crate::stats::Attempt;
use crate::worker::{Ctx, Open};

/// Counter of short sessions that got their welcome.
pub const SESSIONS: &str = "webhook_sessions";
/// Short sessions open at once, at most (beyond it the rate falls behind).
const IN_FLIGHT: usize = 4096;
/// How often the pacer starts the sessions that are due.
const TICK: Duration = Duration::from_millis(5);
/// How long sessions still open at the end of the window may take.
const FINISH: Duration = Duration::from_secs(15);

/// Starts `rate` short sessions per second until `until`, then waits
/// (bounded) for the last ones; their indexes start at `first`.
pub async fn drive(ctx: Arc<Ctx>, tally: Arc<Tally>, rate: f64, until: Instant, first: u64) {
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    let began = Instant::now();
    let mut started: u64 = 0;
    let mut tick = tokio::time::interval(TICK);
    while Instant::now() < until {
        tick.tick().await;
        let due = (began.elapsed().as_secs_f64() * rate) as u64;
        while started < due {
            let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                return;
            };
            let (ctx, tally) = (Arc::clone(&ctx), Arc::clone(&tally));
            let index = first + started;
            set.spawn(async move {
                one_session(&ctx, &tally, index).await;
                drop(permit);
            });
            started += 1;
        }
        while set.try_join_next().is_some() {}
    }
    let finished = tokio::time::timeout(FINISH, async { while set.join_next().await.is_some() {} });
    if finished.await.is_err() {
        set.abort_all();
    }
}

/// One short session: open, `end`, close; notes the events it caused.
async fn one_session(ctx: &Ctx, tally: &Tally, index: u64) {
    let open = Open::new(&ctx.plan.target.hub);
    let Some((mut ws, _, _)) = ctx.open_client(index, &open, Attempt::Reconnect).await else {
        return;
    };
    ctx.stats.count(SESSIONS, 1);
    match client::send(&mut ws, r#"{"type":"end"}"#.to_owned()).await {
        Ok(()) => {
            tally.expect(index, ALL_FOUR);
            tab::finish(ctx, ws, tab::End::Due).await;
        }
        Err(failure) => {
            tally.expect(index, STARTED_ONLY);
            tab::lost(ctx, &failure);
        }
    }
}
