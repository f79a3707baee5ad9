//! Owns history in PostgreSQL (`postgres://...`): a connection pool that
//! every node writes and reads through, the schema's migrations
//! (`migrations/postgres/`, embedded; sqlx's advisory lock keeps two nodes
//! starting together from migrating twice), and what PostgreSQL writes its
//! own way (its `Dialect`); the queries are shared with SQLite (`sql.rs`).
//! Nodes recording the same loss keep one record (`ON CONFLICT DO NOTHING`
//! on the session id).
//!
//! `q` is served by `pg_trgm` GIN indexes over the lowercased columns
//! (`LIKE '%q%'`); patterns under 3 characters still use them, but scan more
//! of the index.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Postgres, QueryBuilder};

use super::HistoryError;
use super::sql::{Dialect, Pools, SqlBacked, migrate_error, push_searched};
use crate::model::{MetaCriterion, MetaScalar};

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
    pools: Pools<Postgres>,
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
        Ok(Self {
            pools: Pools {
                reader: pool.clone(),
                writer: pool,
            },
        })
    }
}

/// `HistoryStore` and `AuditStore` come from `sql/store.rs` and
/// `audit_sql.rs`.
impl SqlBacked for PostgresHistory {
    type Db = Postgres;

    fn pools(&self) -> &Pools<Postgres> {
        &self.pools
    }
}

impl Dialect for Postgres {
    const NAME: &'static str = "postgres";
    const JSON_CAST: &'static str = "::jsonb";
    const REVOKED_MERGE: &'static str = "ON CONFLICT (user_id) DO UPDATE SET \
         revoked_at = GREATEST(revoked_users.revoked_at, excluded.revoked_at), \
         max_exp = GREATEST(revoked_users.max_exp, excluded.max_exp), \
         until = GREATEST(revoked_users.until, excluded.until)";

    /// `q`: `LIKE '%q%'` on exactly the expressions the `sessions_search`
    /// index covers (`push_searched`), so the planner can use it.
    fn push_text(query: &mut QueryBuilder<Postgres>, q: &str) {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        push_searched(query, |query, column| {
            query.push(format_args!("{column} LIKE "));
            query.push_bind(pattern.clone());
        });
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

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn between_prune_batches() -> impl Future<Output = ()> + Send {
        // No pause: writes queued meanwhile have the pool's other
        // connections.
        std::future::ready(())
    }
}
