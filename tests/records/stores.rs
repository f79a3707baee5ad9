//! Runs the conformance suite (`conformance.rs`) against every store: plain
//! and file-backed `MemoryHistory`, `RedisHistory` on a real redis-server
//! (its own namespace per test), `SqliteHistory` on a temporary file and
//! `PostgresHistory` on a real PostgreSQL server (its own database per
//! test).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use presence_hub::history::HistoryStore;
use presence_hub::history::memory::MemoryHistory;
use presence_hub::history::postgres::PostgresHistory;
use presence_hub::history::redis::RedisHistory;
use presence_hub::history::sqlite::SqliteHistory;

use crate::conformance::Backend;
use crate::support::postgres::PgServer;
use crate::support::temp::TempDir;
use crate::support::{RedisServer, unique_namespace};

pub const LIMIT: Duration = Duration::from_secs(60);

/// In memory only.
pub struct Memory;

impl Memory {
    pub async fn new() -> Self {
        Self
    }
}

impl Backend for Memory {
    fn open(&self) -> BoxFuture<'_, Arc<dyn HistoryStore>> {
        async { Arc::new(MemoryHistory::new()) as Arc<dyn HistoryStore> }.boxed()
    }

    fn persists(&self) -> bool {
        false
    }
}

/// In memory, replayed from and appended to a JSON-lines file.
pub struct MemoryFile(TempDir);

impl MemoryFile {
    pub async fn new() -> Self {
        Self(TempDir::new("memory-file"))
    }
}

impl Backend for MemoryFile {
    fn series_persists(&self) -> bool {
        false
    }

    fn open(&self) -> BoxFuture<'_, Arc<dyn HistoryStore>> {
        let path = self.0.join("history.jsonl");
        async move { Arc::new(MemoryHistory::open(&path).unwrap()) as Arc<dyn HistoryStore> }
            .boxed()
    }

    fn persists(&self) -> bool {
        true
    }
}

/// A redis-server of its own, under a namespace of its own.
pub struct Redis {
    server: RedisServer,
    namespace: String,
}

impl Redis {
    pub async fn new() -> Self {
        Self {
            server: RedisServer::start().await,
            namespace: unique_namespace("conformance"),
        }
    }
}

impl Backend for Redis {
    fn keeps_timelines(&self) -> bool {
        false
    }

    fn open(&self) -> BoxFuture<'_, Arc<dyn HistoryStore>> {
        async {
            let store = RedisHistory::connect(&self.server.url(), &self.namespace).unwrap();
            Arc::new(store) as Arc<dyn HistoryStore>
        }
        .boxed()
    }

    fn persists(&self) -> bool {
        true
    }
}

/// A SQLite file in a temporary directory.
pub struct Sqlite(TempDir);

impl Sqlite {
    pub async fn new() -> Self {
        Self(TempDir::new("sqlite"))
    }
}

impl Backend for Sqlite {
    fn keeps_peaks(&self) -> bool {
        true
    }

    fn keeps_outbox(&self) -> bool {
        true
    }

    fn open(&self) -> BoxFuture<'_, Arc<dyn HistoryStore>> {
        let path = self.0.join("records.db");
        async move { Arc::new(SqliteHistory::open(&path).await.unwrap()) as Arc<dyn HistoryStore> }
            .boxed()
    }

    fn persists(&self) -> bool {
        true
    }
}

/// A database of its own on the test binary's PostgreSQL server.
pub struct Postgres(String);

impl Postgres {
    pub async fn new() -> Self {
        Self(PgServer::shared().database("conformance").await)
    }
}

impl Backend for Postgres {
    fn keeps_peaks(&self) -> bool {
        true
    }

    fn keeps_outbox(&self) -> bool {
        true
    }

    fn open(&self) -> BoxFuture<'_, Arc<dyn HistoryStore>> {
        async {
            let store = PostgresHistory::connect(&self.0).await.unwrap();
            Arc::new(store) as Arc<dyn HistoryStore>
        }
        .boxed()
    }

    fn persists(&self) -> bool {
        true
    }
}

/// One `#[tokio::test]` per suite function, for one backend.
macro_rules! suite {
    ($module:ident = $backend:ident: $($test:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = super::$backend::new().await;
                    crate::support::within(
                        super::LIMIT,
                        crate::conformance::$test(&backend),
                    )
                    .await;
                }
            )*
        }
    };
}

/// Every store, every suite function.
macro_rules! every_store {
    ($($module:ident = $backend:ident),* $(,)?) => {
        $(
            suite!($module = $backend:
                recording_is_idempotent_per_id,
                get_returns_exactly_what_was_recorded,
                find_filters_on_every_field,
                q_is_a_case_insensitive_substring_of_user_name_ip_or_id,
                email_and_team_match_exactly_and_are_searched_by_q,
                meta_criteria_match_strings_numbers_and_booleans,
                ended_durations_since_counts_by_end_time,
                timelines_are_kept_with_ended_sessions,
                the_highest_peak_of_each_day_is_kept,
                the_online_series_keeps_one_point_per_bucket,
                find_is_newest_first_with_total_and_limit,
                scan_covers_every_record_exactly_once,
                active_since_keeps_only_sessions_that_can_overlap,
                last_of_user_is_the_most_recent_ended_session,
                started_by_day_counts_kept_sessions_by_start_day,
                prune_drops_sessions_that_ended_before_the_cutoff,
                count_follows_records_and_pruning,
                flushed_records_survive_reopening,
                the_webhook_outbox_keeps_events_in_order_until_they_leave,
                the_webhook_outbox_keeps_the_newest_rows_per_endpoint,
                the_webhook_outbox_replaces_an_endpoints_rows_at_once,
                the_webhook_outbox_hands_lost_nodes_rows_to_one_live_node,
            );
        )*
    };
}

every_store!(
    memory = Memory,
    memory_file = MemoryFile,
    redis = Redis,
    sqlite = Sqlite,
    postgres = Postgres,
);

suite!(series_bound_memory = Memory: the_online_series_is_bounded);
suite!(series_bound_redis = Redis: the_online_series_is_bounded);
suite!(revoked_sqlite = Sqlite: revoked_users_are_kept_merged_and_pruned);
suite!(revoked_postgres = Postgres: revoked_users_are_kept_merged_and_pruned);
