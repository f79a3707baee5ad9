//! Owns the online series' queries for the SQL stores (`online_series`,
//! migration 0012): an upsert per bucket, a range read by the primary key,
//! and pruning by it. At most 8,640 rows are kept, so one `DELETE` prunes.

use sqlx::decode::Decode;
use sqlx::encode::Encode;
use sqlx::{ColumnIndex, Executor, IntoArguments, QueryBuilder, Type};

use super::{Dialect, Pools, store_error};
use crate::history::{HistoryError, SeriesPoint};
use crate::model::Millis;

/// A count as a bind value.
fn to_bind(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Keeps `point`, replacing the row of its bucket.
pub(super) async fn save<D>(pools: &Pools<D>, point: SeriesPoint) -> Result<(), HistoryError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> i64: Encode<'t, D> + Type<D>,
{
    let mut insert =
        QueryBuilder::<D>::new("INSERT INTO online_series (at, users, sessions) VALUES (");
    insert
        .separated(", ")
        .push_bind(point.at)
        .push_bind(to_bind(point.users))
        .push_bind(to_bind(point.sessions));
    insert.push(
        ") ON CONFLICT (at) DO UPDATE SET users = excluded.users, sessions = excluded.sessions",
    );
    insert
        .build()
        .execute(&pools.writer)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(())
}

/// The rows with `from <= at <= to`, oldest first.
pub(super) async fn range<D>(
    pools: &Pools<D>,
    from: Millis,
    to: Millis,
) -> Result<Vec<SeriesPoint>, HistoryError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    usize: ColumnIndex<D::Row>,
    for<'t> i64: Encode<'t, D> + Decode<'t, D> + Type<D>,
{
    let mut select =
        QueryBuilder::<D>::new("SELECT at, users, sessions FROM online_series WHERE at >= ");
    select
        .push_bind(from)
        .push(" AND at <= ")
        .push_bind(to)
        .push(" ORDER BY at");
    let rows: Vec<(i64, i64, i64)> = select
        .build_query_as()
        .fetch_all(&pools.reader)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(rows
        .into_iter()
        .map(|(at, users, sessions)| SeriesPoint {
            at,
            users: users.unsigned_abs(),
            sessions: sessions.unsigned_abs(),
        })
        .collect())
}

/// Deletes the rows before `before`; returns how many.
pub(super) async fn prune<D>(pools: &Pools<D>, before: Millis) -> Result<usize, HistoryError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> i64: Encode<'t, D> + Type<D>,
{
    let mut delete = QueryBuilder::<D>::new("DELETE FROM online_series WHERE at < ");
    delete.push_bind(before);
    let done = delete
        .build()
        .execute(&pools.writer)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(usize::try_from(D::rows_affected(&done)).unwrap_or(usize::MAX))
}
