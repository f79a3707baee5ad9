//! Owns the end-to-end tests of the `records` scenario: a few thousand
//! synthetic sessions loaded into a real SQLite file and a real PostgreSQL
//! server through the hub's history-file import, then every measurement
//! run on hubs the scenario starts itself. They check counts (every record
//! loaded and found, every query answered, the export complete, the live
//! sessions written), never timings.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use std::time::Duration;

use crate::support::{hub_binary, run_loadtest_within};

const COUNT: u64 = 3000;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("presence-records-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_records(name: &str, database_url: &str, work: &Path, store_path: &Path) -> Value {
    let hub = hub_binary().display().to_string();
    let work = work.display().to_string();
    let store = store_path.display().to_string();
    run_loadtest_within(
        name,
        &[
            "records",
            "--hub-bin",
            &hub,
            "--database-url",
            database_url,
            "--count",
            "3000",
            "--chunk",
            "1200",
            "--users",
            "300",
            "--orgs",
            "20",
            "--work-dir",
            &work,
            "--store-path",
            &store,
            "--requests",
            "4",
            "--stats-requests",
            "10",
            "--concurrency",
            "2",
            "--analytics-runs",
            "1",
            "--analytics-timeout",
            "60s",
            "--export-rows",
            "100000",
            "--live-sessions",
            "200",
            "--fail-if",
            "errors>0",
        ],
        Duration::from_secs(300),
    )
}

fn assert_complete(report: &Value, store: &str) {
    assert_eq!(report["scenario"], "records", "{report:#}");
    assert_eq!(report["store"], store, "{report:#}");
    assert_eq!(report["records_before"], 0, "{report:#}");
    assert_eq!(report["records_loaded"], COUNT, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    let ingest = &report["ingest"];
    assert_eq!(ingest["records"], COUNT, "{report:#}");
    assert_eq!(ingest["chunks"].as_array().unwrap().len(), 3, "{report:#}");
    assert!(
        ingest["records_per_s"].as_f64().unwrap() > 0.0,
        "{report:#}"
    );
    let queries = report["queries"].as_object().unwrap();
    assert!(queries.len() >= 18, "{report:#}");
    for (name, timed) in queries {
        assert_eq!(timed["latency_ms"]["count"], 4, "{name}: {report:#}");
    }
    assert_eq!(queries["ended"]["total"], COUNT, "{report:#}");
    assert_eq!(queries["all"]["total"], COUNT, "{report:#}");
    for name in [
        "user_id",
        "org",
        "email",
        "team",
        "meta_one",
        "q_name",
        "from_to_day",
    ] {
        assert!(
            queries[name]["total"].as_u64().is_some(),
            "{name}: {report:#}"
        );
    }
    assert!(
        queries["node_id"]["total"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert_eq!(report["stats"]["latency_ms"]["count"], 10, "{report:#}");
    let analytics = report["analytics"].as_object().unwrap();
    assert_eq!(analytics.len(), 8, "{report:#}");
    assert!(report["analytics_max_ms"].as_f64().is_some(), "{report:#}");
    let export = &report["export"];
    assert_eq!(export["complete"], true, "{report:#}");
    let rows = export["rows"].as_u64().unwrap();
    assert!(
        rows > COUNT * 3 / 4 && rows <= COUNT,
        "30 of 35 days: {report:#}"
    );
    assert_eq!(report["live_ingest"]["sessions"], 200, "{report:#}");
    assert_eq!(report["live_ingest"]["complete"], true, "{report:#}");
    assert!(report["startup_ms"].as_f64().unwrap() > 0.0, "{report:#}");
    assert!(
        report["hub_rss_empty_bytes"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(
        report["hub_rss_full_bytes"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(
        report["hub_rss_after_queries_bytes"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(report["store_bytes"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["query_p99_max_ms"].as_f64().is_some(), "{report:#}");
}

#[test]
fn records_loads_and_measures_a_sqlite_store() {
    let scratch = Scratch::new("sqlite");
    let db = scratch.0.join("records.db");
    let report = run_records(
        "records-sqlite",
        &format!("sqlite://{}", db.display()),
        &scratch.0,
        &db,
    );
    assert_complete(&report, "sqlite");
}

#[test]
fn records_loads_and_measures_a_postgres_store() {
    let scratch = Scratch::new("postgres");
    let server = Postgres::start(&scratch.0);
    let report = run_records(
        "records-postgres",
        &server.url(),
        &scratch.0,
        &server.data(),
    );
    assert_complete(&report, "postgres");
}

/// A PostgreSQL server of this test in `root`, as the `postgres` user when
/// run as root (initdb refuses root); stopped on drop.
struct Postgres {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    fn start(root: &Path) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").is_file())
            .max()
            .expect(
                "PostgreSQL server binaries (apt-get install postgresql; scripts/test does this)",
            );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self {
            root: root.join("pg"),
            bin,
            port,
        };
        std::fs::create_dir_all(&server.root).unwrap();
        if as_root() {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&server.root)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let data = server.data().display().to_string();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            server.root.display()
        );
        let log = server.root.join("log").display().to_string();
        server.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        );
        server
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let output = command.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let path = self.bin.join("pg_ctl");
        let mut command = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
