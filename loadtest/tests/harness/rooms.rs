//! Owns the end-to-end tests of the `rooms` scenario: on one hub, and with
//! each room spread over two hubs sharing one redis-server.

use serde_json::Value;

use crate::support::{Hub, Redis, assert_clean, run_loadtest};

/// Asserts what every clean rooms run shows: no gaps, resyncs or
/// mismatches, and one convergence sample per change and member.
fn assert_rooms_converged(report: &Value) {
    assert_eq!(report["room_gaps"], 0, "{report:#}");
    assert_eq!(report["room_resyncs"], 0, "{report:#}");
    assert_eq!(report["room_mismatches"], 0, "{report:#}");
    let changes = report["room_changes"].as_u64().unwrap();
    assert!(changes > 0, "{report:#}");
    assert_eq!(
        report["room_convergence_ms"]["count"], report["room_deliveries_expected"],
        "{report:#}"
    );
}

#[test]
fn rooms_watchers_apply_every_change_and_match_the_hub() {
    let hub = Hub::start();
    let report = run_loadtest(
        "rooms",
        &[
            "rooms",
            "--url",
            &hub.url,
            "--clients",
            "10",
            "--rooms",
            "2",
            "--room-changes-per-s",
            "5",
            "--duration",
            "2s",
            "--settle",
            "500ms",
        ],
    );
    assert_clean(&report, "rooms", 10);
    assert_rooms_converged(&report);
    // 2 s at 5 changes/s in each of 2 rooms; each seen by its 5 members.
    assert_eq!(
        report["room_deliveries_expected"].as_u64().unwrap(),
        report["room_changes"].as_u64().unwrap() * 5,
        "{report:#}"
    );
}

#[test]
fn rooms_spread_over_two_nodes_converge_on_both() {
    let redis = Redis::start();
    let ns = format!("lt{}", std::process::id());
    let a = redis.start_node(&ns, "harness-a", &[]);
    let b = redis.start_node(&ns, "harness-b", &[]);
    let report = run_loadtest(
        "rooms-two-nodes",
        &[
            "rooms",
            "--url",
            &a.url,
            "--peer-url",
            &b.url,
            "--admin-url",
            &b.url,
            "--clients",
            "20",
            "--rooms",
            "2",
            "--workers",
            "2",
            "--room-changes-per-s",
            "5",
            "--duration",
            "2s",
        ],
    );
    assert_clean(&report, "rooms", 20);
    assert_rooms_converged(&report);
}

#[test]
fn rooms_in_jwt_mode_join_with_minted_tokens_and_check_with_an_admin_token() {
    let secret = "loadtest-secret-for-tests-only-32+";
    let hub = Hub::start_with(&[("PRESENCE_JWT_SECRET", secret)]);
    let report = run_loadtest(
        "rooms-jwt",
        &[
            "rooms",
            "--url",
            &hub.url,
            "--clients",
            "6",
            "--rooms",
            "2",
            "--room-changes-per-s",
            "4",
            "--duration",
            "1s",
            "--settle",
            "500ms",
            "--jwt-secret",
            secret,
        ],
    );
    assert_clean(&report, "rooms", 6);
    assert_rooms_converged(&report);
}
