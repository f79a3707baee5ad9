//! Owns every Redis key and channel name, all under `PRESENCE_NAMESPACE`, so
//! several clusters can share one Redis, in one of two layouts:
//!
//! - **One instance** (`redis://`): the names v1 used, one delta channel
//!   for every node, plain `PUBLISH`.
//! - **Redis Cluster** (`redis+cluster://`): sharded channels
//!   (`SPUBLISH`), and hash tags so that every Lua script and pipeline
//!   keeps to one slot. A node's state, meta, inbox and delta channel share
//!   the tag `{node id}`, so its deltas spread over the slots by node and
//!   one script can store and publish a delta; the deny list, the alerts
//!   and the history each have one tag (`{ns:revoked}`, `{ns:alerts}`,
//!   `{ns:history}`) for their key and channel. New nodes are announced on
//!   `{ns}:nodes:joined`, since nobody follows a node's channel before it
//!   is known.
//!
//! Replication (`cluster/redis/`) and the Redis history store
//! (`history/redis.rs`) both name their keys here, so neither imports the
//! other. `docs/scaling.md` explains the cluster layout's choices.

use crate::model::NodeId;

/// Key and channel names for one namespace.
#[derive(Debug, Clone)]
pub struct Keys {
    namespace: String,
    sharded: bool,
}

impl Keys {
    /// Names under `namespace` on one Redis instance.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            sharded: false,
        }
    }

    /// Names under `namespace` on a Redis Cluster.
    pub fn sharded(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            sharded: true,
        }
    }

    /// True on a Redis Cluster: channels are sharded channels.
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// The command that publishes on these channels: `PUBLISH`, or
    /// `SPUBLISH` on a Redis Cluster.
    pub fn publish_command(&self) -> &'static str {
        if self.sharded { "SPUBLISH" } else { "PUBLISH" }
    }

    /// The name of an area with its own slot on a cluster (`{ns:area}`),
    /// or `ns:area` on one instance.
    fn area(&self, area: &str) -> String {
        if self.sharded {
            format!("{{{}:{area}}}", self.namespace)
        } else {
            format!("{}:{area}", self.namespace)
        }
    }

    /// The channel `node` publishes its deltas and heartbeats to: the one
    /// shared channel, or on a cluster the node's own.
    pub fn deltas_of(&self, node: &NodeId) -> String {
        if self.sharded {
            format!("{}:node:{{{node}}}:deltas", self.namespace)
        } else {
            format!("{}:deltas", self.namespace)
        }
    }

    /// True for a channel `deltas_of` names (of any node), or the
    /// announcement channel.
    pub fn is_delta_channel(&self, channel: &str) -> bool {
        if !self.sharded {
            return channel == self.deltas_of(&NodeId::new(""));
        }
        channel == self.announcements()
            || channel
                .strip_prefix(&self.namespace)
                .and_then(|rest| rest.strip_prefix(":node:{"))
                .is_some_and(|rest| rest.ends_with("}:deltas"))
    }

    /// On a cluster, the channel where a node announces each new epoch, so
    /// the others start following its delta channel.
    pub fn announcements(&self) -> String {
        format!("{}:nodes:joined", self.namespace)
    }

    /// The hash of deny entries (user id to JSON), kept while they last.
    pub fn revoked(&self) -> String {
        self.area("revoked")
    }

    /// The channel new deny entries are published to.
    pub fn revoked_channel(&self) -> String {
        format!("{}:new", self.area("revoked"))
    }

    /// The hash of alerts (alert id to JSON with the raising node), the
    /// newest `alerts::store::ALERTS_KEPT`.
    pub fn alerts(&self) -> String {
        self.area("alerts")
    }

    /// The channel raised and cleared alerts are published to.
    pub fn alerts_channel(&self) -> String {
        format!("{}:new", self.area("alerts"))
    }

    /// The set of node ids that have published state.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.namespace)
    }

    /// A node's live sessions: hash of session id -> Session JSON.
    pub fn state(&self, node: &NodeId) -> String {
        format!("{}:node:{{{node}}}:state", self.namespace)
    }

    /// A node's epoch, last seq and last heartbeat time.
    pub fn meta(&self, node: &NodeId) -> String {
        format!("{}:node:{{{node}}}:meta", self.namespace)
    }

    /// A node's request/answer channel.
    pub fn inbox(&self, node: &NodeId) -> String {
        format!("{}:node:{{{node}}}:inbox", self.namespace)
    }

    /// One ended session.
    pub fn history_session(&self, id: &str) -> String {
        format!("{}:session:{id}", self.area("history"))
    }

    /// Ended session ids scored by `connected_at`.
    pub fn history_by_connected(&self) -> String {
        format!("{}:by_connected", self.area("history"))
    }

    /// Ended session ids scored by `ended_at`.
    pub fn history_by_ended(&self) -> String {
        format!("{}:by_ended", self.area("history"))
    }

    /// Ended sessions per UTC start day.
    pub fn history_started(&self) -> String {
        format!("{}:started_by_day", self.area("history"))
    }

    /// The latest ended session per user.
    pub fn history_last_by_user(&self) -> String {
        format!("{}:last_by_user", self.area("history"))
    }

    /// The online series: `at:users:sessions` members scored by `at`.
    pub fn history_series(&self) -> String {
        format!("{}:series", self.area("history"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_under_the_namespace_with_the_v1_names_on_one_instance() {
        let keys = Keys::new("blue");
        let node = NodeId::new("n1");
        for name in [
            keys.deltas_of(&node),
            keys.nodes(),
            keys.state(&node),
            keys.inbox(&node),
            keys.history_by_ended(),
        ] {
            assert!(name.starts_with("blue:"), "{name}");
        }
        assert_eq!(keys.state(&node), "blue:node:{n1}:state");
        assert_eq!(keys.deltas_of(&node), "blue:deltas");
        assert_eq!(keys.revoked_channel(), "blue:revoked:new");
        assert_eq!(keys.history_session("x"), "blue:history:session:x");
        assert_eq!(keys.publish_command(), "PUBLISH");
        assert!(keys.is_delta_channel("blue:deltas"));
        assert!(!keys.is_delta_channel("blue:revoked:new"));
    }

    /// The part of a key Redis Cluster hashes: the first `{...}`, if any.
    fn hash_tag(key: &str) -> &str {
        let Some(open) = key.find('{') else {
            return key;
        };
        match key[open + 1..].find('}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        }
    }

    #[test]
    fn on_a_cluster_each_script_and_pipeline_keeps_to_one_slot() {
        let keys = Keys::sharded("blue");
        let node = NodeId::new("n1");
        let of_node = [
            keys.state(&node),
            keys.meta(&node),
            keys.inbox(&node),
            keys.deltas_of(&node),
        ];
        assert!(of_node.iter().all(|k| hash_tag(k) == "n1"), "{of_node:?}");
        assert_eq!(hash_tag(&keys.revoked()), hash_tag(&keys.revoked_channel()));
        assert_eq!(hash_tag(&keys.alerts()), hash_tag(&keys.alerts_channel()));
        let history = [
            keys.history_session("x"),
            keys.history_by_connected(),
            keys.history_by_ended(),
            keys.history_started(),
            keys.history_last_by_user(),
            keys.history_series(),
        ];
        assert!(
            history.iter().all(|k| hash_tag(k) == "blue:history"),
            "{history:?}"
        );
        assert_ne!(hash_tag(&keys.revoked()), hash_tag(&keys.alerts()));
        assert_eq!(keys.publish_command(), "SPUBLISH");
    }

    #[test]
    fn on_a_cluster_every_nodes_channel_and_the_announcements_are_delta_channels() {
        let keys = Keys::sharded("blue");
        assert!(keys.is_delta_channel(&keys.deltas_of(&NodeId::new("n1"))));
        assert!(keys.is_delta_channel(&keys.announcements()));
        assert!(!keys.is_delta_channel(&keys.inbox(&NodeId::new("n1"))));
        assert!(!keys.is_delta_channel(&keys.alerts_channel()));
        assert!(!keys.is_delta_channel("green:node:{n1}:deltas"));
    }
}
