//! Owns the cluster's deny entries: this node's revokes are kept in the
//! `{ns}:revoked` hash (user id to entry) and published on
//! `{ns}:revoked:new`; other nodes' are added to the local deny list as they
//! arrive, and the whole hash is read at every connect (entries whose tokens
//! have all expired are removed from it then). Nodes that predate this
//! channel never subscribe to it, so the wire stays compatible. What is
//! published is sealed; the hash keeps the plain entry.

use super::ClusterError;
use super::epoch::Connected;
use crate::cluster::ReplicationLink;
use crate::revocation::Revoked;

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Connected<'_> {
    /// Keeps and publishes one of this node's revokes.
    pub(super) async fn publish_revoked(&mut self, revoked: Revoked) -> Result<(), ClusterError> {
        let text = serde_json::to_string(&revoked).unwrap_or_default();
        let channel = self.keys().revoked_channel();
        let sealed = self.seal().seal(&channel, text.clone());
        redis::pipe()
            .cmd("HSET")
            .arg(self.keys().revoked())
            .arg(revoked.user_id.as_str())
            .arg(&text)
            .ignore()
            .cmd(self.keys().publish_command())
            .arg(channel)
            .arg(sealed)
            .ignore()
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Loads every entry of the hash; removes those that ran out.
    pub(super) async fn load_revoked(
        &mut self,
        link: &ReplicationLink,
    ) -> Result<(), ClusterError> {
        let entries: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.keys().revoked())
            .query_async(&mut self.conn)
            .await?;
        let now = now_s();
        let mut stale = Vec::new();
        for (user, text) in entries {
            match serde_json::from_str::<Revoked>(&text) {
                Ok(revoked) if revoked.deny.until >= now => {
                    link.revocations.insert(revoked.user_id, revoked.deny, now);
                }
                _ => stale.push(user),
            }
        }
        if !stale.is_empty() {
            redis::cmd("HDEL")
                .arg(self.keys().revoked())
                .arg(&stale)
                .query_async::<()>(&mut self.conn)
                .await?;
        }
        Ok(())
    }
}

/// Adds another node's revoke from the channel; an unreadable one is
/// logged and dropped.
pub(super) fn on_revoked(payload: &[u8], link: &ReplicationLink) {
    match serde_json::from_slice::<Revoked>(payload) {
        Ok(revoked) => link
            .revocations
            .insert(revoked.user_id, revoked.deny, now_s()),
        Err(err) => tracing::warn!(error = %err, "ignoring an unreadable revocation"),
    }
}
