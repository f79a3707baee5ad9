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

use std::collections::{BTreeMap, HashMap, HashSet};
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
            Command::Activity { id, page } => {
                if let Some(at) = self.liveness.get(&id).map(|l| l.last_activity()) {
                    let changes = self.state.record_activity(id, at, page, now);
                    self.commit(id, changes);
                }
            }
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
                let snapshot =
                    render_snapshot(&self.state, &self.config.node_id, org.as_deref(), now);
                let subscription = self.feed.subscribe(org, snapshot);
                let _ = reply.send(subscription);
            }
            Command::Inspect(inspection) => inspection(&self.state, now),
            Command::Audit(event) => self.pending.push(Change::Audit(*event)),
            Command::Connect {
                session,
                liveness,
                resume,
                reply,
            } => {
                let step = match resume {
                    Some(token) if let Some(owner) = self.owner_elsewhere(&token) => {
                        ConnectStep::Elsewhere {
                            owner,
                            token,
                            session,
                            liveness,
                        }
                    }
                    resume => {
                        ConnectStep::Done(self.connect(*session, liveness, resume.as_deref(), now))
                    }
                };
                let _ = reply.send(step);
            }
            Command::RequestHandover {
                owner,
                token,
                user,
                reply,
            } => self.forward(RemoteCommand {
                node: owner,
                request: RemoteRequest::Handover {
                    token,
                    user_id: user,
                    to: self.config.node_id.clone(),
                    reply,
                },
            }),
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
            Command::Moved { id, to } => self.moved(id, to, now),
            Command::TakeOverDropped {
                view,
                token,
                dropped,
                reply,
            } => {
                let _ = reply.send(self.take_over_dropped(*view, token, dropped, now));
            }
        }
    }

    fn is_local(&self, id: SessionId) -> bool {
        self.state
            .session(id)
            .is_some_and(|s| *s.node_id() == self.config.node_id)
    }

    fn local_sessions(&self) -> Vec<SessionId> {
        self.state.sessions_of_node(&self.config.node_id)
    }

    fn open(&mut self, session: NewSession, liveness: Option<Arc<SessionLiveness>>, now: Millis) {
        let id = session.id;
        let user = session.user_id.clone();
        let traffic = liveness.as_ref().map(|l| l.traffic().clone());
        if let Some(liveness) = liveness {
            self.liveness.insert(id, liveness);
        }
        let changes = self.state.open(session, now);
        if let Some(traffic) = traffic {
            self.state.attach_traffic(id, traffic);
        }
        self.commit(id, changes);
        self.enforce_session_limit(&user, id, now);
    }

    /// Terminates the user's oldest sessions (on any node) beyond the limit.
    fn enforce_session_limit(&mut self, user: &UserId, newest: SessionId, now: Millis) {
        let evicted: Vec<SessionId> = self
            .state
            .over_limit(user, self.config.max_sessions_per_user)
            .into_iter()
            .filter(|id| *id != newest)
            .collect();
        for id in evicted {
            let (reply, _) = oneshot::channel();
            self.terminate(id, TerminateReason::SessionLimit, reply, now);
        }
    }

    fn heartbeat(
        &mut self,
        beat: HeartbeatRequest,
        reply: oneshot::Sender<HeartbeatOutcome>,
        now: Millis,
    ) {
        let owner = self.state.session(beat.id).map(|s| s.node_id().clone());
        match owner {
            Some(node) if node != self.config.node_id => {
                self.forward(RemoteCommand {
                    node,
                    request: RemoteRequest::Heartbeat { beat, reply },
                });
            }
            _ => {
                let _ = reply.send(self.local_heartbeat(beat, now));
            }
        }
    }

    fn local_heartbeat(&mut self, beat: HeartbeatRequest, now: Millis) -> HeartbeatOutcome {
        let id = beat.id;
        let owned = self
            .state
            .session(id)
            .is_some_and(|s| *s.user_id() == beat.user && s.transport() == Transport::Http);
        if !owned || self.state.http_expired(id, now) {
            return HeartbeatOutcome::NotFound;
        }
        if beat.end {
            self.end(id, EndCause::ClientClosed, now);
            return HeartbeatOutcome::Ended;
        }
        self.state.record_heartbeat(id, now);
        self.state.renew_expiry(id, beat.expires_at);
        let mut changes = self.state.apply_meta(id, beat.update, now);
        if beat.active {
            changes.extend(self.state.record_activity(id, now, None, now));
        } else {
            changes.extend(self.state.refresh(id, now));
        }
        self.commit(id, changes);
        match self.state.session(id) {
            Some(session) => HeartbeatOutcome::Alive(session.status()),
            None => HeartbeatOutcome::NotFound,
        }
    }

    /// Terminates a session here, or asks its owner to.
    fn terminate(
        &mut self,
        id: SessionId,
        reason: TerminateReason,
        reply: oneshot::Sender<bool>,
        now: Millis,
    ) {
        let Some(owner) = self.state.session(id).map(|s| s.node_id().clone()) else {
            let _ = reply.send(false);
            return;
        };
        if owner == self.config.node_id {
            self.end_local(id, reason, now);
            let _ = reply.send(true);
        } else {
            self.forward(RemoteCommand {
                node: owner,
                request: RemoteRequest::Terminate {
                    session_id: id,
                    reason,
                    reply,
                },
            });
        }
    }

    fn terminate_user(
        &mut self,
        user: &UserId,
        reason: TerminateReason,
        reply: oneshot::Sender<usize>,
        now: Millis,
    ) {
        let mut local = 0;
        let mut remote_nodes: BTreeMap<NodeId, ()> = BTreeMap::new();
        for id in self.state.sessions_of(user) {
            if self.is_local(id) {
                self.end_local(id, reason, now);
                local += 1;
            } else if let Some(node) = self.state.session(id).map(|s| s.node_id().clone()) {
                remote_nodes.insert(node, ());
            }
        }
        let answers: Vec<oneshot::Receiver<usize>> = remote_nodes
            .into_keys()
            .map(|node| {
                let (node_reply, answer) = oneshot::channel();
                self.forward(RemoteCommand {
                    node,
                    request: RemoteRequest::TerminateUser {
                        user_id: user.clone(),
                        reason,
                        reply: node_reply,
                    },
                });
                answer
            })
            .collect();
        if answers.is_empty() {
            let _ = reply.send(local);
            return;
        }
        // Sums the owners' answers without holding up the engine.
        tokio::spawn(async move {
            let mut total = local;
            for answer in answers {
                total += answer.await.unwrap_or(0);
            }
            let _ = reply.send(total);
        });
    }

    /// Hands a request to the replicator; dropping it answers "not found".
    fn forward(&self, command: RemoteCommand) {
        let Some(remote) = &self.outboxes.remote else {
            command.refuse();
            return;
        };
        if let Err(err) = remote.try_send(command) {
            tracing::warn!("cross-node request refused: replicator queue full");
            match err {
                mpsc::error::TrySendError::Full(command)
                | mpsc::error::TrySendError::Closed(command) => command.refuse(),
            }
        }
    }

    /// Ends a local session and tells its connection why.
    fn end_local(&mut self, id: SessionId, reason: TerminateReason, now: Millis) {
        if let Some(liveness) = self.liveness.get(&id) {
            liveness.request_terminate(reason);
        }
        self.end(id, reason.end_cause(), now);
    }

    fn end(&mut self, id: SessionId, cause: EndCause, now: Millis) {
        let changes = self.state.end(id, cause, now);
        self.liveness.remove(&id);
        self.resume.forget(id);
        self.schedule.set(id, None);
        self.pending.extend(changes);
    }

    fn apply_replica(&mut self, update: ReplicaUpdate, now: Millis) {
        match update {
            ReplicaUpdate::Upsert(view) if view.node_id != self.config.node_id => {
                let changes = self.state.upsert_replica(*view, now);
                self.pending.extend(changes);
            }
            ReplicaUpdate::End(view) if view.node_id != self.config.node_id => {
                let changes = self.state.end_replica(&view);
                self.pending.extend(changes);
            }
            ReplicaUpdate::ReplaceNode {
                node,
                sessions,
                ended,
            } if node != self.config.node_id => {
                let keep: HashSet<SessionId> = sessions.iter().map(|s| s.session_id).collect();
                for view in ended.iter().filter(|v| !keep.contains(&v.session_id)) {
                    let changes = self.state.end_replica(view);
                    self.pending.extend(changes);
                }
                for id in self.state.sessions_of_node(&node) {
                    if !keep.contains(&id) {
                        let changes = self.state.end(id, EndCause::NodeLost, now);
                        self.unrecorded.insert(id);
                        self.pending.extend(changes);
                    }
                }
                for view in sessions {
                    let changes = self.state.upsert_replica(view, now);
                    self.pending.extend(changes);
                }
            }
            ReplicaUpdate::NodeGone { node, cause } if node != self.config.node_id => {
                for id in self.state.sessions_of_node(&node) {
                    let changes = self.state.end(id, cause, now);
                    self.pending.extend(changes);
                }
            }
            // The old owner of a session handed over to this node (§9)
            // announces the move; this node already owns it, or will.
            ReplicaUpdate::Upsert(view) if view.node_id == self.config.node_id => {
                tracing::debug!(session_id = %view.session_id, "a session handed over to this node");
            }
            _ => tracing::warn!("ignoring a replica update about this node's own sessions"),
        }
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

    /// A new socket: takes over the session its token names when that is a
    /// live local WebSocket session of the same user, else opens a new one.
    fn connect(
        &mut self,
        session: NewSession,
        liveness: Arc<SessionLiveness>,
        resume: Option<&str>,
        now: Millis,
    ) -> Connected {
        let resumable = resume.and_then(|token| self.resumable(token, &session.user_id));
        let Some(id) = resumable else {
            let id = session.id;
            self.open(session, Some(liveness), now);
            return Connected {
                session_id: id,
                resumed: false,
                resume_token: self.resume.issue(id),
            };
        };
        if let Some(record) = self.state.session(id) {
            liveness.reset_activity(record.last_activity());
        }
        if let Some(old) = self.liveness.insert(id, liveness) {
            old.request_replaced();
        }
        let renewal = Renewal {
            name: session.name,
            org: session.org,
            expires_at: session.expires_at,
        };
        let changes = self.state.take_over(id, renewal, session.meta.page, now);
        self.commit(id, changes);
        Connected {
            session_id: id,
            resumed: true,
            resume_token: self.resume.issue(id),
        }
    }

    /// The live local WebSocket session of `user` that `token` resumes.
    fn resumable(&self, token: &str, user: &UserId) -> Option<SessionId> {
        let id = self.resume.peek(token)?;
        let session = self.state.session(id)?;
        let ok =
            self.is_local(id) && session.user_id() == user && session.transport() == Transport::Ws;
        ok.then_some(id)
    }

    /// The other node that owns the session `token` names, when the token
    /// is not one of this node's.
    fn owner_elsewhere(&self, token: &str) -> Option<NodeId> {
        if self.resume.peek(token).is_some() {
            return None;
        }
        let owner = self.state.session(session_of(token)?)?.node_id().clone();
        (owner != self.config.node_id).then_some(owner)
    }

    /// Hands a local session over to node `to`, whose socket presented its
    /// token: the old socket (if open) closes 4003 without `terminated`, the
    /// session becomes a replica owned by `to` (one admin `updated` here),
    /// and its removal from this node's published state goes out as an
    /// upsert naming the new owner. Nothing ends, nothing starts.
    fn hand_over(
        &mut self,
        token: &str,
        user: &UserId,
        to: NodeId,
        now: Millis,
    ) -> Option<SessionView> {
        if to == self.config.node_id {
            return None;
        }
        let id = self.resumable(token, user)?;
        let mut view = self.state.session(id)?.view(now);
        if let Some(old) = self.liveness.remove(&id) {
            old.request_replaced();
        }
        self.resume.forget(id);
        self.schedule.set(id, None);
        view.node_id = to;
        view.reconnecting = false;
        let changes = self.state.upsert_replica(view.clone(), now);
        self.pending.extend(changes);
        self.replicate(&Change::Session {
            event: SessionEvent::Updated,
            session: view.clone(),
        });
        Some(view)
    }

    /// Ends the local sessions for shutdown. In a cluster with a resume
    /// grace a WebSocket session is not ended: its socket gets `terminated`
    /// `shutdown`, the session turns `reconnecting`, and it is offered to
    /// another node, which keeps it for the rest of its grace (§9).
    fn shut_down(&mut self, now: Millis) -> Vec<PendingMove> {
        let hand_on = self.outboxes.remote.is_some() && self.state.resume_grace() > 0;
        let mut moves = Vec::new();
        for id in self.local_sessions() {
            let token = self.resume.token_of(id).map(str::to_string);
            let (true, Some(token)) = (hand_on, token) else {
                self.end_local(id, TerminateReason::Shutdown, now);
                continue;
            };
            if let Some(liveness) = self.liveness.remove(&id) {
                liveness.request_terminate(TerminateReason::Shutdown);
            }
            // Only the node that takes it can resume it from now on.
            self.resume.forget(id);
            let changes = self.state.mark_dropped(id, EndCause::Shutdown, now, now);
            self.commit(id, changes);
            let (Some(view), Some((dropped_at, cause))) = (
                self.state.session(id).map(|s| s.view(now)),
                self.state.drop_of(id),
            ) else {
                continue;
            };
            let (reply, answer) = oneshot::channel();
            self.forward(RemoteCommand {
                node: self.config.node_id.clone(),
                request: RemoteRequest::TakeOver {
                    session: Box::new(view),
                    token,
                    dropped_at,
                    cause,
                    reply,
                },
            });
            moves.push(PendingMove { id, answer });
        }
        moves
    }

    /// Where a session offered at shutdown went: it becomes a replica of
    /// the node that took it (and leaves this node's published state), or,
    /// taken by none, ends `shutdown` here.
    fn moved(&mut self, id: SessionId, to: Option<NodeId>, now: Millis) {
        if !self.is_local(id) {
            return;
        }
        let to = to.filter(|node| *node != self.config.node_id);
        let (Some(to), Some(record)) = (to, self.state.session(id)) else {
            self.end(id, EndCause::Shutdown, now);
            return;
        };
        let mut view = record.view(now);
        view.node_id = to;
        self.schedule.set(id, None);
        let changes = self.state.upsert_replica(view.clone(), now);
        self.pending.extend(changes);
        self.replicate(&Change::Session {
            event: SessionEvent::Updated,
            session: view,
        });
    }

    /// Keeps a dropped session of a node that shuts down, `reconnecting`,
    /// for the rest of its grace: its tab may resume it here or on any
    /// node; if none does, this node ends it with the drop's cause.
    fn take_over_dropped(
        &mut self,
        mut view: SessionView,
        token: String,
        (dropped_at, cause): (Millis, EndCause),
        now: Millis,
    ) -> Option<NodeId> {
        if view.transport != Transport::Ws || self.state.resume_grace() == 0 {
            return None;
        }
        let id = view.session_id;
        view.node_id = self.config.node_id.clone();
        view.reconnecting = true;
        let changes = self.state.upsert_replica(view, now);
        self.state.restore_drop(id, cause, dropped_at);
        self.resume.register(id, token);
        self.commit(id, changes);
        Some(self.config.node_id.clone())
    }

    /// Takes over a session another node handed over: it becomes local,
    /// driven by the new socket, with the new token's facts.
    fn adopt(
        &mut self,
        mut view: SessionView,
        session: NewSession,
        liveness: Arc<SessionLiveness>,
        now: Millis,
    ) -> Connected {
        let id = view.session_id;
        view.node_id = self.config.node_id.clone();
        view.reconnecting = false;
        liveness.reset_activity(view.last_activity);
        let mut changes = self.state.upsert_replica(view, now);
        self.liveness.insert(id, liveness);
        let renewal = Renewal {
            name: session.name,
            org: session.org,
            expires_at: session.expires_at,
        };
        changes.extend(self.state.take_over(id, renewal, session.meta.page, now));
        self.commit(id, changes);
        Connected {
            session_id: id,
            resumed: true,
            resume_token: self.resume.issue(id),
        }
    }

    /// A socket is gone. Only the session's current socket counts: one that
    /// a resume took over changes nothing.
    fn dropped(
        &mut self,
        id: SessionId,
        liveness: &Arc<SessionLiveness>,
        cause: EndCause,
        resumable: bool,
        at: Millis,
        now: Millis,
    ) {
        let current = self
            .liveness
            .get(&id)
            .is_some_and(|l| Arc::ptr_eq(l, liveness));
        if !current {
            return;
        }
        if resumable && self.state.resume_grace() > 0 {
            self.liveness.remove(&id);
            let changes = self.state.mark_dropped(id, cause, at, now);
            self.commit(id, changes);
        } else {
            self.end(id, cause, now);
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

    fn apply_room(&mut self, request: RoomRequest, now: Millis) {
        match request {
            RoomRequest::Join { id, room, watch } => {
                let changes = self.state.join_room(id, room.clone(), now);
                self.commit(id, changes);
                self.new_watches.push((id, room, watch));
            }
            RoomRequest::Watch { id, room, watch } => self.new_watches.push((id, room, watch)),
            RoomRequest::Leave { id, room } => {
                self.room_feed.unwatch(id, &room);
                let changes = self.state.leave_room(id, &room, now);
                self.commit(id, changes);
            }
            RoomRequest::Unwatch { id, room } => self.room_feed.unwatch(id, &room),
        }
    }

    /// Starts the watches asked for in this step. The room's pending batch
    /// goes out first, so the snapshot (which lists a joiner) and the
    /// `presence` frames that follow it describe one sequence of states.
    fn start_watches(&mut self, now: Millis) {
        for (id, room, handle) in std::mem::take(&mut self.new_watches) {
            if self.state.session(id).is_none() {
                continue;
            }
            if self.state.rooms().is_dirty(&room) {
                self.publish_room(&room, now);
            }
            let members = self.state.rooms().published_members(&room);
            self.room_feed.watch(id, &room, handle, &members, now);
        }
    }

    /// When the next room batch or watcher resync is due.
    fn next_room_batch(&self) -> Option<Millis> {
        [self.state.rooms().next_due(), self.room_feed.next_resync()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends every room batch that is due, and retries resync snapshots.
    fn publish_due_rooms(&mut self, now: Millis) {
        for room in self.state.rooms_mut().take_due(now) {
            self.publish_room(&room, now);
        }
        for room in self.room_feed.take_resyncs(now) {
            self.publish_room(&room, now);
        }
    }

    /// Publishes `room`'s changes since its last batch to its watchers.
    fn publish_room(&mut self, room: &RoomName, now: Millis) {
        let changes = self.state.rooms_mut().take_changes(room);
        let state = &self.state;
        self.room_feed.deliver(
            room,
            &changes,
            || state.rooms().published_members(room),
            now,
        );
    }

    /// Hands a change to the observers that need it, never waiting.
    fn observe(&self, at: Millis, change: &Change) {
        if self.outboxes.observers.is_empty()
            || matches!(
                change,
                Change::Session {
                    event: SessionEvent::Updated,
                    ..
                }
            )
        {
            return;
        }
        let mut dropped = 0;
        for observer in &self.outboxes.observers {
            let applied = Applied {
                at,
                change: change.clone(),
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = observer.try_send(applied) {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.outboxes
                .observer_drops
                .fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!(
                dropped,
                "an observer (alerts or webhooks) fell behind; change dropped for it"
            );
        }
    }

    fn replicate(&self, change: &Change) {
        let Some(outbox) = &self.outboxes.local_changes else {
            return;
        };
        if outbox.try_send(change.clone()).is_err() {
            self.outboxes.republish.store(true, Ordering::Release);
        }
    }
}

/// One info line per local session start and end (no token, no metadata).
fn log_lifecycle(event: SessionEvent, session: &SessionView) {
    match event {
        SessionEvent::Started => tracing::info!(
            session_id = %session.session_id,
            user_id = %session.user_id,
            transport = session.transport.as_str(),
            ip = session.ip.as_deref().unwrap_or(""),
            "session started"
        ),
        SessionEvent::Ended => tracing::info!(
            session_id = %session.session_id,
            user_id = %session.user_id,
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
