//! Owns where audit events are kept and how they are queried: the
//! `AuditStore` seam, and `MemoryAudit`, which keeps every event inside the
//! retention window in time order (the database stores implement the same
//! trait).

use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::model::{AuditAction, AuditEvent, Millis};

/// Why the audit trail could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The backing store failed.
    #[error("audit store: {0}")]
    Store(String),
}

/// Which audit events a query wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this actor (its user id).
    pub actor: Option<String>,
    /// Only this target user.
    pub user_id: Option<String>,
    /// `at >= from`.
    pub from: Option<Millis>,
    /// `at < to`.
    pub to: Option<Millis>,
}

impl AuditFilter {
    /// True when `event` passes every given criterion.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let actor = event.actor.as_ref().and_then(|a| a.user_id.as_deref());
        self.action.is_none_or(|action| event.action == action)
            && self.actor.as_deref().is_none_or(|want| actor == Some(want))
            && self
                .user_id
                .as_deref()
                .is_none_or(|want| event.target.user_id.as_deref() == Some(want))
            && self.from.is_none_or(|from| event.at >= from)
            && self.to.is_none_or(|to| event.at < to)
    }
}

/// A page of matches, newest first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// The events of the page.
    pub events: Vec<AuditEvent>,
    /// Matches on all pages.
    pub total: usize,
}

/// The audit trail.
pub trait AuditStore: Send + Sync + 'static {
    /// Appends events (in the order given).
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>>;

    /// Matches newest first: `limit` of them after skipping `offset`.
    fn find(
        &self,
        filter: AuditFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<AuditPage, AuditError>>;

    /// Drops events older than `before`; returns how many.
    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, AuditError>>;
}

/// Audit events in memory, oldest first, for a single node without a
/// database (`memory:`) and for tests.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    events: Mutex<VecDeque<AuditEvent>>,
}

impl MemoryAudit {
    /// An empty trail.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_events<R>(&self, look: impl FnOnce(&mut VecDeque<AuditEvent>) -> R) -> R {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        look(&mut events)
    }
}

impl AuditStore for MemoryAudit {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        self.with_events(|kept| kept.extend(events));
        Box::pin(async { Ok(()) })
    }

    fn find(
        &self,
        filter: AuditFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<AuditPage, AuditError>> {
        let page = self.with_events(|kept| {
            let mut matches: Vec<&AuditEvent> =
                kept.iter().filter(|event| filter.matches(event)).collect();
            matches.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
            AuditPage {
                total: matches.len(),
                events: matches
                    .into_iter()
                    .skip(offset)
                    .take(limit)
                    .cloned()
                    .collect(),
            }
        });
        Box::pin(async move { Ok(page) })
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, AuditError>> {
        let pruned = self.with_events(|kept| {
            let length = kept.len();
            kept.retain(|event| event.at >= before);
            length - kept.len()
        });
        Box::pin(async move { Ok(pruned) })
    }
}
