//! Owns taking over the outbox rows of cluster nodes that are gone, when
//! the cluster shares one PostgreSQL database: every node notes in the
//! outbox that it is alive, four times per `PRESENCE_NODE_TIMEOUT` (but
//! no more often than every 250 ms and no less often than every 5 s), and
//! adopts the rows of every node silent for `PRESENCE_NODE_TIMEOUT`. Adopting is one
//! statement that moves the rows to this node, so each row goes to one
//! node, which queues its events after its own (`Dispatcher::adopt`) and
//! delivers them.
//!
//! Liveness here is the outbox's own, by the nodes' clocks: a node cut off
//! from the database but still running is taken for gone, and its events
//! may then be sent by both (receivers de-duplicate on the event ids).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::Event;
use super::persist::grouped;
use crate::history::outbox::OutboxStore;
use crate::model::NodeId;
use crate::model::time::{millis_of, now_millis};

/// Events adopted from a lost node: `(endpoint, events)`, in order.
pub type Adopted = Vec<(String, Vec<Arc<Event>>)>;

/// Adoptions waiting for the dispatcher.
pub const ADOPTED_QUEUE: usize = 16;

/// The heartbeat and adoption task of one node.
pub struct Adoption {
    /// The shared outbox.
    pub store: Arc<dyn OutboxStore>,
    /// This node.
    pub node: NodeId,
    /// `PRESENCE_NODE_TIMEOUT`: silence after which a node is gone.
    pub node_timeout: Duration,
    /// The endpoints this node delivers to: only their rows are adopted.
    pub endpoints: Vec<String>,
}

impl std::fmt::Debug for Adoption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adoption")
            .field("node", &self.node)
            .field("node_timeout", &self.node_timeout)
            .finish_non_exhaustive()
    }
}

impl Adoption {
    /// How often the node says it is alive and looks for lost nodes.
    pub fn every(&self) -> Duration {
        (self.node_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
    }

    /// Says this node is alive now; called once before the node reads its
    /// own rows back, so no other node takes it for gone meanwhile.
    pub async fn heartbeat(&self) {
        if let Err(err) = self.store.heartbeat(self.node.as_str(), now_millis()).await {
            tracing::warn!(error = %err, "webhook outbox heartbeat failed");
        }
    }

    /// Beats and adopts every `every()` until `stop`, handing what it
    /// adopts to the dispatcher through `adopted`.
    pub async fn run(self, adopted: mpsc::Sender<Adopted>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            self.heartbeat().await;
            let alive_since = now_millis() - millis_of(self.node_timeout);
            let adopting = self
                .store
                .adopt_lost(self.node.as_str(), alive_since, &self.endpoints);
            let rows = match adopting.await {
                Ok(rows) if rows.is_empty() => continue,
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "looking for lost nodes' webhook events failed");
                    continue;
                }
            };
            tracing::info!(
                events = rows.len(),
                "webhook events of a lost node taken over"
            );
            // Kept under this node's id: if the dispatcher is gone, they
            // are sent after this node's restart.
            if adopted.send(grouped(rows).endpoints).await.is_err() {
                return;
            }
        }
    }
}
