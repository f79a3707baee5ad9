//! Owns the task that owns the presence map. It applies `Command`s one at a
//! time, publishes each resulting `Change` to the admin feed and the
//! outboxes, and sleeps until the next scheduled deadline.
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
    Command, HeartbeatOutcome, HeartbeatRequest, RemoteCommand, RemoteRequest, ReplicaUpdate,
};
use super::derive::Thresholds;
use super::liveness::{SessionLiveness, TerminateReason};
use super::schedule::Schedule;
use super::snapshot::render_snapshot;
use super::state::{NewSession, PresenceState};
use crate::config::PresenceConfig;
use crate::feed::Feed;
use crate::model::time::millis_of;
use crate::model::time::now_millis;
use crate::model::{Change, SessionEvent};
use crate::model::{EndCause, Millis, NodeId, SessionId, SessionView, Transport, UserId};

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
}

impl Engine {
    /// An engine with an empty map.
    pub fn new(config: PresenceConfig, outboxes: Outboxes) -> Self {
        let thresholds = Thresholds::new(config.idle_after, config.away_after);
        Self {
            state: PresenceState::new(thresholds, millis_of(config.http_session_ttl))
                .with_timeline_limit(config.timeline_limit),
            schedule: Schedule::default(),
            feed: Feed::new(config.admin_queue),
            liveness: HashMap::new(),
            config,
            outboxes,
            pending: Vec::new(),
            unrecorded: HashSet::new(),
        }
    }

    /// Applies commands until every handle is dropped or `stop` fires. The
    /// app fires `stop` only after the engine has answered `Shutdown`.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>, stop: CancellationToken) {
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Millis> = None;
        loop {
            self.arm(&mut sleep, &mut armed);
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
                    }
                    None => break,
                },
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.fire_due(now_millis());
                }
                () = stop.cancelled() => break,
            }
            self.flush().await;
        }
        tracing::debug!("presence engine stopped");
    }

    fn arm(&self, sleep: &mut std::pin::Pin<&mut Sleep>, armed: &mut Option<Millis>) {
        let next = self.schedule.next();
        if next == *armed {
            return;
        }
        *armed = next;
        if let Some(at) = next {
            let wait = Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0));
            sleep.as_mut().reset(Instant::now() + wait);
        }
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
            Command::Subscribe { org, reply } => {
                let snapshot =
                    render_snapshot(&self.state, &self.config.node_id, org.as_deref(), now);
                let subscription = self.feed.subscribe(org, snapshot);
                let _ = reply.send(subscription);
            }
            Command::Inspect(inspection) => inspection(&self.state, now),
            Command::Audit(event) => self.pending.push(Change::Audit(*event)),
            Command::Shutdown { reply } => {
                for id in self.local_sessions() {
                    self.end_local(id, TerminateReason::Shutdown, now);
                }
                let _ = reply.send(());
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
            _ => tracing::warn!("ignoring a replica update about this node's own sessions"),
        }
    }

    fn fire_due(&mut self, now: Millis) {
        for id in self.schedule.pop_due(now) {
            if let Some(at) = self.liveness.get(&id).map(|l| l.last_activity()) {
                self.state.observe_activity(id, at);
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
        for change in std::mem::take(&mut self.pending) {
            self.feed.publish(&change);
            let Change::Session { event, session } = &change else {
                continue;
            };
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
