//! HTTP presence: `POST /api/v1/heartbeat`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, admin_session_event, ms, within};

const LIMIT: Duration = Duration::from_secs(20);

async fn beat(hub: &TestHub, user: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(hub.http(&format!("/api/v1/heartbeat?user={user}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_heartbeat_session_lives_refreshes_and_ends_on_request() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.http_session_ttl = ms(5000)).await;
        let (mut admin, _) = hub.admin("").await;
        let (status, body) = beat(
            &hub,
            "script",
            json!({"active": true, "page": "/sync", "app": {"name": "cli", "version": "1"}}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "active");
        assert_eq!(body["ttl_ms"], 5000);
        let id = body["session_id"].as_str().unwrap().to_string();
        let started = admin_session_event(&mut admin, ms(5000), "started", |e, s| {
            e == "started" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(started["session"]["transport"], "http");
        assert_eq!(
            started["session"]["page"], "/sync",
            "metadata arrives with the start"
        );
        assert_eq!(started["session"]["app"]["name"], "cli");
        let (status, again) = beat(&hub, "script", json!({"session_id": id, "active": true})).await;
        assert_eq!(
            (status, again["session_id"].as_str()),
            (200, Some(id.as_str()))
        );
        let (status, ended) = beat(&hub, "script", json!({"session_id": id, "ended": true})).await;
        assert_eq!(status, 200);
        assert_eq!(ended["status"], "ended");
        let event = admin_session_event(&mut admin, ms(5000), "ended", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(event["session"]["end_cause"], "client_closed");
        let (status, body) = beat(&hub, "script", json!({"session_id": id, "active": true})).await;
        assert_eq!(status, 404, "an ended id is gone: {body}");
    })
    .await;
}

#[tokio::test]
async fn a_session_id_answers_only_to_its_owner() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_, body) = beat(&hub, "alice", json!({"active": true})).await;
        let id = body["session_id"].as_str().unwrap();
        let (status, body) = beat(&hub, "mallory", json!({"session_id": id, "active": true})).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = beat(&hub, "mallory", json!({"session_id": id, "ended": true})).await;
        assert_eq!(status, 404);
        let (status, _) = beat(&hub, "alice", json!({"session_id": id, "active": false})).await;
        assert_eq!(status, 200, "still alive for its owner");
    })
    .await;
}

#[tokio::test]
async fn a_silent_heartbeat_session_times_out_after_the_ttl() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.http_session_ttl = ms(800)).await;
        let (mut admin, _) = hub.admin("").await;
        let (_, body) = beat(&hub, "script", json!({"active": true})).await;
        let id = body["session_id"].as_str().unwrap().to_string();
        let started = std::time::Instant::now();
        let ended = admin_session_event(&mut admin, ms(3000), "timeout", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "timeout");
        let elapsed = started.elapsed();
        assert!(elapsed >= ms(700) && elapsed <= ms(1100), "{elapsed:?}");
        let (status, _) = beat(&hub, "script", json!({"session_id": id, "active": true})).await;
        assert_eq!(status, 404);
    })
    .await;
}

#[tokio::test]
async fn bad_heartbeats_get_clear_errors() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let client = reqwest::Client::new();
        let url = hub.http("/api/v1/heartbeat?user=alice");
        let json = |request: reqwest::RequestBuilder| {
            request.header("content-type", "application/json; charset=utf-8")
        };
        let bad_json = json(client.post(&url)).body("{nope").send().await.unwrap();
        assert_eq!(bad_json.status(), 400);
        let (status, body) = beat(&hub, "alice", json!({"active": "yes"})).await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("active")
        );
        let big = json(client.post(&url))
            .body(format!("{{\"page\":\"{}\"}}", "x".repeat(17 * 1024)))
            .send()
            .await
            .unwrap();
        assert_eq!(big.status(), 413);
        let (status, _) = beat(&hub, "", json!({"active": true})).await;
        assert_eq!(status, 400, "dev mode needs a user");
        let chunked = json(client.post(&url))
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                vec![
                    Ok::<_, std::io::Error>(r#"{"active":"#.to_string()),
                    Ok(" true}".to_string()),
                ],
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(
            chunked.status(),
            200,
            "a chunked body without Content-Length is fine"
        );
        let big_chunked = json(client.post(&url))
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                (0..20).map(|_| Ok::<_, std::io::Error>("x".repeat(1024))),
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(big_chunked.status(), 413);
        let (status, body) = beat(&hub, "alice", json!({"ended": true})).await;
        assert_eq!(status, 400, "ending needs an id: {body}");
        let wrong_method = client.get(&url).send().await.unwrap();
        assert_eq!(wrong_method.status(), 405);
    })
    .await;
}

#[tokio::test]
async fn a_heartbeat_that_is_not_declared_json_gets_415() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let client = reqwest::Client::new();
        let url = hub.http("/api/v1/heartbeat?user=alice");
        let (mut admin, _) = hub.admin("").await;
        // What a cross-site `fetch(..., {mode: "no-cors"})` or a form can send.
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut request = client.post(&url).body(r#"{"active":true}"#);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 415, "{content_type:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unsupported_media_type");
        }
        let frames = admin.collect_for(ms(300)).await;
        assert!(frames.is_empty(), "no session was opened: {frames:?}");
    })
    .await;
}

#[tokio::test]
async fn a_body_dripping_slower_than_the_deadline_gets_408_and_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.handshake_timeout = ms(1000)).await;
        let mut stream = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        let body = br#"{"active":true,"page":"/slow"}"#;
        let head = format!(
            "POST /api/v1/heartbeat?user=alice HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // 0.5 B/s: one byte every two seconds, far slower than the deadline.
        let drip = async {
            for byte in body {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(ms(2000)).await;
            }
        };
        let _ = tokio::time::timeout(ms(2500), drip).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(ms(5000), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the hub closed the connection");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    })
    .await;
}
