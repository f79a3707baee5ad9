//! Owns history in PostgreSQL (`postgres://...`): a connection pool that
//! every node writes and reads through, the schema's migrations
//! (`migrations/postgres/`, embedded; sqlx's advisory lock keeps two nodes
//! starting together from migrating twice), and every query. Nodes
//! recording the same loss keep one record (`ON CONFLICT DO NOTHING` on the
//! session id).
//!
//! `q` is served by `pg_trgm` GIN indexes over the lowercased columns
//! (`LIKE '%q%'`); patterns under 3 characters still use them, but scan more
//! of the index.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder};

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
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per node.
const POOL_SIZE: u32 = 8;

/// How long a query waits for a connection; past it, the database counts as
/// unreachable for that call (the writer keeps the records and retries).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// History shared by every node through PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresHistory {
    pool: PgPool,
}

impl PostgresHistory {
    /// Connects and migrates. The URL is never logged: it may hold a password.
    pub async fn connect(url: &str) -> Result<Self, HistoryError> {
        let what = "PostgreSQL database";
        let cannot =
            |e: sqlx::Error| HistoryError::Unusable(format!("{what}: cannot connect: {e}"));
        let options = PgConnectOptions::from_str(url).map_err(cannot)?;
        // One plain connection first: a pool would only report its timeout,
        // not why the server refused.
        PgConnection::connect_with(&options)
            .await
            .map_err(cannot)?
            .close()
            .await
            .map_err(cannot)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(cannot)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| migrate_error(&MIGRATOR, &e, what))?;
        tracing::info!("history in PostgreSQL");
        Ok(Self { pool })
    }

    async fn record_now(&self, sessions: &[SessionView]) -> Result<usize, HistoryError> {
        let rows = sessions
            .iter()
            .map(Columns::of)
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.pool.begin().await.map_err(|e| store_error(&e))?;
        let mut added = 0;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut insert =
                QueryBuilder::<Postgres>::new(format!("INSERT INTO sessions ({INSERT_COLUMNS}) "));
            insert.push_values(chunk, |mut row, columns| {
                push_row(&mut row, columns, "::jsonb");
            });
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
        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM sessions");
        push_where(&mut count, &filter, push_text, push_meta);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error(&e))?;
        let mut page = Page {
            sessions: Vec::new(),
            total: to_usize(total),
        };
        if limit == 0 || total == 0 {
            return Ok(page);
        }
        let mut select = QueryBuilder::<Postgres>::new("SELECT view FROM sessions");
        push_where(&mut select, &filter, push_text, push_meta);
        select
            .push(" ORDER BY connected_at DESC, session_id DESC LIMIT ")
            .push_bind(to_i64(limit));
        let views: Vec<String> = select
            .build_query_scalar()
            .fetch_all(&self.pool)
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
        let mut select = QueryBuilder::<Postgres>::new("SELECT seq, view FROM sessions");
        push_where(&mut select, &filter, push_text, push_meta);
        select.push(" AND seq >= ").push_bind(to_i64(cursor));
        select
            .push(" ORDER BY seq LIMIT ")
            .push_bind(to_i64(batch.saturating_add(1)));
        let mut rows: Vec<(i64, String)> = select
            .build_query_as()
            .fetch_all(&self.pool)
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
                 (SELECT seq FROM sessions WHERE ended_at < $1 ORDER BY ended_at LIMIT $2)",
            )
            .bind(before)
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error(&e))?;
            let pruned = done.rows_affected();
            total += usize::try_from(pruned).unwrap_or(0);
            if pruned < PRUNE_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}

/// `q`: `LIKE '%q%'` on exactly the expressions the `sessions_search` index
/// covers, so the planner can use it.
fn push_text(query: &mut QueryBuilder<Postgres>, q: &str) {
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
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
        query.push(format_args!("{column} LIKE "));
        query.push_bind(pattern.clone());
    }
    query.push(")");
}

/// `meta.<key>=<value>`: containment, served by the `sessions_meta` GIN
/// index: `meta @> {"key": "value"}`, or the number or boolean the value
/// reads as (jsonb compares numbers by value).
fn push_meta(query: &mut QueryBuilder<Postgres>, criterion: &MetaCriterion) {
    let object = |value: serde_json::Value| {
        let mut map = serde_json::Map::new();
        map.insert(criterion.key.clone(), value);
        serde_json::Value::Object(map).to_string()
    };
    query.push("(meta @> ");
    query.push_bind(object(serde_json::Value::String(criterion.value.clone())));
    query.push("::jsonb");
    let scalar = match criterion.scalar() {
        Some(MetaScalar::Number(n)) => {
            serde_json::Number::from_f64(n).map(serde_json::Value::Number)
        }
        Some(MetaScalar::Bool(b)) => Some(serde_json::Value::Bool(b)),
        None => None,
    };
    if let Some(scalar) = scalar {
        query.push(" OR meta @> ");
        query.push_bind(object(scalar));
        query.push("::jsonb");
    }
    query.push(")");
}

impl HistoryStore for PostgresHistory {
    fn name(&self) -> &'static str {
        "postgres"
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
                .execute(&self.pool)
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
                sqlx::query_scalar("SELECT view FROM sessions WHERE session_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
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
                "SELECT view FROM sessions WHERE user_id = $1 ORDER BY ended_at DESC, seq DESC LIMIT 1",
            )
            .bind(user.as_str().to_string())
            .fetch_optional(&self.pool)
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
                 WHERE connected_at >= $1 GROUP BY day",
            )
            .bind(since.saturating_mul(86_400_000))
            .fetch_all(&self.pool)
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
                "SELECT count(*), sum(duration_s) FROM sessions WHERE ended_at >= $1",
            )
            .bind(since)
            .fetch_one(&self.pool)
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
                "SELECT CAST(timeline AS TEXT) FROM sessions WHERE session_id = $1",
            )
            .bind(id.to_string())
            .fetch_optional(&self.pool)
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
                sqlx::query_as("SELECT users, at FROM daily_peaks WHERE day = $1")
                    .bind(day)
                    .fetch_optional(&self.pool)
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
                "INSERT INTO daily_peaks (day, users, at) VALUES ($1, $2, $3) \
                 ON CONFLICT (day) DO UPDATE SET users = excluded.users, at = excluded.at \
                 WHERE excluded.users > daily_peaks.users",
            )
            .bind(day)
            .bind(i64::try_from(users).unwrap_or(i64::MAX))
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn peaks(&self, from: Day, to: Day) -> BoxFuture<'_, Result<DailyPeaks, HistoryError>> {
        async move {
            let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT day, users, at FROM daily_peaks WHERE day >= $1 AND day <= $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
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
                "INSERT INTO revoked_users (user_id, revoked_at, max_exp, until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                 revoked_at = GREATEST(revoked_users.revoked_at, excluded.revoked_at), \
                 max_exp = GREATEST(revoked_users.max_exp, excluded.max_exp), \
                 until = GREATEST(revoked_users.until, excluded.until)",
            )
            .bind(revoked.user_id.as_str())
            .bind(revoked.deny.revoked_at)
            .bind(revoked.deny.max_exp)
            .bind(revoked.deny.until)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn load_revoked(&self, now_s: i64) -> BoxFuture<'_, Result<Vec<Revoked>, HistoryError>> {
        async move {
            sqlx::query("DELETE FROM revoked_users WHERE until < $1")
                .bind(now_s)
                .execute(&self.pool)
                .await
                .map_err(|e| store_error(&e))?;
            let rows: Vec<(String, i64, i64, i64)> =
                sqlx::query_as("SELECT user_id, revoked_at, max_exp, until FROM revoked_users")
                    .fetch_all(&self.pool)
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
                .fetch_one(&self.pool)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(to_usize(n))
        }
        .boxed()
    }
}

impl AuditStore for PostgresHistory {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        async move {
            let mut tx = self.pool.begin().await.map_err(|e| audit_error(&e))?;
            for chunk in events.chunks(AUDIT_INSERT_CHUNK) {
                let mut insert = QueryBuilder::<Postgres>::new(format!(
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
            let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM audit_events");
            push_audit_where(&mut count, &filter);
            let total: i64 = count
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(|e| audit_error(&e))?;
            let mut select =
                QueryBuilder::<Postgres>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_events"));
            push_audit_where(&mut select, &filter);
            select
                .push(AUDIT_ORDER)
                .push(" LIMIT ")
                .push_bind(to_i64(limit))
                .push(" OFFSET ")
                .push_bind(to_i64(offset));
            let rows: Vec<AuditRow> = select
                .build_query_as()
                .fetch_all(&self.pool)
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
                     (SELECT seq FROM audit_events WHERE at < $1 ORDER BY at LIMIT $2)",
                )
                .bind(before)
                .bind(PRUNE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(|e| audit_error(&e))?;
                let pruned = done.rows_affected();
                total += usize::try_from(pruned).unwrap_or(0);
                if pruned < PRUNE_BATCH.unsigned_abs() {
                    return Ok(total);
                }
            }
        }
        .boxed()
    }
}
