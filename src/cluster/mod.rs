//! Owns how this node shares presence with other nodes, and the readiness
//! that replication reports.
//!
//! The presence engine does not know this module exists. A `Replicator`
//! connects the engine's outboxes to the outside; `SingleNode`, the default,
//! needs no Redis and has nothing to share.

use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

/// Whether the node can serve, and if not, why (`/readyz`).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    problem: Arc<RwLock<Option<&'static str>>>,
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

    /// The current problem, if any.
    pub fn problem(&self) -> Option<&'static str> {
        self.problem.read().ok().and_then(|problem| *problem)
    }
}

/// Carries this node's presence to other nodes and theirs to this one.
pub trait Replicator: Send + 'static {
    /// Runs until `shutdown` is cancelled.
    fn run(self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send;
}

/// The default: one node, everything in memory, nothing to replicate.
#[derive(Debug, Default)]
pub struct SingleNode;

impl Replicator for SingleNode {
    async fn run(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }
}
