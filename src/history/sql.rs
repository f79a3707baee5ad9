//! Owns what the two SQL stores (`sqlite.rs`, `postgres.rs`) share: the
//! seam between them (`Dialect`: what a database writes its own way;
//! `SqlBacked`: a store and its pools), the queries of `HistoryStore`
//! written once for both (`sql/store.rs`), the columns an ended session is
//! stored as (`sql/columns.rs`), the `WHERE` clause of a `SessionFilter`
//! (`sql/filter.rs`), the online series' queries (`sql/series.rs`), and how sqlx and migration errors become
//! `HistoryError`s. Placeholders are written by `QueryBuilder` in each
//! database's own style (`?`, `$1`).
//!
//! A store file keeps only what differs: opening and migrating its
//! database, and its `Dialect`.

mod columns;
mod filter;
#[cfg(test)]
mod properties;
mod series;
mod store;

pub(super) use filter::push_searched;

use std::future::Future;

use sqlx::encode::Encode;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Database, Executor, IntoArguments, Pool, QueryBuilder, Type};

use super::HistoryError;
use crate::model::{MetaCriterion, Millis, SessionView};

/// Rows per retention `DELETE`, so pruning never holds a long lock.
pub(super) const PRUNE_BATCH: i64 = 1000;

/// What one SQL database writes its own way in the queries the stores
/// share.
pub(super) trait Dialect: Database {
    /// The store's name for logs and metrics (`HistoryStore::name`).
    const NAME: &'static str;

    /// What follows the placeholder of a JSON column (`::jsonb` on
    /// PostgreSQL).
    const JSON_CAST: &'static str;

    /// The `ON CONFLICT` clause that merges a revoke into the one kept:
    /// every column keeps the larger of the two values.
    const REVOKED_MERGE: &'static str;

    /// Pushes the condition of a non-empty `q`.
    fn push_text(query: &mut QueryBuilder<Self>, q: &str);

    /// Pushes the condition of one `meta.<key>=<value>`.
    fn push_meta(query: &mut QueryBuilder<Self>, criterion: &MetaCriterion);

    /// How many rows a statement inserted or deleted.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// Awaited between two batches of a prune.
    fn between_prune_batches() -> impl Future<Output = ()> + Send;
}

/// Where a store's statements go: every write to `writer`, every read to
/// `reader`. SQLite has one writing connection beside a read pool;
/// PostgreSQL one pool for both.
#[derive(Debug)]
pub(super) struct Pools<D: Database> {
    /// Reads.
    pub(super) reader: Pool<D>,
    /// Writes (and the reads that follow a write they depend on).
    pub(super) writer: Pool<D>,
}

impl<D: Database> Clone for Pools<D> {
    fn clone(&self) -> Self {
        Self {
            reader: self.reader.clone(),
            writer: self.writer.clone(),
        }
    }
}

/// A records store kept in an SQL database. `HistoryStore`
/// (`sql/store.rs`) and `AuditStore` (`audit_sql.rs`) are implemented once
/// for every such store, over its pools.
pub(super) trait SqlBacked: Clone + Send + Sync + 'static {
    /// The database, and how it writes what differs.
    type Db: Dialect;

    /// Where the store's statements go.
    fn pools(&self) -> &Pools<Self::Db>;
}

/// Deletes the rows of `table` whose `column` is before `before`,
/// `PRUNE_BATCH` at a time (the dialect's pause between batches), and
/// returns how many.
pub(super) async fn prune_in_batches<D>(
    writer: &Pool<D>,
    table: &str,
    column: &str,
    before: Millis,
) -> Result<usize, sqlx::Error>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> i64: Encode<'t, D> + Type<D>,
{
    let mut total = 0;
    loop {
        let mut delete = QueryBuilder::<D>::new(format!(
            "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} WHERE {column} < "
        ));
        delete
            .push_bind(before)
            .push(format_args!(" ORDER BY {column} LIMIT "))
            .push_bind(PRUNE_BATCH)
            .push(")");
        let done = delete.build().execute(writer).await?;
        let pruned = D::rows_affected(&done);
        total += usize::try_from(pruned).unwrap_or(0);
        if pruned < PRUNE_BATCH.unsigned_abs() {
            return Ok(total);
        }
        D::between_prune_batches().await;
    }
}

/// A stored Session JSON read back; an unreadable one is skipped with a
/// warning rather than failing the whole query.
fn parse_view(json: &str) -> Option<SessionView> {
    match serde_json::from_str(json) {
        Ok(view) => Some(view),
        Err(err) => {
            tracing::warn!(error = %err, "skipping an unreadable stored session");
            None
        }
    }
}

/// `usize` and `i64` meet at the database edge; counts never exceed either.
pub(super) fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// `usize` to a bind value.
pub(super) fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A failed query.
fn store_error(err: &sqlx::Error) -> HistoryError {
    HistoryError::Store(err.to_string())
}

/// A failed migration, explained for an operator. `what` names the database.
pub(super) fn migrate_error(migrator: &Migrator, err: &MigrateError, what: &str) -> HistoryError {
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    HistoryError::Unusable(match err {
        MigrateError::VersionMissing(version) => format!(
            "{what}: the schema is newer than this presence-hub knows (migration {version} is applied; \
             this binary knows migrations up to {latest}); run a newer presence-hub, or restore a backup"
        ),
        MigrateError::VersionMismatch(version) => format!(
            "{what}: migration {version} was applied from a different file than this binary's; \
             the schema cannot be trusted"
        ),
        MigrateError::Dirty(version) => {
            format!("{what}: migration {version} was left half-applied; restore a backup")
        }
        other => format!("{what}: migrating the schema failed: {other}"),
    })
}
