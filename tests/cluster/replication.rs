//! Propagation between nodes, late joiners, cross-node commands, history.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{RedisServer, admin_session_event, eventually, ms, unique_namespace, within};
use crate::{node, pair};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn start_update_manual_and_end_reach_the_other_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "propagate").await;
        let (mut admin_b, _) = b.admin("").await;
        let (mut client, id) = a.client("user=alice&org=acme").await;
        let started = admin_session_event(&mut admin_b, ms(5000), "started on b", |e, s| {
            e == "started" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(started["session"]["node_id"], "node-a");
        let user = admin_b
            .recv_until(ms(5000), "user on b", |v| v["type"] == "user")
            .await;
        assert_eq!(user["user"]["session_count"], 1);

        let sent = Instant::now();
        client
            .send_json(json!({"type": "status", "manual": "busy"}))
            .await;
        admin_session_event(&mut admin_b, ms(5000), "busy on b", |_, s| {
            s["manual"] == "busy"
        })
        .await;
        assert!(
            sent.elapsed() < ms(1000),
            "cross-node change took {:?}",
            sent.elapsed()
        );

        let (_, users) = b.get("/api/v1/users").await;
        assert_eq!(
            users["users"][0]["user_id"], "alice",
            "b's API includes a's sessions"
        );
        let (_, stats) = b.get("/api/v1/stats").await;
        assert_eq!(stats["by_node"], json!({"node-a": 1}));

        client.close().await;
        let ended =
            admin_session_event(&mut admin_b, ms(5000), "ended on b", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "client_closed");
        let (_, history) = eventually(ms(5000), "history in redis", || async {
            let found = b.get(&format!("/api/v1/sessions/{id}")).await;
            (found.0 == 200).then_some(found)
        })
        .await;
        assert_eq!(history["end_cause"], "client_closed");
    })
    .await;
}

#[tokio::test]
async fn a_late_node_bootstraps_the_whole_view_before_it_is_ready() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, namespace) = pair(&redis, "late").await;
        let (_c1, id1) = a.client("user=alice").await;
        let (_c2, id2) = b.client("user=bob").await;
        let (admin_b, _) = b.admin("").await;
        drop(admin_b);
        eventually(ms(5000), "both sessions on a", || async {
            (a.get("/api/v1/sessions").await.1["total"] == 2).then_some(())
        })
        .await;
        let c = node(&redis, &namespace, "node-c", &[]).await;
        let (_admin, snapshot) = c.admin("").await;
        let mut ids: Vec<&str> = snapshot["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut expected = vec![id1.as_str(), id2.as_str()];
        expected.sort();
        assert_eq!(ids, expected);
    })
    .await;
}

#[tokio::test]
async fn terminate_and_revoke_work_from_any_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "terminate").await;
        let (mut on_a, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        let started = Instant::now();
        let response = reqwest::Client::new()
            .delete(b.http(&format!("/api/v1/sessions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap(),
            json!({"terminated": true})
        );
        assert_eq!(
            on_a.recv_type("terminated", ms(1000)).await["reason"],
            "admin"
        );
        assert_eq!(on_a.recv_close(ms(1000)).await, Some(4003));
        assert!(started.elapsed() < ms(1000));
        let missing = reqwest::Client::new()
            .delete(b.http("/api/v1/sessions/00000000-0000-4000-8000-000000000000"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);

        let (mut t1, _) = a.client("user=bob").await;
        let (mut t2, _) = b.client("user=bob").await;
        eventually(ms(5000), "both of bob's sessions on a", || async {
            (a.get("/api/v1/sessions?user_id=bob").await.1["total"] == 2).then_some(())
        })
        .await;
        let response = reqwest::Client::new()
            .delete(a.http("/api/v1/users/bob/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap(),
            json!({"terminated": 2})
        );
        for tab in [&mut t1, &mut t2] {
            assert_eq!(
                tab.recv_type("terminated", ms(2000)).await["reason"],
                "revoked"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn an_http_heartbeat_is_accepted_by_any_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "heartbeat").await;
        let client = reqwest::Client::new();
        let created: serde_json::Value = client
            .post(a.http("/api/v1/heartbeat?user=script"))
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["session_id"].as_str().unwrap().to_string();
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        let via_b = client
            .post(b.http("/api/v1/heartbeat?user=script"))
            .json(&json!({"session_id": id, "active": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(via_b.status(), 200);
        let other_user = client
            .post(b.http("/api/v1/heartbeat?user=mallory"))
            .json(&json!({"session_id": id, "active": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(other_user.status(), 404);
    })
    .await;
}

#[tokio::test]
async fn the_session_limit_holds_across_nodes() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("limit");
        let a = node(
            &redis,
            &namespace,
            "node-a",
            &[("PRESENCE_MAX_SESSIONS_PER_USER", "1")],
        )
        .await;
        let b = node(
            &redis,
            &namespace,
            "node-b",
            &[("PRESENCE_MAX_SESSIONS_PER_USER", "1")],
        )
        .await;
        let (mut first, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        let (_second, _) = b.client("user=alice").await;
        assert_eq!(
            first.recv_type("terminated", ms(3000)).await["reason"],
            "session_limit"
        );
        assert_eq!(first.recv_close(ms(3000)).await, Some(4008));
    })
    .await;
}

#[tokio::test]
async fn two_namespaces_on_one_redis_stay_apart() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let blue = node(&redis, &unique_namespace("blue"), "node-a", &[]).await;
        let green = node(&redis, &unique_namespace("green"), "node-a", &[]).await;
        let (_client, _) = blue.client("user=alice").await;
        eventually(ms(5000), "blue sees it", || async {
            (blue.get("/api/v1/sessions").await.1["total"] == 1).then_some(())
        })
        .await;
        tokio::time::sleep(ms(500)).await;
        assert_eq!(green.get("/api/v1/sessions").await.1["total"], 0);
    })
    .await;
}

#[tokio::test]
async fn a_clean_shutdown_ends_sessions_as_shutdown_on_other_nodes_within_a_second() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (mut a, b, _) = pair(&redis, "shutdown").await;
        let (_client, id) = a.client("user=alice").await;
        let (mut admin_b, _) = b.admin("").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        let stopped = Instant::now();
        a.signal(15);
        let ended = admin_session_event(&mut admin_b, ms(3000), "shutdown end", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "shutdown");
        assert!(
            stopped.elapsed() < ms(1000),
            "visible after {:?}",
            stopped.elapsed()
        );
        assert_eq!(a.child.wait().await.unwrap().code(), Some(0));
    })
    .await;
}

#[tokio::test]
async fn history_survives_restarting_every_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (mut a, mut b, namespace) = pair(&redis, "history").await;
        let (client, id) = a.client("user=alice").await;
        client.close().await;
        eventually(ms(5000), "recorded", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        a.signal(15);
        b.signal(15);
        a.child.wait().await.unwrap();
        b.child.wait().await.unwrap();
        let fresh = node(&redis, &namespace, "node-z", &[]).await;
        let (status, session) = fresh.get(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(session["end_cause"], "client_closed");
        let (_, ended) = fresh.get("/api/v1/sessions?status=ended").await;
        assert_eq!(ended["total"], 1, "recorded once, not once per node");
    })
    .await;
}

#[tokio::test]
async fn rediss_with_a_password_replicates_too() {
    within(LIMIT, async {
        let redis = RedisServer::start_tls("s3cret-pass").await;
        let (a, b, _) = pair(&redis, "tls").await;
        let (_client, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica over TLS", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
    })
    .await;
}
