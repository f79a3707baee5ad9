//! Owns the queries of `HistoryStore` for the SQL stores: implemented once
//! for every `SqlBacked` store (`SqliteHistory`, `PostgresHistory`) in SQL
//! both databases run, with the few differences taken from its `Dialect`.
//! Inserts are batched in one transaction per call; pruning deletes in
//! batches of `PRUNE_BATCH` rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::decode::Decode;
use sqlx::encode::Encode;
use sqlx::{ColumnIndex, Database, Executor, IntoArguments, QueryBuilder, Type};

use super::columns::{Columns, INSERT_CHUNK, INSERT_COLUMNS, push_row};
use super::filter::push_where;
use super::{Dialect, SqlBacked, parse_view, prune_in_batches, store_error, to_i64, to_usize};
use crate::audit::store::AuditStore;
use crate::history::outbox::OutboxStore;
use crate::history::{
    DailyPeaks, Day, HistoryError, HistoryStore, Page, ScanBatch, SeriesPoint, SessionFilter,
};
use crate::model::timeline::Timeline;
use crate::model::{Millis, SessionId, SessionView, UserId};
use crate::revocation::{Deny, Revoked};

impl<S> HistoryStore for S
where
    S: SqlBacked,
    for<'c> &'c mut <S::Db as Database>::Connection: Executor<'c, Database = S::Db>,
    <S::Db as Database>::Arguments: IntoArguments<S::Db>,
    usize: ColumnIndex<<S::Db as Database>::Row>,
    for<'t> String: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
    for<'t> i64: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
    for<'t> f64: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
    for<'t> Option<String>: Encode<'t, S::Db>,
    for<'t> Option<i64>: Encode<'t, S::Db>,
    for<'t> Option<f64>: Encode<'t, S::Db>,
{
    fn name(&self) -> &'static str {
        <S::Db as Dialect>::NAME
    }

    fn audit(&self) -> Option<Arc<dyn AuditStore>> {
        Some(Arc::new(self.clone()))
    }

    fn outbox(&self) -> Option<Arc<dyn OutboxStore>> {
        Some(Arc::new(self.clone()))
    }

    fn record(&self, session: SessionView) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            self.record_batch(std::slice::from_ref(&session))
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn record_batch<'a>(
        &'a self,
        sessions: &'a [SessionView],
    ) -> BoxFuture<'a, Result<usize, HistoryError>> {
        async move {
            let rows = sessions
                .iter()
                .map(Columns::of)
                .collect::<Result<Vec<_>, _>>()?;
            let mut tx = self
                .pools()
                .writer
                .begin()
                .await
                .map_err(|e| store_error(&e))?;
            let mut added = 0;
            for chunk in rows.chunks(INSERT_CHUNK) {
                let mut insert =
                    QueryBuilder::<S::Db>::new(format!("INSERT INTO sessions ({INSERT_COLUMNS}) "));
                insert.push_values(chunk, |mut row, columns| {
                    push_row(&mut row, columns, <S::Db as Dialect>::JSON_CAST);
                });
                insert.push(" ON CONFLICT (session_id) DO NOTHING");
                let done = insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(&e))?;
                added += usize::try_from(<S::Db as Dialect>::rows_affected(&done)).unwrap_or(0);
            }
            tx.commit().await.map_err(|e| store_error(&e))?;
            Ok(added)
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            sqlx::query("SELECT 1")
                .execute(&self.pools().reader)
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
            let mut select =
                QueryBuilder::<S::Db>::new("SELECT view FROM sessions WHERE session_id = ");
            select.push_bind(id.to_string());
            let view: Option<String> = select
                .build_query_scalar()
                .fetch_optional(&self.pools().reader)
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
        async move {
            let reader = &self.pools().reader;
            let mut count = QueryBuilder::<S::Db>::new("SELECT count(*) FROM sessions");
            push_where(&mut count, &filter);
            let total: i64 = count
                .build_query_scalar()
                .fetch_one(reader)
                .await
                .map_err(|e| store_error(&e))?;
            let mut page = Page {
                sessions: Vec::new(),
                total: to_usize(total),
            };
            if limit == 0 || total == 0 {
                return Ok(page);
            }
            let mut select = QueryBuilder::<S::Db>::new("SELECT view FROM sessions");
            push_where(&mut select, &filter);
            select
                .push(" ORDER BY connected_at DESC, session_id DESC LIMIT ")
                .push_bind(to_i64(limit));
            let views: Vec<String> = select
                .build_query_scalar()
                .fetch_all(reader)
                .await
                .map_err(|e| store_error(&e))?;
            page.sessions = views.iter().filter_map(|v| parse_view(v)).collect();
            Ok(page)
        }
        .boxed()
    }

    fn scan(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> BoxFuture<'_, Result<ScanBatch, HistoryError>> {
        let batch = batch.max(1);
        async move {
            let mut select = QueryBuilder::<S::Db>::new("SELECT seq, view FROM sessions");
            push_where(&mut select, &filter);
            select.push(" AND seq >= ").push_bind(to_i64(cursor));
            select
                .push(" ORDER BY seq LIMIT ")
                .push_bind(to_i64(batch.saturating_add(1)));
            let mut rows: Vec<(i64, String)> = select
                .build_query_as()
                .fetch_all(&self.pools().reader)
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
        .boxed()
    }

    fn last_of_user(
        &self,
        user: UserId,
    ) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        async move {
            let mut select =
                QueryBuilder::<S::Db>::new("SELECT view FROM sessions WHERE user_id = ");
            select
                .push_bind(user.as_str().to_string())
                .push(" ORDER BY ended_at DESC, seq DESC LIMIT 1");
            let view: Option<String> = select
                .build_query_scalar()
                .fetch_optional(&self.pools().reader)
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
            let mut select = QueryBuilder::<S::Db>::new(
                "SELECT connected_at / 86400000 AS day, count(*) FROM sessions \
                 WHERE connected_at >= ",
            );
            select
                .push_bind(since.saturating_mul(86_400_000))
                .push(" GROUP BY day");
            let rows: Vec<(i64, i64)> = select
                .build_query_as()
                .fetch_all(&self.pools().reader)
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
            let mut select = QueryBuilder::<S::Db>::new(
                "SELECT count(*), sum(duration_s) FROM sessions WHERE ended_at >= ",
            );
            select.push_bind(since);
            let (count, total): (i64, Option<f64>) = select
                .build_query_as()
                .fetch_one(&self.pools().reader)
                .await
                .map_err(|e| store_error(&e))?;
            Ok((count.unsigned_abs(), total.unwrap_or(0.0)))
        }
        .boxed()
    }

    fn timeline(&self, id: SessionId) -> BoxFuture<'_, Result<Option<Timeline>, HistoryError>> {
        async move {
            let mut select = QueryBuilder::<S::Db>::new(
                "SELECT CAST(timeline AS TEXT) FROM sessions WHERE session_id = ",
            );
            select.push_bind(id.to_string());
            let row: Option<Option<String>> = select
                .build_query_scalar()
                .fetch_optional(&self.pools().reader)
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
            let mut select =
                QueryBuilder::<S::Db>::new("SELECT users, at FROM daily_peaks WHERE day = ");
            select.push_bind(day);
            let row: Option<(i64, i64)> = select
                .build_query_as()
                .fetch_optional(&self.pools().reader)
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
            let mut insert =
                QueryBuilder::<S::Db>::new("INSERT INTO daily_peaks (day, users, at) VALUES (");
            insert
                .separated(", ")
                .push_bind(day)
                .push_bind(i64::try_from(users).unwrap_or(i64::MAX))
                .push_bind(at);
            insert.push(
                ") ON CONFLICT (day) DO UPDATE SET users = excluded.users, at = excluded.at \
                 WHERE excluded.users > daily_peaks.users",
            );
            insert
                .build()
                .execute(&self.pools().writer)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn peaks(&self, from: Day, to: Day) -> BoxFuture<'_, Result<DailyPeaks, HistoryError>> {
        async move {
            let mut select =
                QueryBuilder::<S::Db>::new("SELECT day, users, at FROM daily_peaks WHERE day >= ");
            select.push_bind(from).push(" AND day <= ").push_bind(to);
            let rows: Vec<(i64, i64, i64)> = select
                .build_query_as()
                .fetch_all(&self.pools().reader)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(rows
                .into_iter()
                .map(|(day, users, at)| (day, (users.unsigned_abs(), at)))
                .collect())
        }
        .boxed()
    }

    fn save_series_point(&self, point: SeriesPoint) -> BoxFuture<'_, Result<(), HistoryError>> {
        super::series::save(self.pools(), point).boxed()
    }

    fn series(
        &self,
        from: Millis,
        to: Millis,
    ) -> BoxFuture<'_, Result<Vec<SeriesPoint>, HistoryError>> {
        super::series::range(self.pools(), from, to).boxed()
    }

    fn prune_series(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        super::series::prune(self.pools(), before).boxed()
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        async move {
            prune_in_batches(&self.pools().writer, "sessions", "ended_at", before)
                .await
                .map_err(|e| store_error(&e))
        }
        .boxed()
    }

    fn save_revoked(&self, revoked: Revoked) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            let mut insert = QueryBuilder::<S::Db>::new(
                "INSERT INTO revoked_users (user_id, revoked_at, max_exp, until) VALUES (",
            );
            insert
                .separated(", ")
                .push_bind(revoked.user_id.as_str().to_string())
                .push_bind(revoked.deny.revoked_at)
                .push_bind(revoked.deny.max_exp)
                .push_bind(revoked.deny.until);
            insert.push(") ").push(<S::Db as Dialect>::REVOKED_MERGE);
            insert
                .build()
                .execute(&self.pools().writer)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn load_revoked(&self, now_s: i64) -> BoxFuture<'_, Result<Vec<Revoked>, HistoryError>> {
        async move {
            // Both on the writer, so the read follows the delete.
            let writer = &self.pools().writer;
            let mut delete = QueryBuilder::<S::Db>::new("DELETE FROM revoked_users WHERE until < ");
            delete.push_bind(now_s);
            delete
                .build()
                .execute(writer)
                .await
                .map_err(|e| store_error(&e))?;
            let rows: Vec<(String, i64, i64, i64)> =
                sqlx::query_as("SELECT user_id, revoked_at, max_exp, until FROM revoked_users")
                    .fetch_all(writer)
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
                .fetch_one(&self.pools().reader)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(to_usize(n))
        }
        .boxed()
    }
}
