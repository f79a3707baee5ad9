//! Owns the webhook outbox in the SQL stores (`webhook_outbox`, migration
//! 0011): `OutboxStore` implemented once for every `SqlBacked` store
//! (`SqliteHistory`, `PostgresHistory`). A batch is one transaction on the
//! store's writing pool: inserts, deletes by `(endpoint, event_id)`, then
//! a trim per node and endpoint to the newest rows.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::decode::Decode;
use sqlx::encode::Encode;
use sqlx::{ColumnIndex, Database, Executor, IntoArguments, QueryBuilder, Type};

use super::HistoryError;
use super::outbox::{OutboxBatch, OutboxRow, OutboxStore};
use super::sql::{Dialect, SqlBacked, to_i64};

/// The columns `INSERT` writes and `SELECT` reads, in `OutboxRow`'s order.
const OUTBOX_COLUMNS: &str = "endpoint, event_id, node_id, order_key, queued_at, payload";

/// Rows per `INSERT` (6 parameters each) and ids per `DELETE`.
const OUTBOX_CHUNK: usize = 500;

/// One row as `SELECT {OUTBOX_COLUMNS}` returns it.
type Row = (String, String, String, i64, i64, String);

fn outbox_error(err: &sqlx::Error) -> HistoryError {
    HistoryError::Store(format!("webhook outbox: {err}"))
}

/// The event ids of `gone`, by endpoint.
fn gone_by_endpoint(gone: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut by_endpoint: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (endpoint, id) in gone {
        by_endpoint.entry(endpoint).or_default().push(id);
    }
    by_endpoint
}

impl<S> OutboxStore for S
where
    S: SqlBacked,
    for<'c> &'c mut <S::Db as Database>::Connection: Executor<'c, Database = S::Db>,
    <S::Db as Database>::Arguments: IntoArguments<S::Db>,
    usize: ColumnIndex<<S::Db as Database>::Row>,
    for<'t> String: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
    for<'t> i64: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
{
    fn apply(&self, batch: OutboxBatch) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            let mut tx = self
                .pools()
                .writer
                .begin()
                .await
                .map_err(|e| outbox_error(&e))?;
            for chunk in batch.queued.chunks(OUTBOX_CHUNK) {
                let mut insert = QueryBuilder::<S::Db>::new(format!(
                    "INSERT INTO webhook_outbox ({OUTBOX_COLUMNS}) "
                ));
                insert.push_values(chunk, |mut row, event| {
                    row.push_bind(event.endpoint.clone())
                        .push_bind(event.event_id.clone())
                        .push_bind(event.node_id.clone())
                        .push_bind(event.order_key)
                        .push_bind(event.queued_at)
                        .push_bind(event.payload.clone());
                });
                insert.push(" ON CONFLICT (endpoint, event_id) DO NOTHING");
                let query = insert.build();
                query.execute(&mut *tx).await.map_err(|e| outbox_error(&e))?;
            }
            for (endpoint, ids) in gone_by_endpoint(&batch.gone) {
                for chunk in ids.chunks(OUTBOX_CHUNK) {
                    let mut delete = QueryBuilder::<S::Db>::new(
                        "DELETE FROM webhook_outbox WHERE endpoint = ",
                    );
                    delete.push_bind(endpoint.to_string()).push(" AND event_id IN (");
                    let mut ids = delete.separated(", ");
                    for id in chunk {
                        ids.push_bind(id.to_string());
                    }
                    delete.push(")");
                    let query = delete.build();
                    query.execute(&mut *tx).await.map_err(|e| outbox_error(&e))?;
                }
            }
            if batch.keep > 0 {
                let touched: BTreeSet<(&str, &str)> = batch
                    .queued
                    .iter()
                    .map(|row| (row.node_id.as_str(), row.endpoint.as_str()))
                    .collect();
                for (node, endpoint) in touched {
                    let mut trim = QueryBuilder::<S::Db>::new(
                        "DELETE FROM webhook_outbox WHERE node_id = ",
                    );
                    trim.push_bind(node.to_string())
                        .push(" AND endpoint = ")
                        .push_bind(endpoint.to_string())
                        .push(
                            " AND order_key < (SELECT order_key FROM webhook_outbox WHERE node_id = ",
                        )
                        .push_bind(node.to_string())
                        .push(" AND endpoint = ")
                        .push_bind(endpoint.to_string())
                        .push(" ORDER BY order_key DESC LIMIT 1 OFFSET ")
                        .push_bind(to_i64(batch.keep - 1))
                        .push(")");
                    let query = trim.build();
                    query.execute(&mut *tx).await.map_err(|e| outbox_error(&e))?;
                }
            }
            tx.commit().await.map_err(|e| outbox_error(&e))
        }
        .boxed()
    }

    fn adopt_all<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<u64, HistoryError>> {
        async move {
            let mut update = QueryBuilder::<S::Db>::new("UPDATE webhook_outbox SET node_id = ");
            update
                .push_bind(node.to_string())
                .push(" WHERE node_id <> ")
                .push_bind(node.to_string());
            let done = update
                .build()
                .execute(&self.pools().writer)
                .await
                .map_err(|e| outbox_error(&e))?;
            Ok(<S::Db as Dialect>::rows_affected(&done))
        }
        .boxed()
    }

    fn load<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<Vec<OutboxRow>, HistoryError>> {
        async move {
            let mut select = QueryBuilder::<S::Db>::new(format!(
                "SELECT {OUTBOX_COLUMNS} FROM webhook_outbox WHERE node_id = "
            ));
            select
                .push_bind(node.to_string())
                .push(" ORDER BY endpoint, order_key");
            // Read through the writer: what the last batch wrote must be seen.
            let rows: Vec<Row> = select
                .build_query_as()
                .fetch_all(&self.pools().writer)
                .await
                .map_err(|e| outbox_error(&e))?;
            Ok(rows
                .into_iter()
                .map(
                    |(endpoint, event_id, node_id, order_key, queued_at, payload)| OutboxRow {
                        endpoint,
                        event_id,
                        node_id,
                        order_key,
                        queued_at,
                        payload,
                    },
                )
                .collect())
        }
        .boxed()
    }
}
