//! Owns the end-to-end tests of the original scenarios (hold, rtt,
//! propagation, churn, mix, JWT mode, the loopback guard).

use std::process::Command;

use crate::support::{Hub, assert_clean, loopback_address, run_bounded, run_loadtest, run_status};

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
    let run = &report["run"];
    assert_eq!(run["parameters"][0], "hold", "{report:#}");
    assert_eq!(
        run["loadtest_version"],
        env!("CARGO_PKG_VERSION"),
        "{report:#}"
    );
    assert!(run["hub_version"].is_string(), "{report:#}");
    assert!(
        run["started_at"].as_str().unwrap().ends_with('Z'),
        "{report:#}"
    );
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
    // 15% active, 3% churning, 2% HTTP, the rest idle.
    assert_eq!(report["mix_active_connected"], 30, "{report:#}");
    assert_eq!(report["mix_churn_connected"], 6, "{report:#}");
    assert_eq!(report["mix_http_connected"], 4, "{report:#}");
    assert_eq!(report["mix_idle_connected"], 160, "{report:#}");
    assert!(
        report["mix_churn_reconnects"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert_eq!(
        report["mix_churn_connect_ms"]["count"], report["mix_churn_reconnects"],
        "{report:#}"
    );
    assert_eq!(
        report["mix_heartbeat_ms"]["count"], report["mix_heartbeats"],
        "{report:#}"
    );
    assert!(
        report["mix_heartbeats"].as_u64().unwrap() >= 4,
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

/// Runs the harness with `args` and returns its exit code and output.
fn exit_code(args: &[&str]) -> (Option<i32>, String) {
    let (status, output) =
        run_status(Command::new(env!("CARGO_BIN_EXE_presence-loadtest")).args(args));
    (status.code(), output)
}

#[test]
fn fail_if_exits_with_3_only_when_a_threshold_is_met() {
    let hub = Hub::start();
    let base = [
        "hold",
        "--url",
        &hub.url,
        "--clients",
        "20",
        "--duration",
        "500ms",
        // Idle clients: `rtt` is never measured (a jittered first ping
        // could land inside the half second).
        "--ping-interval",
        "0s",
    ];
    let (code, output) = exit_code(&[&base[..], &["--fail-if", "errors>0"]].concat());
    assert_eq!(code, Some(0), "{output}");
    let (code, output) = exit_code(&[&base[..], &["--fail-if", "connect.count>=20"]].concat());
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("connect.count>=20"), "{output}");
    let (code, output) = exit_code(&[&base[..], &["--fail-if", "rtt.p99>5ms"]].concat());
    assert_eq!(code, Some(3), "an unmeasured field fails: {output}");
}

#[test]
fn fewer_clients_connected_than_asked_for_exits_with_3() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, output) = exit_code(&[
        "hold",
        "--url",
        &url,
        "--clients",
        "5",
        "--duration",
        "200ms",
        "--connect-timeout",
        "2s",
    ]);
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("only 0 of 5 clients connected"), "{output}");
}
