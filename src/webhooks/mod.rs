//! Owns webhooks (§11): turning the engine's changes into events, one
//! bounded queue and one delivery task per endpoint, and the status that
//! `GET /api/v1/webhooks` shows.
//!
//! The flow: the engine hands its changes to the dispatcher's observer
//! queue (never waiting, see `presence::Outboxes`); the dispatcher builds
//! events (`events.rs`) and pushes each into every endpoint's queue
//! (`queue.rs`, drop-oldest); each endpoint's task (`delivery.rs`) batches,
//! signs (`sign.rs`) and POSTs. Nothing here can slow a client, the engine
//! or another endpoint.
//!
//! On a database store (SQLite, PostgreSQL) every queue is also kept in the
//! records store's outbox (`persist.rs`): at start each endpoint's queue is
//! refilled from it, in order, before any new event, so a hub stopped or
//! killed with undelivered events sends them after the restart (at least
//! once; receivers de-duplicate on the stable event ids). On `memory:` and
//! Redis there is no outbox: at shutdown each endpoint gets one last
//! attempt, and what is still queued after it is lost.

pub mod adopt;
pub mod delivery;
pub mod events;
pub mod persist;
pub mod queue;
pub mod sign;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audit::Auditor;
use crate::config::WebhookConfig;
use crate::metrics::Metrics;
use crate::model::{Applied, AuditAction, AuditTarget, EventType, NodeId};
use delivery::{ATTEMPT_TIMEOUT, Delivery};
use events::EventBuilder;
use persist::OutboxLog;
use queue::{EndpointQueue, EndpointStatus};

/// How long drops are gathered before they are reported (warning, audit
/// event, metric): a dead endpoint drops every new event.
const DROP_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Changes waiting for the dispatcher (overflow: dropped by the engine and
/// counted, see `presence::Outboxes::observers`).
pub const DISPATCH_QUEUE: usize = 65_536;

/// The endpoints' queues, for the status route. Cloning is shallow.
#[derive(Debug, Clone, Default)]
pub struct WebhookStatus {
    endpoints: Arc<Vec<Arc<EndpointQueue>>>,
}

impl WebhookStatus {
    /// Every endpoint's numbers, in configuration order.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        self.endpoints.iter().map(|queue| queue.status()).collect()
    }
}

/// Builds events from changes and queues them for every endpoint.
#[derive(Debug)]
pub struct Dispatcher {
    builder: EventBuilder,
    events: Vec<EventType>,
    queues: Vec<Arc<EndpointQueue>>,
    metrics: Metrics,
    auditor: Option<Auditor>,
    adoptions: Option<mpsc::Receiver<adopt::Adopted>>,
}

/// Everything webhooks need running, built from the configuration.
#[derive(Debug)]
pub struct Webhooks {
    /// The status route's view.
    pub status: WebhookStatus,
    /// The task that feeds the queues.
    pub dispatcher: Dispatcher,
    /// One delivery task per endpoint.
    pub deliveries: Vec<Delivery>,
}

/// Why webhooks cannot start.
#[derive(Debug, thiserror::Error)]
#[error("PRESENCE_WEBHOOK_URLS: cannot build the HTTP client: {0}")]
pub struct WebhookError(#[from] reqwest::Error);

impl Webhooks {
    /// The parts for `config`, or None when no endpoint is configured;
    /// with `outbox`, every queue is kept in the records store through it.
    pub fn build(
        config: &WebhookConfig,
        node_id: NodeId,
        metrics: &Metrics,
        outbox: Option<&OutboxLog>,
    ) -> Result<Option<Self>, WebhookError> {
        let Some(secret) = config.secret.clone().filter(|_| !config.urls.is_empty()) else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("presence-hub/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let queues: Vec<Arc<EndpointQueue>> = config
            .urls
            .iter()
            .map(|url| {
                let queue = EndpointQueue::new(url.to_string(), config.queue);
                Arc::new(match outbox {
                    Some(log) => queue.kept_in(log.clone()),
                    None => queue,
                })
            })
            .collect();
        let deliveries = config
            .urls
            .iter()
            .zip(&queues)
            .map(|(url, queue)| Delivery {
                url: url.clone(),
                queue: queue.clone(),
                client: client.clone(),
                secret: secret.clone(),
                max_attempts: config.max_attempts,
                metrics: metrics.clone(),
            })
            .collect();
        Ok(Some(Self {
            status: WebhookStatus {
                endpoints: Arc::new(queues.clone()),
            },
            dispatcher: Dispatcher {
                builder: EventBuilder::new(node_id),
                events: config.events.clone(),
                queues,
                metrics: metrics.clone(),
                auditor: None,
                adoptions: None,
            },
            deliveries,
        }))
    }
}

impl Dispatcher {
    /// Queues events until the engine stops sending, or until `stop` fires
    /// and what the engine already sent is queued; then fires `done` so
    /// the delivery tasks make their last attempt.
    pub async fn run(
        mut self,
        mut changes: mpsc::Receiver<Applied>,
        stop: CancellationToken,
        done: CancellationToken,
    ) {
        let _done = done.drop_guard();
        let mut adoptions = self.adoptions.take();
        let mut dropped = vec![0u64; self.queues.len()];
        let mut report_at: Option<Instant> = None;
        loop {
            tokio::select! {
                applied = changes.recv() => match applied {
                    Some(applied) => self.dispatch(&applied, &mut dropped),
                    None => {
                        self.report_drops(&mut dropped);
                        return;
                    }
                },
                Some(adopted) = next_adoption(&mut adoptions) => self.adopt(adopted),
                () = sleep_until_due(report_at) => {
                    self.report_drops(&mut dropped);
                    report_at = None;
                }
                () = stop.cancelled() => {
                    while let Ok(applied) = changes.try_recv() {
                        self.dispatch(&applied, &mut dropped);
                    }
                    self.report_drops(&mut dropped);
                    return;
                }
            }
            while let Ok(applied) = changes.try_recv() {
                self.dispatch(&applied, &mut dropped);
            }
            // Drops are gathered for up to a second, so an endpoint whose
            // queue stays full makes one warning and one audit event a
            // second, not one per event.
            if report_at.is_none() && dropped.iter().any(|&count| count > 0) {
                report_at = Some(Instant::now() + DROP_REPORT_EVERY);
            }
        }
    }

    fn dispatch(&mut self, applied: &Applied, dropped: &mut [u64]) {
        let now = Instant::now();
        for event in self.builder.events_of(applied) {
            if !self.events.contains(&event.kind) {
                continue;
            }
            let event = Arc::new(event);
            for (queue, dropped) in self.queues.iter().zip(dropped.iter_mut()) {
                *dropped += queue.push(event.clone(), now);
            }
        }
    }

    /// Refills the queues with the events read back from the outbox
    /// (`persist::restore`), before any new event; drops are reported as
    /// for new events. Rows of endpoints no longer configured stay in the
    /// outbox, untouched.
    pub fn restore(&mut self, endpoints: adopt::Adopted) {
        self.requeue(endpoints, false);
    }

    /// Queues events adopted from a lost node (`adopt.rs`) after those
    /// waiting, as new events of this node.
    fn adopt(&mut self, endpoints: adopt::Adopted) {
        self.requeue(endpoints, true);
    }

    /// Takes the events `adopt.rs` hands over while running.
    pub fn adopting(mut self, adoptions: mpsc::Receiver<adopt::Adopted>) -> Self {
        self.adoptions = Some(adoptions);
        self
    }

    fn requeue(&mut self, endpoints: adopt::Adopted, adopted: bool) {
        let now = Instant::now();
        let mut dropped = vec![0u64; self.queues.len()];
        for (endpoint, events) in endpoints {
            let found = self
                .queues
                .iter()
                .position(|queue| queue.status().url == endpoint);
            let Some(at) = found else {
                tracing::info!(url = %endpoint, events = events.len(), "webhook outbox events kept for an endpoint not configured here");
                continue;
            };
            tracing::info!(url = %endpoint, events = events.len(), adopted, "webhook events from the outbox queued again");
            let queue = &self.queues[at];
            for event in events {
                dropped[at] += if adopted {
                    queue.push(event, now)
                } else {
                    queue.restore(event, now)
                };
            }
        }
        self.report_drops(&mut dropped);
    }

    /// Records `webhook.dropped` audit events through `auditor`.
    pub fn audited_by(mut self, auditor: Auditor) -> Self {
        self.auditor = Some(auditor);
        self
    }

    /// Drops are counted in `/metrics`, logged at warn and recorded as a
    /// `webhook.dropped` audit event (reason: the endpoint and the count);
    /// the counts start again from zero.
    fn report_drops(&self, dropped: &mut [u64]) {
        for (queue, count) in self.queues.iter().zip(dropped.iter_mut()) {
            let count = std::mem::take(count);
            if count == 0 {
                continue;
            }
            let url = queue.status().url;
            self.metrics
                .webhook_dropped
                .with_label_values(&[&url])
                .inc_by(count);
            tracing::warn!(event = "webhook.dropped", url = %url, dropped = count, "webhook queue full; oldest events dropped");
            if let Some(auditor) = &self.auditor {
                auditor.system(
                    AuditAction::WebhookDropped,
                    AuditTarget::default(),
                    format!("{url}: {count} events dropped"),
                    "dropped",
                );
            }
        }
    }
}

/// Waits until `at`, or forever when nothing is due.
async fn sleep_until_due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next adoption, or never when there are none to wait for.
async fn next_adoption(
    adoptions: &mut Option<mpsc::Receiver<adopt::Adopted>>,
) -> Option<adopt::Adopted> {
    match adoptions {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}
