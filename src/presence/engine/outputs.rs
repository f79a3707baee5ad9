//! Owns what the engine sends out besides the admin feed: requests for
//! sessions other nodes hold, replicas applied from other nodes, changes to
//! the observers (alerts, webhooks) and to the replicator.

use super::*;

impl Engine {
    /// Hands a request to the replicator; dropping it answers "not found".
    pub(super) fn forward(&self, command: RemoteCommand) {
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

    pub(super) fn apply_replica(&mut self, update: ReplicaUpdate, now: Millis) {
        match update {
            // A session this node took over (a shutdown's offer can
            // overtake the old owner's last delta about it): the delta is
            // stale, ownership moves only through this node's engine.
            ReplicaUpdate::Upsert(view) | ReplicaUpdate::End(view)
                if self.is_local(view.session_id) =>
            {
                tracing::debug!(session_id = %view.session_id, "stale replica update about a local session ignored");
            }
            ReplicaUpdate::Upsert(view) if view.node_id != self.config.node_id => {
                let changes = self.state.upsert_replica(*view, now);
                self.pending.extend(changes);
            }
            ReplicaUpdate::End(view) if view.node_id != self.config.node_id => {
                let changes = self.state.end_replica(&view, now);
                self.pending.extend(changes);
            }
            ReplicaUpdate::ReplaceNode {
                node,
                sessions,
                ended,
            } if node != self.config.node_id => {
                let keep: HashSet<SessionId> = sessions.iter().map(|s| s.session_id).collect();
                let theirs = |view: &SessionView| !self.is_local(view.session_id);
                let ended: Vec<SessionView> = ended.into_iter().filter(theirs).collect();
                let sessions: Vec<SessionView> = sessions.into_iter().filter(theirs).collect();
                for view in ended.iter().filter(|v| !keep.contains(&v.session_id)) {
                    let changes = self.state.end_replica(view, now);
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

    /// Hands a change to the observers that need it, never waiting.
    pub(super) fn observe(&self, at: Millis, change: &Change) {
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

    pub(super) fn replicate(&self, change: &Change) {
        let Some(outbox) = &self.outboxes.local_changes else {
            return;
        };
        if outbox.try_send(change.clone()).is_err() {
            self.outboxes.republish.store(true, Ordering::Release);
        }
    }
}
