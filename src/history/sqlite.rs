//! Owns history in one SQLite file (`sqlite://PATH`, the single-node
//! default): opening it (WAL, busy timeout), migrating its schema
//! (`migrations/sqlite/`, embedded), and what SQLite writes its own way
//! (its `Dialect`); the queries are shared with PostgreSQL (`sql.rs`). One
//! connection writes (the history writer task's batches, each one
//! transaction, and pruning in batches of 1,000 rows); a small pool reads
//! beside it, as WAL allows.
//!
//! A file that is not a database, or whose schema is newer than this binary
//! knows, is refused at start with a message naming the file: never a
//! silently fresh database. `q` of 3 characters or more is served by an
//! FTS5 trigram index; shorter ones fall back to a scan (`instr`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use super::HistoryError;
use super::sql::{Dialect, Pools, SqlBacked, migrate_error, push_searched};
use crate::model::{MetaCriterion, MetaScalar};

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
    pools: Pools<Sqlite>,
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
            pools: Pools { reader, writer },
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `HistoryStore` and `AuditStore` come from `sql/store.rs` and
/// `audit_sql.rs`.
impl SqlBacked for SqliteHistory {
    type Db = Sqlite;

    fn pools(&self) -> &Pools<Sqlite> {
        &self.pools
    }
}

impl Dialect for Sqlite {
    const NAME: &'static str = "sqlite";
    const JSON_CAST: &'static str = "";
    const REVOKED_MERGE: &'static str = "ON CONFLICT (user_id) DO UPDATE SET \
         revoked_at = max(revoked_at, excluded.revoked_at), \
         max_exp = max(max_exp, excluded.max_exp), \
         until = max(until, excluded.until)";

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
        push_searched(query, |query, column| {
            query.push(format_args!("instr({column}, "));
            query.push_bind(q.to_string());
            query.push(") > 0");
        });
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

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn between_prune_batches() -> impl Future<Output = ()> + Send {
        // Let queued writes in between batches: there is one writing
        // connection.
        tokio::task::yield_now()
    }
}
