//! Owns what arrives on the subscription: every message is first opened
//! with the cluster seal (one that does not open is dropped unread, counted
//! and logged at most once a minute); then other nodes' envelopes on the
//! delta channel (applied, ignored, or answered with a resync, as the node
//! table decides; a `goodbye` forgets the node), other nodes' revokes
//! (handed to `revoked.rs`) and alerts (handed to `alerts.rs`), and
//! messages on this node's inbox (handed to `requests.rs`).

use super::ClusterError;
use super::epoch::Connected;
use crate::cluster::ReplicationLink;
use crate::cluster::membership::Decision;
use crate::cluster::seal::Rejection;
use crate::cluster::wire::{Body, Envelope, InboxMessage};
use crate::model::time::now_millis;
use crate::model::{EndCause, Millis};
use crate::presence::ReplicaUpdate;

impl Connected<'_> {
    /// Handles one message from the subscription; unsealed and unreadable
    /// ones are logged and dropped.
    pub(super) async fn on_message(
        &mut self,
        message: &redis::Msg,
        link: &mut ReplicationLink,
    ) -> Result<(), ClusterError> {
        let channel = message.get_channel_name();
        let payload = match self.seal().open(channel, message.get_payload_bytes()) {
            Ok(text) => text,
            Err(rejection) => {
                self.refuse(channel, rejection, link);
                return Ok(());
            }
        };
        if self.keys().is_delta_channel(channel) {
            match serde_json::from_slice::<Envelope>(payload) {
                Ok(envelope) if envelope.node_id != *self.node() => {
                    self.on_envelope(envelope, link).await?
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "ignoring an unreadable delta"),
            }
        } else if channel == self.keys().revoked_channel() {
            super::revoked::on_revoked(payload, link);
        } else if channel == self.keys().alerts_channel() {
            super::alerts::on_alert(payload, self.node(), link).await?;
        } else {
            match serde_json::from_slice::<InboxMessage>(payload) {
                Ok(message) => self.on_inbox(message, link),
                Err(err) => tracing::warn!(error = %err, "ignoring an unreadable inbox message"),
            }
        }
        Ok(())
    }

    /// Counts a message that did not open, and logs it unless a line was
    /// written less than a minute ago.
    fn refuse(&self, channel: &str, rejection: Rejection, link: &ReplicationLink) {
        link.metrics
            .cluster_rejected
            .with_label_values(&[rejection.as_str()])
            .inc();
        let log = self
            .rejections_logged()
            .lock()
            .is_ok_and(|mut limit| limit.admits(now_millis()));
        if log {
            tracing::warn!(
                channel,
                reason = rejection.as_str(),
                "dropped a cluster message not sealed with PRESENCE_CLUSTER_SECRET (all are counted in presence_cluster_rejected_total; this is logged at most once a minute)"
            );
        }
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
            Body::Reset => self.table.observe_reset(&node, envelope.epoch),
            Body::Goodbye => return self.forget(&node, EndCause::Shutdown, link).await,
        };
        match decision {
            Decision::Ignore => Ok(()),
            Decision::Resync(reason) => self.resync(&node, Some(reason), link).await,
            Decision::Apply => apply_delta(envelope, now, link).await,
        }
    }
}

/// Applies the next delta in order as a replica update.
async fn apply_delta(
    envelope: Envelope,
    now: Millis,
    link: &ReplicationLink,
) -> Result<(), ClusterError> {
    link.metrics.deltas.with_label_values(&["in"]).inc();
    let lag = (now - envelope.sent_at).max(0) as f64 / 1000.0;
    link.metrics.replication_lag.set(lag);
    link.metrics.ops.propagation_delay.observe(lag);
    if let Some(update) = replica_update(envelope.body) {
        link.presence.apply_replica(update).await?;
    }
    Ok(())
}

/// The replica update a delta carries (heartbeats, resets and goodbyes
/// carry none).
fn replica_update(body: Body) -> Option<ReplicaUpdate> {
    match body {
        Body::Upsert { session } => Some(ReplicaUpdate::Upsert(session)),
        Body::End { session } => Some(ReplicaUpdate::End(session)),
        Body::Heartbeat | Body::Reset | Body::Goodbye => None,
    }
}
