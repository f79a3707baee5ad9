//! Owns the task that owns the presence map. It applies `Command`s one at a
//! time, publishes each resulting `Change` to the admin feed and the
//! outboxes, and sleeps until the next scheduled deadline.
//!
//! Rooms (contract v1.1 §8) are computed here too: every published session
//! change updates the room index, and each room's member changes go out in
//! one batch per short window (`publish_due_rooms`), rendered once and
//! fanned out by the `RoomFeed`.
//!
//! Local sessions are driven here (timers, liveness); replicas of other
//! nodes' sessions change only through `Command::Replica`. Requests about a
//! replica (terminate, revoke, heartbeat) go to its owner as `RemoteCommand`s.

mod continuity;
mod outputs;
mod rooms;
mod sessions;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::command::{
    Command, HeartbeatOutcome, HeartbeatRequest, PendingMove, RemoteCommand, RemoteRequest,
    ReplicaUpdate, RoomRequest,
};
use super::derive::Thresholds;
use super::liveness::{SessionLiveness, TerminateReason};
use super::resume::{ConnectStep, Connected, ResumeTokens, session_of};
use super::rooms::{RoomFeed, WatchHandle};
use super::schedule::Schedule;
use super::snapshot::render_snapshot;
use super::state::{NewSession, PresenceState, Renewal};
use crate::config::PresenceConfig;
use crate::feed::Feed;
use crate::model::time::millis_of;
use crate::model::time::now_millis;
use crate::model::{Applied, Change, SessionEvent};
use crate::model::{EndCause, Millis, NodeId, RoomName, SessionId, SessionView, Transport, UserId};

/// Where the engine's output goes besides the admin feed.
#[derive(Debug, Default)]
pub struct Outboxes {
    /// Ended sessions for history: local ones, and replicas ended because
    /// their node was lost (the engine waits when it is full).
    pub ended: Option<mpsc::Sender<SessionView>>,
    /// This node's session changes, for other nodes. Overflow policy: the
    /// change is dropped and `republish` is set, so the replicator sends the
    /// whole local state again.
    pub local_changes: Option<mpsc::Sender<Change>>,
    /// Set when a local change could not be queued.
    pub republish: Arc<AtomicBool>,
    /// Requests for sessions held by other nodes.
    pub remote: Option<mpsc::Sender<RemoteCommand>>,
    /// Observers of session starts and ends, user changes and alerts
    /// (`alerts/`, `webhooks/`), each with its own bounded queue. Overflow
    /// policy: the change is dropped for that observer and counted in
    /// `observer_drops`, with a warning; the engine never waits for them.
    pub observers: Vec<mpsc::Sender<Applied>>,
    /// Changes an observer's full queue made it miss.
    pub observer_drops: Arc<std::sync::atomic::AtomicU64>,
}

/// The presence engine: the one writer of the presence map.
pub struct Engine {
    state: PresenceState,
    schedule: Schedule,
    feed: Feed,
    liveness: HashMap<SessionId, Arc<SessionLiveness>>,
    config: PresenceConfig,
    outboxes: Outboxes,
    pending: Vec<Change>,
    /// Replicas ended by a resync without an end record: their live owner
    /// records the real end, so these must not reach history.
    unrecorded: HashSet<SessionId>,
    /// Resume tokens of local WebSocket sessions.
    resume: ResumeTokens,
    /// Room watchers.
    room_feed: RoomFeed,
    /// Watches to start once the current step's changes are in the rooms.
    new_watches: Vec<(SessionId, RoomName, WatchHandle)>,
}

impl Engine {
    /// An engine with an empty map.
    pub fn new(config: PresenceConfig, outboxes: Outboxes) -> Self {
        let thresholds = Thresholds::new(config.idle_after, config.away_after);
        Self {
            state: PresenceState::new(thresholds, millis_of(config.http_session_ttl))
                .with_lifetimes(
                    millis_of(config.resume_grace),
                    millis_of(config.max_session_age),
                )
                .with_timeline_limit(config.timeline_limit),
            schedule: Schedule::default(),
            feed: Feed::new(config.admin_queue),
            liveness: HashMap::new(),
            config,
            outboxes,
            pending: Vec::new(),
            unrecorded: HashSet::new(),
            resume: ResumeTokens::default(),
            room_feed: RoomFeed::default(),
            new_watches: Vec::new(),
        }
    }

    /// Applies commands until every handle is dropped or `stop` fires. The
    /// app fires `stop` only after the engine has answered `Shutdown`.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>, stop: CancellationToken) {
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Millis> = None;
        let room_sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(room_sleep);
        let mut room_armed: Option<Millis> = None;
        loop {
            arm(&mut sleep, &mut armed, self.schedule.next());
            arm(&mut room_sleep, &mut room_armed, self.next_room_batch());
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => {
                        let now = now_millis();
                        self.apply(command, now);
                        // Under a flood of commands the timer branch may wait;
                        // due deadlines are honoured here all the same.
                        if self.schedule.next().is_some_and(|at| at <= now) {
                            self.fire_due(now);
                        }
                        if self.next_room_batch().is_some_and(|at| at <= now) {
                            self.publish_due_rooms(now);
                        }
                    }
                    None => break,
                },
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.fire_due(now_millis());
                }
                () = &mut room_sleep, if room_armed.is_some() => {
                    room_armed = None;
                    self.publish_due_rooms(now_millis());
                }
                () = stop.cancelled() => break,
            }
            self.flush().await;
        }
        tracing::debug!("presence engine stopped");
    }

    fn apply(&mut self, command: Command, now: Millis) {
        match command {
            Command::Open { session, liveness } => self.open(*session, liveness, now),
            Command::Activity { id, page } => self.activity(id, page, now),
            Command::HttpTraffic {
                id,
                bytes_in,
                bytes_out,
            } => self.state.count_http(id, bytes_in, bytes_out),
            Command::SeedPeak(peak) => self.state.seed_peak(peak, now),
            Command::SetManual { id, manual } => {
                let changes = self.state.set_manual(id, manual, now);
                self.commit(id, changes);
            }
            Command::Meta { id, update } => {
                let changes = self.state.apply_meta(id, *update, now);
                self.commit(id, changes);
            }
            Command::End { id, cause } => self.end(id, cause, now),
            Command::Heartbeat { beat, reply } => self.heartbeat(*beat, reply, now),
            Command::Terminate { id, reason, reply } => self.terminate(id, reason, reply, now),
            Command::TerminateUser {
                user,
                reason,
                reply,
            } => self.terminate_user(&user, reason, reply, now),
            Command::Replica(update) => self.apply_replica(update, now),
            Command::Room(request) => self.apply_room(request, now),
            Command::Alert(alert) => self.pending.push(Change::Alert(*alert)),
            Command::Subscribe { org, reply } => {
                let _ = reply.send(self.subscribe(org, now));
            }
            Command::Inspect(inspection) => inspection(&self.state, now),
            Command::Audit(event) => self.pending.push(Change::Audit(*event)),
            Command::Connect {
                session,
                liveness,
                resume,
                reply,
            } => {
                let _ = reply.send(self.connect_step(session, liveness, resume, now));
            }
            Command::RequestHandover {
                owner,
                token,
                user,
                reply,
            } => self.request_handover(owner, token, user, reply),
            Command::HandOver {
                token,
                user,
                to,
                reply,
            } => {
                let _ = reply.send(self.hand_over(&token, &user, to, now));
            }
            Command::Adopt {
                view,
                session,
                liveness,
                reply,
            } => {
                let connected = match view {
                    Some(view) => self.adopt(*view, *session, liveness, now),
                    None => self.connect(*session, liveness, None, now),
                };
                let _ = reply.send(connected);
            }
            Command::Dropped {
                id,
                liveness,
                cause,
                resumable,
                at,
            } => self.dropped(id, &liveness, cause, resumable, at, now),
            Command::Renew { id, renewal } => {
                let changes = self.state.renew(id, renewal, now);
                self.commit(id, changes);
            }
            Command::Shutdown { reply } => {
                let moves = self.shut_down(now);
                let _ = reply.send(moves);
            }
            Command::Moved { offered, taken } => self.moved(offered, taken, now),
            Command::TakeOverDropped { offers, reply } => {
                let _ = reply.send(self.take_over_offers(offers, now));
            }
        }
    }

    /// A ping or page change an admin could see.
    fn activity(&mut self, id: SessionId, page: Option<String>, now: Millis) {
        if let Some(at) = self.liveness.get(&id).map(|l| l.last_activity()) {
            let changes = self.state.record_activity(id, at, page, now);
            self.commit(id, changes);
        }
    }

    /// A new admin subscription with its snapshot.
    fn subscribe(&mut self, org: Option<String>, now: Millis) -> crate::feed::Subscription {
        let snapshot = render_snapshot(&self.state, &self.config.node_id, org.as_deref(), now);
        self.feed.subscribe(org, snapshot)
    }

    fn fire_due(&mut self, now: Millis) {
        for id in self.schedule.pop_due(now) {
            if let Some(at) = self.liveness.get(&id).map(|l| l.last_activity()) {
                self.state.observe_activity(id, at);
            }
            if let Some((cause, ended_at)) = self.state.lifetime_end(id, now) {
                match cause {
                    EndCause::TokenExpired => {
                        self.end_local(id, TerminateReason::TokenExpired, now);
                    }
                    EndCause::MaxAge => self.end_local(id, TerminateReason::MaxAge, now),
                    _ => self.end(id, cause, ended_at),
                }
                continue;
            }
            if self.state.http_expired(id, now) {
                self.end(id, EndCause::Timeout, now);
                continue;
            }
            let changes = self.state.refresh(id, now);
            self.commit(id, changes);
        }
    }

    /// Queues a session's changes for publishing, reschedules it and tells
    /// its connection about a new status.
    fn commit(&mut self, id: SessionId, changes: Vec<Change>) {
        self.schedule.set(id, self.state.next_deadline(id));
        if let (Some(session), Some(liveness)) = (self.state.session(id), self.liveness.get(&id))
            && (liveness.status() != session.status() || liveness.manual() != session.manual())
        {
            liveness.publish_status(session.status(), session.manual());
        }
        self.pending.extend(changes);
    }

    /// Publishes what the last step changed, in order.
    async fn flush(&mut self) {
        let now = now_millis();
        for change in std::mem::take(&mut self.pending) {
            self.state.track_rooms(&change, now);
            self.feed.publish(&change);
            self.observe(now, &change);
            if let Change::Alert(alert) = &change
                && alert.node_id.as_ref() == Some(&self.config.node_id)
            {
                self.replicate(&change);
            }
            let Change::Session { event, session } = &change else {
                continue;
            };
            if *event == SessionEvent::Ended {
                self.room_feed.forget_session(session.session_id);
            }
            let local = session.node_id == self.config.node_id;
            if local {
                log_lifecycle(*event, session);
                self.replicate(&change);
            }
            let lost = session.end_cause == Some(EndCause::NodeLost)
                && !self.unrecorded.remove(&session.session_id);
            if *event == SessionEvent::Ended
                && (local || lost)
                && let Some(ended) = &self.outboxes.ended
                && ended.send(session.clone()).await.is_err()
            {
                tracing::error!(session_id = %session.session_id, "history writer is gone; ended session not recorded");
            }
        }
        self.start_watches(now);
    }
}

/// One info line per local session start and end (no token, no metadata);
/// `event` names it for a SIEM reading `PRESENCE_LOG_FORMAT=json`.
fn log_lifecycle(event: SessionEvent, session: &SessionView) {
    match event {
        SessionEvent::Started => tracing::info!(
            event = "session.started",
            session_id = %session.session_id,
            user_id = %session.user_id,
            org = session.org.as_deref().unwrap_or(""),
            node_id = %session.node_id,
            transport = session.transport.as_str(),
            ip = session.ip.as_deref().unwrap_or(""),
            "session started"
        ),
        SessionEvent::Ended => tracing::info!(
            event = "session.ended",
            session_id = %session.session_id,
            user_id = %session.user_id,
            org = session.org.as_deref().unwrap_or(""),
            node_id = %session.node_id,
            cause = session.end_cause.map_or("", EndCause::as_str),
            duration_s = session.duration_s,
            "session ended"
        ),
        SessionEvent::Updated => {}
    }
}

/// Points `sleep` at `next` unless it already is.
fn arm(sleep: &mut std::pin::Pin<&mut Sleep>, armed: &mut Option<Millis>, next: Option<Millis>) {
    if next == *armed {
        return;
    }
    *armed = next;
    if let Some(at) = next {
        let wait = Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0));
        sleep.as_mut().reset(Instant::now() + wait);
    }
}
