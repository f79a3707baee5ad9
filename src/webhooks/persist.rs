//! Owns keeping the endpoints' queues in the records store's outbox
//! (`history::outbox::OutboxStore`), so that a restart loses no event that
//! was queued and not yet delivered: `OutboxLog`, which the queues tell
//! what enters and leaves them (never waiting: a bounded channel, overflow
//! counted in `presence_webhook_outbox_lost_total` and logged); the writer
//! task, which applies those changes in batches, one transaction each; and
//! `restore`, which reads a node's rows back at start.
//!
//! Rows are tagged with the node id. A single node (no Redis), or a node
//! on its own SQLite file, takes over every row at start, whatever node id
//! an earlier run had; a cluster node on a shared PostgreSQL takes back the
//! rows of its own `PRESENCE_NODE_ID` only, and those of nodes gone for
//! `PRESENCE_NODE_TIMEOUT` through `adopt.rs`, so each row is delivered by
//! one node.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::events::Event;
use crate::history::outbox::{OutboxBatch, OutboxReplace, OutboxRow, OutboxStore};
use crate::metrics::Metrics;
use crate::model::time::{now_millis, parse_rfc3339};
use crate::model::{EventType, NodeId};

/// Outbox changes waiting for the writer; beyond it they are lost (counted).
pub const OUTBOX_QUEUE: usize = 65_536;

/// Most changes in one transaction.
const WRITE_BATCH: usize = 5_000;

/// Pause after a failed write.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How long the last write at exit may take.
const EXIT_WRITE: Duration = Duration::from_millis(150);

/// Loss warnings are logged at most this often.
const LOG_EVERY_MS: i64 = 60_000;

/// The trim to `keep` rows per endpoint runs with at most one batch this
/// often (and with the last one at exit). Finding an endpoint's newest
/// `keep` rows walks that many index entries, which, with every batch,
/// was most of the cost of an endpoint whose queue stays full; the queues
/// themselves delete what they drop, so the trim only bounds the table
/// when changes were lost.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// One change to the outbox.
#[derive(Debug)]
enum Change {
    Queued(OutboxRow),
    Gone(Vec<(String, String)>),
    Replaced(OutboxReplace),
}

/// What the queues tell the outbox writer. Cloning is shallow.
#[derive(Debug, Clone)]
pub struct OutboxLog {
    sender: mpsc::Sender<Change>,
    node: Arc<str>,
    next_key: Arc<AtomicI64>,
    lost_logged_at: Arc<AtomicI64>,
    metrics: Metrics,
}

impl OutboxLog {
    /// A log for `node`, and the receiving end for `write_outbox`.
    pub fn new(node: &NodeId, metrics: &Metrics) -> (Self, OutboxChanges) {
        let (sender, receiver) = mpsc::channel(OUTBOX_QUEUE);
        let log = Self {
            sender,
            node: node.as_str().into(),
            next_key: Arc::new(AtomicI64::new(0)),
            lost_logged_at: Arc::new(AtomicI64::new(i64::MIN)),
            metrics: metrics.clone(),
        };
        (log, OutboxChanges(receiver))
    }

    /// Order keys go on from `next_key` (what `restore` read back).
    pub fn continue_from(&self, next_key: i64) {
        self.next_key.fetch_max(next_key, Ordering::Relaxed);
    }

    /// `event` was queued for `endpoint`.
    pub fn queued(&self, endpoint: &str, event: &Event) {
        let row = OutboxRow {
            endpoint: endpoint.to_string(),
            event_id: event.id.clone(),
            node_id: self.node.to_string(),
            order_key: self.next_key.fetch_add(1, Ordering::Relaxed),
            queued_at: now_millis(),
            payload: event.json.to_string(),
        };
        self.send(Change::Queued(row));
    }

    /// `endpoint`'s queue is `events` now, in order (in flight first): the
    /// rows kept for it are replaced by these, with new order keys.
    pub fn replaced<'a>(&self, endpoint: &str, events: impl IntoIterator<Item = &'a Arc<Event>>) {
        let queued_at = now_millis();
        let rows = events
            .into_iter()
            .map(|event| OutboxRow {
                endpoint: endpoint.to_string(),
                event_id: event.id.clone(),
                node_id: self.node.to_string(),
                order_key: self.next_key.fetch_add(1, Ordering::Relaxed),
                queued_at,
                payload: event.json.to_string(),
            })
            .collect();
        self.send(Change::Replaced(OutboxReplace {
            node_id: self.node.to_string(),
            endpoint: endpoint.to_string(),
            rows,
        }));
    }

    /// `events` left `endpoint`'s queue: delivered, given up or dropped.
    pub fn gone<'a>(&self, endpoint: &str, events: impl IntoIterator<Item = &'a Arc<Event>>) {
        let gone: Vec<(String, String)> = events
            .into_iter()
            .map(|event| (endpoint.to_string(), event.id.clone()))
            .collect();
        if !gone.is_empty() {
            self.send(Change::Gone(gone));
        }
    }

    fn send(&self, change: Change) {
        if self.sender.try_send(change).is_ok() {
            return;
        }
        self.metrics.webhook_outbox_lost.inc();
        let now = now_millis();
        let last = self.lost_logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_MS
            && self
                .lost_logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                limit = OUTBOX_QUEUE,
                "webhook outbox writer behind; changes not kept in the records store (a restart may lose or resend those events)"
            );
        }
    }
}

/// The receiving end of an `OutboxLog`.
#[derive(Debug)]
pub struct OutboxChanges(mpsc::Receiver<Change>);

/// What `restore` read back: the events per endpoint, in order, and the
/// order key the node goes on from.
#[derive(Debug, Default)]
pub struct Restored {
    /// `(endpoint, events)`, each endpoint's events oldest first.
    pub endpoints: Vec<(String, Vec<Arc<Event>>)>,
    /// The first free order key.
    pub next_key: i64,
}

/// This node's outbox rows, taking over every row first when `take_all`
/// (the only node using the store). A store that cannot be read is logged
/// and restores nothing: the hub still starts.
pub async fn restore(store: &dyn OutboxStore, node: &NodeId, take_all: bool) -> Restored {
    if take_all {
        match store.adopt_all(node.as_str()).await {
            Ok(0) => {}
            Ok(adopted) => {
                tracing::info!(adopted, "webhook outbox rows of earlier runs taken over")
            }
            Err(err) => tracing::error!(error = %err, "taking over the webhook outbox failed"),
        }
    }
    let rows = match store.load(node.as_str()).await {
        Ok(rows) => rows,
        Err(err) => {
            tracing::error!(error = %err, "reading the webhook outbox failed; earlier events are not resent");
            return Restored::default();
        }
    };
    grouped(rows)
}

/// Rows (by endpoint, in order) as the events of each endpoint, and the
/// first order key after theirs. Unreadable rows are skipped with a warning.
pub fn grouped(rows: Vec<OutboxRow>) -> Restored {
    let mut restored = Restored::default();
    for row in rows {
        restored.next_key = restored.next_key.max(row.order_key.saturating_add(1));
        let Some(event) = event_of(&row) else {
            tracing::warn!(
                event_id = row.event_id,
                "skipping an unreadable webhook outbox row"
            );
            continue;
        };
        match restored.endpoints.last_mut() {
            Some((endpoint, events)) if *endpoint == row.endpoint => events.push(event),
            _ => restored.endpoints.push((row.endpoint, vec![event])),
        }
    }
    restored
}

/// An event read back from its row.
fn event_of(row: &OutboxRow) -> Option<Arc<Event>> {
    let value: serde_json::Value = serde_json::from_str(&row.payload).ok()?;
    let kind = EventType::parse(value.get("type")?.as_str()?)?;
    let at = parse_rfc3339(value.get("at")?.as_str()?)?;
    Some(Arc::new(Event {
        id: row.event_id.clone(),
        kind,
        at,
        json: row.payload.as_str().into(),
    }))
}

/// Applies the queues' changes to `store`, in batches, until every
/// delivery task in `deliveries` has ended; then writes what is left
/// (within `EXIT_WRITE`) and returns. Rows beyond `keep` per endpoint are
/// trimmed, oldest first, at most every `TRIM_EVERY` and at exit.
pub async fn write_outbox(
    changes: OutboxChanges,
    store: Arc<dyn OutboxStore>,
    keep: usize,
    deliveries: TaskTracker,
    metrics: Metrics,
) {
    let mut changes = changes.0;
    let mut pending = OutboxBatch {
        keep,
        ..OutboxBatch::default()
    };
    let mut failing = false;
    let mut trimmed_at: Option<Instant> = None;
    loop {
        // Biased: once the deliveries have ended, what is left is written
        // in one last transaction.
        let finished = tokio::select! {
            biased;
            () = deliveries.wait() => true,
            change = changes.recv(), if pending.is_empty() => match change {
                Some(change) => { add(&mut pending, change); false }
                None => true,
            },
            () = tokio::time::sleep(RETRY_AFTER), if !pending.is_empty() => false,
        };
        while size(&pending) < WRITE_BATCH {
            match changes.try_recv() {
                Ok(change) => add(&mut pending, change),
                Err(_) => break,
            }
        }
        if finished {
            break;
        }
        settle(&mut pending);
        let trim_due = trimmed_at.is_none_or(|at| at.elapsed() >= TRIM_EVERY);
        pending.keep = if trim_due { keep } else { 0 };
        match store.apply(&pending).await {
            Ok(()) => {
                if trim_due && keep > 0 {
                    trimmed_at = Some(Instant::now());
                }
                if failing {
                    tracing::info!("webhook outbox written again");
                }
                failing = false;
                pending = OutboxBatch {
                    keep,
                    ..OutboxBatch::default()
                };
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "writing the webhook outbox failed; retrying");
                }
                failing = true;
            }
        }
    }
    while let Ok(change) = changes.try_recv() {
        add(&mut pending, change);
    }
    pending.keep = keep;
    write_at_exit(store.as_ref(), pending, &metrics).await;
}

async fn write_at_exit(store: &dyn OutboxStore, mut pending: OutboxBatch, metrics: &Metrics) {
    settle(&mut pending);
    if pending.is_empty() {
        return;
    }
    let changes = size(&pending);
    let deadline = Instant::now() + EXIT_WRITE;
    let error = match tokio::time::timeout_at(deadline, store.apply(&pending)).await {
        Ok(Ok(())) => return,
        Ok(Err(err)) => err.to_string(),
        Err(_) => "timed out".to_string(),
    };
    metrics
        .webhook_outbox_lost
        .inc_by(u64::try_from(changes).unwrap_or(u64::MAX));
    tracing::error!(
        changes,
        error,
        "the hub is exiting with webhook outbox changes it could not write"
    );
}

fn add(batch: &mut OutboxBatch, change: Change) {
    match change {
        Change::Queued(row) => batch.queued.push(row),
        Change::Gone(gone) => batch.gone.extend(gone),
        Change::Replaced(replace) => {
            // It stands for everything the batch held for that endpoint.
            let endpoint = replace.endpoint.as_str();
            batch.queued.retain(|row| row.endpoint != endpoint);
            batch.gone.retain(|(gone, _)| gone != endpoint);
            batch
                .replaced
                .retain(|other| other.endpoint != endpoint || other.node_id != replace.node_id);
            batch.replaced.push(replace);
        }
    }
}

/// Drops from `batch` every event both queued and gone in it (delivered
/// or dropped before it was written): its row would be inserted and
/// deleted in the same transaction. A healthy endpoint's events mostly
/// never touch the database.
fn settle(batch: &mut OutboxBatch) {
    if batch.queued.is_empty() || batch.gone.is_empty() {
        return;
    }
    let mut gone: HashMap<String, HashSet<String>> = HashMap::new();
    for (endpoint, id) in std::mem::take(&mut batch.gone) {
        gone.entry(endpoint).or_default().insert(id);
    }
    batch.queued.retain(|row| {
        !gone
            .get_mut(row.endpoint.as_str())
            .is_some_and(|ids| ids.remove(row.event_id.as_str()))
    });
    batch.gone = gone
        .into_iter()
        .flat_map(|(endpoint, ids)| ids.into_iter().map(move |id| (endpoint.clone(), id)))
        .collect();
}

fn size(batch: &OutboxBatch) -> usize {
    let replaced: usize = batch.replaced.iter().map(|r| r.rows.len() + 1).sum();
    replaced + batch.queued.len() + batch.gone.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::queue::{EndpointQueue, OVERFLOW_SNAPSHOT_EVERY};

    fn event(n: i64) -> Arc<Event> {
        Arc::new(Event {
            id: format!("e{n}"),
            kind: EventType::Alert,
            at: n,
            json: format!(
                r#"{{"id":"e{n}","type":"alert","at":"1970-01-01T00:00:00.00{n}Z","data":{{}}}}"#
            )
            .into(),
        })
    }

    fn drain(changes: &mut OutboxChanges) -> OutboxBatch {
        let mut batch = OutboxBatch::default();
        while let Ok(change) = changes.0.try_recv() {
            add(&mut batch, change);
        }
        batch
    }

    fn ids(gone: &[(String, String)]) -> Vec<&str> {
        gone.iter().map(|(_, id)| id.as_str()).collect()
    }

    #[test]
    fn an_event_queued_and_gone_in_one_batch_is_never_written() {
        let metrics = Metrics::new().unwrap();
        let (log, mut changes) = OutboxLog::new(&NodeId::new("n"), &metrics);
        let (e1, e2, e3) = (event(1), event(2), event(3));
        log.queued("http://a", &e1);
        log.queued("http://a", &e2);
        log.queued("http://b", &e1);
        log.gone("http://a", [&e1, &e3]);
        let mut batch = drain(&mut changes);
        settle(&mut batch);
        let queued: Vec<(&str, &str)> = batch
            .queued
            .iter()
            .map(|row| (row.endpoint.as_str(), row.event_id.as_str()))
            .collect();
        assert_eq!(queued, [("http://a", "e2"), ("http://b", "e1")]);
        assert_eq!(batch.gone, [("http://a".to_string(), "e3".to_string())]);
    }

    #[test]
    fn the_queue_tells_the_outbox_what_enters_and_leaves_in_order() {
        let metrics = Metrics::new().unwrap();
        let (log, mut changes) = OutboxLog::new(&NodeId::new("n"), &metrics);
        log.continue_from(40);
        let queue = EndpointQueue::new("http://x/".into(), 3).kept_in(log);
        assert!(queue.persists());
        let now = Instant::now();
        queue.restore(event(0), now);
        for n in 1..=3 {
            queue.push(event(n), now);
        }
        let batch = drain(&mut changes);
        let queued: Vec<(&str, i64, &str)> = batch
            .queued
            .iter()
            .map(|r| (r.event_id.as_str(), r.order_key, r.node_id.as_str()))
            .collect();
        assert_eq!(
            queued,
            [("e1", 40, "n"), ("e2", 41, "n"), ("e3", 42, "n")],
            "a restored event is not written again"
        );
        assert_eq!(batch.queued[0].endpoint, "http://x/");
        assert_eq!(&*batch.queued[0].payload, &*event(1).json);
        assert!(batch.gone.is_empty() && batch.replaced.is_empty());
        let taken = queue.take(10);
        assert_eq!(taken.len(), 4);
        assert!(drain(&mut changes).is_empty(), "in flight stays kept");
        queue.record_success(1);
        assert_eq!(ids(&drain(&mut changes).gone), ["e0", "e1", "e2", "e3"]);
        queue.push(event(4), now);
        queue.take(10);
        queue.record_failure();
        assert_eq!(
            ids(&drain(&mut changes).gone),
            ["e4"],
            "given up leaves too"
        );
    }

    fn held(replace: &OutboxReplace) -> Vec<&str> {
        replace.rows.iter().map(|r| r.event_id.as_str()).collect()
    }

    #[test]
    fn an_overflowing_queue_is_kept_by_snapshots_not_event_by_event() {
        let metrics = Metrics::new().unwrap();
        let (log, mut changes) = OutboxLog::new(&NodeId::new("n"), &metrics);
        let queue = EndpointQueue::new("http://x/".into(), 2).kept_in(log);
        let start = Instant::now();
        for n in 1..=2 {
            queue.push(event(n), start);
        }
        assert_eq!(queue.take(1).len(), 1, "e1 in flight");
        queue.push(event(3), start);
        assert_eq!(drain(&mut changes).queued.len(), 3, "room: event by event");
        assert_eq!(queue.push(event(4), start), 1, "e2 dropped");
        let batch = drain(&mut changes);
        assert_eq!(
            batch.replaced.len(),
            1,
            "the overflow starts with a snapshot"
        );
        assert_eq!(held(&batch.replaced[0]), ["e1", "e3", "e4"]);
        assert!(batch.queued.is_empty() && batch.gone.is_empty());
        assert_eq!(queue.push(event(5), start + Duration::from_secs(1)), 1);
        assert!(
            drain(&mut changes).is_empty(),
            "neither the new event nor the dropped one is written"
        );
        queue.push(event(6), start + OVERFLOW_SNAPSHOT_EVERY);
        let batch = drain(&mut changes);
        assert_eq!(
            held(&batch.replaced[0]),
            ["e1", "e5", "e6"],
            "a snapshot when due"
        );
        queue.record_success(2);
        assert!(drain(&mut changes).is_empty(), "still full, not due");
        queue.take(1);
        queue.record_success(3);
        let batch = drain(&mut changes);
        assert_eq!(
            held(&batch.replaced[0]),
            ["e6"],
            "room again: a last snapshot ends the overflow"
        );
        queue.push(event(7), start);
        let batch = drain(&mut changes);
        assert_eq!(batch.queued.len(), 1, "event by event again");
        assert!(batch.replaced.is_empty());
    }

    #[test]
    fn an_overflowing_queue_is_written_exactly_at_shutdown() {
        let metrics = Metrics::new().unwrap();
        let (log, mut changes) = OutboxLog::new(&NodeId::new("n"), &metrics);
        let queue = EndpointQueue::new("http://x/".into(), 1).kept_in(log);
        let start = Instant::now();
        queue.flush_outbox();
        assert!(
            drain(&mut changes).is_empty(),
            "nothing to do without an overflow"
        );
        for n in 1..=3 {
            queue.push(event(n), start);
        }
        drain(&mut changes);
        queue.push(event(4), start);
        assert!(drain(&mut changes).is_empty());
        queue.flush_outbox();
        assert_eq!(held(&drain(&mut changes).replaced[0]), ["e4"]);
    }

    #[test]
    fn a_snapshot_stands_for_what_the_batch_held_for_its_endpoint() {
        let metrics = Metrics::new().unwrap();
        let (log, mut changes) = OutboxLog::new(&NodeId::new("n"), &metrics);
        log.queued("http://a", &event(1));
        log.queued("http://b", &event(2));
        log.gone("http://a", [&event(0)]);
        log.replaced("http://a", [&event(1), &event(3)]);
        log.gone("http://a", [&event(1)]);
        let batch = drain(&mut changes);
        let queued: Vec<&str> = batch.queued.iter().map(|r| r.endpoint.as_str()).collect();
        assert_eq!(queued, ["http://b"]);
        assert_eq!(held(&batch.replaced[0]), ["e1", "e3"]);
        assert_eq!(
            ids(&batch.gone),
            ["e1"],
            "what follows the snapshot is kept"
        );
        assert_eq!(size(&batch), 3 + 1 + 1);
    }

    #[test]
    fn rows_read_back_become_the_events_they_were() {
        let original = event(7);
        let row = OutboxRow {
            endpoint: "http://x/".into(),
            event_id: original.id.clone(),
            node_id: "n".into(),
            order_key: 3,
            queued_at: 0,
            payload: original.json.to_string(),
        };
        assert_eq!(event_of(&row).as_deref(), Some(&*original));
        let broken = OutboxRow {
            payload: "{not json".into(),
            ..row
        };
        assert!(event_of(&broken).is_none());
    }
}
