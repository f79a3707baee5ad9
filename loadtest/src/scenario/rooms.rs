//! Owns the `rooms` scenario: every client joins (and so watches) one room,
//! members change their page on a per-room schedule, and every watcher
//! checks `seq` and times each change until it has applied it.
//!
//! Client `index` is in room `index % rooms` at position `index / rooms`;
//! with a peer node, odd positions connect there, so each room has half its
//! members on each node. A change is a `ping` whose `page` is `/c/<send time
//! in Unix microseconds>`, so a watcher in any worker process on the same
//! host can time it (`room_convergence_ms`). After the changes and
//! `--settle`, `room_check` compares every view with the hub's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures_util::StreamExt as _;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::room_check;
use super::room_view::{Layout, PAGE_PREFIX, View};
use super::tab::{self, End};
use crate::client::{self, Ws};
use crate::failure::Failure;
use crate::plan::{Plan, RoomsShape};
use crate::report::Measures;
use crate::stats::Attempt;
use crate::target::Endpoint;
use crate::worker::{self, Ctx, Open};

/// Report counter: `presence` frames whose `seq` did not follow.
pub const ROOM_GAPS: &str = "room_gaps";
/// Report counter: `room` snapshots after the first (hub resyncs).
pub const ROOM_RESYNCS: &str = "room_resyncs";
/// Report counter: watchers whose members differed from the hub's.
pub const ROOM_MISMATCHES: &str = "room_mismatches";
/// Report counter: changes sent.
pub const ROOM_CHANGES: &str = "room_changes";
/// Report counter: changes x members of the changer's room (the samples a
/// run without resyncs ends with).
pub const ROOM_DELIVERIES: &str = "room_deliveries_expected";
/// Report histogram: send -> applied by a watcher.
pub const ROOM_CONVERGENCE: &str = "room_convergence_ms";

/// How long the steady phase waits for every member's snapshot.
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// Changes start this long after the steady phase begins, so members in
/// other worker processes (whose ramps end a little apart) and on the other
/// node have joined before the first change.
const START_DELAY: Duration = Duration::from_millis(500);

/// What the members of one worker share.
#[derive(Debug)]
pub struct Shared {
    /// The run's shape.
    pub shape: RoomsShape,
    /// One view per client of this worker, by local index.
    pub views: Vec<Mutex<View>>,
    /// Members whose first snapshot arrived.
    joined: AtomicU64,
}

impl Shared {
    fn new(plan: &Plan, shape: RoomsShape) -> Self {
        let views = (0..plan.clients)
            .map(|local| {
                let room = (plan.first_client + local) % shape.rooms;
                Mutex::new(View::new(layout(plan, shape, room)))
            })
            .collect();
        Self {
            shape,
            views,
            joined: AtomicU64::new(0),
        }
    }

    /// The view of client `local`, tolerating a poisoned lock.
    pub fn view(&self, local: u64) -> Option<std::sync::MutexGuard<'_, View>> {
        let view = self.views.get(usize::try_from(local).ok()?)?;
        Some(view.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How user ids map to slots of room `room`.
pub fn layout(plan: &Plan, shape: RoomsShape, room: u64) -> Layout {
    Layout {
        prefix: format!("{}-", plan.run_id),
        rooms: shape.rooms,
        room,
        slots: usize::try_from(members_of(plan.clients_total, shape.rooms, room)).unwrap_or(0),
    }
}

/// Members of room `room` when `clients` are spread over `rooms`.
pub fn members_of(clients: u64, rooms: u64, room: u64) -> u64 {
    (clients + rooms - 1 - room) / rooms
}

/// The name of room `room` of this run.
pub fn room_name(plan: &Plan, room: u64) -> String {
    format!("{}/room-{room}", plan.run_id)
}

/// Runs `rooms`; the window is the time changes were made.
pub async fn run(ctx: Arc<Ctx>, shape: RoomsShape) -> Result<(Measures, Duration)> {
    ctx.stats.declare(
        &[
            ROOM_GAPS,
            ROOM_RESYNCS,
            ROOM_MISMATCHES,
            ROOM_CHANGES,
            ROOM_DELIVERIES,
        ],
        &[ROOM_CONVERGENCE],
    );
    let shared = Arc::new(Shared::new(&ctx.plan, shape));
    let clients = worker::spawn_clients(&ctx, {
        let shared = Arc::clone(&shared);
        move |ctx, index| member(ctx, index, Arc::clone(&shared))
    });
    ctx.ramp_done().await;
    await_joined(&ctx, &shared).await;
    let began = ctx.begin_steady();
    ctx.sleep_until(began + START_DELAY + ctx.plan.duration)
        .await;
    let window = began.elapsed().saturating_sub(START_DELAY);
    ctx.sleep_until(Instant::now() + shape.settle).await;
    if !ctx.stop.is_cancelled() {
        room_check::verify(&ctx, &shared).await;
    }
    worker::drain(&ctx, clients).await;
    Ok((Measures::default(), window))
}

/// Waits (bounded) until every connected member has its first snapshot.
async fn await_joined(ctx: &Ctx, shared: &Shared) {
    let bound = Instant::now() + JOIN_WAIT;
    while shared.joined.load(Ordering::Relaxed) < ctx.stats.ever_connected()
        && Instant::now() < bound
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The node client `index` connects to.
fn node_for(ctx: &Ctx, index: u64, shape: RoomsShape) -> &Endpoint {
    match &ctx.plan.target.peer {
        Some(peer) if (index / shape.rooms) % 2 == 1 => peer,
        _ => &ctx.plan.target.hub,
    }
}

/// One member: connect, join, then read and change on schedule.
async fn member(ctx: Arc<Ctx>, index: u64, shared: Arc<Shared>) {
    let shape = shared.shape;
    let open = Open {
        endpoint: node_for(&ctx, index, shape),
        resume: None,
        config: client::room_config(),
    };
    let Some((mut ws, _, _)) = ctx.open_client(index, &open, Attempt::Initial).await else {
        return;
    };
    let room = index % shape.rooms;
    let end = match client::send(&mut ws, client::join(&room_name(&ctx.plan, room))).await {
        Ok(()) => take_part(&ctx, &mut ws, index, &shared).await,
        Err(failure) => tab::lost(&ctx, &failure),
    };
    tab::finish(&ctx, ws, end).await;
}

/// When one member changes: every `members / rate`, from its turn in the
/// room's round-robin (rooms staggered within one slot).
#[derive(Debug, Clone, Copy)]
struct Turns {
    first: Duration,
    every: Duration,
    members: u64,
}

impl Turns {
    fn of(ctx: &Ctx, index: u64, shape: RoomsShape) -> Option<Self> {
        if shape.changes_per_s <= 0.0 {
            return None;
        }
        let room = index % shape.rooms;
        let members = members_of(ctx.plan.clients_total, shape.rooms, room);
        let slot = 1.0 / shape.changes_per_s;
        let position = (index / shape.rooms) as f64;
        let stagger = room as f64 / shape.rooms as f64;
        Some(Self {
            first: Duration::from_secs_f64(slot * (position + stagger)),
            every: Duration::from_secs_f64(slot * members as f64),
            members,
        })
    }
}

/// Reads frames into the view until stopped or lost; makes the member's
/// changes during the measured phase.
async fn take_part(ctx: &Ctx, ws: &mut Ws, index: u64, shared: &Shared) -> End {
    let local = index - ctx.plan.first_client;
    let turns = Turns::of(ctx, index, shared.shape);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let (mut next, mut until) = (None::<Instant>, far);
    let mut ping_id = 0;
    loop {
        let due = next.unwrap_or(far);
        tokio::select! {
            () = ctx.stop.cancelled() => return End::Stopped,
            () = ctx.go.cancelled(), if next.is_none() && until == far => {
                let now = Instant::now() + START_DELAY;
                until = now + ctx.plan.duration;
                next = turns.map(|t| now + t.first).filter(|at| *at < until);
            }
            () = tokio::time::sleep_until(due) => {
                ping_id += 1;
                if let Err(failure) = client::send(ws, change(ping_id)).await {
                    return tab::lost(ctx, &failure);
                }
                if let Some(t) = turns {
                    ctx.stats.count(ROOM_CHANGES, 1);
                    ctx.stats.count(ROOM_DELIVERIES, t.members);
                    next = Some(due + t.every).filter(|at| *at < until);
                }
            }
            message = ws.next() => {
                if let Some(end) = on_message(ctx, shared, local, message) {
                    return end;
                }
            }
        }
    }
}

/// A change: a ping whose page carries the send time.
fn change(id: u64) -> String {
    client::ping_page(id, &format!("{PAGE_PREFIX}{}", unix_micros()))
}

/// Wall-clock microseconds since the Unix epoch (shared by every process on
/// the host, unlike a monotonic clock).
fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Handles one read; `Some` when the connection is over.
fn on_message(
    ctx: &Ctx,
    shared: &Shared,
    local: u64,
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<End> {
    match message {
        Some(Ok(Message::Text(text))) => {
            on_text(ctx, shared, local, text.as_str());
            None
        }
        Some(Ok(Message::Close(_))) if ctx.stop.is_cancelled() => Some(End::Stopped),
        Some(Ok(Message::Close(frame))) => {
            let code = frame.map_or(1005, |f| u16::from(f.code));
            Some(tab::lost(ctx, &Failure::Closed(code)))
        }
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(tab::lost(ctx, &Failure::from_ws(&e))),
        None if ctx.stop.is_cancelled() => Some(End::Stopped),
        None => Some(tab::lost(ctx, &Failure::Closed(0))),
    }
}

/// Applies a room frame to the member's view and records what it found;
/// counts `error` and `terminated` frames as `tab` does.
fn on_text(ctx: &Ctx, shared: &Shared, local: u64, text: &str) {
    let now = unix_micros();
    let applied = shared
        .view(local)
        .and_then(|mut view| view.apply(text, now));
    let Some(applied) = applied else {
        tab::count_frame(ctx, text);
        return;
    };
    if applied.joined {
        shared.joined.fetch_add(1, Ordering::Relaxed);
    }
    ctx.stats.count(ROOM_GAPS, u64::from(applied.gap));
    ctx.stats.count(ROOM_RESYNCS, u64::from(applied.resync));
    ctx.stats.record_extra(ROOM_CONVERGENCE, &applied.samples);
}
