//! Resume across the cluster (contract v1.1 §9): a tab whose socket was on
//! one node resumes its session on another, which becomes its owner; no
//! `ended`, no `started`, the user never goes offline, and the end comes
//! once, from the new owner.

use std::time::Duration;

use serde_json::Value;

use crate::node;
use crate::support::{
    RedisServer, WsClient, admin_session_event, eventually, ms, unique_namespace, within,
};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_session_resumed_on_another_node_moves_there() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("resume");
        let grace = [
            ("PRESENCE_RESUME_GRACE", "5s"),
            ("PRESENCE_RECONNECT_SPREAD", "1s"),
        ];
        let a = node(&redis, &namespace, "node-a", &grace).await;
        let b = node(&redis, &namespace, "node-b", &grace).await;
        let (mut admin_a, _) = a.admin("").await;
        let (mut admin_b, _) = b.admin("").await;

        let mut tab = WsClient::connect(&a.ws_url("/ws?user=alice")).await;
        let welcome = tab.recv_type("welcome", ms(5000)).await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        admin_session_event(&mut admin_b, ms(5000), "started on b", |e, s| {
            e == "started" && s["session_id"] == id.as_str()
        })
        .await;
        tab.close().await;
        admin_session_event(&mut admin_b, ms(5000), "reconnecting on b", |e, s| {
            e == "updated" && s["reconnecting"] == true
        })
        .await;

        let mut back =
            WsClient::connect(&b.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(5000)).await;
        assert_eq!(again["resumed"], true, "{again}");
        assert_eq!(again["session_id"], id.as_str());
        assert_eq!(again["node_id"], "node-b");
        for admin in [&mut admin_a, &mut admin_b] {
            let moved = admin_session_event(admin, ms(5000), "moved to node-b", |e, s| {
                e == "updated" && s["node_id"] == "node-b" && s["reconnecting"] == false
            })
            .await;
            assert_eq!(moved["session"]["session_id"], id.as_str());
        }
        let (_, stats) = a.get("/api/v1/stats").await;
        assert_eq!(
            stats["by_node"],
            serde_json::json!({"node-b": 1}),
            "one owner"
        );
        back.send_json(serde_json::json!({"type": "ping", "id": 1}))
            .await;
        assert_eq!(back.recv_type("pong", ms(5000)).await["id"], 1);

        // The session is really node-b's now: a's restart-free view agrees,
        // and ending it on b ends it once, everywhere.
        back.send_json(serde_json::json!({"type": "end"})).await;
        assert_eq!(back.recv_close(ms(5000)).await, Some(1000));
        for admin in [&mut admin_a, &mut admin_b] {
            let frames: Vec<Value> = admin.collect_for(ms(1500)).await;
            let ended: Vec<&Value> = frames
                .iter()
                .filter(|f| f["type"] == "session" && f["event"] == "ended")
                .collect();
            assert_eq!(ended.len(), 1, "{frames:?}");
            assert_eq!(ended[0]["session"]["end_cause"], "client_closed");
            assert!(
                !frames.iter().any(|f| f["event"] == "started"),
                "{frames:?}"
            );
        }
        let (_, history) = eventually(ms(5000), "history of the moved session", || async {
            let found = a.get(&format!("/api/v1/sessions/{id}")).await;
            (found.0 == 200 && found.1["status"] == "ended").then_some(found)
        })
        .await;
        assert_eq!(history["node_id"], "node-b");
    })
    .await;
}

#[tokio::test]
async fn a_resume_on_another_node_while_the_old_socket_is_open_closes_it_with_4003() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("takeover");
        let grace = [
            ("PRESENCE_RESUME_GRACE", "5s"),
            ("PRESENCE_RECONNECT_SPREAD", "1s"),
        ];
        let a = node(&redis, &namespace, "node-a", &grace).await;
        let b = node(&redis, &namespace, "node-b", &grace).await;
        let (mut admin_b, _) = b.admin("").await;
        let mut old = WsClient::connect(&a.ws_url("/ws?user=alice")).await;
        let welcome = old.recv_type("welcome", ms(5000)).await;
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        // b finds the session's owner in its replica of a.
        admin_session_event(&mut admin_b, ms(5000), "started on b", |e, _| {
            e == "started"
        })
        .await;

        // Another user's attempt on b is a new session and changes nothing.
        let mut bob = WsClient::connect(&b.ws_url(&format!("/ws?user=bob&resume={token}"))).await;
        assert_eq!(bob.recv_type("welcome", ms(5000)).await["resumed"], false);

        let mut new = WsClient::connect(&b.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = new.recv_type("welcome", ms(5000)).await;
        assert_eq!(again["resumed"], true);
        assert_eq!(again["session_id"], welcome["session_id"]);
        assert_eq!(old.next_json(ms(5000)).await, None, "no terminated frame");
        assert_eq!(old.close_code, Some(4003));
    })
    .await;
}

#[tokio::test]
async fn a_node_that_shuts_down_hands_its_tabs_to_another_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("handon");
        let grace = [
            ("PRESENCE_RESUME_GRACE", "3s"),
            ("PRESENCE_RECONNECT_SPREAD", "1s"),
        ];
        let mut a = node(&redis, &namespace, "node-a", &grace).await;
        let b = node(&redis, &namespace, "node-b", &grace).await;
        let (mut admin_b, _) = b.admin("").await;

        let mut tab = WsClient::connect(&a.ws_url("/ws?user=alice")).await;
        let welcome = tab.recv_type("welcome", ms(5000)).await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        let mut gone = WsClient::connect(&a.ws_url("/ws?user=bob")).await;
        let bob = gone.recv_type("welcome", ms(5000)).await["session_id"]
            .as_str()
            .unwrap()
            .to_string();
        for session in [&id, &bob] {
            admin_session_event(&mut admin_b, ms(5000), "started on b", |e, s| {
                e == "started" && s["session_id"] == session.as_str()
            })
            .await;
        }

        let stopped = std::time::Instant::now();
        a.signal(15);
        let terminated = tab.recv_type("terminated", ms(3000)).await;
        assert_eq!(terminated["reason"], "shutdown");
        let retry = terminated["retry_after_ms"].as_u64().unwrap();
        assert!(retry <= 1000, "{retry}");
        assert_eq!(tab.recv_close(ms(3000)).await, Some(1001));
        let status = tokio::time::timeout(ms(5000), a.child.wait())
            .await
            .expect("node-a exits within 5 s")
            .unwrap();
        assert_eq!(status.code(), Some(0));
        assert!(stopped.elapsed() < ms(5000));

        // Both sessions live on, reconnecting, owned by node-b.
        let (_, sessions) = b.get("/api/v1/sessions").await;
        let listed = sessions["sessions"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{sessions}");
        for session in listed {
            assert_eq!(session["node_id"], "node-b", "{session}");
            assert_eq!(session["reconnecting"], true, "{session}");
        }

        let mut back =
            WsClient::connect(&b.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(5000)).await;
        assert_eq!(again["resumed"], true, "{again}");
        assert_eq!(again["session_id"], id.as_str());

        // Bob's tab never came back: node-b ends it when the grace passes,
        // once, with cause shutdown at the time of the shutdown.
        let ended = admin_session_event(&mut admin_b, ms(6000), "bob ended", |e, s| {
            e == "ended" && s["session_id"] == bob.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "shutdown");
        let frames: Vec<Value> = admin_b.collect_for(ms(1000)).await;
        let events = |kind: &str| {
            frames
                .iter()
                .filter(|f| f["type"] == "session" && f["event"] == kind)
                .count()
        };
        assert_eq!(
            events("ended"),
            0,
            "bob's end came once, alice's never: {frames:?}"
        );
        assert_eq!(events("started"), 0, "{frames:?}");
        let (_, alice) = b.get(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(alice["status"], "active", "{alice}");
        assert_eq!(alice["reconnecting"], false);
    })
    .await;
}

#[tokio::test]
async fn a_node_that_shuts_down_hands_more_tabs_than_one_offer_batch_to_the_other_nodes() {
    // 600 sessions: three batches of offers, each to a node picked at
    // random, so both other nodes may take some.
    const TABS: usize = 600;
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("handon-batches");
        let grace = [
            ("PRESENCE_RESUME_GRACE", "30s"),
            ("PRESENCE_RECONNECT_SPREAD", "1s"),
        ];
        let mut a = node(&redis, &namespace, "node-a", &grace).await;
        let b = node(&redis, &namespace, "node-b", &grace).await;
        let _c = node(&redis, &namespace, "node-c", &grace).await;
        let mut tabs = Vec::with_capacity(TABS);
        for i in 0..TABS {
            let mut tab = WsClient::connect(&a.ws_url(&format!("/ws?user=u{i}"))).await;
            tab.recv_type("welcome", ms(5000)).await;
            tabs.push(tab);
        }
        eventually(ms(10_000), "b sees every session of a", || async {
            let (_, listed) = b.get("/api/v1/sessions?page_size=1").await;
            (listed["total"].as_u64() == Some(TABS as u64)).then_some(())
        })
        .await;

        a.signal(15);
        let status = tokio::time::timeout(ms(5000), a.child.wait())
            .await
            .expect("node-a exits within 5 s")
            .unwrap();
        assert_eq!(status.code(), Some(0));

        // Every session lives on, reconnecting, on node-b or node-c.
        let mut listed = Vec::new();
        for page in 1..=2 {
            let (_, sessions) = b
                .get(&format!("/api/v1/sessions?page_size=300&page={page}"))
                .await;
            listed.extend(sessions["sessions"].as_array().unwrap().clone());
        }
        assert_eq!(listed.len(), TABS, "none ended");
        for session in &listed {
            let owner = session["node_id"].as_str().unwrap_or_default();
            assert!(owner == "node-b" || owner == "node-c", "{session}");
            assert_eq!(session["reconnecting"], true, "{session}");
        }
        drop(tabs);
    })
    .await;
}
