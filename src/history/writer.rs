//! Owns the history tasks: recording ended sessions as the engine hands
//! them over, in batches (one transaction each on a SQL store), through a
//! bounded backlog that holds them while the store is unreachable; watching
//! whether the store can be reached (for `/readyz`); and pruning sessions
//! older than the retention period in the background.
//!
//! The writer never waits for the store while sessions arrive: the engine's
//! channel is drained into the backlog while a write is in flight, so a slow
//! or lost database never holds up the engine or a socket. What overflows
//! the backlog, or is still waiting when the hub exits, is counted in
//! `presence_history_dropped_total` and logged (at most once a minute):
//! never dropped silently.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, OptionFuture};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{HistoryError, HistoryStore};
use crate::metrics::Metrics;
use crate::model::SessionView;
use crate::model::time::millis_of;
use crate::model::time::now_millis;

/// Ended sessions waiting for the writer; the engine waits when it is full,
/// which only happens if the writer task itself stalls (it never awaits the
/// store while sessions arrive).
pub const ENDED_QUEUE: usize = 4096;

/// Ended sessions held while the store is unreachable; beyond it the oldest
/// are dropped (counted and logged).
pub const BACKLOG_LIMIT: usize = 100_000;

/// Sessions per write.
const BATCH: usize = 500;

/// Pause after a failed write before the next attempt, so waiting records
/// are written well within 2 s of the store returning.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How long the writer keeps trying after the engine has stopped (inside the
/// 1 s that shutdown gives every task).
const EXIT_DRAIN: Duration = Duration::from_millis(800);

/// Overflow and outage warnings are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// How often `presence_history_sessions` is refreshed: counting is a scan
/// on the SQL stores.
const COUNT_EVERY: Duration = Duration::from_secs(10);

/// A write in flight: the batch, then (when the backlog ran dry) a flush and
/// possibly a count, all off the loop that drains the engine's channel.
type Write = BoxFuture<'static, Written>;

struct Written {
    batch: Vec<SessionView>,
    result: Result<usize, HistoryError>,
    count: Option<usize>,
}

/// Records every ended session until the engine drops its sender, then
/// writes what is left (for at most `EXIT_DRAIN`).
pub async fn record_ended(
    mut ended: mpsc::Receiver<SessionView>,
    store: Arc<dyn HistoryStore>,
    metrics: Metrics,
) {
    let mut writer = Writer::new(store, metrics);
    let mut in_flight: Option<Write> = None;
    let mut exit_by: Option<Instant> = None;
    loop {
        if in_flight.is_none() && writer.due() {
            in_flight = writer.next_write();
        }
        if exit_by.is_some() && in_flight.is_none() && writer.backlog.is_empty() {
            break;
        }
        let retry = writer.retry_at.filter(|_| in_flight.is_none());
        tokio::select! {
            session = ended.recv(), if exit_by.is_none() => match session {
                Some(session) => writer.push(session),
                None => exit_by = Some(Instant::now() + EXIT_DRAIN),
            },
            Some(written) = OptionFuture::from(in_flight.as_mut()) => {
                in_flight = None;
                writer.done(written);
            }
            () = tokio::time::sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {
                writer.retry_at = None;
            }
            () = tokio::time::sleep_until(exit_by.unwrap_or_else(Instant::now)), if exit_by.is_some() => {
                break;
            }
        }
    }
    writer.give_up(in_flight.is_some());
    tracing::debug!("history writer stopped");
}

struct Writer {
    store: Arc<dyn HistoryStore>,
    metrics: Metrics,
    backlog: VecDeque<SessionView>,
    /// The size of the batch being written (for the exit count).
    writing: usize,
    /// No write before this (after a failure).
    retry_at: Option<Instant>,
    /// When the current outage started, if the last write failed.
    failing_since: Option<Instant>,
    last_outage_log: Option<Instant>,
    overflow: Overflow,
    last_count: Option<Instant>,
}

/// Overflow drops since the last log line.
#[derive(Default)]
struct Overflow {
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Writer {
    fn new(store: Arc<dyn HistoryStore>, metrics: Metrics) -> Self {
        Self {
            store,
            metrics,
            backlog: VecDeque::new(),
            writing: 0,
            retry_at: None,
            failing_since: None,
            last_outage_log: None,
            overflow: Overflow::default(),
            last_count: None,
        }
    }

    fn due(&self) -> bool {
        !self.backlog.is_empty() && self.retry_at.is_none()
    }

    fn push(&mut self, session: SessionView) {
        self.metrics
            .sessions_ended
            .with_label_values(&[session.end_cause.map_or("unknown", |c| c.as_str())])
            .inc();
        self.metrics
            .ops
            .session_duration
            .observe(session.duration_s);
        self.backlog.push_back(session);
        while self.backlog.len() > BACKLOG_LIMIT {
            if self.backlog.pop_front().is_some() {
                self.metrics
                    .history_dropped
                    .with_label_values(&["overflow"])
                    .inc();
                self.overflow.unlogged += 1;
            }
        }
        self.log_overflow();
        self.set_backlog_gauge();
    }

    fn log_overflow(&mut self) {
        let now = Instant::now();
        if self.overflow.unlogged == 0
            || self
                .overflow
                .logged_at
                .is_some_and(|at| now.duration_since(at) < LOG_EVERY)
        {
            return;
        }
        tracing::error!(
            dropped = self.overflow.unlogged,
            limit = BACKLOG_LIMIT,
            store = self.store.name(),
            "history backlog full; the oldest ended sessions were dropped unrecorded"
        );
        self.overflow = Overflow {
            unlogged: 0,
            logged_at: Some(now),
        };
    }

    fn set_backlog_gauge(&self) {
        let waiting = self.backlog.len() + self.writing;
        self.metrics
            .history_backlog
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    fn next_write(&mut self) -> Option<Write> {
        let take = self.backlog.len().min(BATCH);
        if take == 0 {
            return None;
        }
        let batch: Vec<SessionView> = self.backlog.drain(..take).collect();
        self.writing = batch.len();
        let dry = self.backlog.is_empty();
        let count_due = dry && self.last_count.is_none_or(|at| at.elapsed() >= COUNT_EVERY);
        if count_due {
            self.last_count = Some(Instant::now());
        }
        let store = self.store.clone();
        Some(
            async move {
                let result = store.record_batch(&batch).await;
                let mut count = None;
                if dry && result.is_ok() {
                    if let Err(err) = store.flush().await {
                        tracing::error!(error = %err, "flushing history failed");
                    }
                    if count_due {
                        count = store.count().await.ok();
                    }
                }
                Written {
                    batch,
                    result,
                    count,
                }
            }
            .boxed(),
        )
    }

    fn done(&mut self, written: Written) {
        self.writing = 0;
        if let Some(len) = written.count {
            self.metrics
                .history_size
                .set(i64::try_from(len).unwrap_or(i64::MAX));
        }
        match written.result {
            Ok(_) => {
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(
                        store = self.store.name(),
                        outage_s = since.elapsed().as_secs(),
                        waiting = self.backlog.len(),
                        "history store reachable again; writing the waiting sessions"
                    );
                }
            }
            Err(err) => {
                self.metrics.history_write_errors.inc();
                if self.store.name() == "redis" {
                    self.metrics.redis_errors.inc();
                }
                for session in written.batch.into_iter().rev() {
                    self.backlog.push_front(session);
                }
                let now = Instant::now();
                if self.failing_since.is_none() {
                    self.failing_since = Some(now);
                }
                if self
                    .last_outage_log
                    .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
                {
                    tracing::warn!(
                        error = %err,
                        store = self.store.name(),
                        waiting = self.backlog.len(),
                        "recording ended sessions failed; they wait in memory and will be retried"
                    );
                    self.last_outage_log = Some(now);
                }
                self.retry_at = Some(now + RETRY_AFTER);
            }
        }
        self.log_overflow();
        self.set_backlog_gauge();
    }

    /// At exit: whatever could not be written is counted and logged.
    fn give_up(&mut self, writing: bool) {
        let lost = self.backlog.len() + if writing { self.writing } else { 0 };
        self.overflow.logged_at = None;
        self.log_overflow();
        if lost == 0 {
            return;
        }
        self.metrics
            .history_dropped
            .with_label_values(&["shutdown"])
            .inc_by(u64::try_from(lost).unwrap_or(u64::MAX));
        tracing::error!(
            lost,
            store = self.store.name(),
            "the hub is exiting with ended sessions it could not record"
        );
    }
}

/// How often the store's reachability is checked.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// A check slower than this counts as unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks every `CHECK_EVERY` whether `store` can be reached and calls
/// `report` when that changes (`false`: unreachable), until `stop`. A lost
/// database is reported within `CHECK_EVERY + CHECK_TIMEOUT` (5 s).
pub async fn watch_store(
    store: Arc<dyn HistoryStore>,
    report: impl Fn(bool) + Send + 'static,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let now_reachable = match tokio::time::timeout(CHECK_TIMEOUT, store.check()).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                if reachable {
                    tracing::warn!(error = %err, store = store.name(), "database unreachable");
                }
                false
            }
            Err(_) => {
                if reachable {
                    tracing::warn!(
                        store = store.name(),
                        "database unreachable (check timed out)"
                    );
                }
                false
            }
        };
        if now_reachable != reachable {
            if now_reachable {
                tracing::info!(store = store.name(), "database reachable again");
            }
            reachable = now_reachable;
            report(reachable);
        }
    }
}

/// Drops sessions older than `retention` every so often until `stop`.
pub async fn prune_expired(
    store: Arc<dyn HistoryStore>,
    retention: Duration,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(crate::model::time::prune_interval(retention));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let before = now_millis() - millis_of(retention);
        match store.prune(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "history pruned"),
            Err(err) => tracing::warn!(error = %err, "pruning history failed"),
        }
    }
}
