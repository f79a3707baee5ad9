//! Owns how this node's view of the other nodes is built and repaired: the
//! bootstrap at the start of every epoch, resyncs from a node's state hash
//! (unknown node, new epoch, gap), the end records of replicas that
//! vanished meanwhile, forgetting nodes that left or were lost, and
//! detecting lost nodes.

use super::epoch::Connected;
use super::{ClusterError, scripts};
use crate::cluster::ReplicationLink;
use crate::cluster::membership::ResyncReason;
use crate::model::time::now_millis;
use crate::model::{EndCause, Millis, NodeId, SessionView};
use crate::presence::ReplicaUpdate;

impl Connected<'_> {
    /// Loads every live node's state before this node reports ready, and
    /// ends what is still held of nodes that are not registered any more.
    pub(super) async fn bootstrap(
        &mut self,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let others = self.registered_nodes().await?;
        for node in &others {
            self.resync(node, None, link).await?;
        }
        // Nodes that died while this node was cut off are not registered
        // any more; whatever we still hold of them is gone.
        let held = link.presence.nodes_other_than(self.node().clone()).await?;
        for node in held.iter().filter(|n| !others.contains(n)) {
            self.forget(node, EndCause::NodeLost, link).await?;
        }
        self.report_nodes_known(link);
        Ok(())
    }

    /// On a Redis Cluster, resyncs the registered nodes this node does not
    /// know yet (an announcement missed, e.g. during a failover): a node's
    /// channel is followed only once it is known.
    pub(super) async fn discover_nodes(
        &mut self,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        if !self.keys().is_sharded() {
            return Ok(());
        }
        let unknown: Vec<NodeId> = self
            .registered_nodes()
            .await?
            .into_iter()
            .filter(|node| !self.table.knows(node))
            .collect();
        for node in &unknown {
            self.resync(node, Some(ResyncReason::UnknownNode), link)
                .await?;
        }
        Ok(())
    }

    /// The other nodes registered in `{ns}:nodes`.
    async fn registered_nodes(&mut self) -> Result<Vec<NodeId>, ClusterError> {
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys().nodes())
            .query_async(&mut self.conn)
            .await?;
        Ok(nodes
            .iter()
            .map(|n| NodeId::new(n))
            .filter(|n| n != self.node())
            .collect())
    }

    /// Replaces the replicas of `node` with its state hash, or forgets the
    /// node when it has no live state.
    pub(super) async fn resync(
        &mut self,
        node: &NodeId,
        reason: Option<ResyncReason>,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        if let Some(reason) = reason {
            count_resync(link, node, reason);
        }
        // Following first, then reading: no delta falls between the two.
        self.follower.follow(&self.keys().deltas_of(node)).await?;
        let stored = self.read_state(node).await?;
        let now = now_millis();
        let Some((epoch, seq)) = stored.live_at(now, self.config().lost_after()) else {
            return self.forget(node, EndCause::NodeLost, link).await;
        };
        let sessions = stored.sessions();
        let ended = self.vanished(node, &sessions, link).await?;
        link.presence
            .apply_replica(ReplicaUpdate::ReplaceNode {
                node: node.clone(),
                sessions,
                ended,
            })
            .await?;
        if !self.table.knows(node) {
            tracing::info!(node_id = %node, epoch, "node joined");
        }
        self.table.synced(node.clone(), epoch, seq, now);
        self.report_nodes_known(link);
        Ok(())
    }

    /// `node`'s meta and state hash, read together (`READ_STATE`).
    async fn read_state(&mut self, node: &NodeId) -> Result<StoredState, ClusterError> {
        let keys = self.keys();
        let (epoch, seq, heard_at, fields) = scripts::READ_STATE
            .key(keys.state(node))
            .key(keys.meta(node))
            .invoke_async(&mut self.conn)
            .await?;
        Ok(StoredState {
            epoch,
            seq,
            heard_at,
            fields,
        })
    }

    /// The end records (from history) of replicas `node` no longer holds.
    async fn vanished(
        &self,
        node: &NodeId,
        sessions: &[SessionView],
        link: &ReplicationLink,
    ) -> Result<Vec<SessionView>, ClusterError> {
        let replicas = link.presence.sessions_of_node(node.clone()).await?;
        let mut ended = Vec::new();
        for id in replicas
            .into_iter()
            .filter(|id| !sessions.iter().any(|s| s.session_id == *id))
        {
            if let Some(view) = link.end_records.end_record(id).await {
                ended.push(view);
            }
        }
        Ok(ended)
    }

    /// Ends everything `node` held and forgets it.
    pub(super) async fn forget(
        &mut self,
        node: &NodeId,
        cause: EndCause,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let known = self.table.remove(node);
        self.follower.unfollow(&self.keys().deltas_of(node)).await?;
        if known {
            tracing::info!(node_id = %node, cause = cause.as_str(), "node gone");
        }
        link.presence
            .apply_replica(ReplicaUpdate::NodeGone {
                node: node.clone(),
                cause,
            })
            .await?;
        super::alerts::clear_alerts_of(node, link).await?;
        self.report_nodes_known(link);
        Ok(())
    }

    /// Forgets every node silent for `lost_after` and removes its state
    /// from Redis. Only a node that has itself been connected that long can
    /// tell another node's silence from its own outage.
    pub(super) async fn detect_lost_nodes(
        &mut self,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let now = now_millis();
        let lost_after = self.config().lost_after();
        if now - self.since < lost_after {
            return Ok(());
        }
        for node in self.table.lost(now, lost_after) {
            tracing::warn!(node_id = %node, "node lost");
            self.forget(&node, EndCause::NodeLost, link).await?;
            self.remove_dead_node(&node, now - lost_after).await?;
        }
        Ok(())
    }

    /// Deletes a lost node's keys, unless it was heard after `cutoff`
    /// (`REMOVE_DEAD_NODE`: a node that just came back is kept).
    async fn remove_dead_node(
        &mut self,
        node: &NodeId,
        cutoff: Millis,
    ) -> Result<(), ClusterError> {
        let keys = self.keys();
        let removed: i64 = scripts::REMOVE_DEAD_NODE
            .key(keys.state(node))
            .key(keys.meta(node))
            .arg(cutoff)
            .invoke_async(&mut self.conn)
            .await?;
        if removed == 1 {
            redis::cmd("SREM")
                .arg(keys.nodes())
                .arg(node.as_str())
                .query_async::<()>(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    fn report_nodes_known(&self, link: &ReplicationLink) {
        link.metrics
            .nodes_known
            .set(i64::try_from(self.table.len()).unwrap_or(0));
    }
}

fn count_resync(link: &ReplicationLink, node: &NodeId, reason: ResyncReason) {
    link.metrics
        .resyncs
        .with_label_values(&[reason.as_str()])
        .inc();
    tracing::info!(node_id = %node, reason = reason.as_str(), "resync");
}

/// A node's state as `READ_STATE` returns it: its meta (absent when the
/// node has no state) and its hash as flat field/value pairs.
#[derive(Debug, Default)]
struct StoredState {
    epoch: Option<u64>,
    seq: Option<u64>,
    heard_at: Option<Millis>,
    fields: Vec<String>,
}

impl StoredState {
    /// The epoch and `seq` the hash is at, when the node is alive at `now`
    /// (heard less than `lost_after` ago).
    fn live_at(&self, now: Millis, lost_after: Millis) -> Option<(u64, u64)> {
        let alive = self.heard_at.is_some_and(|at| now - at < lost_after);
        match (self.epoch, self.seq, alive) {
            (Some(epoch), Some(seq), true) => Some((epoch, seq)),
            _ => None,
        }
    }

    /// The sessions in the hash; unreadable entries are skipped.
    fn sessions(&self) -> Vec<SessionView> {
        self.fields
            .chunks(2)
            .filter_map(|pair| pair.get(1))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;

    fn live(user: &str) -> SessionView {
        SessionView {
            node_id: NodeId::new("b"),
            last_activity: 2_000,
            duration_s: 1.0,
            ..SessionView::sample(user, 1_000)
        }
    }

    fn stored(heard_at: Option<Millis>) -> StoredState {
        StoredState {
            epoch: Some(7),
            seq: Some(3),
            heard_at,
            fields: Vec::new(),
        }
    }

    #[test]
    fn a_node_heard_recently_is_live_at_its_epoch_and_seq() {
        assert_eq!(stored(Some(10_000)).live_at(12_999, 3_000), Some((7, 3)));
    }

    #[test]
    fn a_silent_node_or_one_without_state_is_not_live() {
        assert_eq!(stored(Some(10_000)).live_at(13_000, 3_000), None);
        assert_eq!(stored(None).live_at(10_000, 3_000), None);
        let no_meta = StoredState {
            heard_at: Some(10_000),
            ..StoredState::default()
        };
        assert_eq!(no_meta.live_at(10_000, 3_000), None);
    }

    #[test]
    fn sessions_are_read_from_the_hash_values_skipping_unreadable_ones() {
        let (one, two) = (live("u1"), live("u2"));
        let state = StoredState {
            fields: vec![
                one.session_id.to_string(),
                serde_json::to_string(&one).unwrap(),
                "broken".to_string(),
                "{not json".to_string(),
                two.session_id.to_string(),
                serde_json::to_string(&two).unwrap(),
            ],
            ..stored(Some(0))
        };
        let ids: Vec<SessionId> = state.sessions().iter().map(|s| s.session_id).collect();
        assert_eq!(ids, vec![one.session_id, two.session_id]);
    }
}
