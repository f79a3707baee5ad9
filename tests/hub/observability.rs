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
    ("presence_ready", "gauge"),
];

/// Families that appear in a scrape once a first label value is used
/// (a refusal, a bad frame, a cluster delta or resync), or only in
/// cluster mode (refused cluster messages).
const EXPORTED_ON_USE: &[&str] = &[
    "presence_bad_frames_total",
    "presence_cluster_rejected_total",
    "presence_admission_refusals_total",
    "presence_replication_deltas_total",
    "presence_resyncs_total",
    "presence_jwks_fetches_total",
    "presence_tls_reloads_total",
];

fn is_exported(name: &str) -> bool {
    EXPORTED.iter().any(|(n, _)| *n == name) || EXPORTED_ON_USE.contains(&name)
}

#[test]
fn families_shown_on_use_are_defined() {
    let source: String = ["mod.rs", "ops.rs"]
        .iter()
        .map(|file| {
            std::fs::read_to_string(format!("{}/src/metrics/{file}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        })
        .collect();
    for name in EXPORTED_ON_USE {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "{name} in src/metrics/"
        );
    }
}

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
        assert_eq!(sample(&text, "presence_ready"), Some(1.0));
    })
    .await;
}

/// The metric names in an expression: `presence_*` identifiers, with the
/// `_bucket`, `_sum` and `_count` series of a histogram named by its family.
fn metrics_named(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("presence_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix).filter(|family| {
                    EXPORTED
                        .iter()
                        .any(|(n, k)| n == family && *k == "histogram")
                })
            })
            .unwrap_or(name);
        names.push(family.to_string());
        rest = &tail[end..];
    }
    names
}

fn deploy_file(path: &str) -> String {
    let path = format!("{}/deploy/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_names_only_exported_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy_file("grafana/presence-hub.json")).expect("valid JSON");
    assert_eq!(dashboard["uid"], "presence-hub");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard["panels"], &mut exprs);
    assert!(exprs.len() >= 20, "{exprs:?}");
    let mut seen = std::collections::BTreeSet::new();
    for expr in &exprs {
        let names = metrics_named(expr);
        assert!(!names.is_empty(), "{expr} names no presence metric");
        for name in names {
            assert!(
                is_exported(&name),
                "{expr} names {name}, which the hub does not export"
            );
            seen.insert(name);
        }
    }
    for histogram in EXPORTED.iter().filter(|(_, k)| *k == "histogram") {
        assert!(seen.contains(histogram.0), "no panel shows {}", histogram.0);
    }
}

#[test]
fn the_alert_rules_name_only_exported_metrics() {
    let rules = deploy_file("prometheus/alerts.yml");
    let exprs: Vec<&str> = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter(|l| l.contains("presence_"))
        .filter(|l| !l.contains("summary:") && !l.contains("description:"))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for line in exprs {
        for name in metrics_named(line) {
            assert!(
                is_exported(&name),
                "{line} names {name}, which the hub does not export"
            );
        }
    }
    assert!(rules.contains("up{job=\"presence-hub\"} == 0"));
}

#[tokio::test]
async fn metrics_bind_moves_metrics_to_their_own_listener() {
    within(LIMIT, async {
        let port = crate::support::free_port();
        let bind = format!("127.0.0.1:{port}");
        let hub = crate::support::HubProcess::start(&[
            ("PRESENCE_METRICS_BIND", bind.as_str()),
            ("PRESENCE_DATABASE_URL", "memory:"),
        ])
        .await;
        let main = reqwest::get(hub.http("/metrics")).await.unwrap();
        assert_eq!(main.status(), 404, "not on the main listener");
        let scrape = reqwest::get(format!("http://{bind}/metrics"))
            .await
            .unwrap();
        assert_eq!(scrape.status(), 200);
        let text = scrape.text().await.unwrap();
        assert!(text.contains("# TYPE presence_build_info gauge"), "{text}");
        let other = reqwest::get(format!("http://{bind}/healthz"))
            .await
            .unwrap();
        assert_eq!(other.status(), 404, "only /metrics there");
        assert_eq!(
            reqwest::get(hub.http("/healthz")).await.unwrap().status(),
            200
        );
    })
    .await;
}
