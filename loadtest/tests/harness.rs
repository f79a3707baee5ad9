//! Owns the harness's end-to-end tests: the real `presence-hub` binary on
//! port 0, driven by the real `presence-loadtest` binary at small scale.
//!
//! They check the report's counts (clients connected, no errors, one
//! propagation sample per status change), never its timings.
//!
//! The hub binary is `$PRESENCE_HUB_BIN` when set; otherwise the newest
//! `presence-hub` in the `debug/` or `release/` directory of the target
//! directory these tests were built in (or `<workspace>/target`). Build it
//! first, e.g. `cargo build -p presence-hub`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// How long the hub may take to print its bound address.
const HUB_START: Duration = Duration::from_secs(30);
/// How long one harness run may take.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A running hub process, killed on drop.
struct Hub {
    child: Child,
    url: String,
}

impl Hub {
    /// Starts the hub in dev mode on 127.0.0.1:0.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the hub with extra environment variables.
    fn start_with(env: &[(&str, &str)]) -> Self {
        let bin = hub_binary();
        let mut command = Command::new(&bin);
        command
            .env("PRESENCE_BIND", "127.0.0.1:0")
            .env("PRESENCE_DATABASE_URL", "memory:")
            .env("PRESENCE_LOG_FORMAT", "text")
            .env("RUST_LOG", "presence_hub=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let lines = forward_lines(&mut child);
        let addr = wait_for_address(&lines).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("hub printed no bound 127.0.0.1 address within {HUB_START:?}")
        });
        Self {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hub binary: `$PRESENCE_HUB_BIN`, else the newest built one.
fn hub_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PRESENCE_HUB_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PRESENCE_HUB_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let candidates = candidate_binaries();
    candidates
        .iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max_by_key(|(modified, _): &(SystemTime, _)| *modified)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "no presence-hub binary found; build it (cargo build -p presence-hub) or set PRESENCE_HUB_BIN. Looked in: {candidates:?}"
            )
        })
}

/// `debug/presence-hub` and `release/presence-hub` in this test's target
/// directory and in `<workspace>/target`.
fn candidate_binaries() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // This test runs from <target>/<profile>/deps/harness-HASH.
    if let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
    {
        dirs.push(target);
    }
    if let Some(workspace) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        dirs.push(workspace.join("target"));
    }
    dirs.iter()
        .flat_map(|d| ["debug", "release"].map(|p| d.join(p).join("presence-hub")))
        .filter(|p| p.is_file())
        .collect()
}

/// Sends every stdout and stderr line of `child` to one channel, forever.
fn forward_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    rx
}

/// Reads log lines until one shows a `127.0.0.1:PORT` with a non-zero port.
fn wait_for_address(lines: &mpsc::Receiver<String>) -> Option<String> {
    let deadline = Instant::now() + HUB_START;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let line = lines.recv_timeout(left).ok()?;
        if let Some(addr) = loopback_address(&line) {
            return Some(addr);
        }
    }
    None
}

/// The first `127.0.0.1:PORT` in `line` whose port is not 0.
fn loopback_address(line: &str) -> Option<String> {
    line.match_indices("127.0.0.1:").find_map(|(at, prefix)| {
        let rest = &line[at + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let port: u16 = digits.parse().ok()?;
        (port != 0).then(|| format!("127.0.0.1:{port}"))
    })
}

/// Runs the harness with `args` plus `--json`, returns the report.
fn run_loadtest(name: &str, args: &[&str]) -> Value {
    let json = std::env::temp_dir().join(format!(
        "presence-loadtest-{}-{name}.json",
        std::process::id()
    ));
    let output = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_presence-loadtest"))
            .args(args)
            .arg("--json")
            .arg(&json),
    );
    assert!(output.0, "presence-loadtest {args:?} failed:\n{}", output.1);
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).unwrap()
}

/// Runs a command with a time limit; returns (success, stdout + stderr).
fn run_bounded(command: &mut Command) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = forward_lines(&mut child);
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("presence-loadtest did not finish within {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    thread::sleep(Duration::from_millis(50));
    let output: Vec<String> = lines.try_iter().collect();
    (status.success(), output.join("\n"))
}

/// Asserts the report's common counts: everyone connected, nothing failed.
fn assert_clean(report: &Value, scenario: &str, clients: u64) {
    assert_eq!(report["scenario"], scenario, "{report:#}");
    assert_eq!(report["clients_target"], clients, "{report:#}");
    assert_eq!(report["clients_connected"], clients, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert!(report["duration_s"].as_f64().unwrap() > 0.0, "{report:#}");
}

#[test]
fn hold_connects_every_client_and_answers_pings() {
    let hub = Hub::start();
    let report = run_loadtest(
        "hold",
        &[
            "hold",
            "--url",
            &hub.url,
            "--clients",
            "200",
            "--duration",
            "2s",
            "--ping-interval",
            "500ms",
            "--hub-pid",
            &hub.child.id().to_string(),
        ],
    );
    assert_clean(&report, "hold", 200);
    assert_eq!(report["connect_ms"]["count"], 200, "{report:#}");
    assert!(
        report["rtt_ms"]["count"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(report["hub_rss_before_bytes"].as_u64().unwrap() > 0);
    assert!(report["hub_rss_after_bytes"].as_u64().unwrap() > 0);
    assert!(report["rss_per_connection_bytes"].is_i64(), "{report:#}");
}

#[test]
fn hold_spreads_clients_over_worker_processes() {
    let hub = Hub::start();
    let report = run_loadtest(
        "workers",
        &[
            "hold",
            "--url",
            &hub.url,
            "--clients",
            "300",
            "--workers",
            "3",
            "--source-addrs",
            "5",
            "--duration",
            "1s",
            "--ping-interval",
            "300ms",
        ],
    );
    assert_clean(&report, "hold", 300);
    assert_eq!(report["connect_ms"]["count"], 300, "{report:#}");
}

#[test]
fn rtt_counts_round_trips_of_every_client() {
    let hub = Hub::start();
    let report = run_loadtest(
        "rtt",
        &[
            "rtt",
            "--url",
            &hub.url,
            "--clients",
            "50",
            "--duration",
            "1s",
            "--client-rate",
            "40",
        ],
    );
    assert_clean(&report, "rtt", 50);
    assert!(
        report["rtt_ms"]["count"].as_u64().unwrap() >= 50,
        "{report:#}"
    );
    assert!(report["msgs_per_s"].as_f64().unwrap() > 0.0, "{report:#}");
}

#[test]
fn propagation_samples_equal_status_changes_times_subscribers() {
    let hub = Hub::start();
    let report = run_loadtest(
        "propagation",
        &[
            "propagation",
            "--url",
            &hub.url,
            "--clients",
            "150",
            "--changes",
            "4",
            "--change-interval",
            "250ms",
            "--admins",
            "2",
        ],
    );
    assert_clean(&report, "propagation", 150);
    assert_eq!(report["propagation_ms"]["count"], 150 * 4 * 2, "{report:#}");
}

#[test]
fn churn_completes_every_reconnect() {
    let hub = Hub::start();
    let report = run_loadtest(
        "churn",
        &[
            "churn",
            "--url",
            &hub.url,
            "--clients",
            "150",
            "--reconnects",
            "450",
            "--duration",
            "20s",
        ],
    );
    assert_clean(&report, "churn", 150);
    assert_eq!(report["connect_ms"]["count"], 450, "{report:#}");
}

#[test]
fn mix_runs_every_kind_of_client_without_errors() {
    let hub = Hub::start();
    let report = run_loadtest(
        "mix",
        &[
            "mix",
            "--url",
            &hub.url,
            "--clients",
            "200",
            "--duration",
            "2s",
            "--ping-interval",
            "300ms",
            "--churn-interval",
            "400ms",
            "--heartbeat-interval",
            "300ms",
            "--admins",
            "2",
        ],
    );
    assert_clean(&report, "mix", 200);
    assert!(
        report["rtt_ms"]["count"].as_u64().unwrap() > 0,
        "{report:#}"
    );
}

#[test]
fn jwt_mode_mints_tokens_for_clients_and_admins() {
    let secret = "loadtest-secret-for-tests-only-32+";
    let hub = Hub::start_with(&[("PRESENCE_JWT_SECRET", secret)]);
    let report = run_loadtest(
        "jwt",
        &[
            "propagation",
            "--url",
            &hub.url,
            "--clients",
            "50",
            "--changes",
            "2",
            "--change-interval",
            "200ms",
            "--jwt-secret",
            secret,
        ],
    );
    assert_clean(&report, "propagation", 50);
    assert_eq!(report["propagation_ms"]["count"], 50 * 2, "{report:#}");
}

#[test]
fn non_loopback_target_is_refused_without_allow_remote() {
    let (ok, output) = run_bounded(Command::new(env!("CARGO_BIN_EXE_presence-loadtest")).args([
        "hold",
        "--url",
        "http://192.0.2.1:8080",
        "--clients",
        "1",
        "--duration",
        "1s",
    ]));
    assert!(!ok, "{output}");
    assert!(output.contains("--allow-remote"), "{output}");
}

#[test]
fn bound_address_is_found_in_a_log_line() {
    let line = "2026-01-01T00:00:00Z INFO presence_hub::app: listening bind=127.0.0.1:0 addr=127.0.0.1:40123";
    assert_eq!(loopback_address(line).as_deref(), Some("127.0.0.1:40123"));
}
