//! Owns the seam of the webhook outbox: `OutboxStore`, where the webhook
//! events still waiting for delivery are kept beside the records
//! (`webhook_outbox`, migration 0011) so that a restart of the hub loses
//! none of them, and `OutboxRow`, one endpoint's copy of one event. The SQL
//! stores implement it (`outbox_sql.rs`); `memory:` and Redis keep no
//! outbox (`HistoryStore::outbox` is `None`). What goes in and out, and
//! when, is `webhooks/persist.rs`'s business.

use futures_util::future::BoxFuture;

use super::HistoryError;
use crate::model::Millis;

/// One endpoint's copy of one queued event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The endpoint's URL, as configured.
    pub endpoint: String,
    /// The event's stable id.
    pub event_id: String,
    /// The node that queued it and delivers it.
    pub node_id: String,
    /// Orders one node's events for one endpoint (increasing).
    pub order_key: i64,
    /// When it was queued.
    pub queued_at: Millis,
    /// The event's JSON, exactly as it is sent.
    pub payload: String,
}

/// Every row one node keeps for one endpoint, replaced at once: how the
/// queue of an endpoint that overflows is kept (`webhooks/queue.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxReplace {
    /// The node whose rows are replaced.
    pub node_id: String,
    /// The endpoint.
    pub endpoint: String,
    /// The rows it keeps now (of `node_id` and `endpoint`), in order.
    pub rows: Vec<OutboxRow>,
}

/// One batch of outbox changes, applied in one transaction: the
/// `replaced` endpoints' rows deleted and rewritten, then `queued` rows
/// inserted (an `(endpoint, event_id)` already kept takes the new row's
/// node and order key: how an adopted row joins its new node's order), then the
/// `gone` rows deleted, then every `(node, endpoint)` that got rows trimmed
/// to its newest `keep`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxBatch {
    /// Endpoints whose rows are replaced, applied first.
    pub replaced: Vec<OutboxReplace>,
    /// Events queued.
    pub queued: Vec<OutboxRow>,
    /// Events delivered, given up or dropped: `(endpoint, event_id)`.
    pub gone: Vec<(String, String)>,
    /// Most rows kept per node and endpoint (0: no trim).
    pub keep: usize,
}

impl OutboxBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.replaced.is_empty() && self.queued.is_empty() && self.gone.is_empty()
    }
}

/// The webhook events waiting for delivery, kept in the records store.
pub trait OutboxStore: Send + Sync + 'static {
    /// Whether other nodes may use the same database (PostgreSQL); a
    /// SQLite file belongs to one process, so every row in it is this
    /// node's.
    fn shared(&self) -> bool;

    /// Applies `batch` in one transaction.
    fn apply<'a>(&'a self, batch: &'a OutboxBatch) -> BoxFuture<'a, Result<(), HistoryError>>;

    /// Hands every row to `node`, whichever node queued it, and returns how
    /// many changed hands: how a single node takes over what its earlier
    /// runs (with other random node ids) left.
    fn adopt_all<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<u64, HistoryError>>;

    /// Notes that `node` is alive at `now`.
    fn heartbeat<'a>(
        &'a self,
        node: &'a str,
        now: Millis,
    ) -> BoxFuture<'a, Result<(), HistoryError>>;

    /// Hands to `node` the rows for `endpoints` of every other node not
    /// seen alive since `alive_since` (or never), and returns them by
    /// endpoint, each endpoint's in order key order. A row changes hands
    /// once: when two nodes adopt at the same time, each row goes to one of
    /// them.
    fn adopt_lost<'a>(
        &'a self,
        node: &'a str,
        alive_since: Millis,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<OutboxRow>, HistoryError>>;

    /// `node`'s rows, by endpoint, each endpoint's in order key order.
    fn load<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<Vec<OutboxRow>, HistoryError>>;
}
