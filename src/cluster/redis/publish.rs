//! Owns what this node publishes about itself: each local change as a delta
//! (stored in its state hash and published by one Lua script, many changes
//! per pipelined round trip), its full state at the start of every epoch,
//! and heartbeats.

use std::sync::atomic::Ordering;

use redis::ScriptInvocation;
use tokio::sync::mpsc;

use super::epoch::Connected;
use super::{ClusterError, scripts};
use crate::cluster::ReplicationLink;
use crate::cluster::wire::{Body, Envelope, WIRE_VERSION};
use crate::model::SessionView;
use crate::model::time::now_millis;
use crate::presence::{Change, SessionEvent};

/// Local changes sent to Redis in one pipelined round trip, at most.
const PUBLISH_BATCH: usize = 256;

impl Connected<'_> {
    /// The text of an envelope from this node, numbered with the current
    /// epoch and `seq`, sealed for this node's delta channel.
    pub(super) fn envelope(&self, body: Body) -> String {
        let channel = self.keys().deltas_of(self.node());
        self.seal().seal(&channel, self.envelope_text(body))
    }

    /// The plain text of an envelope from this node.
    fn envelope_text(&self, body: Body) -> String {
        crate::model::json::to_json(&Envelope {
            v: WIRE_VERSION,
            node_id: self.node().clone(),
            epoch: self.epoch,
            seq: self.seq,
            sent_at: now_millis(),
            body,
        })
    }

    /// A new epoch: this node's whole state replaces its hash, and a
    /// `reset` tells every node to resync it.
    pub(super) async fn publish_full_state(
        &mut self,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        // Whatever is queued is covered by the snapshot taken below.
        while link.local_changes.try_recv().is_ok() {}
        link.republish.store(false, Ordering::Release);
        let sessions = link
            .presence
            .session_views_of_node(self.node().clone())
            .await?;
        self.epoch = rand::random::<u64>() >> 12;
        self.seq = 0;
        self.full_state_invocation(&sessions)
            .invoke_async::<()>(&mut self.conn)
            .await?;
        self.register().await?;
        self.announce_epoch().await?;
        tracing::info!(
            epoch = self.epoch,
            sessions = sessions.len(),
            "published full local state"
        );
        Ok(())
    }

    /// The script call that replaces this node's hash with `sessions` and
    /// announces the new epoch.
    fn full_state_invocation(&self, sessions: &[SessionView]) -> ScriptInvocation<'static> {
        let keys = self.keys();
        let envelope = self.envelope(Body::Reset);
        let mut invocation = scripts::FULL_STATE.prepare_invoke();
        invocation
            .key(keys.state(self.node()))
            .key(keys.meta(self.node()))
            .arg(keys.publish_command())
            .arg(keys.deltas_of(self.node()))
            .arg(envelope)
            .arg(self.epoch)
            .arg(now_millis());
        for session in sessions {
            invocation
                .arg(session.session_id.to_string())
                .arg(crate::model::json::to_json(session));
        }
        invocation
    }

    /// Publishes `first` and whatever else is already queued in one
    /// pipelined round trip (order is kept: one connection, in sequence).
    pub(super) async fn publish_changes(
        &mut self,
        first: Change,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        if link.republish.load(Ordering::Acquire) {
            return self.publish_full_state(link).await;
        }
        let changes = take_batch(first, &mut link.local_changes);
        // Deltas and alerts have different slots on a Redis Cluster, so
        // each goes in its own pipeline (in order within it).
        let mut deltas = redis::pipe();
        let mut alerts = redis::pipe();
        let (mut published, mut raised) = (0, 0);
        for change in &changes {
            if let Change::Alert(alert) = change {
                self.add_alert(&mut alerts, alert);
                raised += 1;
            } else if let Some(invocation) = self.delta_invocation(change) {
                deltas.invoke_script(&invocation).ignore();
                published += 1;
            }
        }
        if published > 0 {
            deltas.query_async::<()>(&mut self.conn).await?;
        }
        if raised > 0 {
            alerts.query_async::<()>(&mut self.conn).await?;
        }
        link.metrics
            .deltas
            .with_label_values(&["out"])
            .inc_by(published);
        Ok(())
    }

    /// The script call that stores and publishes one local change, numbered
    /// with the next `seq`.
    fn delta_invocation(&mut self, change: &Change) -> Option<ScriptInvocation<'static>> {
        let Change::Session { event, session } = change else {
            return None;
        };
        self.seq += 1;
        let (body, op) = delta_of(*event, session);
        // A session handed over to another node (a resume there, §9) leaves
        // this node's state; the upsert tells the others its new owner.
        let op = if session.node_id == *self.node() {
            op
        } else {
            "del"
        };
        let keys = self.keys();
        let mut invocation = scripts::PUBLISH_DELTA.prepare_invoke();
        invocation
            .key(keys.state(self.node()))
            .key(keys.meta(self.node()))
            .arg(keys.publish_command())
            .arg(keys.deltas_of(self.node()))
            .arg(self.envelope(body))
            .arg(op)
            .arg(session.session_id.to_string())
            .arg(crate::model::json::to_json(session))
            .arg(self.epoch)
            .arg(self.seq)
            .arg(now_millis());
        Some(invocation)
    }

    /// Says this node is alive. When another node removed our state (we
    /// were silent too long, e.g. paused), a new epoch republishes it.
    pub(super) async fn publish_heartbeat(
        &mut self,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let keys = self.keys();
        let envelope = self.envelope(Body::Heartbeat);
        let state_kept: i64 = scripts::HEARTBEAT
            .key(keys.meta(self.node()))
            .arg(keys.publish_command())
            .arg(keys.deltas_of(self.node()))
            .arg(envelope)
            .arg(now_millis())
            .invoke_async(&mut self.conn)
            .await?;
        if state_kept == 0 {
            tracing::warn!("this node's cluster state was removed by others; republishing");
            return self.publish_full_state(link).await;
        }
        // Again at every beat: a node removed from the set by a lost-node
        // cleanup racing with its return is back within one beat.
        self.register().await
    }

    /// Adds this node to `{ns}:nodes`, where bootstraps find it.
    async fn register(&mut self) -> Result<(), ClusterError> {
        redis::cmd("SADD")
            .arg(self.keys().nodes())
            .arg(self.node().as_str())
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }

    /// On a Redis Cluster, tells every node about this node's new epoch on
    /// the announcement channel: nobody follows this node's own channel
    /// before it is known. (On one instance the `reset` on the shared
    /// channel says it.)
    async fn announce_epoch(&mut self) -> Result<(), ClusterError> {
        let keys = self.keys();
        if !keys.is_sharded() {
            return Ok(());
        }
        let channel = keys.announcements();
        let sealed = self.seal().seal(&channel, self.envelope_text(Body::Reset));
        redis::cmd(keys.publish_command())
            .arg(channel)
            .arg(sealed)
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// `first` and the changes queued behind it, up to `PUBLISH_BATCH`.
fn take_batch(first: Change, queue: &mut mpsc::Receiver<Change>) -> Vec<Change> {
    let mut changes = vec![first];
    while changes.len() < PUBLISH_BATCH {
        match queue.try_recv() {
            Ok(change) => changes.push(change),
            Err(_) => break,
        }
    }
    changes
}

/// What a local change says on the wire, and what it does to the state
/// hash (`set` or `del`, the `PUBLISH_DELTA` op).
fn delta_of(event: SessionEvent, session: &SessionView) -> (Body, &'static str) {
    let session = Box::new(session.clone());
    match event {
        SessionEvent::Ended => (Body::End { session }, "del"),
        SessionEvent::Started | SessionEvent::Updated => (Body::Upsert { session }, "set"),
    }
}
