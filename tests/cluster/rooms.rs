//! Rooms across nodes (contract v1.1 §8): membership is computed on every
//! node from the replicated sessions, so a watcher on one node sees members
//! on another.

use std::time::Duration;

use serde_json::{Value, json};

use crate::pair;
use crate::support::{RedisServer, WsClient, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

async fn room_frame(ws: &mut WsClient, room: &str) -> Value {
    ws.recv_until(ms(5000), &format!("a frame of {room}"), |v| {
        (v["type"] == "room" || v["type"] == "presence") && v["room"] == room
    })
    .await
}

fn only_change(frame: &Value) -> (String, Value) {
    assert_eq!(frame["type"], "presence", "{frame}");
    let changes = frame["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{frame}");
    (
        changes[0]["event"].as_str().unwrap().to_string(),
        changes[0]["member"].clone(),
    )
}

#[tokio::test]
async fn a_member_on_one_node_is_seen_by_a_watcher_on_another() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "rooms").await;
        let (mut watcher, _) = b.client("user=walt").await;
        watcher
            .send_json(json!({"type": "watch", "room": "doc:x"}))
            .await;
        let snapshot = room_frame(&mut watcher, "doc:x").await;
        assert_eq!(snapshot["type"], "room");
        assert_eq!(snapshot["members"], json!([]));

        let (mut alice, _) = a.client("user=alice&name=Alice&page=/x").await;
        alice
            .send_json(json!({"type": "join", "room": "doc:x"}))
            .await;
        let own = room_frame(&mut alice, "doc:x").await;
        assert_eq!(own["members"][0]["user_id"], "alice");

        let frame = room_frame(&mut watcher, "doc:x").await;
        assert_eq!(frame["seq"], 1);
        let (event, member) = only_change(&frame);
        assert_eq!(event, "join");
        assert_eq!(member["user_id"], "alice");
        assert_eq!(member["page"], "/x");

        alice
            .send_json(json!({"type": "status", "manual": "busy"}))
            .await;
        let frame = room_frame(&mut watcher, "doc:x").await;
        assert_eq!(frame["seq"], 2);
        let (event, member) = only_change(&frame);
        assert_eq!(
            (event.as_str(), &member["manual"]),
            ("update", &json!("busy"))
        );

        let (status, room) = b.get("/api/v1/rooms/doc%3Ax").await;
        assert_eq!(status, 200);
        assert_eq!(room["members"][0]["user_id"], "alice");
        let (_, session) = b.get("/api/v1/users/alice").await;
        assert_eq!(session["sessions"][0]["rooms"], json!(["doc:x"]));

        alice.close().await;
        let frame = room_frame(&mut watcher, "doc:x").await;
        assert_eq!(frame["seq"], 3);
        assert_eq!(only_change(&frame).0, "leave");
        eventually(ms(5000), "the room gone on b", || async {
            (b.get("/api/v1/rooms/doc%3Ax").await.0 == 404).then_some(())
        })
        .await;
    })
    .await;
}

/// `presence_replication_deltas_total{direction="out"}` of a node.
async fn deltas_out(node: &crate::support::HubProcess) -> u64 {
    let text = reqwest::get(node.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(r#"presence_replication_deltas_total{direction="out"}"#))
        .and_then(|l| l.split_whitespace().nth(1))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn redis_traffic_follows_status_changes_not_watchers() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "rooms-traffic").await;
        let (mut alice, _) = a.client("user=alice").await;
        alice
            .send_json(json!({"type": "join", "room": "doc:t"}))
            .await;
        room_frame(&mut alice, "doc:t").await;
        let mut watchers = Vec::new();
        for i in 0..5 {
            let (mut watcher, _) = b.client(&format!("user=w{i}")).await;
            watcher
                .send_json(json!({"type": "watch", "room": "doc:t"}))
                .await;
            // Alice is in the snapshot, or joins right after it.
            loop {
                let frame = room_frame(&mut watcher, "doc:t").await;
                let members = frame["members"].as_array().map_or(0, Vec::len);
                if members == 1 || frame["type"] == "presence" {
                    break;
                }
            }
            watchers.push(watcher);
        }
        let (a_before, b_before) = (deltas_out(&a).await, deltas_out(&b).await);
        for i in 0..10 {
            let manual = if i % 2 == 0 {
                json!("busy")
            } else {
                Value::Null
            };
            alice
                .send_json(json!({"type": "status", "manual": manual}))
                .await;
            for watcher in &mut watchers {
                let frame = room_frame(watcher, "doc:t").await;
                assert_eq!(only_change(&frame).1["manual"], manual);
            }
        }
        let a_sent = deltas_out(&a).await - a_before;
        assert!(
            (10..=12).contains(&a_sent),
            "one delta per change, whatever the watchers: {a_sent}"
        );
        assert_eq!(deltas_out(&b).await, b_before, "watching publishes nothing");
    })
    .await;
}
