//! Owns every Redis key and channel name, all under `PRESENCE_NAMESPACE`, so
//! several clusters can share one Redis. One place to read the layout (see
//! `docs/scaling.md` for how it maps onto Redis Cluster). Replication
//! (`cluster/redis/`) and the Redis history store (`history/redis.rs`) both
//! name their keys here, so neither imports the other.

use crate::model::NodeId;

/// Key and channel names for one namespace.
#[derive(Debug, Clone)]
pub struct Keys {
    namespace: String,
}

impl Keys {
    /// Names under `namespace`.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
        }
    }

    /// The channel every node publishes its deltas to.
    pub fn deltas(&self) -> String {
        format!("{}:deltas", self.namespace)
    }

    /// The hash of deny entries (user id to JSON), kept while they last.
    pub fn revoked(&self) -> String {
        format!("{}:revoked", self.namespace)
    }

    /// The channel new deny entries are published to.
    pub fn revoked_channel(&self) -> String {
        format!("{}:revoked:new", self.namespace)
    }

    /// The hash of alerts (alert id to JSON with the raising node), the
    /// newest `alerts::store::ALERTS_KEPT`.
    pub fn alerts(&self) -> String {
        format!("{}:alerts", self.namespace)
    }

    /// The channel raised and cleared alerts are published to.
    pub fn alerts_channel(&self) -> String {
        format!("{}:alerts:new", self.namespace)
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
        format!("{}:history:session:{id}", self.namespace)
    }

    /// Ended session ids scored by `connected_at`.
    pub fn history_by_connected(&self) -> String {
        format!("{}:history:by_connected", self.namespace)
    }

    /// Ended session ids scored by `ended_at`.
    pub fn history_by_ended(&self) -> String {
        format!("{}:history:by_ended", self.namespace)
    }

    /// Ended sessions per UTC start day.
    pub fn history_started(&self) -> String {
        format!("{}:history:started_by_day", self.namespace)
    }

    /// The latest ended session per user.
    pub fn history_last_by_user(&self) -> String {
        format!("{}:history:last_by_user", self.namespace)
    }

    /// The online series: `at:users:sessions` members scored by `at`.
    pub fn history_series(&self) -> String {
        format!("{}:history:series", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_under_the_namespace() {
        let keys = Keys::new("blue");
        let node = NodeId::new("n1");
        for name in [
            keys.deltas(),
            keys.nodes(),
            keys.state(&node),
            keys.inbox(&node),
            keys.history_by_ended(),
        ] {
            assert!(name.starts_with("blue:"), "{name}");
        }
        assert_eq!(keys.state(&node), "blue:node:{n1}:state");
    }
}
