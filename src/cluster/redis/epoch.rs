//! Owns one connection epoch of this node: what lives from connecting to
//! Redis to the first Redis error (the epoch number, the last `seq`, the
//! table of other nodes, the requests waiting for an answer) and the loop
//! that drives it. The other files of this folder add the steps the loop
//! takes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::connection::connect;
use super::requests::PendingRequests;
use super::{ClusterConfig, ClusterError, RedisReplicator, scripts};
use crate::cluster::ReplicationLink;
use crate::cluster::membership::NodeTable;
use crate::cluster::seal::{LogLimit, Seal};
use crate::keyspace::Keys;
use crate::model::time::now_millis;
use crate::model::{Millis, NodeId};
use crate::redis_access::{Follower, Messages, RedisConn};

/// One connection epoch: from connect to the first Redis error.
pub(super) struct Connected<'a> {
    replicator: &'a RedisReplicator,
    /// Commands, scripts and publishes (the subscription is separate).
    pub(super) conn: RedisConn,
    /// Follows other nodes' channels as they become known (on a Redis
    /// Cluster; nothing to do on one instance).
    pub(super) follower: Follower,
    /// This node's epoch, new at every full republish.
    pub(super) epoch: u64,
    /// The last delta published in this epoch.
    pub(super) seq: u64,
    /// The other nodes this one has synced with.
    pub(super) table: NodeTable,
    /// Requests sent to other nodes, waiting for their answer.
    pub(super) requests: PendingRequests,
    /// When this connection was made.
    pub(super) since: Millis,
}

impl<'a> Connected<'a> {
    /// Connects, publishes this node's state, bootstraps the cluster view
    /// and then replicates until shutdown (Ok) or a Redis failure (Err).
    pub(super) async fn start(
        replicator: &'a RedisReplicator,
        link: &mut ReplicationLink,
        shutdown: &CancellationToken,
    ) -> Result<(), ClusterError> {
        let (conn, messages, follower) = connect(replicator).await?;
        let mut this = Self {
            replicator,
            conn,
            follower,
            epoch: 0,
            seq: 0,
            table: NodeTable::new(),
            requests: PendingRequests::default(),
            since: now_millis(),
        };
        let result = this.serve(messages, link, shutdown).await;
        // Callers waiting on another node get "not found" rather than hang.
        this.requests.refuse_all();
        result
    }

    async fn serve(
        &mut self,
        mut messages: Messages,
        link: &mut ReplicationLink,
        shutdown: &CancellationToken,
    ) -> Result<(), ClusterError> {
        self.sync(link).await?;
        let mut heartbeat = every(self.config().heartbeat_every());
        let mut checks = every(self.config().heartbeat_every() / 2);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.leave(link).await;
                    return Ok(());
                }
                change = link.local_changes.recv() => match change {
                    Some(change) => self.publish_changes(change, link).await?,
                    None => return Err(ClusterError::EngineStopped),
                },
                message = messages.next() => match message {
                    Some(message) => self.on_message(&message, link).await?,
                    None => return Err(ClusterError::SubscriptionLost),
                },
                Some(command) = link.remote_commands.recv() => self.send_request(command).await?,
                Some(revoked) = link.revoked.recv() => self.publish_revoked(revoked).await?,
                _ = heartbeat.tick() => {
                    self.publish_heartbeat(link).await?;
                    self.discover_nodes(link).await?;
                }
                _ = checks.tick() => self.run_checks(link).await?,
            }
        }
    }

    /// Publishes this node's state under a new epoch and loads every other
    /// node's; then the node is ready.
    async fn sync(&mut self, link: &mut ReplicationLink) -> Result<(), ClusterError> {
        // Pipelined deltas use EVALSHA, which needs the script loaded.
        scripts::PUBLISH_DELTA.load_async(&mut self.conn).await?;
        self.publish_full_state(link).await?;
        self.bootstrap(link).await?;
        self.load_revoked(link).await?;
        self.load_alerts(link).await?;
        link.readiness.clear();
        tracing::info!(node_id = %self.node(), epoch = self.epoch, nodes = self.table.len(), "cluster view synced");
        Ok(())
    }

    /// The half-period checks: a republish the engine asked for, requests
    /// past their deadline, nodes gone silent.
    async fn run_checks(&mut self, link: &mut ReplicationLink) -> Result<(), ClusterError> {
        if link.republish.load(Ordering::Acquire) {
            self.publish_full_state(link).await?;
        }
        self.requests.expire(Instant::now());
        self.detect_lost_nodes(link).await
    }

    /// This node.
    pub(super) fn node(&self) -> &'a NodeId {
        &self.replicator.config.node_id
    }

    /// Every key and channel name.
    pub(super) fn keys(&self) -> &'a Keys {
        &self.replicator.keys
    }

    /// The cluster settings.
    pub(super) fn config(&self) -> &'a ClusterConfig {
        &self.replicator.config
    }

    /// Seals what this node publishes and opens what it receives.
    pub(super) fn seal(&self) -> &'a Seal {
        &self.replicator.config.seal
    }

    /// Paces the log lines about refused messages.
    pub(super) fn rejections_logged(&self) -> &'a std::sync::Mutex<LogLimit> {
        &self.replicator.rejections_logged
    }
}

/// A timer ticking every `period` (at once first); a late tick is delayed,
/// never bunched.
fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}
