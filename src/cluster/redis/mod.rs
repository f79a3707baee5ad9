//! Owns replication through Redis: this node's deltas go out on the shared
//! channel (and into its state hash, atomically, by one Lua script), other
//! nodes' deltas come in and are applied as replicas, gaps and new epochs
//! trigger a resync from the sender's hash, silent nodes are declared lost,
//! and cross-node requests travel through per-node inboxes.
//!
//! Every connection to Redis is one "epoch" of this node: on (re)connect it
//! republishes its full state under a new epoch and resyncs every other node,
//! so the views converge after any outage. Only this folder and
//! `history/redis.rs` speak Redis.

pub mod keys;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::keys::Keys;
use super::membership::{Decision, NodeTable, ResyncReason};
use super::wire::{Answer, Body, Envelope, InboxMessage, Request, WIRE_VERSION};
use super::{ReplicationLink, Replicator};
use crate::model::time::millis_of;
use crate::model::time::now_millis;
use crate::model::{Millis, NodeId, SessionView};
use crate::presence::{Change, HeartbeatOutcome, RemoteCommand, ReplicaUpdate, SessionEvent};

/// How long a Redis command may take before the connection counts as down.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a cross-node request waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Local changes sent to Redis in one pipelined round trip, at most.
const PUBLISH_BATCH: usize = 256;
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why replication through Redis failed; the replicator reconnects.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or dropped a command or connection.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The subscription connection closed.
    #[error("the subscription to Redis was lost")]
    SubscriptionLost,
    /// The local engine stopped.
    #[error("the presence engine stopped")]
    EngineStopped,
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
    client: redis::Client,
    config: ClusterConfig,
    keys: Keys,
}

impl RedisReplicator {
    /// Checks the URL; connecting happens in `run`.
    pub fn new(config: ClusterConfig) -> Result<Self, ClusterError> {
        let client = redis::Client::open(config.url.as_str())?;
        Ok(Self {
            client,
            keys: Keys::new(&config.namespace),
            config,
        })
    }
}

impl Replicator for RedisReplicator {
    async fn run(self, mut link: ReplicationLink, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let result = Connected::start(&self, &mut link, &shutdown).await;
            match result {
                Ok(()) => return,
                Err(err) => {
                    link.readiness.set_problem("redis_unreachable");
                    link.metrics.redis_errors.inc();
                    tracing::warn!(error = %err, "redis unreachable; serving local clients and retrying");
                }
            }
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            let jitter = Duration::from_millis(rand::random_range(
                0..=u64::try_from(backoff.as_millis()).unwrap_or(100),
            ));
            let wake = tokio::time::sleep(backoff / 2 + jitter / 2);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    () = &mut wake => break,
                    () = shutdown.cancelled() => return,
                    // Nobody can be asked while Redis is down: answer at once.
                    Some(command) = link.remote_commands.recv() => command.refuse(),
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// A reply channel waiting for another node's answer.
enum Pending {
    Found(oneshot::Sender<bool>),
    Count(oneshot::Sender<usize>),
    Heartbeat(oneshot::Sender<HeartbeatOutcome>),
}

impl Pending {
    fn answer(self, answer: Option<Answer>) {
        match (self, answer) {
            (Pending::Found(reply), Some(Answer::Found(found))) => drop(reply.send(found)),
            (Pending::Count(reply), Some(Answer::Count(count))) => drop(reply.send(count)),
            (Pending::Heartbeat(reply), Some(Answer::Heartbeat(outcome))) => {
                drop(reply.send(outcome))
            }
            // No answer in time: the session is treated as not found.
            (Pending::Found(reply), _) => drop(reply.send(false)),
            (Pending::Count(reply), _) => drop(reply.send(0)),
            (Pending::Heartbeat(reply), _) => drop(reply.send(HeartbeatOutcome::NotFound)),
        }
    }
}

/// One connection epoch: from connect to the first Redis error.
struct Connected<'a> {
    replicator: &'a RedisReplicator,
    conn: MultiplexedConnection,
    epoch: u64,
    seq: u64,
    table: NodeTable,
    pending: HashMap<u64, (Instant, Pending)>,
    next_request: u64,
    connected_at: Millis,
}

impl<'a> Connected<'a> {
    /// Connects, publishes this node's state, bootstraps the cluster view
    /// and then replicates until shutdown (Ok) or a Redis failure (Err).
    async fn start(
        replicator: &'a RedisReplicator,
        link: &mut ReplicationLink,
        shutdown: &CancellationToken,
    ) -> Result<(), ClusterError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conn = replicator
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub = replicator.client.get_async_pubsub().await?;
        pubsub.subscribe(replicator.keys.deltas()).await?;
        pubsub
            .subscribe(replicator.keys.inbox(&replicator.config.node_id))
            .await?;
        let messages = pubsub.into_on_message();
        let mut this = Self {
            replicator,
            conn,
            epoch: 0,
            seq: 0,
            table: NodeTable::new(),
            pending: HashMap::new(),
            next_request: 0,
            connected_at: now_millis(),
        };
        let result = this.serve(messages, link, shutdown).await;
        // Callers waiting on another node get "not found" rather than hang.
        for (_, (_, pending)) in this.pending.drain() {
            pending.answer(None);
        }
        result
    }

    async fn serve(
        &mut self,
        mut messages: redis::aio::PubSubStream,
        link: &mut ReplicationLink,
        shutdown: &CancellationToken,
    ) -> Result<(), ClusterError> {
        let this = self;
        let replicator = this.replicator;
        // Pipelined deltas use EVALSHA, which needs the script loaded.
        scripts::PUBLISH_DELTA.load_async(&mut this.conn).await?;
        this.publish_full_state(link).await?;
        this.bootstrap(link).await?;
        link.readiness.clear();
        tracing::info!(node_id = %replicator.config.node_id, epoch = this.epoch, nodes = this.table.len(), "cluster view synced");
        let mut heartbeat = tokio::time::interval(replicator.config.heartbeat_every());
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checks = tokio::time::interval(replicator.config.heartbeat_every() / 2);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    this.leave(link).await;
                    return Ok(());
                }
                change = link.local_changes.recv() => match change {
                    Some(change) => this.publish_changes(change, link).await?,
                    None => return Err(ClusterError::EngineStopped),
                },
                message = messages.next() => match message {
                    Some(message) => this.on_message(&message, link).await?,
                    None => return Err(ClusterError::SubscriptionLost),
                },
                Some(command) = link.remote_commands.recv() => this.send_request(command).await?,
                _ = heartbeat.tick() => this.publish_heartbeat(link).await?,
                _ = checks.tick() => this.on_tick(link).await?,
            }
        }
    }

    fn node(&self) -> &NodeId {
        &self.replicator.config.node_id
    }

    fn envelope(&self, body: Body) -> String {
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
    async fn publish_full_state(&mut self, link: &mut ReplicationLink) -> Result<(), ClusterError> {
        // Whatever is queued is covered by the snapshot taken below.
        while link.local_changes.try_recv().is_ok() {}
        link.republish.store(false, Ordering::Release);
        let node = self.node().clone();
        let sessions = link
            .presence
            .session_views_of_node(node)
            .await
            .map_err(|_| ClusterError::EngineStopped)?;
        self.epoch = rand::random::<u64>() >> 12;
        self.seq = 0;
        let keys = &self.replicator.keys;
        let envelope = self.envelope(Body::Reset);
        let mut invocation = scripts::FULL_STATE.prepare_invoke();
        invocation
            .key(keys.state(self.node()))
            .key(keys.meta(self.node()))
            .key(keys.nodes())
            .arg(keys.deltas())
            .arg(envelope)
            .arg(self.epoch)
            .arg(self.node().as_str())
            .arg(now_millis());
        for session in &sessions {
            invocation
                .arg(session.session_id.to_string())
                .arg(crate::model::json::to_json(session));
        }
        invocation.invoke_async::<()>(&mut self.conn).await?;
        tracing::info!(
            epoch = self.epoch,
            sessions = sessions.len(),
            "published full local state"
        );
        Ok(())
    }

    /// Loads every live node's state before this node reports ready.
    async fn bootstrap(&mut self, link: &mut ReplicationLink) -> Result<(), ClusterError> {
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.replicator.keys.nodes())
            .query_async(&mut self.conn)
            .await?;
        let others: Vec<NodeId> = nodes
            .iter()
            .map(|n| NodeId::new(n))
            .filter(|n| n != self.node())
            .collect();
        for node in &others {
            self.resync(node, None, link).await?;
        }
        // Nodes that died while this node was cut off are not registered
        // any more; whatever we still hold of them is gone.
        let local = self.node().clone();
        let held: Vec<NodeId> = link
            .presence
            .nodes_other_than(local)
            .await
            .map_err(|_| ClusterError::EngineStopped)?;
        for node in held.iter().filter(|n| !others.contains(n)) {
            self.forget(node, crate::model::EndCause::NodeLost, link)
                .await?;
        }
        link.metrics
            .nodes_known
            .set(i64::try_from(self.table.len()).unwrap_or(0));
        Ok(())
    }

    /// Replaces the replicas of `node` with its state hash.
    async fn resync(
        &mut self,
        node: &NodeId,
        reason: Option<ResyncReason>,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        if let Some(reason) = reason {
            link.metrics
                .resyncs
                .with_label_values(&[reason.as_str()])
                .inc();
            tracing::info!(node_id = %node, reason = reason.as_str(), "resync");
        }
        let keys = &self.replicator.keys;
        let (epoch, seq, heard_at, fields): (Option<u64>, Option<u64>, Option<i64>, Vec<String>) =
            scripts::READ_STATE
                .key(keys.state(node))
                .key(keys.meta(node))
                .invoke_async(&mut self.conn)
                .await?;
        let now = now_millis();
        let alive = heard_at.is_some_and(|at| now - at < self.replicator.config.lost_after());
        let (Some(epoch), Some(seq), true) = (epoch, seq, alive) else {
            return self
                .forget(node, crate::model::EndCause::NodeLost, link)
                .await;
        };
        let sessions: Vec<SessionView> = fields
            .chunks(2)
            .filter_map(|pair| pair.get(1))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        let ended = self.vanished(node, &sessions, link).await?;
        link.presence
            .apply_replica(ReplicaUpdate::ReplaceNode {
                node: node.clone(),
                sessions,
                ended,
            })
            .await
            .map_err(|_| ClusterError::EngineStopped)?;
        if !self.table.knows(node) {
            tracing::info!(node_id = %node, epoch, "node joined");
        }
        self.table.synced(node.clone(), epoch, seq, now);
        link.metrics
            .nodes_known
            .set(i64::try_from(self.table.len()).unwrap_or(0));
        Ok(())
    }

    /// The end records (from history) of replicas `node` no longer holds.
    async fn vanished(
        &self,
        node: &NodeId,
        sessions: &[SessionView],
        link: &ReplicationLink,
    ) -> Result<Vec<SessionView>, ClusterError> {
        let node = node.clone();
        let replicas = link
            .presence
            .sessions_of_node(node)
            .await
            .map_err(|_| ClusterError::EngineStopped)?;
        let mut ended = Vec::new();
        for id in replicas
            .into_iter()
            .filter(|id| !sessions.iter().any(|s| s.session_id == *id))
        {
            if let Ok(Some(view)) = link.history.get(id).await {
                ended.push(view);
            }
        }
        Ok(ended)
    }

    /// Ends everything `node` held and forgets it.
    async fn forget(
        &mut self,
        node: &NodeId,
        cause: crate::model::EndCause,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let known = self.table.remove(node);
        if known {
            tracing::info!(node_id = %node, cause = cause.as_str(), "node gone");
        }
        link.presence
            .apply_replica(ReplicaUpdate::NodeGone {
                node: node.clone(),
                cause,
            })
            .await
            .map_err(|_| ClusterError::EngineStopped)?;
        link.metrics
            .nodes_known
            .set(i64::try_from(self.table.len()).unwrap_or(0));
        Ok(())
    }

    /// Publishes `first` and whatever else is already queued in one
    /// pipelined round trip (order is kept: one connection, in sequence).
    async fn publish_changes(
        &mut self,
        first: Change,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        if link.republish.load(Ordering::Acquire) {
            return self.publish_full_state(link).await;
        }
        let mut changes = vec![first];
        while changes.len() < PUBLISH_BATCH {
            match link.local_changes.try_recv() {
                Ok(change) => changes.push(change),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        let mut published = 0;
        for change in &changes {
            if let Some(invocation) = self.delta_invocation(change) {
                pipe.invoke_script(&invocation).ignore();
                published += 1;
            }
        }
        if published == 0 {
            return Ok(());
        }
        pipe.query_async::<()>(&mut self.conn).await?;
        link.metrics
            .deltas
            .with_label_values(&["out"])
            .inc_by(published);
        Ok(())
    }

    /// The script call that stores and publishes one local change.
    fn delta_invocation(&mut self, change: &Change) -> Option<redis::ScriptInvocation<'static>> {
        let Change::Session { event, session } = change else {
            return None;
        };
        self.seq += 1;
        let (body, op) = match event {
            SessionEvent::Ended => (
                Body::End {
                    session: Box::new(session.clone()),
                },
                "del",
            ),
            SessionEvent::Started | SessionEvent::Updated => (
                Body::Upsert {
                    session: Box::new(session.clone()),
                },
                "set",
            ),
        };
        let keys = &self.replicator.keys;
        let mut invocation = scripts::PUBLISH_DELTA.prepare_invoke();
        invocation
            .key(keys.state(self.node()))
            .key(keys.meta(self.node()))
            .arg(keys.deltas())
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
    async fn publish_heartbeat(&mut self, link: &mut ReplicationLink) -> Result<(), ClusterError> {
        let keys = &self.replicator.keys;
        let envelope = self.envelope(Body::Heartbeat);
        let state_kept: i64 = scripts::HEARTBEAT
            .key(keys.meta(self.node()))
            .key(keys.nodes())
            .arg(keys.deltas())
            .arg(envelope)
            .arg(now_millis())
            .arg(self.node().as_str())
            .invoke_async(&mut self.conn)
            .await?;
        if state_kept == 0 {
            tracing::warn!("this node's cluster state was removed by others; republishing");
            self.publish_full_state(link).await?;
        }
        Ok(())
    }

    async fn on_message(
        &mut self,
        message: &redis::Msg,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let payload = message.get_payload_bytes();
        if message.get_channel_name() == self.replicator.keys.deltas() {
            match serde_json::from_slice::<Envelope>(payload) {
                Ok(envelope) if envelope.node_id != *self.node() => {
                    self.on_envelope(envelope, link).await?
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "ignoring an unreadable delta"),
            }
        } else {
            match serde_json::from_slice::<InboxMessage>(payload) {
                Ok(message) => self.on_inbox(message, link),
                Err(err) => tracing::warn!(error = %err, "ignoring an unreadable inbox message"),
            }
        }
        Ok(())
    }

    async fn on_envelope(
        &mut self,
        envelope: Envelope,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let now = now_millis();
        let node = envelope.node_id.clone();
        let decision = match &envelope.body {
            Body::Upsert { .. } | Body::End { .. } => {
                self.table
                    .observe_delta(&node, envelope.epoch, envelope.seq, now)
            }
            Body::Heartbeat => {
                self.table
                    .observe_heartbeat(&node, envelope.epoch, envelope.seq, now)
            }
            Body::Reset => Decision::Resync(ResyncReason::NewEpoch),
            Body::Goodbye => {
                return self
                    .forget(&node, crate::model::EndCause::Shutdown, link)
                    .await;
            }
        };
        match decision {
            Decision::Ignore => Ok(()),
            Decision::Resync(reason) => self.resync(&node, Some(reason), link).await,
            Decision::Apply => {
                link.metrics.deltas.with_label_values(&["in"]).inc();
                link.metrics
                    .replication_lag
                    .set((now - envelope.sent_at).max(0) as f64 / 1000.0);
                let update = match envelope.body {
                    Body::Upsert { session } => ReplicaUpdate::Upsert(session),
                    Body::End { session } => ReplicaUpdate::End(session),
                    Body::Heartbeat | Body::Reset | Body::Goodbye => return Ok(()),
                };
                link.presence
                    .apply_replica(update)
                    .await
                    .map_err(|_| ClusterError::EngineStopped)
            }
        }
    }

    /// Requests are served in their own task so a slow engine answer never
    /// holds up replication; answers complete the waiting caller.
    fn on_inbox(&mut self, message: InboxMessage, link: &ReplicationLink) {
        match message {
            InboxMessage::Answer { request_id, answer } => {
                if let Some((_, pending)) = self.pending.remove(&request_id) {
                    pending.answer(Some(answer));
                }
            }
            InboxMessage::Request {
                from,
                request_id,
                request,
            } => {
                let presence = link.presence.clone();
                let mut conn = self.conn.clone();
                let inbox = self.replicator.keys.inbox(&from);
                tokio::spawn(async move {
                    let answer = match *request {
                        Request::Terminate { session_id, reason } => Answer::Found(
                            presence
                                .terminate(session_id, reason)
                                .await
                                .unwrap_or(false),
                        ),
                        Request::TerminateUser { user_id, reason } => Answer::Count(
                            presence.terminate_user(user_id, reason).await.unwrap_or(0),
                        ),
                        Request::Heartbeat { beat } => Answer::Heartbeat(
                            presence
                                .heartbeat(beat)
                                .await
                                .unwrap_or(HeartbeatOutcome::NotFound),
                        ),
                    };
                    let reply =
                        crate::model::json::to_json(&InboxMessage::Answer { request_id, answer });
                    let sent: Result<(), redis::RedisError> = redis::cmd("PUBLISH")
                        .arg(inbox)
                        .arg(reply)
                        .query_async(&mut conn)
                        .await;
                    if let Err(err) = sent {
                        tracing::warn!(error = %err, "answering a cross-node request failed");
                    }
                });
            }
        }
    }

    async fn send_request(&mut self, command: RemoteCommand) -> Result<(), ClusterError> {
        self.next_request += 1;
        let request_id = self.next_request;
        let (node, request, pending) = match command {
            RemoteCommand::Terminate {
                node,
                id,
                reason,
                reply,
            } => (
                node,
                Request::Terminate {
                    session_id: id,
                    reason,
                },
                Pending::Found(reply),
            ),
            RemoteCommand::TerminateUser {
                node,
                user,
                reason,
                reply,
            } => (
                node,
                Request::TerminateUser {
                    user_id: user,
                    reason,
                },
                Pending::Count(reply),
            ),
            RemoteCommand::Heartbeat { node, beat, reply } => {
                (node, Request::Heartbeat { beat }, Pending::Heartbeat(reply))
            }
        };
        let message = crate::model::json::to_json(&InboxMessage::Request {
            from: self.node().clone(),
            request_id,
            request: Box::new(request),
        });
        self.pending
            .insert(request_id, (Instant::now() + REQUEST_TIMEOUT, pending));
        let inbox = self.replicator.keys.inbox(&node);
        redis::cmd("PUBLISH")
            .arg(inbox)
            .arg(message)
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }

    async fn on_tick(&mut self, link: &mut ReplicationLink) -> Result<(), ClusterError> {
        if link.republish.load(Ordering::Acquire) {
            self.publish_full_state(link).await?;
        }
        let now_instant = Instant::now();
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now_instant)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((_, pending)) = self.pending.remove(&id) {
                pending.answer(None);
            }
        }
        let now = now_millis();
        let lost_after = self.replicator.config.lost_after();
        // Only a node that has itself been connected long enough can tell
        // another node's silence from its own outage.
        if now - self.connected_at < lost_after {
            return Ok(());
        }
        for node in self.table.lost(now, lost_after) {
            tracing::warn!(node_id = %node, "node lost");
            self.forget(&node, crate::model::EndCause::NodeLost, link)
                .await?;
            let keys = &self.replicator.keys;
            scripts::REMOVE_DEAD_NODE
                .key(keys.state(&node))
                .key(keys.meta(&node))
                .key(keys.nodes())
                .arg(node.as_str())
                .arg(now - lost_after)
                .invoke_async::<()>(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    /// A clean exit: publish what the engine ended, say goodbye, remove our
    /// state so nobody mistakes it for a live node.
    async fn leave(&mut self, link: &mut ReplicationLink) {
        while let Ok(change) = link.local_changes.try_recv() {
            if self.publish_changes(change, link).await.is_err() {
                break;
            }
        }
        let keys = &self.replicator.keys;
        let envelope = self.envelope(Body::Goodbye);
        let result = scripts::GOODBYE
            .key(keys.state(self.node()))
            .key(keys.meta(self.node()))
            .key(keys.nodes())
            .arg(keys.deltas())
            .arg(envelope)
            .arg(self.node().as_str())
            .invoke_async::<()>(&mut self.conn)
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "saying goodbye to the cluster failed");
        }
        for (_, (_, pending)) in self.pending.drain() {
            pending.answer(None);
        }
    }
}
