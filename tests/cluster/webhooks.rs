//! Webhooks and alerts in a cluster: each event is delivered once, by the
//! node owning the session that caused it, and an alert is raised once, by
//! the node owning the session that completes its condition.

use std::collections::HashMap;
use std::time::Duration;

use crate::node;
use crate::support::receiver::Receiver;
use crate::support::{RedisServer, eventually, ms, unique_namespace, within};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn each_event_is_delivered_once_by_the_owning_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let receiver = Receiver::start(vec![]).await;
        let namespace = unique_namespace("webhooks");
        let url = receiver.url();
        let env = [
            ("PRESENCE_WEBHOOK_URLS", url.as_str()),
            ("PRESENCE_WEBHOOK_SECRET", "cluster-secret"),
            ("PRESENCE_ALERT_SESSION_FLOOD_MIN", "2"),
        ];
        let a = node(&redis, &namespace, "node-a", &env).await;
        let b = node(&redis, &namespace, "node-b", &env).await;
        let (on_a, _) = a.client("user=alice").await;
        eventually(ms(5000), "alice's session on b", || async {
            let (_, users) = b.get("/api/v1/users").await;
            (users["total"] == 1).then_some(())
        })
        .await;
        let (on_b, _) = b.client("user=alice").await;
        // Both nodes see both sessions before they end: the rule is about
        // the cluster-wide view (see docs/protocol.md for the window in
        // which two nodes' views may still differ).
        for hub in [&a, &b] {
            eventually(ms(5000), "both sessions on each node", || async {
                let (_, users) = hub.get("/api/v1/users").await;
                (users["users"][0]["session_count"] == 2).then_some(())
            })
            .await;
        }
        on_b.close().await;
        on_a.close().await;
        let by_type = |events: &[serde_json::Value]| {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for event in events {
                *counts
                    .entry(event["type"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            counts
        };
        eventually(ms(10_000), "every event", || async {
            let counts = by_type(&receiver.events());
            (counts.get("user.offline") >= Some(&1) && counts.get("session.ended") >= Some(&2))
                .then_some(())
        })
        .await;
        // Past one more batch window, nothing is sent twice.
        tokio::time::sleep(ms(1500)).await;
        let events = receiver.events();
        let counts = by_type(&events);
        assert_eq!(counts.get("session.started"), Some(&2), "{events:?}");
        assert_eq!(counts.get("user.online"), Some(&1), "{events:?}");
        assert_eq!(counts.get("session.ended"), Some(&2), "{events:?}");
        assert_eq!(counts.get("user.offline"), Some(&1), "{events:?}");
        assert_eq!(counts.get("alert"), Some(&1), "raised once: {events:?}");
        let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), events.len(), "no event twice");
        // b's session completed the flood: b raised it (and sent it, once,
        // above); a lists the same alert, replicated.
        let (_, on_b) = b.get("/api/v1/alerts?rule=session_flood").await;
        assert_eq!(on_b["total"], 1);
        let raised = on_b["alerts"][0]["id"].clone();
        eventually(ms(5000), "the alert listed on a", || async {
            let (_, on_a) = a.get("/api/v1/alerts?rule=session_flood").await;
            (on_a["total"] == 1 && on_a["alerts"][0]["id"] == raised).then_some(())
        })
        .await;
        let (_, status) = a.get("/api/v1/webhooks").await;
        assert_eq!(status["endpoints"][0]["failed"], 0);
    })
    .await;
}
