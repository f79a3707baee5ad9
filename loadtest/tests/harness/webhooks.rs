//! Owns the end-to-end tests of the `webhooks` scenario: a real hub posting
//! to the harness's own receivers (healthy, slow) and to a dead port, with
//! the signature checked on every request.

use std::process::Command;

use serde_json::Value;

use crate::support::{Hub, assert_clean, run_loadtest, run_status};

const SECRET: &str = "harness-webhook-secret";

/// A loopback address nothing listens on right now.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The three endpoints of a run: healthy, slow, dead.
struct Endpoints {
    healthy: String,
    slow: String,
    dead: String,
}

impl Endpoints {
    fn new() -> Self {
        Self {
            healthy: free_addr(),
            slow: free_addr(),
            dead: free_addr(),
        }
    }

    /// PRESENCE_WEBHOOK_URLS listing all three.
    fn urls(&self) -> String {
        format!(
            "http://{}/hook,http://{}/slow,http://{}/dead",
            self.healthy, self.slow, self.dead
        )
    }

    fn hub(&self) -> Hub {
        Hub::start_with(&[
            ("PRESENCE_WEBHOOK_URLS", &self.urls()),
            ("PRESENCE_WEBHOOK_SECRET", SECRET),
        ])
    }

    /// The scenario's options for these endpoints.
    fn args<'a>(&'a self, hub: &'a Hub, secret: &'a str) -> Vec<&'a str> {
        vec![
            "webhooks",
            "--url",
            &hub.url,
            "--clients",
            "10",
            "--duration",
            "2s",
            "--sessions-per-s",
            "40",
            "--client-rate",
            "5",
            "--receiver",
            &self.healthy,
            "--slow-receiver",
            &self.slow,
            "--slow-delay",
            "1s",
            "--dead-endpoint",
            &self.dead,
            "--webhook-secret",
            secret,
        ]
    }
}

fn count(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing: {report:#}"))
}

#[test]
fn every_event_the_sessions_cause_arrives_signed_and_once() {
    let endpoints = Endpoints::new();
    let hub = endpoints.hub();
    let pid = hub.child.id().to_string();
    let mut args = endpoints.args(&hub, SECRET);
    args.extend([
        "--settle",
        "10s",
        "--hub-pid",
        &pid,
        "--fail-if",
        "webhook_missing>0",
        "--fail-if",
        "webhook_duplicates>0",
    ]);
    let report = run_loadtest("webhooks", &args);
    assert_clean(&report, "webhooks", 10);
    let sessions = count(&report, "webhook_sessions");
    assert!(sessions > 0, "{report:#}");
    assert_eq!(
        count(&report, "webhook_expected"),
        4 * sessions,
        "{report:#}"
    );
    assert_eq!(count(&report, "webhook_missing"), 0, "{report:#}");
    assert_eq!(count(&report, "webhook_duplicates"), 0, "{report:#}");
    // The pinging clients' own starts come on top of the sessions' events.
    let events = count(&report, "webhook_events");
    assert!(events >= 4 * sessions + 20, "{report:#}");
    assert_eq!(report["webhook_delivery_ms"]["count"], events, "{report:#}");
    assert!(count(&report, "webhook_events_per_s") > 0, "{report:#}");
    assert!(
        count(&report, "hub_healthy_delivered") >= events,
        "{report:#}"
    );
    assert_eq!(count(&report, "hub_dead_delivered"), 0, "{report:#}");
    assert!(count(&report, "webhook_slow_batches") > 0, "{report:#}");
    assert!(count(&report, "hub_slow_delivered") > 0, "{report:#}");
    assert!(
        report["rtt_ms"]["count"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(report["hub_cpu_percent"].as_f64().is_some(), "{report:#}");
}

#[test]
fn requests_signed_with_another_secret_are_errors() {
    let endpoints = Endpoints::new();
    let hub = endpoints.hub();
    let json = std::env::temp_dir().join(format!(
        "presence-loadtest-{}-webhooks-bad-secret.json",
        std::process::id()
    ));
    let mut args = endpoints.args(&hub, "not-the-hub-secret");
    args.extend(["--settle", "1s", "--fail-if", "errors>0"]);
    let (status, output) = run_status(
        Command::new(env!("CARGO_BIN_EXE_presence-loadtest"))
            .args(&args)
            .arg("--json")
            .arg(&json),
    );
    assert_eq!(status.code(), Some(3), "{output}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(
        report["errors"]["webhook_bad_signature"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert_eq!(count(&report, "webhook_events"), 0, "{report:#}");
    assert_eq!(
        count(&report, "webhook_missing"),
        count(&report, "webhook_expected"),
        "{report:#}"
    );
}
