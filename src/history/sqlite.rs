//! Owns history in one SQLite file (`sqlite://PATH`, the single-node
//! default): opening it (WAL, busy timeout), migrating its schema
//! (`migrations/sqlite/`, embedded), and every query. One connection writes
//! (the history writer task's batches, each one transaction, and pruning in
//! batches of 1,000 rows); a small pool reads beside it, as WAL allows.
//!
//! A file that is not a database, or whose schema is newer than this binary
//! knows, is refused at start with a message naming the file: never a
//! silently fresh database. `q` of 3 characters or more is served by an
//! FTS5 trigram index; shorter ones fall back to a scan (`instr`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use super::audit_sql::{
    AUDIT_COLUMNS, AUDIT_INSERT_CHUNK, AUDIT_ORDER, AuditRow, audit_error, audit_event,
    push_audit_where, push_events,
};
use super::sql::{
    Columns, INSERT_CHUNK, INSERT_COLUMNS, PRUNE_BATCH, migrate_error, parse_view, push_row,
    push_where, store_error, to_i64, to_usize,
};
use super::{DailyPeaks, Day, HistoryError, HistoryStore, Page, ScanBatch, SessionFilter};
use crate::audit::store::{AuditError, AuditFilter, AuditPage, AuditStore};
use crate::model::{AuditEvent, MetaCriterion, MetaScalar, Millis, SessionId, SessionView, UserId};
use crate::revocation::{Deny, Revoked};

/// The schema, versioned files applied in order at start.
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Connections that read beside the one that writes.
const READERS: u32 = 4;

/// How long a statement waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// History in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteHistory {
    path: PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteHistory {
    /// Opens (creating when missing) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, HistoryError> {
        let what = format!("SQLite database {}", path.display());
        let unusable = |err: &dyn std::fmt::Display| {
            HistoryError::Unusable(format!(
                "{what}: cannot be opened as a database ({err}); check the path, or move a damaged file aside and restore a backup"
            ))
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| unusable(&e))?;
        // Reads page 1, so a file that is not a database fails here.
        sqlx::query("SELECT count(*) FROM sqlite_schema")
            .execute(&writer)
            .await
            .map_err(|e| unusable(&e))?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| migrate_error(&MIGRATOR, &e, &what))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await
            .map_err(|e| unusable(&e))?;
        tracing::info!(path = %path.display(), "history in SQLite");
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            reader,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn record_now(&self, sessions: &[SessionView]) -> Result<usize, HistoryError> {
        let rows = sessions
            .iter()
            .map(Columns::of)
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.writer.begin().await.map_err(|e| store_error(&e))?;
        let mut added = 0;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut insert =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO sessions ({INSERT_COLUMNS}) "));
            insert.push_values(chunk, |mut row, columns| push_row(&mut row, columns, ""));
            insert.push(" ON CONFLICT (session_id) DO NOTHING");
            let done = insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(&e))?;
            added += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        tx.commit().await.map_err(|e| store_error(&e))?;
        Ok(added)
    }

    async fn find_now(&self, filter: SessionFilter, limit: usize) -> Result<Page, HistoryError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM sessions");
        push_where(&mut count, &filter, push_text, push_meta);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
        let mut page = Page {
            sessions: Vec::new(),
            total: to_usize(total),
        };
        if limit == 0 || total == 0 {
            return Ok(page);
        }
        let mut select = QueryBuilder::<Sqlite>::new("SELECT view FROM sessions");
        push_where(&mut select, &filter, push_text, push_meta);
        select
            .push(" ORDER BY connected_at DESC, session_id DESC LIMIT ")
            .push_bind(to_i64(limit));
        let views: Vec<String> = select
            .build_query_scalar()
            .fetch_all(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
        page.sessions = views.iter().filter_map(|v| parse_view(v)).collect();
        Ok(page)
    }

    async fn scan_now(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> Result<ScanBatch, HistoryError> {
        let mut select = QueryBuilder::<Sqlite>::new("SELECT seq, view FROM sessions");
        push_where(&mut select, &filter, push_text, push_meta);
        select.push(" AND seq >= ").push_bind(to_i64(cursor));
        select
            .push(" ORDER BY seq LIMIT ")
            .push_bind(to_i64(batch.saturating_add(1)));
        let mut rows: Vec<(i64, String)> = select
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
        let next = if rows.len() > batch {
            rows.pop().map(|(seq, _)| to_usize(seq))
        } else {
            None
        };
        Ok((
            rows.iter().filter_map(|(_, v)| parse_view(v)).collect(),
            next,
        ))
    }

    async fn prune_now(&self, before: Millis) -> Result<usize, HistoryError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM sessions WHERE seq IN \
                 (SELECT seq FROM sessions WHERE ended_at < ? ORDER BY ended_at LIMIT ?)",
            )
            .bind(before)
            .bind(PRUNE_BATCH)
            .execute(&self.writer)
            .await
            .map_err(|e| store_error(&e))?;
            let pruned = done.rows_affected();
            total += usize::try_from(pruned).unwrap_or(0);
            if pruned < PRUNE_BATCH.unsigned_abs() {
                return Ok(total);
            }
            // Let queued writes in between batches.
            tokio::task::yield_now().await;
        }
    }
}

/// `q`: the trigram index for 3 characters or more (a quoted FTS5 phrase
/// matches as a substring), else a scan: the trigram tokenizer cannot index
/// shorter strings.
fn push_text(query: &mut QueryBuilder<Sqlite>, q: &str) {
    if q.chars().count() >= 3 {
        query.push("seq IN (SELECT rowid FROM sessions_search WHERE sessions_search MATCH ");
        query.push_bind(format!("\"{}\"", q.replace('"', "\"\"")));
        query.push(")");
        return;
    }
    query.push("(");
    for (i, column) in [
        "lower(user_id)",
        "lower(coalesce(name, ''))",
        "lower(coalesce(ip, ''))",
        "session_id",
        "lower(coalesce(email, ''))",
        "lower(coalesce(team, ''))",
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            query.push(" OR ");
        }
        query.push(format_args!("instr({column}, "));
        query.push_bind(q.to_string());
        query.push(") > 0");
    }
    query.push(")");
}

/// `meta.<key>=<value>`: the JSON value at `$."key"` is that string, or the
/// number or boolean the value reads as (SQLite compares integers and reals
/// by value).
fn push_meta(query: &mut QueryBuilder<Sqlite>, criterion: &MetaCriterion) {
    let path = format!("$.\"{}\"", criterion.key);
    query.push("((json_type(meta, ");
    query.push_bind(path.clone());
    query.push(") = 'text' AND json_extract(meta, ");
    query.push_bind(path.clone());
    query.push(") = ");
    query.push_bind(criterion.value.clone());
    query.push(")");
    match criterion.scalar() {
        Some(MetaScalar::Number(n)) => {
            query.push(" OR (json_type(meta, ");
            query.push_bind(path.clone());
            query.push(") IN ('integer', 'real') AND json_extract(meta, ");
            query.push_bind(path);
            query.push(") = ");
            query.push_bind(n);
            query.push(")");
        }
        Some(MetaScalar::Bool(b)) => {
            query.push(" OR json_type(meta, ");
            query.push_bind(path);
            query.push(if b { ") = 'true'" } else { ") = 'false'" });
        }
        None => {}
    }
    query.push(")");
}

impl HistoryStore for SqliteHistory {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn audit(&self) -> Option<std::sync::Arc<dyn AuditStore>> {
        Some(std::sync::Arc::new(self.clone()))
    }

    fn record(&self, session: SessionView) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move { self.record_now(&[session]).await.map(|_| ()) }.boxed()
    }

    fn record_batch<'a>(
        &'a self,
        sessions: &'a [SessionView],
    ) -> BoxFuture<'a, Result<usize, HistoryError>> {
        self.record_now(sessions).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            sqlx::query("SELECT 1")
                .execute(&self.reader)
                .await
                .map(|_| ())
                .map_err(|e| store_error(&e))
        }
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        // Every batch is committed as it is written.
        std::future::ready(Ok(())).boxed()
    }

    fn get(&self, id: SessionId) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        async move {
            let view: Option<String> =
                sqlx::query_scalar("SELECT view FROM sessions WHERE session_id = ?")
                    .bind(id.to_string())
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(|e| store_error(&e))?;
            Ok(view.as_deref().and_then(parse_view))
        }
        .boxed()
    }

    fn find(
        &self,
        filter: SessionFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, HistoryError>> {
        self.find_now(filter, limit).boxed()
    }

    fn scan(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> BoxFuture<'_, Result<ScanBatch, HistoryError>> {
        self.scan_now(filter, cursor, batch.max(1)).boxed()
    }

    fn last_of_user(
        &self,
        user: UserId,
    ) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        async move {
            let view: Option<String> = sqlx::query_scalar(
                "SELECT view FROM sessions WHERE user_id = ? ORDER BY ended_at DESC, seq DESC LIMIT 1",
            )
            .bind(user.as_str().to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(view.as_deref().and_then(parse_view))
        }
        .boxed()
    }

    fn started_by_day(
        &self,
        since: Day,
    ) -> BoxFuture<'_, Result<BTreeMap<Day, u64>, HistoryError>> {
        async move {
            let rows: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT connected_at / 86400000 AS day, count(*) FROM sessions \
                 WHERE connected_at >= ? GROUP BY day",
            )
            .bind(since.saturating_mul(86_400_000))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(rows
                .into_iter()
                .map(|(day, n)| (day, n.unsigned_abs()))
                .collect())
        }
        .boxed()
    }

    fn ended_durations_since(
        &self,
        since: Millis,
    ) -> BoxFuture<'_, Result<(u64, f64), HistoryError>> {
        async move {
            let (count, total): (i64, Option<f64>) = sqlx::query_as(
                "SELECT count(*), sum(duration_s) FROM sessions WHERE ended_at >= ?",
            )
            .bind(since)
            .fetch_one(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
            Ok((count.unsigned_abs(), total.unwrap_or(0.0)))
        }
        .boxed()
    }

    fn timeline(
        &self,
        id: SessionId,
    ) -> BoxFuture<'_, Result<Option<crate::model::timeline::Timeline>, HistoryError>> {
        async move {
            let row: Option<Option<String>> = sqlx::query_scalar(
                "SELECT CAST(timeline AS TEXT) FROM sessions WHERE session_id = ?",
            )
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(row.map(|json| {
                json.and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default()
            }))
        }
        .boxed()
    }

    fn peak(&self, day: Day) -> BoxFuture<'_, Result<Option<(u64, Millis)>, HistoryError>> {
        async move {
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT users, at FROM daily_peaks WHERE day = ?")
                    .bind(day)
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(|e| store_error(&e))?;
            Ok(row.map(|(users, at)| (users.unsigned_abs(), at)))
        }
        .boxed()
    }

    fn save_peak(
        &self,
        day: Day,
        users: u64,
        at: Millis,
    ) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            sqlx::query(
                "INSERT INTO daily_peaks (day, users, at) VALUES (?, ?, ?) \
                 ON CONFLICT (day) DO UPDATE SET users = excluded.users, at = excluded.at \
                 WHERE excluded.users > daily_peaks.users",
            )
            .bind(day)
            .bind(i64::try_from(users).unwrap_or(i64::MAX))
            .bind(at)
            .execute(&self.writer)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn peaks(&self, from: Day, to: Day) -> BoxFuture<'_, Result<DailyPeaks, HistoryError>> {
        async move {
            let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT day, users, at FROM daily_peaks WHERE day >= ? AND day <= ?",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(rows
                .into_iter()
                .map(|(day, users, at)| (day, (users.unsigned_abs(), at)))
                .collect())
        }
        .boxed()
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        self.prune_now(before).boxed()
    }

    fn save_revoked(&self, revoked: Revoked) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            sqlx::query(
                "INSERT INTO revoked_users (user_id, revoked_at, max_exp, until) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                 revoked_at = max(revoked_at, excluded.revoked_at), \
                 max_exp = max(max_exp, excluded.max_exp), \
                 until = max(until, excluded.until)",
            )
            .bind(revoked.user_id.as_str())
            .bind(revoked.deny.revoked_at)
            .bind(revoked.deny.max_exp)
            .bind(revoked.deny.until)
            .execute(&self.writer)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn load_revoked(&self, now_s: i64) -> BoxFuture<'_, Result<Vec<Revoked>, HistoryError>> {
        async move {
            sqlx::query("DELETE FROM revoked_users WHERE until < ?")
                .bind(now_s)
                .execute(&self.writer)
                .await
                .map_err(|e| store_error(&e))?;
            let rows: Vec<(String, i64, i64, i64)> =
                sqlx::query_as("SELECT user_id, revoked_at, max_exp, until FROM revoked_users")
                    .fetch_all(&self.writer)
                    .await
                    .map_err(|e| store_error(&e))?;
            Ok(rows
                .into_iter()
                .filter_map(|(user, revoked_at, max_exp, until)| {
                    Some(Revoked {
                        user_id: UserId::parse(&user).ok()?,
                        deny: Deny {
                            revoked_at,
                            max_exp,
                            until,
                        },
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn count(&self) -> BoxFuture<'_, Result<usize, HistoryError>> {
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
                .fetch_one(&self.reader)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(to_usize(n))
        }
        .boxed()
    }
}

impl AuditStore for SqliteHistory {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        async move {
            let mut tx = self.writer.begin().await.map_err(|e| audit_error(&e))?;
            for chunk in events.chunks(AUDIT_INSERT_CHUNK) {
                let mut insert = QueryBuilder::<Sqlite>::new(format!(
                    "INSERT INTO audit_events ({AUDIT_COLUMNS}) "
                ));
                push_events(&mut insert, chunk);
                insert.push(" ON CONFLICT (id) DO NOTHING");
                insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| audit_error(&e))?;
            }
            tx.commit().await.map_err(|e| audit_error(&e))
        }
        .boxed()
    }

    fn find(
        &self,
        filter: AuditFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<AuditPage, AuditError>> {
        async move {
            let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM audit_events");
            push_audit_where(&mut count, &filter);
            let total: i64 = count
                .build_query_scalar()
                .fetch_one(&self.reader)
                .await
                .map_err(|e| audit_error(&e))?;
            let mut select =
                QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_events"));
            push_audit_where(&mut select, &filter);
            select
                .push(AUDIT_ORDER)
                .push(" LIMIT ")
                .push_bind(to_i64(limit))
                .push(" OFFSET ")
                .push_bind(to_i64(offset));
            let rows: Vec<AuditRow> = select
                .build_query_as()
                .fetch_all(&self.reader)
                .await
                .map_err(|e| audit_error(&e))?;
            Ok(AuditPage {
                events: rows.into_iter().filter_map(audit_event).collect(),
                total: to_usize(total),
            })
        }
        .boxed()
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, AuditError>> {
        async move {
            let mut total = 0;
            loop {
                let done = sqlx::query(
                    "DELETE FROM audit_events WHERE seq IN \
                     (SELECT seq FROM audit_events WHERE at < ? ORDER BY at LIMIT ?)",
                )
                .bind(before)
                .bind(PRUNE_BATCH)
                .execute(&self.writer)
                .await
                .map_err(|e| audit_error(&e))?;
                let pruned = done.rows_affected();
                total += usize::try_from(pruned).unwrap_or(0);
                if pruned < PRUNE_BATCH.unsigned_abs() {
                    return Ok(total);
                }
                tokio::task::yield_now().await;
            }
        }
        .boxed()
    }
}
