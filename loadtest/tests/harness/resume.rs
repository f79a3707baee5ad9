//! Owns the end-to-end tests of the `resume` scenario: a storm of resumes on
//! one hub, and tabs of a node stopped with SIGTERM resuming on the other.

use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Hub, Redis, assert_clean, eventually, open_connections, run_loadtest};

/// Asserts that every tab resumed and nobody ended or went offline.
fn assert_all_resumed(report: &Value, tabs: u64) {
    assert_eq!(report["resume_failed"], 0, "{report:#}");
    assert_eq!(report["resume_ended_events"], 0, "{report:#}");
    assert_eq!(report["resume_offline_events"], 0, "{report:#}");
    assert_eq!(report["resume_ms"]["count"], tabs, "{report:#}");
    assert_eq!(report["resume_gap_ms"]["count"], tabs, "{report:#}");
}

#[test]
fn resume_storm_brings_every_tab_back_to_its_session() {
    let hub = Hub::start();
    let report = run_loadtest(
        "resume",
        &[
            "resume",
            "--url",
            &hub.url,
            "--clients",
            "50",
            "--drop",
            "close",
            "--storm-window",
            "1s",
            "--duration",
            "1s",
        ],
    );
    assert_clean(&report, "resume", 50);
    assert_all_resumed(&report, 50);
}

#[test]
fn tabs_of_a_node_stopped_with_sigterm_resume_on_the_other_node() {
    let redis = Redis::start();
    let ns = format!("ltr{}", std::process::id());
    let env = [
        ("PRESENCE_RESUME_GRACE", "10s"),
        ("PRESENCE_RECONNECT_SPREAD", "1s"),
    ];
    let a = redis.start_node(&ns, "harness-a", &env);
    let b = redis.start_node(&ns, "harness-b", &env);
    let args: Vec<String> = [
        "resume",
        "--url",
        &a.url,
        "--peer-url",
        &b.url,
        "--clients",
        "20",
        "--drop",
        "hub",
        "--duration",
        "1s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let run = thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_loadtest("resume-sigterm", &args)
    });
    eventually(Duration::from_secs(30), "20 tabs on node A", || {
        open_connections(&a.url) >= 20
    });
    a.terminate();
    let report = run.join().unwrap();
    assert_clean(&report, "resume", 20);
    // Every tab came back to node B after its retry_after_ms.
    assert_eq!(report["resume_ms"]["count"], 20, "{report:#}");
    assert_all_resumed(&report, 20);
}
