//! The hub binary on its records stores: the default SQLite file kept across
//! a restart (including what shutdown ends), a corrupt file and a schema
//! newer than the binary refused with exit 2, and `PRESENCE_HISTORY_FILE`
//! imported into a database once.

use std::time::Duration;

use presence_hub::history::HistoryStore;
use presence_hub::history::memory::MemoryHistory;
use presence_hub::history::sqlite::SqliteHistory;
use serde_json::Value;

use crate::conformance::{BASE, ended};
use crate::support::postgres::PgServer;
use crate::support::temp::TempDir;
use crate::support::{HubProcess, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

/// A migration version no binary will ever ship.
const FUTURE_MIGRATION: i64 = 99_990_101_000_000;

/// Runs the binary to completion (it is expected to refuse to start).
fn run_binary(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"));
    command
        .env_clear()
        .current_dir(dir)
        .env("PRESENCE_BIND", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run presence-hub")
}

/// Ended sessions as the API lists them.
async fn ended_sessions(hub: &HubProcess) -> Vec<Value> {
    let (status, body) = hub.get("/api/v1/sessions?status=ended&page_size=100").await;
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().cloned().unwrap_or_default()
}

async fn stop(mut hub: HubProcess) {
    hub.signal(15);
    let status = tokio::time::timeout(ms(10_000), hub.child.wait())
        .await
        .expect("exits in time")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn the_default_sqlite_store_keeps_history_across_a_restart() {
    within(LIMIT, async {
        let dir = TempDir::new("default-sqlite");
        let hub = HubProcess::start_in(dir.path(), &[]).await;
        let (gone, gone_id) = hub.client("user=alice").await;
        gone.close().await;
        eventually(ms(5000), "alice's session in history", || async {
            (ended_sessions(&hub).await.len() == 1).then_some(())
        })
        .await;
        // Still connected at shutdown: ended as `shutdown` and written before exit.
        let (_open, open_id) = hub.client("user=bob").await;
        let (_carol, _) = hub.client("user=carol").await;
        let (_dave, _) = hub.client("user=dave").await;
        let peak = eventually(ms(5000), "a peak of 3", || async {
            let (_, stats) = hub.get("/api/v1/stats").await;
            (stats["peak_online"]["users"] == 3).then_some(stats["peak_online"].clone())
        })
        .await;
        // An admin action for the audit trail, which the database keeps too.
        let missing = reqwest::Client::new()
            .delete(hub.http("/api/v1/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        eventually(ms(5000), "the audit event", || async {
            let (_, audit) = hub.get("/api/v1/audit?action=session.terminate").await;
            (audit["total"] == 1).then_some(())
        })
        .await;
        // The peak is saved every 2 s.
        tokio::time::sleep(ms(2500)).await;
        stop(hub).await;
        assert!(
            dir.join("presence-hub.db").is_file(),
            "the default is presence-hub.db in the working directory"
        );

        let hub = HubProcess::start_in(dir.path(), &[]).await;
        let sessions = ended_sessions(&hub).await;
        let cause_of = |id: &str| {
            sessions
                .iter()
                .find(|s| s["session_id"] == id)
                .map(|s| s["end_cause"].clone())
        };
        assert_eq!(cause_of(&gone_id), Some("client_closed".into()));
        assert_eq!(cause_of(&open_id), Some("shutdown".into()));
        assert_eq!(sessions.len(), 4, "carol and dave ended at shutdown too");
        let (status, one) = hub.get(&format!("/api/v1/sessions/{gone_id}")).await;
        assert_eq!((status, one["user_id"].as_str()), (200, Some("alice")));
        let (_, audit) = hub.get("/api/v1/audit?action=session.terminate").await;
        assert_eq!(
            audit["total"], 1,
            "the audit trail survives the restart: {audit}"
        );
        assert_eq!(audit["events"][0]["result"], "not_found");
        let (_, stats) = hub.get("/api/v1/stats").await;
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        if peak["at"].as_str().unwrap().starts_with(&today) {
            assert_eq!(
                stats["peak_online"], peak,
                "the day's peak survives the restart"
            );
        }
        stop(hub).await;
    })
    .await;
}

#[test]
fn a_corrupt_sqlite_file_stops_the_hub_with_exit_2_naming_it() {
    let dir = TempDir::new("corrupt-sqlite");
    let path = dir.join("records.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let url = format!("sqlite://{}", path.display());
    let output = run_binary(dir.path(), &[("PRESENCE_DATABASE_URL", &url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is left as it was"
    );
}

#[tokio::test]
async fn a_sqlite_schema_newer_than_the_binary_stops_the_hub_with_exit_2() {
    let dir = TempDir::new("future-sqlite");
    let path = dir.join("records.db");
    {
        let store = SqliteHistory::open(&path).await.unwrap();
        store.record(ended("alice", 0, 1_000)).await.unwrap();
    }
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    add_future_migration(&pool, "x'00'").await;
    pool.close().await;
    let url = format!("sqlite://{}", path.display());
    let output = run_binary(dir.path(), &[("PRESENCE_DATABASE_URL", &url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("newer than this presence-hub"), "{stderr}");
    assert!(stderr.contains(&FUTURE_MIGRATION.to_string()), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[tokio::test]
async fn a_postgres_schema_newer_than_the_binary_stops_the_hub_with_exit_2() {
    let dir = TempDir::new("future-postgres");
    let url = PgServer::shared().database("future").await;
    drop(
        presence_hub::history::postgres::PostgresHistory::connect(&url)
            .await
            .unwrap(),
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    add_future_migration(&pool, "decode('00', 'hex')").await;
    pool.close().await;
    let output = run_binary(dir.path(), &[("PRESENCE_DATABASE_URL", &url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("PRESENCE_DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("newer than this presence-hub"), "{stderr}");
}

/// Records a migration this binary does not know, as a newer binary would;
/// `checksum` is a bytes literal in the database's dialect.
async fn add_future_migration<DB>(pool: &sqlx::Pool<DB>, checksum: &str)
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
{
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({FUTURE_MIGRATION}, 'from the future', TRUE, {checksum}, 1)"
    )))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_history_file_is_imported_once_and_appended_to() {
    within(LIMIT, async {
        let dir = TempDir::new("import");
        let file = dir.join("history.jsonl");
        let minutes_ago = presence_hub::model::time::now_millis() - BASE - 60_000;
        {
            // A v1 installation's file; carol's session is past the 30 days
            // of retention and is not imported.
            let v1 = MemoryHistory::open(&file).unwrap();
            v1.record(ended("carol", minutes_ago - 40 * 86_400_000, 1_000))
                .await
                .unwrap();
            for user in ["alice", "bob"] {
                v1.record(ended(user, minutes_ago, 1_000)).await.unwrap();
            }
            v1.flush().await.unwrap();
        }
        let url = format!("sqlite://{}", dir.join("records.db").display());
        let file_env = file.display().to_string();
        let env = [
            ("PRESENCE_DATABASE_URL", url.as_str()),
            ("PRESENCE_HISTORY_FILE", file_env.as_str()),
        ];
        let hub = HubProcess::start_in(dir.path(), &env).await;
        assert_eq!(ended_sessions(&hub).await.len(), 2, "the file is imported");
        let (client, id) = hub.client("user=dave").await;
        client.close().await;
        eventually(ms(5000), "dave recorded", || async {
            (ended_sessions(&hub).await.len() == 3).then_some(())
        })
        .await;
        stop(hub).await;
        let lines = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let appended = lines(&file);
        assert_eq!(appended.len(), 4, "the new record is appended to the file");
        assert!(appended[3].contains(&id));

        let hub = HubProcess::start_in(dir.path(), &env).await;
        let sessions = ended_sessions(&hub).await;
        assert_eq!(sessions.len(), 3, "a second start imports nothing new");
        assert_eq!(lines(&file).len(), 4, "and writes nothing back");
        stop(hub).await;
    })
    .await;
}

#[test]
fn an_unreachable_postgres_at_start_stops_the_hub_with_exit_2() {
    let dir = TempDir::new("unreachable-postgres");
    let url = format!(
        "postgres://hub:s3cret-pass@127.0.0.1:{}/presence",
        crate::support::free_port()
    );
    let output = run_binary(dir.path(), &[("PRESENCE_DATABASE_URL", &url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("PRESENCE_DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-pass"),
        "no password in the log: {stderr}"
    );
}
