//! Owns the task that owns the presence map. It applies `Command`s one at a
//! time, publishes each resulting `Change` to the admin feed and the
//! outboxes, and sleeps until the next scheduled deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::change::Change;
use super::command::{Command, HeartbeatOutcome};
use super::derive::{Thresholds, millis_of};
use super::liveness::{SessionLiveness, TerminateReason};
use super::schedule::Schedule;
use super::snapshot::render_snapshot;
use super::state::{MetaUpdate, NewSession, PresenceState};
use crate::config::PresenceConfig;
use crate::feed::Feed;
use crate::model::time::now_millis;
use crate::model::{EndCause, Millis, SessionId, SessionView, Transport, UserId};

/// Where the engine's output goes besides the admin feed.
#[derive(Debug, Default)]
pub struct Outboxes {
    /// Ended sessions, for history (the engine waits when it is full).
    pub ended: Option<mpsc::Sender<SessionView>>,
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
}

impl Engine {
    /// An engine with an empty map.
    pub fn new(config: PresenceConfig, outboxes: Outboxes) -> Self {
        let thresholds = Thresholds::new(config.idle_after, config.away_after);
        Self {
            state: PresenceState::new(thresholds, millis_of(config.http_session_ttl)),
            schedule: Schedule::default(),
            feed: Feed::new(config.admin_queue),
            liveness: HashMap::new(),
            config,
            outboxes,
            pending: Vec::new(),
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
            Command::Open { session, liveness } => self.open(session, liveness, now),
            Command::Activity { id, page } => {
                if let Some(at) = self.liveness.get(&id).map(|l| l.last_activity()) {
                    let changes = self.state.record_activity(id, at, page, now);
                    self.commit(id, changes);
                }
            }
            Command::SetManual { id, manual } => {
                let changes = self.state.set_manual(id, manual, now);
                self.commit(id, changes);
            }
            Command::Meta { id, update } => {
                let changes = self.state.apply_meta(id, update, now);
                self.commit(id, changes);
            }
            Command::End { id, cause } => self.end(id, cause, now),
            Command::Heartbeat {
                id,
                user,
                active,
                end,
                update,
                reply,
            } => {
                let outcome = self.heartbeat(id, &user, active, end, update, now);
                let _ = reply.send(outcome);
            }
            Command::Terminate { id, reason, reply } => {
                let found = self.terminate(id, reason, now);
                let _ = reply.send(found);
            }
            Command::TerminateUser {
                user,
                reason,
                reply,
            } => {
                let ids = self.state.sessions_of(&user);
                let count = ids
                    .iter()
                    .filter(|id| self.terminate(**id, reason, now))
                    .count();
                let _ = reply.send(count);
            }
            Command::Subscribe { org, reply } => {
                let snapshot =
                    render_snapshot(&self.state, &self.config.node_id, org.as_deref(), now);
                let subscription = self.feed.subscribe(org, snapshot);
                let _ = reply.send(subscription);
            }
            Command::Inspect(inspection) => inspection(&self.state, now),
            Command::Shutdown { reply } => {
                let ids: Vec<SessionId> = self.liveness.keys().copied().collect();
                for id in ids {
                    self.terminate(id, TerminateReason::Shutdown, now);
                }
                let node = self.config.node_id.clone();
                let local: Vec<SessionId> = self
                    .state
                    .sessions()
                    .filter(|s| *s.node_id() == node)
                    .map(|s| s.id())
                    .collect();
                for id in local {
                    self.end(id, EndCause::Shutdown, now);
                }
                let _ = reply.send(());
            }
        }
    }

    fn open(&mut self, session: NewSession, liveness: Option<Arc<SessionLiveness>>, now: Millis) {
        let id = session.id;
        let user = session.user_id.clone();
        if let Some(liveness) = liveness {
            self.liveness.insert(id, liveness);
        }
        let changes = self.state.open(session, now);
        self.commit(id, changes);
        let limit = self.config.max_sessions_per_user;
        while let Some(oldest) = self.state.oldest_over_limit(&user, limit) {
            self.terminate(oldest, TerminateReason::SessionLimit, now);
        }
    }

    fn heartbeat(
        &mut self,
        id: SessionId,
        user: &UserId,
        active: bool,
        end: bool,
        update: MetaUpdate,
        now: Millis,
    ) -> HeartbeatOutcome {
        let owned = self
            .state
            .session(id)
            .is_some_and(|s| s.user_id() == user && s.transport() == Transport::Http);
        if !owned || self.state.http_expired(id, now) {
            return HeartbeatOutcome::NotFound;
        }
        if end {
            self.end(id, EndCause::ClientClosed, now);
            return HeartbeatOutcome::Ended;
        }
        self.state.record_heartbeat(id, now);
        let mut changes = self.state.apply_meta(id, update, now);
        if active {
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

    /// Ends a live session and tells its connection why; false when unknown.
    fn terminate(&mut self, id: SessionId, reason: TerminateReason, now: Millis) -> bool {
        if self.state.session(id).is_none() {
            return false;
        }
        if let Some(liveness) = self.liveness.get(&id) {
            liveness.request_terminate(reason);
        }
        self.end(id, reason.end_cause(), now);
        true
    }

    fn end(&mut self, id: SessionId, cause: EndCause, now: Millis) {
        let changes = self.state.end(id, cause, now);
        self.liveness.remove(&id);
        self.schedule.set(id, None);
        self.pending.extend(changes);
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
            if let (Change::Session { event, session }, Some(ended)) =
                (&change, &self.outboxes.ended)
                && *event == super::change::SessionEvent::Ended
                && ended.send(session.clone()).await.is_err()
            {
                tracing::error!(session_id = %session.session_id, "history writer is gone; ended session not recorded");
            }
        }
    }
}
