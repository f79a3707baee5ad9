//! Time-driven transitions: active -> idle -> away and the liveness timeout,
//! observed within 200 ms of the threshold.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{TestHub, admin_session_event, ms, within};

const LIMIT: Duration = Duration::from_secs(20);
/// The contract's bound, plus scheduling slack for a loaded CI machine.
const TOLERANCE: Duration = Duration::from_millis(200);

fn assert_near(observed: Duration, expected: Duration, what: &str) {
    assert!(
        observed + ms(20) >= expected,
        "{what} too early: {observed:?} < {expected:?}"
    );
    assert!(
        observed <= expected + TOLERANCE,
        "{what} too late: {observed:?} > {expected:?} + 200ms"
    );
}

#[tokio::test]
async fn a_quiet_session_goes_idle_then_away_on_time() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.idle_after = ms(800);
            c.away_after = ms(1600);
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, welcome) = hub.welcomed_client("alice").await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        client.send_json(json!({"type": "ping"})).await;
        client.recv_type("pong", ms(3000)).await;
        let pinged = Instant::now();
        admin_session_event(&mut admin, ms(3000), "idle", |e, s| {
            e == "updated" && s["session_id"] == id.as_str() && s["status"] == "idle"
        })
        .await;
        assert_near(pinged.elapsed(), ms(800), "idle");
        let user = admin
            .recv_until(ms(1000), "user idle", |v| v["type"] == "user")
            .await;
        assert_eq!(user["user"]["status"], "idle");
        admin_session_event(&mut admin, ms(3000), "away", |e, s| {
            e == "updated" && s["status"] == "away"
        })
        .await;
        assert_near(pinged.elapsed(), ms(1600), "away");
        // The client is told too.
        let status = client
            .recv_until(ms(1000), "status away", |v| {
                v["type"] == "status" && v["status"] == "away"
            })
            .await;
        assert_eq!(status["manual"], serde_json::Value::Null);
    })
    .await;
}

#[tokio::test]
async fn a_ping_makes_an_idle_session_active_at_once() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.idle_after = ms(500);
            c.away_after = ms(5000);
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        admin_session_event(&mut admin, ms(5000), "idle", |_, s| s["status"] == "idle").await;
        client
            .recv_until(ms(1000), "idle status", |v| {
                v["type"] == "status" && v["status"] == "idle"
            })
            .await;
        let sent = Instant::now();
        client.send_json(json!({"type": "ping"})).await;
        admin_session_event(&mut admin, ms(1000), "active again", |_, s| {
            s["status"] == "active"
        })
        .await;
        assert!(
            sent.elapsed() < ms(200),
            "pushed at once, took {:?}",
            sent.elapsed()
        );
        client
            .recv_until(ms(1000), "active status", |v| {
                v["type"] == "status" && v["status"] == "active"
            })
            .await;
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_ended_with_timeout_after_dead_after() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.heartbeat_interval = ms(300);
            c.dead_after = ms(1000);
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        // A raw TCP client that upgrades and then never sends a frame (not even a pong).
        let started = Instant::now();
        let _silent = crate::support::WsClient::connect(&hub.ws_url("/ws?user=ghost")).await;
        let ended = admin_session_event(&mut admin, ms(3000), "timeout", |e, s| {
            e == "ended" && s["user_id"] == "ghost"
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "timeout");
        assert_near(started.elapsed(), ms(1000), "timeout");
    })
    .await;
}

#[tokio::test]
async fn a_client_answering_pings_stays_alive_without_activity() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.heartbeat_interval = ms(200);
            c.dead_after = ms(600);
            c.idle_after = ms(300);
            c.away_after = ms(700);
        })
        .await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        // Reading lets tungstenite answer the hub's Pings; no activity is sent.
        let frames = client.collect_for(ms(1500)).await;
        let statuses: Vec<&str> = frames
            .iter()
            .filter(|f| f["type"] == "status")
            .filter_map(|f| f["status"].as_str())
            .collect();
        assert_eq!(statuses, vec!["idle", "away"], "liveness is not activity");
        client.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(
            client.recv_type("pong", ms(3000)).await["id"],
            1,
            "still connected"
        );
    })
    .await;
}
