//! Owns the webhook outbox in the SQL stores (`webhook_outbox`, migration
//! 0011): `OutboxStore` implemented once for every `SqlBacked` store
//! (`SqliteHistory`, `PostgresHistory`). A batch is one transaction on the
//! store's writing pool: inserts, deletes by `(endpoint, event_id)`, then
//! a trim per node and endpoint to the newest rows. Nodes note that they
//! are alive in `webhook_outbox_nodes`; adopting a lost node's rows is one
//! `UPDATE ... RETURNING`, so under PostgreSQL's row locks a row goes to
//! one adopter only.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::decode::Decode;
use sqlx::encode::Encode;
use sqlx::{ColumnIndex, Database, Executor, IntoArguments, QueryBuilder, Type};

use super::HistoryError;
use super::outbox::{OutboxBatch, OutboxReplace, OutboxRow, OutboxStore};
use super::sql::{Dialect, SqlBacked, to_i64};
use crate::model::Millis;

/// The columns `INSERT` writes and `SELECT` reads, in `OutboxRow`'s order.
const OUTBOX_COLUMNS: &str = "endpoint, event_id, node_id, order_key, queued_at, payload";

/// Rows per `INSERT` (6 parameters each) and ids per `DELETE`.
const OUTBOX_CHUNK: usize = 500;

/// One row as `SELECT {OUTBOX_COLUMNS}` returns it.
type Row = (String, String, String, i64, i64, String);

fn row_of((endpoint, event_id, node_id, order_key, queued_at, payload): Row) -> OutboxRow {
    OutboxRow {
        endpoint,
        event_id,
        node_id,
        order_key,
        queued_at,
        payload,
    }
}

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

/// Inserts `rows`; a row already kept takes the new node and order key.
async fn insert_rows<D>(tx: &mut D::Connection, rows: &[OutboxRow]) -> Result<(), sqlx::Error>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> String: Encode<'t, D> + Type<D>,
    for<'t> i64: Encode<'t, D> + Type<D>,
{
    for chunk in rows.chunks(OUTBOX_CHUNK) {
        let mut insert =
            QueryBuilder::<D>::new(format!("INSERT INTO webhook_outbox ({OUTBOX_COLUMNS}) "));
        insert.push_values(chunk, |mut row, event| {
            row.push_bind(event.endpoint.clone())
                .push_bind(event.event_id.clone())
                .push_bind(event.node_id.clone())
                .push_bind(event.order_key)
                .push_bind(event.queued_at)
                .push_bind(event.payload.clone());
        });
        insert.push(
            " ON CONFLICT (endpoint, event_id) DO UPDATE SET \
             node_id = excluded.node_id, order_key = excluded.order_key",
        );
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Deletes the `(endpoint, event_id)` rows of `gone`.
async fn delete_gone<D>(
    tx: &mut D::Connection,
    gone: &[(String, String)],
) -> Result<(), sqlx::Error>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> String: Encode<'t, D> + Type<D>,
{
    for (endpoint, ids) in gone_by_endpoint(gone) {
        for chunk in ids.chunks(OUTBOX_CHUNK) {
            let mut delete = QueryBuilder::<D>::new("DELETE FROM webhook_outbox WHERE endpoint = ");
            delete
                .push_bind(endpoint.to_string())
                .push(" AND event_id IN (");
            let mut listed = delete.separated(", ");
            for id in chunk {
                listed.push_bind((*id).to_string());
            }
            delete.push(")");
            delete.build().execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Deletes every row of each replaced node and endpoint, then inserts the
/// rows it keeps now.
async fn replace_rows<D>(
    tx: &mut D::Connection,
    replaced: &[OutboxReplace],
) -> Result<(), sqlx::Error>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> String: Encode<'t, D> + Type<D>,
    for<'t> i64: Encode<'t, D> + Type<D>,
{
    for replace in replaced {
        let mut delete = QueryBuilder::<D>::new("DELETE FROM webhook_outbox WHERE node_id = ");
        delete
            .push_bind(replace.node_id.clone())
            .push(" AND endpoint = ")
            .push_bind(replace.endpoint.clone());
        delete.build().execute(&mut *tx).await?;
        insert_rows::<D>(tx, &replace.rows).await?;
    }
    Ok(())
}

/// Keeps the newest `keep` rows of every node and endpoint that `queued`
/// wrote to (0: no trim).
async fn trim<D>(
    tx: &mut D::Connection,
    queued: &[OutboxRow],
    keep: usize,
) -> Result<(), sqlx::Error>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'t> String: Encode<'t, D> + Type<D>,
    for<'t> i64: Encode<'t, D> + Type<D>,
{
    if keep == 0 {
        return Ok(());
    }
    let touched: BTreeSet<(&str, &str)> = queued
        .iter()
        .map(|row| (row.node_id.as_str(), row.endpoint.as_str()))
        .collect();
    for (node, endpoint) in touched {
        let mut trim = QueryBuilder::<D>::new("DELETE FROM webhook_outbox WHERE node_id = ");
        trim.push_bind(node.to_string())
            .push(" AND endpoint = ")
            .push_bind(endpoint.to_string())
            .push(" AND order_key < (SELECT order_key FROM webhook_outbox WHERE node_id = ")
            .push_bind(node.to_string())
            .push(" AND endpoint = ")
            .push_bind(endpoint.to_string())
            .push(" ORDER BY order_key DESC LIMIT 1 OFFSET ")
            .push_bind(to_i64(keep - 1))
            .push(")");
        trim.build().execute(&mut *tx).await?;
    }
    Ok(())
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
    fn apply<'a>(&'a self, batch: &'a OutboxBatch) -> BoxFuture<'a, Result<(), HistoryError>> {
        async move {
            let writer = &self.pools().writer;
            let mut tx = writer.begin().await.map_err(|e| outbox_error(&e))?;
            let written = async {
                replace_rows::<S::Db>(&mut tx, &batch.replaced).await?;
                insert_rows::<S::Db>(&mut tx, &batch.queued).await?;
                delete_gone::<S::Db>(&mut tx, &batch.gone).await?;
                trim::<S::Db>(&mut tx, &batch.queued, batch.keep).await
            };
            written.await.map_err(|e| outbox_error(&e))?;
            tx.commit().await.map_err(|e| outbox_error(&e))
        }
        .boxed()
    }

    fn shared(&self) -> bool {
        <S::Db as Dialect>::NAME == "postgres"
    }

    fn heartbeat<'a>(
        &'a self,
        node: &'a str,
        now: Millis,
    ) -> BoxFuture<'a, Result<(), HistoryError>> {
        async move {
            let mut upsert = QueryBuilder::<S::Db>::new(
                "INSERT INTO webhook_outbox_nodes (node_id, seen_at) VALUES (",
            );
            upsert
                .push_bind(node.to_string())
                .push(", ")
                .push_bind(now)
                .push(") ON CONFLICT (node_id) DO UPDATE SET seen_at = excluded.seen_at");
            upsert
                .build()
                .execute(&self.pools().writer)
                .await
                .map_err(|e| outbox_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn adopt_lost<'a>(
        &'a self,
        node: &'a str,
        alive_since: Millis,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<OutboxRow>, HistoryError>> {
        async move {
            if endpoints.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = self
                .pools()
                .writer
                .begin()
                .await
                .map_err(|e| outbox_error(&e))?;
            let mut adopt = QueryBuilder::<S::Db>::new("UPDATE webhook_outbox SET node_id = ");
            adopt
                .push_bind(node.to_string())
                .push(" WHERE node_id <> ")
                .push_bind(node.to_string())
                .push(" AND node_id NOT IN (SELECT node_id FROM webhook_outbox_nodes WHERE seen_at >= ")
                .push_bind(alive_since)
                .push(") AND endpoint IN (");
            let mut listed = adopt.separated(", ");
            for endpoint in endpoints {
                listed.push_bind(endpoint.clone());
            }
            adopt.push(format_args!(") RETURNING {OUTBOX_COLUMNS}"));
            let rows: Vec<Row> = adopt
                .build_query_as()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| outbox_error(&e))?;
            let mut forget =
                QueryBuilder::<S::Db>::new("DELETE FROM webhook_outbox_nodes WHERE seen_at < ");
            forget.push_bind(alive_since);
            forget
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| outbox_error(&e))?;
            tx.commit().await.map_err(|e| outbox_error(&e))?;
            let mut rows: Vec<OutboxRow> = rows.into_iter().map(row_of).collect();
            rows.sort_by(|a, b| (&a.endpoint, a.order_key).cmp(&(&b.endpoint, b.order_key)));
            Ok(rows)
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
            Ok(rows.into_iter().map(row_of).collect())
        }
        .boxed()
    }
}
