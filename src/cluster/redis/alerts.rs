//! Owns the cluster's alerts (§12): this node's raised and cleared alerts
//! are kept in the `{ns}:alerts` hash (alert id to notice) and published on
//! `{ns}:alerts:new`; other nodes' are kept in this node's alert list and
//! pushed on its admin streams, never sent to webhooks (the raising node
//! does that). At every connect the hash is read: other live nodes' alerts
//! are listed here, entries of nodes that are gone are removed, and alerts
//! this node's previous run left active are cleared. When a node is gone,
//! its active alerts are cleared here.

use serde::{Deserialize, Serialize};

use super::ClusterError;
use super::epoch::Connected;
use crate::alerts::store::ALERTS_KEPT;
use crate::cluster::ReplicationLink;
use crate::model::time::now_millis;
use crate::model::{Alert, NodeId};

/// An alert as nodes exchange it: the contract's object plus what it does
/// not show (the raising node, the user's organisation).
#[derive(Debug, Serialize, Deserialize)]
struct AlertNotice {
    node_id: NodeId,
    org: Option<String>,
    alert: Alert,
}

impl AlertNotice {
    fn of(node: &NodeId, alert: &Alert) -> Self {
        Self {
            node_id: node.clone(),
            org: alert.org.clone(),
            alert: alert.clone(),
        }
    }

    /// The alert with the facts the wire form carries beside it.
    fn into_alert(self) -> Alert {
        let mut alert = self.alert;
        alert.node_id = Some(self.node_id);
        alert.org = self.org;
        alert
    }

    fn text(&self) -> String {
        crate::model::json::to_json(self)
    }
}

impl Connected<'_> {
    /// Adds the keeping (plain) and publishing (sealed) of one of this
    /// node's alerts to `pipe` (the same round trip as the deltas queued
    /// with it).
    pub(super) fn add_alert(&self, pipe: &mut redis::Pipeline, alert: &Alert) {
        let text = AlertNotice::of(self.node(), alert).text();
        let channel = self.keys().alerts_channel();
        let sealed = self.seal().seal(&channel, text.clone());
        pipe.cmd("HSET")
            .arg(self.keys().alerts())
            .arg(&alert.id)
            .arg(&text)
            .ignore()
            .cmd(self.keys().publish_command())
            .arg(channel)
            .arg(sealed)
            .ignore();
    }

    /// Reads the hash after the node table is loaded: lists other live
    /// nodes' alerts, removes the entries of nodes that are gone (and the
    /// oldest ones beyond `ALERTS_KEPT`), and clears the alerts this node's
    /// previous run left active.
    pub(super) async fn load_alerts(&mut self, link: &ReplicationLink) -> Result<(), ClusterError> {
        let entries: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.keys().alerts())
            .query_async(&mut self.conn)
            .await?;
        let mut kept = Vec::new();
        let mut stale = Vec::new();
        let mut left_active = Vec::new();
        for (id, text) in entries {
            let Ok(notice) = serde_json::from_str::<AlertNotice>(&text) else {
                stale.push(id);
                continue;
            };
            let alert = notice.into_alert();
            let node = alert.node_id.clone().unwrap_or_else(|| NodeId::new(""));
            if node == *self.node() {
                if alert.is_active() && !link.alerts.contains(&alert.id) {
                    left_active.push(alert);
                }
            } else if self.table.knows(&node) {
                kept.push(alert);
            } else {
                stale.push(id);
            }
        }
        kept.sort_by_key(|alert| alert.at);
        let excess = kept.len().saturating_sub(ALERTS_KEPT);
        stale.extend(kept.drain(..excess).map(|alert| alert.id));
        for alert in kept {
            link.alerts.record(alert);
        }
        self.remove_alerts(&stale).await?;
        self.clear_left_active(left_active).await
    }

    async fn remove_alerts(&mut self, ids: &[String]) -> Result<(), ClusterError> {
        if ids.is_empty() {
            return Ok(());
        }
        redis::cmd("HDEL")
            .arg(self.keys().alerts())
            .arg(ids)
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Alerts a previous run of this node raised and never cleared: the
    /// conditions are evaluated afresh now, so they end here.
    async fn clear_left_active(&mut self, alerts: Vec<Alert>) -> Result<(), ClusterError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let now = now_millis();
        let mut pipe = redis::pipe();
        for mut alert in alerts {
            alert.cleared_at = Some(now);
            self.add_alert(&mut pipe, &alert);
        }
        pipe.query_async::<()>(&mut self.conn).await?;
        Ok(())
    }
}

/// Another node's alert from the channel: listed here and pushed on this
/// node's admin streams. An unreadable one is logged and dropped.
pub(super) async fn on_alert(
    payload: &[u8],
    this_node: &NodeId,
    link: &ReplicationLink,
) -> Result<(), ClusterError> {
    let notice = match serde_json::from_slice::<AlertNotice>(payload) {
        Ok(notice) if notice.node_id != *this_node => notice,
        Ok(_) => return Ok(()),
        Err(err) => {
            tracing::warn!(error = %err, "ignoring an unreadable alert");
            return Ok(());
        }
    };
    let alert = notice.into_alert();
    link.alerts.record(alert.clone());
    link.presence.publish_alert(alert).await?;
    Ok(())
}

/// A node is gone: its active alerts are cleared here (nobody else can).
pub(super) async fn clear_alerts_of(
    node: &NodeId,
    link: &ReplicationLink,
) -> Result<(), ClusterError> {
    for alert in link.alerts.clear_of_node(node, now_millis()) {
        link.presence.publish_alert(alert).await?;
    }
    Ok(())
}
