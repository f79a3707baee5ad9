//! The client protocol of contract section 4.

use futures_util::SinkExt;
use serde_json::json;

use crate::support::{TestHub, WsClient, admin_session_event, ms, within};

const LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

#[tokio::test]
async fn welcome_names_the_session_user_node_and_timings() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.idle_after = ms(1500);
            c.away_after = ms(4000);
        })
        .await;
        let (_client, welcome) = hub.welcomed_client("alice").await;
        assert_eq!(welcome["user_id"], "alice");
        assert_eq!(welcome["node_id"], "test-node");
        assert_eq!(welcome["idle_after_ms"], 1500);
        assert_eq!(welcome["away_after_ms"], 4000);
        assert_eq!(welcome["heartbeat_interval_ms"], 20_000);
        let id = welcome["session_id"].as_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "session ids are UUIDs: {id}"
        );
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    })
    .await;
}

#[tokio::test]
async fn ping_is_answered_with_pong_echoing_the_id() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        client.send_json(json!({"type": "ping", "id": 7})).await;
        let pong = client.recv_type("pong", ms(5000)).await;
        assert_eq!(pong["id"], 7);
        let ts = pong["ts"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == 24,
            "RFC 3339 UTC with ms: {ts}"
        );
        client.send_json(json!({"type": "ping", "id": "abc"})).await;
        assert_eq!(client.recv_type("pong", ms(5000)).await["id"], "abc");
        client.send_json(json!({"type": "ping"})).await;
        assert!(client.recv_type("pong", ms(5000)).await.get("id").is_none());
    })
    .await;
}

#[tokio::test]
async fn bad_frames_get_error_codes_and_the_connection_stays_open() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        let cases = [
            ("not json", "bad_message"),
            (r#"{"type":"dance"}"#, "unknown_type"),
            (r#"{"type":"ping","id":{"x":1}}"#, "bad_message"),
            (r#"{"type":"status","manual":"sleepy"}"#, "bad_message"),
            (r#"{"type":"hello","meta":"not an object"}"#, "bad_message"),
            (r#"{"no_type":true}"#, "bad_message"),
        ];
        for (text, code) in cases {
            client.send_text(text).await;
            let error = client.recv_type("error", ms(5000)).await;
            assert_eq!(error["code"], code, "for {text}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        client
            .socket
            .send(tokio_tungstenite::tungstenite::Message::binary(vec![
                1, 2, 3,
            ]))
            .await
            .unwrap();
        assert_eq!(
            client.recv_type("error", ms(5000)).await["code"],
            "unsupported"
        );
        client.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(
            client.recv_type("pong", ms(5000)).await["id"],
            1,
            "still open"
        );
    })
    .await;
}

#[tokio::test]
async fn manual_status_is_confirmed_to_the_client_and_shown_to_admins() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, welcome) = hub.welcomed_client("alice").await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        client
            .send_json(json!({"type": "status", "manual": "away"}))
            .await;
        let status = client.recv_type("status", ms(5000)).await;
        assert_eq!(
            status,
            json!({"type": "status", "status": "away", "manual": "away"})
        );
        let event = admin_session_event(&mut admin, ms(5000), "manual away", |e, s| {
            e == "updated" && s["session_id"] == id.as_str() && s["manual"] == "away"
        })
        .await;
        assert_eq!(event["session"]["status"], "away");
        let user = admin
            .recv_until(ms(5000), "user manual", |v| {
                v["type"] == "user" && v["user"]["manual"] == "away"
            })
            .await;
        assert_eq!(user["user"]["status"], "away");

        client
            .send_json(json!({"type": "status", "manual": "busy"}))
            .await;
        let status = client.recv_type("status", ms(5000)).await;
        assert_eq!(
            status,
            json!({"type": "status", "status": "active", "manual": "busy"})
        );
        client
            .send_json(json!({"type": "status", "manual": null}))
            .await;
        let status = client.recv_type("status", ms(5000)).await;
        assert_eq!(
            status,
            json!({"type": "status", "status": "active", "manual": null})
        );
    })
    .await;
}

#[tokio::test]
async fn hello_metadata_and_user_agent_reach_the_admin_view() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let url = hub.ws_url("/ws?user=alice&name=Alice&org=acme&app=crm&app_version=1.2&page=%2Fhome");
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        let mut client = WsClient::try_connect(&url, &[("user-agent", ua)]).await.unwrap();
        client.recv_type("welcome", ms(5000)).await;
        let (_admin, snapshot) = hub.admin("").await;
        let session = &snapshot["sessions"][0];
        assert_eq!(session["name"], "Alice");
        assert_eq!(session["org"], "acme");
        assert_eq!(session["transport"], "ws");
        assert_eq!(session["page"], "/home");
        assert_eq!(session["ip"], "127.0.0.1");
        assert_eq!(session["user_agent"], ua);
        assert_eq!(session["device"]["device_type"], "mobile");
        assert_eq!(session["device"]["platform"], "iPhone");
        assert_eq!(session["app"], json!({"name": "crm", "version": "1.2"}));
        assert_eq!(session["meta"], serde_json::Value::Null);
        assert_eq!(session["ended_at"], serde_json::Value::Null);

        let (mut admin, _) = hub.admin("").await;
        client
            .send_json(json!({"type": "hello", "app": {"name": "crm", "version": "2.0"},
                "device": {"device_type": "tablet"}, "page": "/deals", "meta": {"mfa_verified": true, "risk_score": 3}}))
            .await;
        let event = admin_session_event(&mut admin, ms(5000), "hello update", |e, s| e == "updated" && s["page"] == "/deals").await;
        let session = &event["session"];
        assert_eq!(session["app"]["version"], "2.0");
        assert_eq!(session["device"]["device_type"], "tablet");
        assert_eq!(session["device"]["platform"], "iPhone", "fields not given stay parsed");
        assert_eq!(session["meta"], json!({"mfa_verified": true, "risk_score": 3}));
    })
    .await;
}

#[tokio::test]
async fn closing_the_socket_ends_the_session_as_client_closed() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (client, welcome) = hub.welcomed_client("alice").await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        client.close().await;
        let ended = admin_session_event(&mut admin, ms(5000), "ended", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        let session = &ended["session"];
        assert_eq!(session["status"], "ended");
        assert_eq!(session["end_cause"], "client_closed");
        assert!(session["ended_at"].is_string());
        assert!(session["duration_s"].as_f64().unwrap() >= 0.0);
        let user = admin
            .recv_until(ms(5000), "offline", |v| v["type"] == "user")
            .await;
        assert_eq!(user["user"]["status"], "offline");
        assert_eq!(user["user"]["session_count"], 0);
    })
    .await;
}

#[tokio::test]
async fn the_peer_ip_honours_x_forwarded_for_only_from_trusted_proxies() {
    within(LIMIT, async {
        let untrusted = TestHub::start(|_| {}).await;
        let mut client = WsClient::try_connect(
            &untrusted.ws_url("/ws?user=a"),
            &[("x-forwarded-for", "203.0.113.7")],
        )
        .await
        .unwrap();
        client.recv_type("welcome", ms(5000)).await;
        let (_admin, snapshot) = untrusted.admin("").await;
        assert_eq!(snapshot["sessions"][0]["ip"], "127.0.0.1");

        let trusted = TestHub::start(|c| c.trusted_proxies = "127.0.0.1".into()).await;
        let mut client = WsClient::try_connect(
            &trusted.ws_url("/ws?user=a"),
            &[("x-forwarded-for", "198.51.100.1, 203.0.113.7")],
        )
        .await
        .unwrap();
        client.recv_type("welcome", ms(5000)).await;
        let (_admin, snapshot) = trusted.admin("").await;
        assert_eq!(snapshot["sessions"][0]["ip"], "203.0.113.7");
    })
    .await;
}

#[tokio::test]
async fn health_and_readiness_answer() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let health = reqwest::get(hub.http("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = reqwest::get(hub.http("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200);
        let missing = reqwest::get(hub.http("/no/such/route")).await.unwrap();
        assert_eq!(missing.status(), 404);
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    })
    .await;
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let client = reqwest::Client::new();
        for path in ["/", "/healthz", "/readyz"] {
            let get = client.get(hub.http(path)).send().await.unwrap();
            let head = client.head(hub.http(path)).send().await.unwrap();
            assert_eq!(head.status(), get.status(), "HEAD {path}");
            assert_eq!(
                head.headers().get("content-type"),
                get.headers().get("content-type"),
                "HEAD {path}"
            );
            assert!(
                head.bytes().await.unwrap().is_empty(),
                "HEAD {path} has no body"
            );
            assert!(!get.bytes().await.unwrap().is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn shutdown_terminates_clients_with_1001_and_ends_sessions() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        let started = std::time::Instant::now();
        let shutdown = tokio::spawn(hub.shutdown());
        let terminated = client.recv_type("terminated", ms(3000)).await;
        assert_eq!(terminated["reason"], "shutdown");
        assert_eq!(client.recv_close(ms(3000)).await, Some(1001));
        shutdown.await.unwrap();
        assert!(started.elapsed() < ms(5000));
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            vec![0xff, 0xfe, 0x22],
            tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        );
        client
            .socket
            .send(tokio_tungstenite::tungstenite::Message::Frame(frame))
            .await
            .unwrap();
        assert_eq!(client.recv_close(ms(5000)).await, Some(1007));
        let ended = admin_session_event(&mut admin, ms(5000), "ended", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "policy");
    })
    .await;
}
