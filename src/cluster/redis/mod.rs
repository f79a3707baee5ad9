//! Owns replication through Redis: this node's deltas go out on the shared
//! channel (and into its state hash, atomically, by one Lua script), other
//! nodes' deltas come in and are applied as replicas, gaps and new epochs
//! trigger a resync from the sender's hash, silent nodes are declared lost,
//! and cross-node requests travel through per-node inboxes.
//!
//! Every connection to Redis is one "epoch" of this node: on (re)connect it
//! republishes its full state under a new epoch and resyncs every other node,
//! so the views converge after any outage. Only this folder and
//! `history/redis.rs` speak Redis; both name their keys in `crate::keyspace`.
//!
//! - `connection.rs`: connecting, reconnecting with backoff, readiness.
//! - `epoch.rs`: one connection epoch and the loop that drives it.
//! - `publish.rs`: local deltas, full state, heartbeats.
//! - `resync.rs`: bootstrap, resyncs, forgetting and losing nodes.
//! - `inbound.rs`: what arrives on the subscription.
//! - `requests.rs`: node-to-node requests (send, serve, answer).
//! - `leave.rs`: the clean exit.
//! - `scripts.rs`: the Lua scripts.
//!
//! Every message published on a channel is sealed with `ClusterConfig::seal`
//! (`cluster::seal`), and every message received is opened with it before
//! it is parsed (`inbound.rs`). The hashes are not sealed.

mod alerts;
mod connection;
mod epoch;
mod inbound;
mod leave;
mod publish;
mod requests;
mod resync;
mod revoked;
mod scripts;

use std::time::Duration;

use crate::cluster::seal::{LogLimit, Seal};
use crate::keyspace::Keys;
use crate::model::time::millis_of;
use crate::model::{Millis, NodeId};
use crate::presence::EngineStopped;
use crate::redis_access::Deployment;

/// Why replication through Redis failed; the replicator reconnects.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or dropped a command or connection.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The URL names no usable Redis.
    #[error("{0}")]
    Url(String),
    /// The subscription connection closed.
    #[error("the subscription to Redis was lost")]
    SubscriptionLost,
    /// The local engine stopped.
    #[error("the presence engine stopped")]
    EngineStopped,
}

impl From<EngineStopped> for ClusterError {
    fn from(_: EngineStopped) -> Self {
        ClusterError::EngineStopped
    }
}

/// Cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Redis URL.
    pub url: String,
    /// Key prefix.
    pub namespace: String,
    /// This node.
    pub node_id: NodeId,
    /// Silence after which a node is lost.
    pub node_timeout: Duration,
    /// Seals and opens what nodes publish (`PRESENCE_CLUSTER_SECRET`).
    pub seal: Seal,
}

impl ClusterConfig {
    /// How often this node says it is alive: five times per node timeout.
    pub fn heartbeat_every(&self) -> Duration {
        (self.node_timeout / 5).max(Duration::from_millis(100))
    }

    /// Silence that makes a node lost: three missed heartbeats, so a dead
    /// node is noticed well within the node timeout.
    pub fn lost_after(&self) -> Millis {
        millis_of(self.heartbeat_every() * 3)
    }
}

/// Replication through Redis pub/sub.
#[derive(Debug)]
pub struct RedisReplicator {
    deployment: Deployment,
    config: ClusterConfig,
    keys: Keys,
    /// Paces the log lines about refused messages (across reconnects).
    rejections_logged: std::sync::Mutex<LogLimit>,
}

impl RedisReplicator {
    /// Checks the URL; connecting happens in `run`.
    pub fn new(config: ClusterConfig) -> Result<Self, ClusterError> {
        let deployment = Deployment::parse(&config.url).map_err(ClusterError::Url)?;
        let keys = if deployment.is_cluster() {
            Keys::sharded(&config.namespace)
        } else {
            Keys::new(&config.namespace)
        };
        Ok(Self {
            deployment,
            keys,
            config,
            rejections_logged: std::sync::Mutex::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(node_timeout: Duration) -> ClusterConfig {
        ClusterConfig {
            url: "redis://127.0.0.1/".to_string(),
            namespace: "presence".to_string(),
            node_id: NodeId::new("a"),
            node_timeout,
            seal: Seal::off(),
        }
    }

    #[test]
    fn heartbeats_come_five_times_per_node_timeout_and_three_missed_mean_lost() {
        let config = config(Duration::from_secs(10));
        assert_eq!(config.heartbeat_every(), Duration::from_secs(2));
        assert_eq!(config.lost_after(), 6_000);
    }

    #[test]
    fn heartbeats_are_never_more_often_than_every_100_ms() {
        let config = config(Duration::from_millis(200));
        assert_eq!(config.heartbeat_every(), Duration::from_millis(100));
        assert_eq!(config.lost_after(), 300);
    }
}
