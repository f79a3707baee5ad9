//! Owns the audit trail (contract v1.1 §10): every admin action and every
//! authentication failure becomes an `AuditEvent`, recorded in the
//! `AuditStore`, shown on the admin streams (`{"type":"audit",...}`) and
//! listed by `/api/v1/audit`.
//!
//! Callers hand events to `Auditor` (a cheap handle) and never wait: a
//! bounded queue feeds one task that folds authentication failures per
//! (IP, action) and second (`fold.rs`), writes to the store and publishes
//! through the presence engine, so audit frames are numbered with every
//! other admin event. Overflow of that queue is counted
//! (`presence_audit_dropped_total`) and logged at most once a minute.

pub mod fold;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::model::time::now_millis;
use crate::model::{AuditAction, AuditActor, AuditEvent, AuditTarget, Millis, NodeId};
use crate::presence::PresenceHandle;
use fold::Folding;
use store::AuditStore;

/// Events waiting for the audit task before new ones are dropped (counted).
pub const AUDIT_QUEUE: usize = 65_536;
/// Overflow is logged at most this often.
const OVERFLOW_LOG_EVERY_MS: Millis = 60_000;
/// How often events the store refused are written again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What an audited request says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's user id.
    pub user_id: String,
    /// `admin` or `client`.
    pub role: &'static str,
    /// The client IP as the hub records it.
    pub ip: String,
}

/// The cheap handle every edge records audit events through.
#[derive(Debug, Clone)]
pub struct Auditor {
    events: mpsc::Sender<AuditEvent>,
    node_id: NodeId,
    dropped: IntCounter,
    last_overflow_log: Arc<AtomicI64>,
}

/// The receiving end, for `AuditTask`.
#[derive(Debug)]
pub struct AuditInbox(mpsc::Receiver<AuditEvent>);

impl Auditor {
    /// A handle and the inbox of its task; registers the audit metrics.
    pub fn new(
        node_id: NodeId,
        metrics: &Metrics,
    ) -> Result<(Self, AuditInbox), prometheus::Error> {
        let dropped = IntCounter::with_opts(Opts::new(
            "presence_audit_dropped_total",
            "Audit events dropped because the audit queue was full",
        ))?;
        metrics.register(Box::new(dropped.clone()))?;
        let (events, inbox) = mpsc::channel(AUDIT_QUEUE);
        Ok((
            Self {
                events,
                node_id,
                dropped,
                last_overflow_log: Arc::new(AtomicI64::new(i64::MIN)),
            },
            AuditInbox(inbox),
        ))
    }

    /// Records an action done by `caller` on `target`.
    pub fn action(
        &self,
        action: AuditAction,
        caller: &Caller,
        target: AuditTarget,
        reason: Option<String>,
        result: &str,
    ) {
        self.submit(AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at: now_millis(),
            action,
            actor: Some(AuditActor {
                user_id: Some(caller.user_id.clone()),
                role: Some(caller.role.to_string()),
                ip: Some(caller.ip.clone()),
            }),
            target,
            reason,
            node_id: self.node_id.to_string(),
            result: result.to_string(),
        });
    }

    /// Records a 401 (`auth.failed`) or 403 (`auth.denied`) answer. A 403's
    /// actor names the caller when its token was valid.
    pub fn auth_refused(
        &self,
        action: AuditAction,
        actor: AuditActor,
        target: AuditTarget,
        result: &str,
    ) {
        self.submit(AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at: now_millis(),
            action,
            actor: Some(actor),
            target,
            reason: None,
            node_id: self.node_id.to_string(),
            result: result.to_string(),
        });
    }

    /// Records an event without an actor (the hub itself acted).
    pub fn system(&self, action: AuditAction, target: AuditTarget, reason: String, result: &str) {
        self.submit(AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at: now_millis(),
            action,
            actor: None,
            target,
            reason: Some(reason),
            node_id: self.node_id.to_string(),
            result: result.to_string(),
        });
    }

    fn submit(&self, event: AuditEvent) {
        if self.events.try_send(event).is_err() {
            self.dropped.inc();
            let now = now_millis();
            let last = self.last_overflow_log.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= OVERFLOW_LOG_EVERY_MS
                && self
                    .last_overflow_log
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::error!(
                    dropped_total = self.dropped.get(),
                    "audit queue full: audit events dropped (see presence_audit_dropped_total)"
                );
            }
        }
    }
}

/// The task behind `Auditor`: folds, stores, publishes.
pub struct AuditTask {
    inbox: AuditInbox,
    store: Arc<dyn AuditStore>,
    presence: PresenceHandle,
    folding: Folding,
    recorded: IntCounterVec,
    /// Events the store refused (database unreachable), written again with
    /// the next ones or on the retry tick; at most `AUDIT_QUEUE`.
    retry: Vec<AuditEvent>,
    retry_logged_at: Option<Millis>,
    unwritten: IntCounter,
}

impl std::fmt::Debug for AuditTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTask").finish_non_exhaustive()
    }
}

impl AuditTask {
    /// The task for `inbox`, writing to `store`.
    pub fn new(
        inbox: AuditInbox,
        store: Arc<dyn AuditStore>,
        presence: PresenceHandle,
        metrics: &Metrics,
    ) -> Result<Self, prometheus::Error> {
        let recorded = IntCounterVec::new(
            Opts::new(
                "presence_audit_events_total",
                "Audit events recorded, by action",
            ),
            &["action"],
        )?;
        metrics.register(Box::new(recorded.clone()))?;
        let unwritten = IntCounter::with_opts(Opts::new(
            "presence_audit_unwritten_total",
            "Audit events that could not be written to the store (database unreachable past the retry queue, or at exit)",
        ))?;
        metrics.register(Box::new(unwritten.clone()))?;
        Ok(Self {
            inbox,
            store,
            presence,
            folding: Folding::default(),
            recorded,
            retry: Vec::new(),
            retry_logged_at: None,
            unwritten,
        })
    }

    /// Runs until every `Auditor` is dropped or `stop` fires; open folding
    /// windows are written before it returns.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let close_in = self
                .folding
                .next_close()
                .map(|at| Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0)));
            tokio::select! {
                biased;
                event = self.inbox.0.recv() => match event {
                    Some(event) => self.take(event).await,
                    None => break,
                },
                () = sleep_or_never(close_in) => {
                    let folded = self.folding.close_due(now_millis());
                    self.write(folded).await;
                }
                () = sleep_or_never((!self.retry.is_empty()).then_some(RETRY_EVERY)) => {
                    self.store_events(Vec::new()).await;
                }
                () = stop.cancelled() => break,
            }
        }
        while let Ok(event) = self.inbox.0.try_recv() {
            self.take(event).await;
        }
        let folded = self.folding.close_all(now_millis());
        self.write(folded).await;
        if !self.retry.is_empty() {
            let lost = self.retry.len();
            self.unwritten.inc_by(lost as u64);
            tracing::error!(
                count = lost,
                "audit events could not be written before exit (see presence_audit_unwritten_total)"
            );
        }
    }

    async fn take(&mut self, event: AuditEvent) {
        let folds = matches!(
            event.action,
            AuditAction::AuthFailed | AuditAction::AuthDenied
        );
        let now = event.at;
        let to_write = if folds {
            self.folding.offer(event, now)
        } else {
            Some(event)
        };
        if let Some(event) = to_write {
            self.write(vec![event]).await;
        }
    }

    async fn write(&mut self, events: Vec<AuditEvent>) {
        if events.is_empty() {
            return;
        }
        for event in &events {
            self.recorded
                .with_label_values(&[event.action.as_str()])
                .inc();
            log_audit(event);
        }
        self.store_events(events.clone()).await;
        for event in events {
            if self.presence.publish_audit(event).await.is_err() {
                break;
            }
        }
    }

    /// Writes the events waiting for a retry, then `events`; what the store
    /// refuses waits for the next attempt (the oldest beyond `AUDIT_QUEUE`
    /// are counted and dropped).
    async fn store_events(&mut self, events: Vec<AuditEvent>) {
        let mut batch = std::mem::take(&mut self.retry);
        batch.extend(events);
        if batch.is_empty() {
            return;
        }
        if let Err(err) = self.store.record(batch.clone()).await {
            if self.retry_logged_at.is_none() {
                tracing::error!(error = %err, count = batch.len(), "audit events could not be stored; retrying");
            }
            self.retry_logged_at.get_or_insert(now_millis());
            let excess = batch.len().saturating_sub(AUDIT_QUEUE);
            if excess > 0 {
                batch.drain(..excess);
                self.unwritten.inc_by(excess as u64);
                tracing::error!(
                    dropped = excess,
                    "audit retry queue full: events dropped (see presence_audit_unwritten_total)"
                );
            }
            self.retry = batch;
        } else if self.retry_logged_at.take().is_some() {
            tracing::info!("audit store reachable again; waiting events written");
        }
    }
}

/// Drops audit events older than `retention` every so often until `stop`
/// (the same schedule as history pruning).
pub async fn prune_audit(store: Arc<dyn AuditStore>, retention: Duration, stop: CancellationToken) {
    let mut every = tokio::time::interval(crate::model::time::prune_interval(retention));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let before = now_millis() - crate::model::time::millis_of(retention);
        match store.prune(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "audit trail pruned"),
            Err(err) => tracing::warn!(error = %err, "pruning the audit trail failed"),
        }
    }
}

async fn sleep_or_never(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// One info line per audit event, `event="audit"`, for a SIEM reading
/// `PRESENCE_LOG_FORMAT=json` (the fields of docs/operations.md).
fn log_audit(event: &AuditEvent) {
    let actor = event.actor.as_ref();
    tracing::info!(
        event = "audit",
        audit_id = %event.id,
        action = event.action.as_str(),
        actor_user_id = actor.and_then(|a| a.user_id.as_deref()).unwrap_or(""),
        actor_role = actor.and_then(|a| a.role.as_deref()).unwrap_or(""),
        actor_ip = actor.and_then(|a| a.ip.as_deref()).unwrap_or(""),
        target_user_id = event.target.user_id.as_deref().unwrap_or(""),
        target_session_id = event.target.session_id.as_deref().unwrap_or(""),
        reason = event.reason.as_deref().unwrap_or(""),
        result = %event.result,
        node_id = %event.node_id,
        "audit event"
    );
}
