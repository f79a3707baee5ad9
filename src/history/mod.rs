//! Owns the record of ended sessions: what is kept (`SessionView` with
//! `ended_at`, `end_cause`, `duration_s`), for how long (retention), and how
//! it is queried. `HistoryStore` is the seam, chosen by
//! `PRESENCE_DATABASE_URL` (`url.rs`): `SqliteHistory` (the single-node
//! default), `PostgresHistory` (any number of nodes), `MemoryHistory`
//! (`memory:`, optionally backed by an append-only file) and, in cluster
//! mode without PostgreSQL, `RedisHistory`. One conformance suite
//! (`tests/records/`) runs against every one of them. The database stores
//! also keep what sits beside the records: the audit trail (`audit()`),
//! the webhook outbox (`outbox()`, `outbox.rs`), daily peaks, revoked
//! users and the online series (`series.rs`).

mod audit_sql;
pub mod memory;
pub mod mirror;
pub mod outbox;
mod outbox_sql;
pub mod postgres;
pub mod redis;
pub mod series;
mod sql;
pub mod sqlite;
pub mod writer;

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;

use crate::model::{Millis, SessionId, SessionView, UserId};
use crate::revocation::Revoked;

pub use crate::model::SessionFilter;

pub use crate::model::time::{Day, day_of};
pub use series::SeriesPoint;

/// Why history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history file could not be read or written.
    #[error("history file: {0}")]
    Io(#[from] std::io::Error),
    /// The backing store failed.
    #[error("history store: {0}")]
    Store(String),
    /// The store cannot be used at all (corrupt file, schema newer than this
    /// binary): the hub must not start on it.
    #[error("{0}")]
    Unusable(String),
}

/// A page of matches, newest `connected_at` first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The sessions of the page.
    pub sessions: Vec<SessionView>,
    /// How many match in all.
    pub total: usize,
}

/// Kept peaks by day: (users, when first reached).
pub type DailyPeaks = BTreeMap<Day, (u64, Millis)>;

/// One batch of a scan and where the next one starts (`None` at the end).
pub type ScanBatch = (Vec<SessionView>, Option<usize>);

/// Ended sessions, kept for the retention period.
pub trait HistoryStore: Send + Sync + 'static {
    /// Which store this is (`memory`, `redis`, `sqlite`, `postgres`), for
    /// logs and metrics.
    fn name(&self) -> &'static str;

    /// The audit trail kept beside the records, when the store is a
    /// database (SQLite, PostgreSQL); `None` keeps it in memory.
    fn audit(&self) -> Option<std::sync::Arc<dyn crate::audit::store::AuditStore>> {
        None
    }

    /// The webhook outbox kept beside the records, when the store is a
    /// database (SQLite, PostgreSQL); `None`: queued webhook events live in
    /// memory only and a restart loses them (`memory:`, Redis).
    fn outbox(&self) -> Option<std::sync::Arc<dyn outbox::OutboxStore>> {
        None
    }

    /// Records an ended session (once; recording the same id again is a no-op).
    fn record(&self, session: SessionView) -> BoxFuture<'_, Result<(), HistoryError>>;

    /// Records several ended sessions, in one transaction where the store
    /// has them; ids already recorded are skipped. Returns how many were new
    /// when the store can tell (else how many were given).
    fn record_batch<'a>(
        &'a self,
        sessions: &'a [SessionView],
    ) -> BoxFuture<'a, Result<usize, HistoryError>> {
        Box::pin(async move {
            for session in sessions {
                self.record(session.clone()).await?;
            }
            Ok(sessions.len())
        })
    }

    /// Whether the store can be reached now (`/readyz` reports
    /// `database_unreachable` while it cannot). In-process stores always can;
    /// Redis reachability is the replicator's to report.
    fn check(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Makes recorded sessions durable (file or remote store).
    fn flush(&self) -> BoxFuture<'_, Result<(), HistoryError>>;

    /// One ended session.
    fn get(&self, id: SessionId) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>>;

    /// Every match, newest `connected_at` first, up to `limit`.
    fn find(
        &self,
        filter: SessionFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, HistoryError>>;

    /// A batch of matches in stored order starting at `cursor`, and the next
    /// cursor (`None` at the end): how exports stream without loading all.
    fn scan(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> BoxFuture<'_, Result<ScanBatch, HistoryError>>;

    /// The most recent ended session of a user, if any is kept.
    fn last_of_user(
        &self,
        user: UserId,
    ) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>>;

    /// Ended sessions by the UTC day they started, for days `>= since`.
    fn started_by_day(&self, since: Day)
    -> BoxFuture<'_, Result<BTreeMap<Day, u64>, HistoryError>>;

    /// How many sessions ended at or after `since`, and their total
    /// duration in seconds (`avg_duration_s_today` of the stats). The SQL
    /// stores aggregate in the database; the default scans.
    fn ended_durations_since(
        &self,
        since: Millis,
    ) -> BoxFuture<'_, Result<(u64, f64), HistoryError>> {
        Box::pin(async move {
            let (mut count, mut total) = (0, 0.0);
            let mut cursor = Some(0);
            while let Some(at) = cursor {
                let (batch, next) = self.scan(SessionFilter::default(), at, 1000).await?;
                for session in batch {
                    if session.ended_at.is_some_and(|ended| ended >= since) {
                        count += 1;
                        total += session.duration_s;
                    }
                }
                cursor = next;
            }
            Ok((count, total))
        })
    }

    /// The timeline an ended session was recorded with: `None` when the
    /// session is not kept, an empty timeline when it was kept without one.
    fn timeline(
        &self,
        id: SessionId,
    ) -> BoxFuture<'_, Result<Option<crate::model::timeline::Timeline>, HistoryError>> {
        Box::pin(async move {
            Ok(self
                .get(id)
                .await?
                .map(|view| view.timeline.unwrap_or_default()))
        })
    }

    /// The peak of online users kept for `day`: (users, when first reached).
    /// Stores that do not keep peaks answer `None`.
    fn peak(&self, day: Day) -> BoxFuture<'_, Result<Option<(u64, Millis)>, HistoryError>> {
        let _ = day;
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Keeps `users` at `at` as the peak of `day` unless a higher one is
    /// kept already.
    fn save_peak(
        &self,
        day: Day,
        users: u64,
        at: Millis,
    ) -> BoxFuture<'_, Result<(), HistoryError>> {
        let _ = (day, users, at);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Peaks kept for the days `from..=to`.
    fn peaks(&self, from: Day, to: Day) -> BoxFuture<'_, Result<DailyPeaks, HistoryError>> {
        let _ = (from, to);
        Box::pin(std::future::ready(Ok(BTreeMap::new())))
    }

    /// Keeps one point of the online series, replacing the point kept for
    /// the same bucket (`point.at`), so nodes sampling the same bucket leave
    /// one point. Stores that keep no series keep nothing.
    fn save_series_point(&self, point: SeriesPoint) -> BoxFuture<'_, Result<(), HistoryError>> {
        let _ = point;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The points of the online series with `from <= at <= to`, oldest
    /// first.
    fn series(
        &self,
        from: Millis,
        to: Millis,
    ) -> BoxFuture<'_, Result<Vec<SeriesPoint>, HistoryError>> {
        let _ = (from, to);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Drops the points of the online series before `before`; returns how
    /// many.
    fn prune_series(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        let _ = before;
        Box::pin(std::future::ready(Ok(0)))
    }

    /// Drops sessions that ended before `before`; returns how many.
    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>>;

    /// How many sessions are kept.
    fn count(&self) -> BoxFuture<'_, Result<usize, HistoryError>>;

    /// Keeps a revoked user's deny entry (merged with the one kept). Stores
    /// without a durable place for them keep nothing: memory has none, and
    /// in cluster mode Redis keeps them (`cluster/redis/revoked.rs`).
    fn save_revoked(&self, _revoked: Revoked) -> BoxFuture<'_, Result<(), HistoryError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// The deny entries still in force at `now_s` (Unix seconds); those
    /// that ran out are removed.
    fn load_revoked(&self, _now_s: i64) -> BoxFuture<'_, Result<Vec<Revoked>, HistoryError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}
