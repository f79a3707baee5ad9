//! Webhooks (§11) against real HTTP receivers on loopback: signed batches,
//! the events and their order, retries with stable ids, `Retry-After`, what
//! is not retried, a dead endpoint beside a healthy one, queue overflow,
//! the status route and the start-up checks.

use std::time::Duration;

use serde_json::Value;

use crate::support::receiver::{Answer, Receiver};
use crate::support::{TestHub, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(60);
const SECRET: &str = "webhook-test-secret";

async fn hub_with(urls: &[String], configure: impl FnOnce(&mut presence_hub::Config)) -> TestHub {
    let urls = urls.join(",");
    TestHub::start(move |c| {
        c.webhook_urls = Some(urls);
        c.webhook_secret = Some(SECRET.into());
        configure(c);
    })
    .await
}

async fn status(hub: &TestHub) -> Vec<Value> {
    let body: Value = reqwest::get(hub.http("/api/v1/webhooks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["endpoints"].as_array().unwrap().clone()
}

/// Waits until the receiver holds `n` events.
async fn events(receiver: &Receiver, n: usize) -> Vec<Value> {
    eventually(ms(15_000), &format!("{n} webhook events"), || async {
        let events = receiver.events();
        (events.len() >= n).then_some(events)
    })
    .await
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_session_makes_signed_events_in_the_order_they_happened() {
    within(LIMIT, async {
        let receiver = Receiver::start(vec![]).await;
        let hub = hub_with(&[receiver.url()], |_| {}).await;
        let (client, _) = hub.welcomed_client("alice").await;
        client.close().await;
        let events = events(&receiver, 4).await;
        assert_eq!(
            types(&events),
            [
                "session.started",
                "user.online",
                "session.ended",
                "user.offline"
            ]
        );
        assert_eq!(events[0]["data"]["user_id"], "alice");
        assert!(events[0]["data"].get("location").is_some());
        assert_eq!(events[1]["data"]["user_id"], "alice");
        assert_eq!(events[1]["data"]["session_count"], 1);
        assert_eq!(events[2]["data"]["status"], "ended");
        assert_eq!(events[3]["data"]["status"], "offline");
        let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4, "event ids are unique");
        for event in &events {
            assert!(
                presence_hub::model::time::parse_rfc3339(event["at"].as_str().unwrap()).is_some()
            );
        }
        for request in receiver.received() {
            assert_eq!(request.headers["content-type"], "application/json");
            assert!(request.signed_with(SECRET), "signature verifies");
            assert!(!request.signed_with("another secret"));
            let body = request.json();
            assert_eq!(
                request.headers["x-presence-delivery"],
                body["id"].as_str().unwrap()
            );
            assert!(body["sent_at"].is_string());
            assert!(body["events"].as_array().unwrap().len() <= 100);
        }
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn events_that_wait_travel_in_batches_of_at_most_100() {
    within(LIMIT, async {
        // The first batch is held for 5 s by the receiver; the 120 events
        // of 60 sessions opened meanwhile wait, then leave as 100 + 20.
        let receiver = Receiver::start(vec![Answer::Slow(ms(5000))]).await;
        let hub = hub_with(&[receiver.url()], |_| {}).await;
        let (_first, _) = hub.welcomed_client("batch-first").await;
        eventually(ms(5000), "the first request", || async {
            (!receiver.received().is_empty()).then_some(())
        })
        .await;
        let mut clients = Vec::new();
        for n in 0..60 {
            clients.push(hub.welcomed_client(&format!("batch{n}")).await.0);
        }
        events(&receiver, 122).await;
        let sizes: Vec<usize> = receiver
            .received()
            .iter()
            .map(|r| r.json()["events"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [2, 100, 20]);
        let users: Vec<String> = receiver
            .events()
            .iter()
            .filter(|e| e["type"] == "session.started")
            .map(|e| e["data"]["user_id"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = std::iter::once("batch-first".to_string())
            .chain((0..60).map(|n| format!("batch{n}")))
            .collect();
        assert_eq!(users, expected, "in the order they happened");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_retried_batch_keeps_its_ids_and_honours_retry_after() {
    within(LIMIT, async {
        let receiver = Receiver::start(vec![
            Answer::Status(500),
            Answer::With(429, vec![("Retry-After", "2".into())]),
        ])
        .await;
        let hub = hub_with(&[receiver.url()], |c| {
            c.webhook_events = "session.started".into();
        })
        .await;
        let (_client, _) = hub.welcomed_client("bob").await;
        let received = eventually(ms(20_000), "three attempts", || async {
            let received = receiver.received();
            (received.len() >= 3).then_some(received)
        })
        .await;
        let ids = |n: usize| -> Vec<String> {
            received[n].json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(0), ids(1));
        assert_eq!(ids(1), ids(2));
        assert_eq!(
            received[0].headers["x-presence-delivery"],
            received[2].headers["x-presence-delivery"]
        );
        let waited = received[2].at - received[1].at;
        assert!(
            waited >= ms(1900),
            "Retry-After: 2 honoured, waited {waited:?}"
        );
        assert!(received[2].signed_with(SECRET));
        let endpoint = eventually(ms(5000), "delivered count", || async {
            let endpoint = status(&hub).await.remove(0);
            (endpoint["delivered"] == 1).then_some(endpoint)
        })
        .await;
        assert_eq!(endpoint["failed"], 0);
        assert!(endpoint["last_success_at"].is_string());
        assert_eq!(endpoint["last_error"], "HTTP 429");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn other_4xx_redirects_and_huge_answers_are_failures_not_retried() {
    within(LIMIT, async {
        for answer in [
            Answer::Status(400),
            Answer::With(302, vec![("Location", "http://127.0.0.1:1/".into())]),
            Answer::Huge(1024 * 1024),
        ] {
            let receiver = Receiver::start(vec![answer.clone()]).await;
            let hub = hub_with(&[receiver.url()], |c| {
                c.webhook_events = "session.started".into();
            })
            .await;
            let (_client, _) = hub.welcomed_client("carol").await;
            let endpoint = eventually(ms(10_000), "a failed batch", || async {
                let endpoint = status(&hub).await.remove(0);
                (endpoint["failed"] == 1).then_some(endpoint)
            })
            .await;
            assert_eq!(endpoint["delivered"], 0, "{answer:?}");
            assert_eq!(endpoint["queued"], 0, "{answer:?}");
            assert!(endpoint["last_error"].is_string(), "{answer:?}");
            tokio::time::sleep(ms(1500)).await;
            assert_eq!(receiver.received().len(), 1, "{answer:?} is not retried");
            hub.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn garbage_answers_are_retried_until_the_attempts_are_used_up() {
    within(LIMIT, async {
        let receiver = Receiver::start(vec![Answer::Garbage, Answer::Garbage]).await;
        let hub = hub_with(&[receiver.url()], |c| {
            c.webhook_events = "session.started".into();
            c.webhook_max_attempts = 2;
        })
        .await;
        let (_client, _) = hub.welcomed_client("dave").await;
        let endpoint = eventually(ms(10_000), "a failed batch", || async {
            let endpoint = status(&hub).await.remove(0);
            (endpoint["failed"] == 1).then_some(endpoint)
        })
        .await;
        assert_eq!(receiver.received().len(), 2);
        assert_eq!(endpoint["delivered"], 0);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_dead_endpoint_does_not_slow_a_healthy_one() {
    within(LIMIT, async {
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let slow = Receiver::start(vec![Answer::Slow(ms(30_000))]).await;
        let healthy = Receiver::start(vec![]).await;
        let urls = [format!("http://{dead}/hook"), slow.url(), healthy.url()];
        let hub = hub_with(&urls, |_| {}).await;
        for n in 0..3 {
            let (client, _) = hub.welcomed_client(&format!("erin{n}")).await;
            client.close().await;
        }
        let events = events(&healthy, 12).await;
        assert_eq!(events.len(), 12);
        let endpoints = status(&hub).await;
        assert_eq!(endpoints.len(), 3);
        assert_eq!(endpoints[0]["url"], urls[0].as_str());
        assert!(endpoints[0]["queued"].as_u64().unwrap() > 0);
        assert_eq!(endpoints[0]["delivered"], 0);
        assert!(endpoints[0]["last_error"].is_string());
        assert_eq!(endpoints[2]["delivered"], 12);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_events_and_counts_them() {
    within(LIMIT, async {
        let receiver = Receiver::start(vec![Answer::Slow(ms(4000))]).await;
        let hub = hub_with(&[receiver.url()], |c| {
            c.webhook_queue = 2;
            c.webhook_events = "session.started".into();
        })
        .await;
        let (_first, _) = hub.welcomed_client("first").await;
        // The first batch is in flight at the slow receiver; then five more
        // sessions start while only two may wait.
        eventually(ms(5000), "the first request", || async {
            (!receiver.received().is_empty()).then_some(())
        })
        .await;
        let mut clients = Vec::new();
        for n in 0..5 {
            clients.push(hub.welcomed_client(&format!("later{n}")).await.0);
        }
        let endpoint = eventually(ms(5000), "drops counted", || async {
            let endpoint = status(&hub).await.remove(0);
            (endpoint["dropped"] == 3).then_some(endpoint)
        })
        .await;
        assert_eq!(endpoint["queued"], 3, "two waiting plus the one in flight");
        // Drops are reported (metric, warning, audit) once a second at most.
        eventually(ms(5000), "the drops in /metrics", || async {
            let metrics = reqwest::get(hub.http("/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("presence_webhook_events_dropped_total") && l.ends_with(" 3")
                })
                .then_some(())
        })
        .await;
        let audit = eventually(ms(5000), "webhook.dropped in the audit trail", || async {
            let body: serde_json::Value =
                reqwest::get(hub.http("/api/v1/audit?action=webhook.dropped"))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            let dropped: u64 = body["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| {
                    let reason = e["reason"].as_str()?;
                    reason
                        .rsplit(": ")
                        .next()?
                        .split(' ')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .sum();
            (dropped == 3).then_some(body)
        })
        .await;
        let first = &audit["events"][0];
        assert_eq!(first["actor"], serde_json::Value::Null);
        assert_eq!(first["result"], "dropped");
        assert!(
            first["reason"]
                .as_str()
                .unwrap()
                .starts_with(receiver.url().as_str())
        );
        let events = events(&receiver, 3).await;
        let users: Vec<&str> = events
            .iter()
            .map(|e| e["data"]["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            users,
            ["first", "later3", "later4"],
            "the newest are kept, in order"
        );
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn sessions_ended_by_shutdown_are_sent_before_the_hub_exits() {
    within(LIMIT, async {
        let receiver = Receiver::start(vec![]).await;
        let hub = hub_with(&[receiver.url()], |c| {
            c.webhook_events = "session.started,session.ended".into();
        })
        .await;
        let (_client, _) = hub.welcomed_client("grace").await;
        events(&receiver, 1).await;
        hub.shutdown().await;
        let events = receiver.events();
        assert_eq!(types(&events), ["session.started", "session.ended"]);
        assert_eq!(events[1]["data"]["end_cause"], "shutdown");
    })
    .await;
}

#[test]
fn help_documents_the_webhook_alert_and_geoip_variables() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "PRESENCE_WEBHOOK_URLS",
        "PRESENCE_WEBHOOK_SECRET",
        "PRESENCE_WEBHOOK_EVENTS",
        "PRESENCE_WEBHOOK_MAX_ATTEMPTS",
        "PRESENCE_WEBHOOK_QUEUE",
        "PRESENCE_GEOIP_DB",
        "PRESENCE_ALERTS",
        "PRESENCE_ALERT_MULTI_IP_MIN",
        "PRESENCE_ALERT_SESSION_FLOOD_MIN",
        "PRESENCE_ALERT_RECONNECT_LOOP_MIN",
        "PRESENCE_ALERT_LONG_SESSION_AFTER",
        "PRESENCE_ALERT_AUTH_FAILURES_MIN",
    ] {
        assert!(help.contains(variable), "--help mentions {variable}");
    }
}

#[test]
fn an_invalid_url_or_a_missing_secret_exits_2_naming_the_variable() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("PRESENCE_WEBHOOK_URLS", "http://127.0.0.1:9/h")],
            "PRESENCE_WEBHOOK_SECRET",
        ),
        (
            &[
                ("PRESENCE_WEBHOOK_URLS", "not a url"),
                ("PRESENCE_WEBHOOK_SECRET", "s"),
            ],
            "PRESENCE_WEBHOOK_URLS",
        ),
        (
            &[
                ("PRESENCE_WEBHOOK_URLS", "ftp://127.0.0.1/h"),
                ("PRESENCE_WEBHOOK_SECRET", "s"),
            ],
            "PRESENCE_WEBHOOK_URLS",
        ),
        (
            &[("PRESENCE_WEBHOOK_EVENTS", "user.online,nonsense")],
            "PRESENCE_WEBHOOK_EVENTS",
        ),
    ];
    for (env, named) in cases {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"));
        command.env_clear().env("PRESENCE_BIND", "127.0.0.1:0");
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{env:?}: {stderr}");
    }
}
