//! Owns the engine's handling of local sessions: opening (and the per-user
//! limit), HTTP heartbeats, terminate and revoke, and ending.

use super::*;

impl Engine {
    pub(super) fn is_local(&self, id: SessionId) -> bool {
        self.state
            .session(id)
            .is_some_and(|s| *s.node_id() == self.config.node_id)
    }

    pub(super) fn local_sessions(&self) -> Vec<SessionId> {
        self.state.sessions_of_node(&self.config.node_id)
    }

    pub(super) fn open(
        &mut self,
        session: NewSession,
        liveness: Option<Arc<SessionLiveness>>,
        now: Millis,
    ) {
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
    pub(super) fn enforce_session_limit(&mut self, user: &UserId, newest: SessionId, now: Millis) {
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

    pub(super) fn heartbeat(
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

    pub(super) fn local_heartbeat(
        &mut self,
        beat: HeartbeatRequest,
        now: Millis,
    ) -> HeartbeatOutcome {
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
    pub(super) fn terminate(
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

    pub(super) fn terminate_user(
        &mut self,
        user: &UserId,
        reason: TerminateReason,
        reply: oneshot::Sender<usize>,
        now: Millis,
    ) {
        let mut local = 0;
        let mut remote_nodes: BTreeSet<NodeId> = BTreeSet::new();
        for id in self.state.sessions_of(user) {
            if self.is_local(id) {
                self.end_local(id, reason, now);
                local += 1;
            } else if let Some(node) = self.state.session(id).map(|s| s.node_id().clone()) {
                remote_nodes.insert(node);
            }
        }
        let answers: Vec<oneshot::Receiver<usize>> = remote_nodes
            .into_iter()
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

    /// Ends a local session and tells its connection why.
    pub(super) fn end_local(&mut self, id: SessionId, reason: TerminateReason, now: Millis) {
        if let Some(liveness) = self.liveness.get(&id) {
            liveness.request_terminate(reason);
        }
        self.end(id, reason.end_cause(), now);
    }

    pub(super) fn end(&mut self, id: SessionId, cause: EndCause, now: Millis) {
        let changes = self.state.end(id, cause, now);
        self.liveness.remove(&id);
        self.resume.forget(id);
        self.schedule.set(id, None);
        self.pending.extend(changes);
    }
}
