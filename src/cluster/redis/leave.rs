//! Owns this node's clean exit from the cluster: publishing what the engine
//! ended during shutdown, the `goodbye` that removes this node's state so
//! nobody mistakes it for a live node, and answering callers still waiting
//! on another node.

use super::epoch::Connected;
use super::scripts;
use crate::cluster::ReplicationLink;
use crate::cluster::wire::Body;

impl Connected<'_> {
    /// A clean exit; failures are logged, since the node stops anyway.
    pub(super) async fn leave(&mut self, link: &mut ReplicationLink) {
        self.publish_remaining(link).await;
        self.say_goodbye().await;
        self.requests.refuse_all();
    }

    /// Publishes the local changes still queued (the `end`s of shutdown).
    async fn publish_remaining(&mut self, link: &mut ReplicationLink) {
        while let Ok(change) = link.local_changes.try_recv() {
            if self.publish_changes(change, link).await.is_err() {
                break;
            }
        }
    }

    /// Deletes this node's state and meta and publishes `goodbye`
    /// (`GOODBYE`, one script), then leaves `{ns}:nodes`.
    async fn say_goodbye(&mut self) {
        let keys = self.keys();
        let envelope = self.envelope(Body::Goodbye);
        let goodbye = scripts::GOODBYE
            .key(keys.state(self.node()))
            .key(keys.meta(self.node()))
            .arg(keys.publish_command())
            .arg(keys.deltas_of(self.node()))
            .arg(envelope)
            .invoke_async::<()>(&mut self.conn)
            .await;
        let result = match goodbye {
            Ok(()) => {
                redis::cmd("SREM")
                    .arg(keys.nodes())
                    .arg(self.node().as_str())
                    .query_async::<()>(&mut self.conn)
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "saying goodbye to the cluster failed");
        }
    }
}
