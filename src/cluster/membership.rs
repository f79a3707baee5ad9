//! Owns what this node knows of the others: each node's epoch, the last
//! sequence number applied and when it was last heard, and the decisions
//! that follow (apply, ignore, resync, lost). Pure: time is a parameter.

use std::collections::HashMap;

use crate::model::{Millis, NodeId};

/// What to do with a message from another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The next delta in order: apply it.
    Apply,
    /// Already applied (or covered by a snapshot): drop it.
    Ignore,
    /// Fetch the node's full state first.
    Resync(ResyncReason),
}

/// Why a node's full state is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// A node this one has not synced with.
    UnknownNode,
    /// The node restarted or reconnected.
    NewEpoch,
    /// A delta went missing.
    Gap,
}

impl ResyncReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::UnknownNode => "unknown_node",
            ResyncReason::NewEpoch => "new_epoch",
            ResyncReason::Gap => "gap",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    epoch: u64,
    seq: u64,
    heard_at: Millis,
}

/// Every other node this one has synced with.
#[derive(Debug, Default)]
pub struct NodeTable {
    peers: HashMap<NodeId, Peer>,
}

impl NodeTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `node`'s state up to `seq` of `epoch` was applied.
    pub fn synced(&mut self, node: NodeId, epoch: u64, seq: u64, now: Millis) {
        self.peers.insert(
            node,
            Peer {
                epoch,
                seq,
                heard_at: now,
            },
        );
    }

    /// Forgets a node that left or was lost.
    pub fn remove(&mut self, node: &NodeId) -> bool {
        self.peers.remove(node).is_some()
    }

    /// Nodes known.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Every known node.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.keys()
    }

    /// True when `node` is known.
    pub fn knows(&self, node: &NodeId) -> bool {
        self.peers.contains_key(node)
    }

    /// A delta numbered `seq` arrived from `node`.
    pub fn observe_delta(&mut self, node: &NodeId, epoch: u64, seq: u64, now: Millis) -> Decision {
        let Some(peer) = self.peers.get_mut(node) else {
            return Decision::Resync(ResyncReason::UnknownNode);
        };
        if peer.epoch != epoch {
            return Decision::Resync(ResyncReason::NewEpoch);
        }
        peer.heard_at = now;
        if seq <= peer.seq {
            Decision::Ignore
        } else if seq == peer.seq + 1 {
            peer.seq = seq;
            Decision::Apply
        } else {
            Decision::Resync(ResyncReason::Gap)
        }
    }

    /// A `reset`: `node` started `epoch` with a full state. Nothing to do
    /// when that epoch is the one already synced (its hash was read after
    /// the reset, as when a node is announced and resynced at once).
    pub fn observe_reset(&self, node: &NodeId, epoch: u64) -> Decision {
        match self.peers.get(node) {
            Some(peer) if peer.epoch == epoch => Decision::Ignore,
            Some(_) => Decision::Resync(ResyncReason::NewEpoch),
            None => Decision::Resync(ResyncReason::UnknownNode),
        }
    }

    /// A heartbeat saying `node`'s latest delta is `seq`.
    pub fn observe_heartbeat(
        &mut self,
        node: &NodeId,
        epoch: u64,
        seq: u64,
        now: Millis,
    ) -> Decision {
        let Some(peer) = self.peers.get_mut(node) else {
            return Decision::Resync(ResyncReason::UnknownNode);
        };
        if peer.epoch != epoch {
            return Decision::Resync(ResyncReason::NewEpoch);
        }
        peer.heard_at = now;
        if seq > peer.seq {
            Decision::Resync(ResyncReason::Gap)
        } else {
            Decision::Ignore
        }
    }

    /// Nodes not heard from for `silence` or more.
    pub fn lost(&self, now: Millis, silence: Millis) -> Vec<NodeId> {
        let mut lost: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, peer)| now - peer.heard_at >= silence)
            .map(|(node, _)| node.clone())
            .collect();
        lost.sort();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name)
    }

    #[test]
    fn deltas_in_order_apply_and_repeats_are_ignored() {
        let mut table = NodeTable::new();
        assert_eq!(
            table.observe_delta(&node("a"), 1, 1, 0),
            Decision::Resync(ResyncReason::UnknownNode)
        );
        table.synced(node("a"), 1, 4, 0);
        assert_eq!(
            table.observe_delta(&node("a"), 1, 3, 0),
            Decision::Ignore,
            "covered by the snapshot"
        );
        assert_eq!(table.observe_delta(&node("a"), 1, 5, 0), Decision::Apply);
        assert_eq!(table.observe_delta(&node("a"), 1, 5, 0), Decision::Ignore);
    }

    #[test]
    fn a_gap_or_a_new_epoch_means_resync() {
        let mut table = NodeTable::new();
        table.synced(node("a"), 1, 0, 0);
        assert_eq!(
            table.observe_delta(&node("a"), 1, 2, 0),
            Decision::Resync(ResyncReason::Gap)
        );
        assert_eq!(
            table.observe_delta(&node("a"), 2, 1, 0),
            Decision::Resync(ResyncReason::NewEpoch)
        );
        assert_eq!(
            table.observe_heartbeat(&node("a"), 1, 3, 0),
            Decision::Resync(ResyncReason::Gap),
            "a lost trailing delta"
        );
        assert_eq!(
            table.observe_heartbeat(&node("a"), 1, 0, 0),
            Decision::Ignore
        );
    }

    #[test]
    fn silent_nodes_are_lost() {
        let mut table = NodeTable::new();
        table.synced(node("a"), 1, 0, 0);
        table.synced(node("b"), 1, 0, 0);
        assert_eq!(
            table.observe_heartbeat(&node("b"), 1, 0, 4_000),
            Decision::Ignore
        );
        assert_eq!(table.lost(5_000, 5_000), vec![node("a")]);
        assert!(table.remove(&node("a")));
        assert_eq!(table.lost(5_000, 5_000), Vec::<NodeId>::new());
    }
}
