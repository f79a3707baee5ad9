//! What an operator scrapes: metric names and types, histograms that move
//! with traffic, build info and refused handshakes by reason.

use std::time::Duration;

use serde_json::json;

use crate::support::{TestHub, WsClient, eventually, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "test-secret-of-at-least-32-bytes";

/// Every family an operator dashboard or alert rule may name, with its type.
pub const EXPORTED: &[(&str, &str)] = &[
    ("presence_connections", "gauge"),
    ("presence_sessions", "gauge"),
    ("presence_sessions_by_transport", "gauge"),
    ("presence_online_users", "gauge"),
    ("presence_messages_in_total", "counter"),
    ("presence_messages_out_total", "counter"),
    ("presence_admin_subscribers", "gauge"),
    ("presence_admin_lag_closes_total", "counter"),
    ("presence_sessions_ended_total", "counter"),
    ("presence_api_requests_total", "counter"),
    ("presence_history_sessions", "gauge"),
    ("presence_history_backlog", "gauge"),
    ("presence_history_write_errors_total", "counter"),
    ("presence_history_dropped_total", "counter"),
    ("presence_redis_errors_total", "counter"),
    ("presence_replication_lag_seconds", "gauge"),
    ("presence_nodes_known", "gauge"),
    ("presence_ping_latency_seconds", "histogram"),
    ("presence_handshake_duration_seconds", "histogram"),
    ("presence_http_request_duration_seconds", "histogram"),
    ("presence_admin_fanout_delay_seconds", "histogram"),
    ("presence_replication_propagation_seconds", "histogram"),
    ("presence_session_duration_seconds", "histogram"),
    ("presence_sessions_started_total", "counter"),
    ("presence_handshake_rejections_total", "counter"),
    ("presence_build_info", "gauge"),
];

async fn scrape(hub: &TestHub) -> String {
    reqwest::get(hub.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn histograms_move_with_traffic_and_types_are_declared() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.allowed_origins = Some("https://app.example".into());
            c.jwt_secret = Some(SECRET.into());
        })
        .await;
        let admin_token = jwt(SECRET, "ops", Some("admin"), 60);
        let mut admin =
            WsClient::connect(&hub.ws_url(&format!("/admin/ws?token={admin_token}"))).await;
        admin.recv_type("snapshot", ms(5000)).await;
        let alice_token = jwt(SECRET, "alice", None, 60);
        let mut alice = WsClient::connect(&hub.ws_url(&format!("/ws?token={alice_token}"))).await;
        alice.recv_type("welcome", ms(5000)).await;
        for i in 0..3 {
            alice.send_json(json!({"type": "ping", "id": i})).await;
            alice.recv_type("pong", ms(5000)).await;
        }
        admin.recv_type("session", ms(5000)).await;
        alice.close().await;
        let refused = WsClient::try_connect(
            &hub.ws_url(&format!("/ws?token={alice_token}")),
            &[("origin", "https://evil.example")],
        )
        .await;
        assert_eq!(refused.err().map(|r| r.status), Some(403));
        let refused = WsClient::try_connect(&hub.ws_url("/admin/ws?token=nope"), &[]).await;
        assert_eq!(refused.err().map(|r| r.status), Some(401));
        let _ = reqwest::get(hub.http("/healthz")).await.unwrap();

        let text = eventually(ms(10_000), "the ended session is recorded", || async {
            let text = scrape(&hub).await;
            (sample(&text, "presence_session_duration_seconds_count") == Some(1.0)).then_some(text)
        })
        .await;
        for (name, kind) in EXPORTED {
            assert!(
                text.lines().any(|l| l == format!("# TYPE {name} {kind}")),
                "# TYPE {name} {kind} in\n{text}"
            );
        }
        assert_eq!(
            sample(&text, "presence_ping_latency_seconds_count"),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "presence_ping_latency_seconds_bucket{le=\"+Inf\"}"),
            Some(3.0)
        );
        assert!(
            sample(
                &text,
                "presence_handshake_duration_seconds_count{endpoint=\"/ws\"}"
            ) >= Some(1.0)
        );
        assert!(
            sample(
                &text,
                "presence_handshake_duration_seconds_count{endpoint=\"/admin/ws\"}"
            ) >= Some(1.0)
        );
        assert!(
            sample(
                &text,
                "presence_http_request_duration_seconds_count{route=\"/healthz\"}"
            ) >= Some(1.0)
        );
        assert!(sample(&text, "presence_admin_fanout_delay_seconds_count") >= Some(1.0));
        assert_eq!(sample(&text, "presence_sessions_started_total"), Some(1.0));
        assert_eq!(
            sample(
                &text,
                "presence_handshake_rejections_total{reason=\"origin\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "presence_handshake_rejections_total{reason=\"unauthorized\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "presence_handshake_rejections_total{reason=\"limits\"}"
            ),
            Some(0.0)
        );
        let build = text
            .lines()
            .find(|l| l.starts_with("presence_build_info{"))
            .unwrap_or_else(|| panic!("presence_build_info in\n{text}"));
        assert!(
            build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
            "{build}"
        );
        assert!(build.contains("commit=\""), "{build}");
        assert!(build.ends_with(" 1"), "{build}");
    })
    .await;
}
