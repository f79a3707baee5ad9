//! Alerts across the cluster (§12): an alert raised on one node is listed
//! and pushed on every node, cleared everywhere with the same id, known to
//! a node that starts later, and cleared by the others when its node dies.

use std::time::Duration;

use serde_json::Value;

use crate::node;
use crate::support::{HubProcess, RedisServer, WsClient, ms, unique_namespace, within};

const LIMIT: Duration = Duration::from_secs(60);

const SETTINGS: [(&str, &str); 2] = [
    ("PRESENCE_TRUSTED_PROXIES", "127.0.0.1"),
    ("PRESENCE_ALERT_MULTI_IP_MIN", "2"),
];

/// A tab of `user` on `hub` whose IP the hub takes from `X-Forwarded-For`.
async fn tab_from(hub: &HubProcess, user: &str, ip: &str) -> WsClient {
    let mut tab = WsClient::try_connect(
        &hub.ws_url(&format!("/ws?user={user}")),
        &[("x-forwarded-for", ip)],
    )
    .await
    .unwrap();
    tab.recv_type("welcome", ms(5000)).await;
    tab
}

async fn alert_frame(admin: &mut WsClient, cleared: bool) -> Value {
    admin
        .recv_until(ms(10_000), "a multi_ip alert frame", |v| {
            v["type"] == "alert"
                && v["alert"]["rule"] == "multi_ip"
                && v["alert"]["cleared_at"].is_null() != cleared
        })
        .await["alert"]
        .clone()
}

async fn listed(hub: &HubProcess, id: &Value) -> Value {
    let (status, alerts) = hub.get("/api/v1/alerts").await;
    assert_eq!(status, 200);
    alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["id"] == *id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_alert_raised_on_one_node_is_listed_pushed_and_cleared_on_the_others() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("alerts");
        let mut a = node(&redis, &namespace, "node-a", &SETTINGS).await;
        let b = node(&redis, &namespace, "node-b", &SETTINGS).await;
        let (mut admin_b, _) = b.admin("").await;

        let first = tab_from(&a, "mallory", "192.0.2.1").await;
        let second = tab_from(&a, "mallory", "198.51.100.2").await;
        let raised = alert_frame(&mut admin_b, false).await;
        assert_eq!(raised["user_id"], "mallory");
        assert!(listed(&b, &raised["id"]).await["cleared_at"].is_null());

        drop(second);
        let cleared = alert_frame(&mut admin_b, true).await;
        assert_eq!(cleared["id"], raised["id"], "the same alert, cleared");
        assert!(listed(&b, &raised["id"]).await["cleared_at"].is_string());

        // Raised again: a node that starts now knows it.
        let _again = tab_from(&a, "mallory", "203.0.113.3").await;
        let second_alert = alert_frame(&mut admin_b, false).await;
        assert_ne!(second_alert["id"], raised["id"]);
        let c = node(&redis, &namespace, "node-c", &SETTINGS).await;
        let on_c = listed(&c, &second_alert["id"]).await;
        assert_eq!(on_c["rule"], "multi_ip", "node-c lists it: {on_c}");
        assert!(on_c["cleared_at"].is_null());

        // Node A dies with the alert active: the others clear it.
        a.signal(9);
        let _ = a.child.wait().await;
        let gone = alert_frame(&mut admin_b, true).await;
        assert_eq!(gone["id"], second_alert["id"]);
        assert!(listed(&c, &second_alert["id"]).await["cleared_at"].is_string());
        drop(first);
    })
    .await;
}
