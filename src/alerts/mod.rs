//! Owns alerts (§12): the task that evaluates the rules (`rules.rs`) from
//! the engine's changes and this node's 401s, publishes each raised or
//! cleared alert through the engine (so it reaches the admin stream in the
//! same `seq` order as every other event, and the webhooks), and keeps it
//! for `GET /api/v1/alerts` (`store.rs`, in memory).
//!
//! It does not scan sessions: it wakes for a change, a 401, or the next
//! window expiry or long-session deadline.

pub mod rules;
pub mod store;
pub mod travel;
pub mod window;

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::AlertConfig;
use crate::metrics::Metrics;
use crate::model::time::now_millis;
use crate::model::{Alert, Applied, Millis, NodeId};
use crate::presence::PresenceHandle;
use rules::Evaluator;
use store::AlertStore;

/// Changes waiting for the alert task (overflow: dropped by the engine and
/// counted, see `presence::Outboxes::observers`).
pub const CHANGE_QUEUE: usize = 65_536;
/// 401s waiting to be counted (overflow: the failure is not counted).
pub const FAILURE_QUEUE: usize = 4096;

/// Where the HTTP edge reports each 401 it answers. Cloning is shallow; a
/// report never waits.
#[derive(Debug, Clone, Default)]
pub struct AuthFailures {
    sender: Option<mpsc::Sender<IpAddr>>,
}

impl AuthFailures {
    /// A reporter and the queue the alert task reads.
    pub fn channel() -> (Self, mpsc::Receiver<IpAddr>) {
        let (sender, receiver) = mpsc::channel(FAILURE_QUEUE);
        (
            Self {
                sender: Some(sender),
            },
            receiver,
        )
    }

    /// Counts one 401 answered to `ip`; dropped when the queue is full.
    pub fn record(&self, ip: IpAddr) {
        if let Some(sender) = &self.sender {
            let _ = sender.try_send(ip);
        }
    }
}

/// The alert task.
#[derive(Debug)]
pub struct AlertTask {
    evaluator: Evaluator,
    store: AlertStore,
    presence: PresenceHandle,
    metrics: Metrics,
}

impl AlertTask {
    /// A task for the node `node_id`, keeping its alerts in `store`.
    pub fn new(
        config: AlertConfig,
        node_id: NodeId,
        store: AlertStore,
        presence: PresenceHandle,
        metrics: Metrics,
    ) -> Self {
        Self {
            evaluator: Evaluator::new(config, node_id),
            store,
            presence,
            metrics,
        }
    }

    /// Evaluates until the engine stops sending or `stop` fires.
    pub async fn run(
        mut self,
        mut changes: mpsc::Receiver<Applied>,
        mut failures: mpsc::Receiver<IpAddr>,
        stop: CancellationToken,
    ) {
        let mut failures_open = true;
        loop {
            let wait = wait_until(self.evaluator.next_deadline());
            let alerts = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                applied = changes.recv() => match applied {
                    Some(applied) => self.evaluator.observe(&applied),
                    None => return,
                },
                ip = failures.recv(), if failures_open => match ip {
                    Some(ip) => self.evaluator.auth_failure(ip.to_string(), now_millis()),
                    None => {
                        failures_open = false;
                        Vec::new()
                    }
                },
                () = tokio::time::sleep(wait) => self.evaluator.fire_due(now_millis()),
            };
            for alert in alerts {
                if self.publish(alert).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn publish(&self, alert: Alert) -> Result<(), crate::presence::EngineStopped> {
        if alert.is_active() {
            self.metrics
                .alerts_raised
                .with_label_values(&[alert.rule.as_str()])
                .inc();
            tracing::info!(
                event = "alert.raised",
                alert_id = %alert.id,
                rule = alert.rule.as_str(),
                user_id = alert.user_id.as_ref().map_or("", |u| u.as_str()),
                ip = alert.ip.as_deref().unwrap_or(""),
                "alert raised"
            );
        } else {
            tracing::info!(event = "alert.cleared", alert_id = %alert.id, rule = alert.rule.as_str(), "alert cleared");
        }
        self.store.record(alert.clone());
        self.presence.publish_alert(alert).await
    }
}

/// How long to sleep for a deadline (an hour when there is none).
fn wait_until(deadline: Option<Millis>) -> Duration {
    match deadline {
        Some(at) => Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0)),
        None => Duration::from_secs(3600),
    }
}
