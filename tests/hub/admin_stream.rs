//! The admin stream of contract section 5.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, admin_session_event, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_snapshot_covers_live_sessions_and_users() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_a1, _) = hub.welcomed_client("alice").await;
        let (_a2, _) = hub.welcomed_client("alice").await;
        let (_b, _) = hub.welcomed_client("bob").await;
        let (_admin, snapshot) = hub.admin("").await;
        assert_eq!(snapshot["seq"], 0);
        assert_eq!(snapshot["node_id"], "test-node");
        assert!(snapshot["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(snapshot["sessions"].as_array().unwrap().len(), 3);
        let users = snapshot["users"].as_array().unwrap();
        let alice = users.iter().find(|u| u["user_id"] == "alice").unwrap();
        assert_eq!(alice["session_count"], 2);
        assert_eq!(alice["status"], "active");
        for key in [
            "user_id",
            "name",
            "org",
            "status",
            "manual",
            "session_count",
            "online_since",
            "last_activity",
        ] {
            assert!(alice.get(key).is_some(), "user has {key}");
        }
        let session = &snapshot["sessions"][0];
        for key in [
            "session_id",
            "user_id",
            "name",
            "org",
            "node_id",
            "transport",
            "status",
            "manual",
            "connected_at",
            "last_activity",
            "page",
            "ip",
            "user_agent",
            "device",
            "app",
            "meta",
            "ended_at",
            "end_cause",
            "duration_s",
        ] {
            assert!(session.get(key).is_some(), "session has {key}");
        }
    })
    .await;
}

#[tokio::test]
async fn events_are_numbered_without_gaps_and_users_aggregate_tabs() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (tab1, _) = hub.welcomed_client("alice").await;
        let (tab2, _) = hub.welcomed_client("alice").await;
        tab1.close().await;
        tab2.close().await;
        let mut events = Vec::new();
        while events.len() < 8 {
            events.push(admin.next_json(ms(3000)).await.expect("event"));
        }
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
        let users: Vec<(String, u64)> = events
            .iter()
            .filter(|e| e["type"] == "user")
            .map(|e| {
                (
                    e["user"]["status"].as_str().unwrap().to_string(),
                    e["user"]["session_count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            users,
            vec![
                ("active".into(), 1),
                ("active".into(), 2),
                ("active".into(), 1),
                ("offline".into(), 0)
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn an_org_filtered_stream_sees_only_its_org_and_numbers_only_what_it_gets() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_other, _) = hub.welcomed_client("zed").await;
        let (mut acme_admin, snapshot) = hub.admin("?org=acme").await;
        assert!(snapshot["sessions"].as_array().unwrap().is_empty());
        let (_x, _) = hub.welcomed_client("x&org=other").await;
        let mut acme = WsClient::connect(&hub.ws_url("/ws?user=ann&org=acme")).await;
        acme.recv_type("welcome", ms(5000)).await;
        let first = acme_admin.next_json(ms(5000)).await.unwrap();
        assert_eq!(first["seq"], 1);
        assert_eq!(first["session"]["org"], "acme");
        let second = acme_admin.next_json(ms(5000)).await.unwrap();
        assert_eq!(second["seq"], 2);
        assert_eq!(second["user"]["user_id"], "ann");
        let quiet = acme_admin.collect_for(ms(300)).await;
        assert!(quiet.is_empty(), "nothing from other orgs: {quiet:?}");
    })
    .await;
}

#[tokio::test]
async fn activity_updates_are_coalesced_to_one_per_second_with_the_latest_value() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, welcome) = hub.welcomed_client("alice").await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let (mut admin, _) = hub.admin("").await;
        let mut last_pong_ts = String::new();
        for i in 0..25 {
            client.send_json(json!({"type": "ping", "id": i})).await;
            last_pong_ts = client.recv_type("pong", ms(3000)).await["ts"]
                .as_str()
                .unwrap()
                .to_string();
            tokio::time::sleep(ms(100)).await;
        }
        // 2.5 s of pings at 10/s: at most one update per second, plus the trailing one.
        let frames = admin.collect_for(ms(1300)).await;
        let updates: Vec<&Value> = frames
            .iter()
            .filter(|f| f["type"] == "session" && f["session"]["session_id"] == id.as_str())
            .collect();
        assert!(
            (2..=4).contains(&updates.len()),
            "{} updates: {updates:?}",
            updates.len()
        );
        let last = updates.last().unwrap()["session"]["last_activity"]
            .as_str()
            .unwrap()
            .to_string();
        let last_ms = chrono::DateTime::parse_from_rfc3339(&last).unwrap();
        let pong_ms = chrono::DateTime::parse_from_rfc3339(&last_pong_ts).unwrap();
        assert!(
            (pong_ms - last_ms).num_milliseconds().abs() <= 5,
            "latest activity {last} delivered (last pong {last_pong_ts})"
        );
    })
    .await;
}

#[tokio::test]
async fn a_slow_admin_subscriber_is_closed_with_4009_not_skipped() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.admin_queue = 1024).await;
        // An admin socket with a tiny receive buffer that never reads.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(hub.addr).await.unwrap();
        let (slow, _) = tokio_tungstenite::client_async(
            hub.ws_url("/admin/ws"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        let mut slow = WsClient {
            socket: slow,
            close_code: None,
        };
        let (mut healthy, _) = hub.admin("").await;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            let mut seqs = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => return (seqs, healthy.close_code),
                    frame = healthy.next_json(ms(20_000)) => match frame {
                        Some(frame) => seqs.push(frame["seq"].as_u64().unwrap()),
                        None => return (seqs, healthy.close_code),
                    },
                }
            }
        });
        let meta: serde_json::Map<String, Value> = (0..10)
            .map(|i| (format!("k{i}"), json!("x".repeat(90))))
            .collect();
        let mut clients = Vec::new();
        for i in 0..60 {
            let (client, _) = hub.welcomed_client(&format!("u{i}")).await;
            clients.push(client);
        }
        // Each toggle is a session and a user event with ~1.5 KiB of metadata.
        for round in 0..50 {
            for client in &mut clients {
                let manual = if round % 2 == 0 {
                    json!("busy")
                } else {
                    Value::Null
                };
                client
                    .send_json(json!({"type": "hello", "meta": meta.clone()}))
                    .await;
                client
                    .send_json(json!({"type": "status", "manual": manual}))
                    .await;
            }
            tokio::time::sleep(ms(40)).await;
        }
        let code = slow.recv_close(ms(10_000)).await;
        assert_eq!(code, Some(4009));
        // The subscriber that keeps up was never closed and saw every seq in order.
        tokio::time::sleep(ms(300)).await;
        let _ = stop.send(());
        let (seqs, close_code) = reader.await.unwrap();
        assert_eq!(close_code, None, "a reading admin is not closed");
        assert!(seqs.len() > 500, "{} events", seqs.len());
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test]
async fn the_oldest_session_is_terminated_over_the_per_user_limit() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.max_sessions_per_user = 2).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut first, w1) = hub.welcomed_client("alice").await;
        let (_second, _) = hub.welcomed_client("alice").await;
        let (_third, _) = hub.welcomed_client("alice").await;
        let terminated = first.recv_type("terminated", ms(5000)).await;
        assert_eq!(terminated["reason"], "session_limit");
        assert_eq!(first.recv_close(ms(5000)).await, Some(4008));
        let id = w1["session_id"].as_str().unwrap().to_string();
        let ended = admin_session_event(&mut admin, ms(5000), "limit end", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "session_limit");
        let (_other_user, _) = hub.welcomed_client("bob").await;
    })
    .await;
}

#[tokio::test]
async fn a_snapshot_larger_than_a_megabyte_is_delivered() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let meta: serde_json::Map<String, Value> = (0..10)
            .map(|i| (format!("k{i}"), json!("m".repeat(90))))
            .collect();
        let client = reqwest::Client::new();
        let url = hub.http("/api/v1/heartbeat?user=bulk");
        let opens = (0..900).map(|_| {
            let client = client.clone();
            let url = url.clone();
            let meta = meta.clone();
            async move {
                let response = client
                    .post(url)
                    .json(&json!({"active": true, "meta": meta}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        });
        futures_util::future::join_all(opens).await;
        let (mut admin, snapshot) = hub.admin("").await;
        assert_eq!(snapshot["sessions"].as_array().unwrap().len(), 900);
        assert!(
            snapshot.to_string().len() > 1024 * 1024,
            "the snapshot is over 1 MiB"
        );
        let (_late, _) = hub.welcomed_client("late").await;
        admin_session_event(
            &mut admin,
            ms(5000),
            "events after a big snapshot",
            |e, s| e == "started" && s["user_id"] == "late",
        )
        .await;
    })
    .await;
}
