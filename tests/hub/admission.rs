//! Admission control (contract v1.1 section 13): open-socket limits per
//! node and per client IP, head and upgrade timeouts, and refusing new
//! connections near the file-descriptor limit.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{HubProcess, Refused, TestHub, WsClient, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

/// The JSON error code of a refused upgrade, checking the 503 shape.
fn overload_code(refused: &Refused) -> String {
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused
            .retry_after
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "Retry-After in whole seconds, at least 1: {refused:?}"
    );
    let body: Value = serde_json::from_str(&refused.body).expect("JSON error body");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().unwrap().to_string()
}

async fn refused(url: &str, headers: &[(&str, &str)]) -> Refused {
    match WsClient::try_connect(url, headers).await {
        Ok(_) => panic!("{url} was admitted"),
        Err(refused) => refused,
    }
}

#[tokio::test]
async fn websockets_over_the_node_limit_get_503_and_the_count_falls_when_one_closes() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.max_connections = 2).await;
        let (admin, _) = hub.admin("").await;
        let (alice, _) = hub.welcomed_client("alice").await;
        let code = overload_code(&refused(&hub.ws_url("/ws?user=bob"), &[]).await);
        assert_eq!(code, "connection_limit");
        let code = overload_code(&refused(&hub.ws_url("/admin/ws"), &[]).await);
        assert_eq!(code, "connection_limit", "the admin stream counts too");
        let metrics = reqwest::get(hub.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(r#"presence_admission_refusals_total{code="connection_limit"} 2"#),
            "{metrics}"
        );
        alice.close().await;
        let url = hub.ws_url("/ws?user=bob");
        let mut bob = eventually(ms(5000), "a place after a close", || {
            let url = url.clone();
            async move { WsClient::try_connect(&url, &[]).await.ok() }
        })
        .await;
        bob.recv_type("welcome", ms(2000)).await;
        drop(admin);
        let admin_url = hub.ws_url("/admin/ws");
        eventually(ms(5000), "a place after the admin left", || {
            let url = admin_url.clone();
            async move { WsClient::try_connect(&url, &[]).await.ok() }
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_per_ip_limit_counts_the_client_ip_behind_a_trusted_proxy() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.max_connections_per_ip = 2;
            c.trusted_proxies = "127.0.0.1".into();
        })
        .await;
        let from = |ip: &'static str| [("x-forwarded-for", ip)];
        let url = hub.ws_url("/ws?user=alice");
        let _a1 = WsClient::try_connect(&url, &from("203.0.113.1"))
            .await
            .unwrap();
        let _a2 = WsClient::try_connect(&hub.ws_url("/admin/ws"), &from("203.0.113.1"))
            .await
            .unwrap();
        let code = overload_code(&refused(&url, &from("203.0.113.1")).await);
        assert_eq!(code, "ip_connection_limit");
        let mut other = WsClient::try_connect(&url, &from("203.0.113.2"))
            .await
            .expect("another IP has its own count");
        other.recv_type("welcome", ms(2000)).await;
    })
    .await;
}

#[tokio::test]
async fn a_socket_that_ends_for_any_reason_gives_its_place_back() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.max_connections_per_ip = 1).await;
        let url = hub.ws_url("/ws?user=alice");
        // Closed by the hub for flooding (1008).
        let (mut flood, _) = hub.welcomed_client("alice").await;
        for i in 0..150 {
            flood.send_json(json!({"type": "ping", "id": i})).await;
        }
        assert_eq!(flood.recv_close(ms(3000)).await, Some(1008));
        // Terminated by an admin (4003).
        let mut second = eventually(ms(5000), "a place after the policy close", || {
            let url = url.clone();
            async move { WsClient::try_connect(&url, &[]).await.ok() }
        })
        .await;
        let welcome = second.recv_type("welcome", ms(2000)).await;
        let id = welcome["session_id"].as_str().unwrap();
        let deleted = reqwest::Client::new()
            .delete(hub.http(&format!("/api/v1/sessions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200);
        assert_eq!(second.recv_close(ms(3000)).await, Some(4003));
        // Dropped without a close frame.
        let third = eventually(ms(5000), "a place after the terminate", || {
            let url = url.clone();
            async move { WsClient::try_connect(&url, &[]).await.ok() }
        })
        .await;
        drop(third);
        eventually(ms(5000), "a place after a dropped TCP connection", || {
            let url = url.clone();
            async move { WsClient::try_connect(&url, &[]).await.ok() }
        })
        .await;
    })
    .await;
}

/// Reads until EOF or reset; `true` when the hub closed the connection.
async fn closed_by_hub(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

#[tokio::test]
async fn a_connection_that_does_not_finish_its_request_head_is_closed() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.handshake_timeout = ms(1000)).await;
        let mut silent = TcpStream::connect(hub.addr).await.unwrap();
        let mut slow = TcpStream::connect(hub.addr).await.unwrap();
        slow.write_all(b"GET /ws?user=alice HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        assert!(closed_by_hub(&mut silent, ms(5000)).await, "no head at all");
        assert!(
            closed_by_hub(&mut slow, ms(5000)).await,
            "a head never ended"
        );
        let (mut fine, _) = hub.welcomed_client("bob").await;
        fine.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(fine.recv_type("pong", ms(2000)).await["id"], 1);
    })
    .await;
}

#[tokio::test]
async fn near_the_descriptor_limit_new_connections_get_503_and_held_ones_go_on() {
    within(Duration::from_secs(60), async {
        // 64 descriptors: the hub keeps 32 back, so at most 32 connections.
        let hub = HubProcess::start_with_nofile(&[], 64).await;
        let (mut first, _) = hub.client("user=first").await;
        let mut held = Vec::new();
        let mut refusal = None;
        for i in 0..64 {
            match WsClient::try_connect(&hub.ws_url(&format!("/ws?user=u{i}")), &[]).await {
                Ok(client) => held.push(client),
                Err(refused) => {
                    refusal = Some(refused);
                    break;
                }
            }
        }
        let refusal = refusal.expect("refused before the descriptors ran out");
        assert_eq!(overload_code(&refusal), "fd_limit");
        assert!(held.len() < 40, "{} held", held.len());
        let health = reqwest::get(hub.http("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200, "probes are still answered");
        let api = reqwest::get(hub.http("/api/v1/stats")).await.unwrap();
        assert_eq!(api.status(), 503);
        first.send_json(json!({"type": "ping", "id": 7})).await;
        assert_eq!(
            first.recv_type("pong", ms(3000)).await["id"],
            7,
            "held connections are served"
        );
        for client in held.drain(..4) {
            client.close().await;
        }
        let url = hub.ws_url("/ws?user=later");
        eventually(ms(5000), "admitted again after closes", || {
            let url = url.clone();
            async move { WsClient::try_connect(&url, &[]).await.ok() }
        })
        .await;
    })
    .await;
}
