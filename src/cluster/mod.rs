//! Owns how this node shares presence with other nodes, and the readiness
//! that replication reports.
//!
//! The presence engine does not know this module exists. It hands out its
//! local changes on a channel and accepts other nodes' updates through
//! `PresenceHandle`; a `Replicator` connects those two ends to the outside.
//! `SingleNode`, the default, needs no Redis and has nothing to share.

pub mod membership;
pub mod redis;
pub mod seal;
pub mod wire;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::model::{SessionId, SessionView};
use crate::presence::{Change, PresenceHandle, RemoteCommand};
use crate::revocation::{Revocations, Revoked};

/// Whether the node can serve, and if not, why (`/readyz`).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    problem: Arc<RwLock<Option<&'static str>>>,
    /// The records store's problem (`database_unreachable`), kept apart so
    /// that replication clearing its own does not clear it.
    store_problem: Arc<RwLock<Option<&'static str>>>,
    /// The token keys' problem (`jwks_unavailable`: no JWKS fetched yet).
    keys_problem: Arc<RwLock<Option<&'static str>>>,
}

impl Readiness {
    /// Ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the node unable to serve with `reason` (e.g. `redis_unreachable`).
    pub fn set_problem(&self, reason: &'static str) {
        if let Ok(mut problem) = self.problem.write() {
            *problem = Some(reason);
        }
    }

    /// Clears a reported problem.
    pub fn clear(&self) {
        if let Ok(mut problem) = self.problem.write() {
            *problem = None;
        }
    }

    /// Marks the records store unreachable with `reason`
    /// (`database_unreachable`).
    pub fn set_store_problem(&self, reason: &'static str) {
        if let Ok(mut problem) = self.store_problem.write() {
            *problem = Some(reason);
        }
    }

    /// Clears the records store's problem.
    pub fn clear_store_problem(&self) {
        if let Ok(mut problem) = self.store_problem.write() {
            *problem = None;
        }
    }

    /// Marks the token keys unusable with `reason` (`jwks_unavailable`).
    pub fn set_keys_problem(&self, reason: &'static str) {
        if let Ok(mut problem) = self.keys_problem.write() {
            *problem = Some(reason);
        }
    }

    /// Clears the token keys' problem.
    pub fn clear_keys_problem(&self) {
        if let Ok(mut problem) = self.keys_problem.write() {
            *problem = None;
        }
    }

    /// The current problem, if any (replication's first, then the records
    /// store's, then the token keys').
    pub fn problem(&self) -> Option<&'static str> {
        let read = |slot: &RwLock<Option<&'static str>>| slot.read().ok().and_then(|p| *p);
        read(&self.problem)
            .or_else(|| read(&self.store_problem))
            .or_else(|| read(&self.keys_problem))
    }
}

/// Both ends a replicator works between, handed over by `app.rs`.
pub struct ReplicationLink {
    /// This node's changes, coalesced, in the order the engine applied them.
    pub local_changes: mpsc::Receiver<Change>,
    /// Set by the engine when a change did not fit the queue.
    pub republish: Arc<AtomicBool>,
    /// Requests that must run on another node.
    pub remote_commands: mpsc::Receiver<RemoteCommand>,
    /// Where other nodes' updates are applied.
    pub presence: PresenceHandle,
    /// Where end records of vanished replicas are looked up.
    pub end_records: Arc<dyn EndRecords>,
    /// Where `redis_unreachable` and its recovery are reported.
    pub readiness: Readiness,
    /// Replication metrics.
    pub metrics: Metrics,
    /// This node's revokes, to publish (cluster mode).
    pub revoked: mpsc::Receiver<Revoked>,
    /// Where other nodes' revokes are added.
    pub revocations: Revocations,
    /// Where other nodes' alerts are listed.
    pub alerts: crate::alerts::store::AlertStore,
}

/// Where the replicator finds how a replica ended that vanished while this
/// node was not listening (history, in practice; `app.rs` connects them).
pub trait EndRecords: Send + Sync + 'static {
    /// The ended session `id`, if it is recorded and can be read now.
    fn end_record(&self, id: SessionId) -> BoxFuture<'_, Option<SessionView>>;
}

/// Carries this node's presence to other nodes and theirs to this one.
pub trait Replicator: Send + 'static {
    /// Runs until `shutdown` is cancelled.
    fn run(
        self,
        link: ReplicationLink,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send;
}

/// The default: one node, everything in memory, nothing to replicate.
#[derive(Debug, Default)]
pub struct SingleNode;

impl Replicator for SingleNode {
    async fn run(self, _link: ReplicationLink, shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }
}
