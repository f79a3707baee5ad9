//! Alerts (§12) on a real hub: each rule raised once and cleared when its
//! condition stops, pushed on the admin stream in the stream's `seq` order,
//! sent to webhooks, and listed by `GET /api/v1/alerts`.

use std::time::Duration;

use serde_json::Value;

use crate::support::receiver::Receiver;
use crate::support::{TestHub, WsClient, eventually, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

/// A client of `user` whose IP the hub takes from `X-Forwarded-For`.
async fn client_from(hub: &TestHub, user: &str, ip: &str) -> WsClient {
    let mut client = WsClient::try_connect(
        &hub.ws_url(&format!("/ws?user={user}")),
        &[("x-forwarded-for", ip)],
    )
    .await
    .unwrap();
    client.recv_type("welcome", ms(2000)).await;
    client
}

async fn alert_frame(admin: &mut WsClient, rule: &str, cleared: bool) -> Value {
    admin
        .recv_until(ms(10_000), rule, |v| {
            v["type"] == "alert"
                && v["alert"]["rule"] == rule
                && v["alert"]["cleared_at"].is_null() != cleared
        })
        .await
}

async fn alerts(hub: &TestHub, query: &str) -> Value {
    reqwest::get(hub.http(&format!("/api/v1/alerts{query}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn multi_ip_is_raised_once_and_cleared_with_the_same_id() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.trusted_proxies = "127.0.0.1".into();
            c.alert_multi_ip_min = 3;
        })
        .await;
        let (mut admin, snapshot) = hub.admin("").await;
        let _a = client_from(&hub, "mallory", "192.0.2.1").await;
        let _b = client_from(&hub, "mallory", "198.51.100.2").await;
        let c = client_from(&hub, "mallory", "203.0.113.3").await;
        let _d = client_from(&hub, "mallory", "203.0.113.4").await;
        let raised = alert_frame(&mut admin, "multi_ip", false).await;
        assert!(raised["seq"].as_u64().unwrap() > snapshot["seq"].as_u64().unwrap_or(0));
        let alert = &raised["alert"];
        assert_eq!(alert["user_id"], "mallory");
        assert_eq!(alert["ip"], "203.0.113.3");
        assert_eq!(alert["details"]["count"], 3);
        assert!(alert["at"].is_string());
        for key in ["id", "rule", "at", "user_id", "ip", "details", "cleared_at"] {
            assert!(alert.get(key).is_some(), "{key}");
        }
        c.close().await;
        // Still three distinct IPs (a, b, d): nothing changes.
        let frames = admin.collect_for(ms(500)).await;
        assert!(frames.iter().all(|f| f["type"] != "alert"), "{frames:?}");
        drop(_d);
        let cleared = alert_frame(&mut admin, "multi_ip", true).await;
        assert_eq!(cleared["alert"]["id"], alert["id"]);
        assert!(cleared["seq"].as_u64() > raised["seq"].as_u64());
        let listed = alerts(&hub, "?rule=multi_ip").await;
        assert_eq!(listed["total"], 1);
        assert_eq!(listed["page"], 1);
        assert_eq!(listed["alerts"][0]["id"], alert["id"]);
        assert!(listed["alerts"][0]["cleared_at"].is_string());
        assert_eq!(alerts(&hub, "?active=true").await["total"], 0);
        assert_eq!(
            alerts(&hub, "?active=false&user_id=mallory").await["total"],
            1
        );
        assert_eq!(alerts(&hub, "?user_id=someone").await["total"], 0);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_session_flood_is_raised_on_the_stream_and_sent_to_webhooks() {
    within(LIMIT, async {
        let receiver = Receiver::start(vec![]).await;
        let url = receiver.url();
        let hub = TestHub::start(move |c| {
            c.alert_session_flood_min = 3;
            c.webhook_urls = Some(url);
            c.webhook_secret = Some("s".into());
            c.webhook_events = "alert".into();
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(hub.welcomed_client("flooder").await.0);
        }
        let raised = alert_frame(&mut admin, "session_flood", false).await;
        assert_eq!(raised["alert"]["user_id"], "flooder");
        assert_eq!(raised["alert"]["details"]["count"], 3);
        let events = eventually(ms(10_000), "the alert webhook", || async {
            let events = receiver.events();
            (!events.is_empty()).then_some(events)
        })
        .await;
        assert_eq!(events.len(), 1, "raised once, for four sessions");
        assert_eq!(events[0]["type"], "alert");
        assert_eq!(events[0]["data"]["id"], raised["alert"]["id"]);
        assert_eq!(events[0]["data"]["rule"], "session_flood");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_reconnect_loop_is_raised() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.alert_reconnect_loop_min = 2).await;
        let (mut admin, _) = hub.admin("").await;
        for _ in 0..3 {
            hub.welcomed_client("looper").await.0.close().await;
        }
        let raised = alert_frame(&mut admin, "reconnect_loop", false).await;
        assert_eq!(raised["alert"]["user_id"], "looper");
        assert_eq!(raised["alert"]["details"]["count"], 2);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_long_session_is_raised_for_the_session_and_cleared_when_it_ends() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.alert_long_session_after = ms(800)).await;
        let (mut admin, _) = hub.admin("").await;
        let (client, welcome) = hub.welcomed_client("marathon").await;
        let raised = alert_frame(&mut admin, "long_session", false).await;
        assert_eq!(
            raised["alert"]["details"]["session_id"],
            welcome["session_id"]
        );
        assert_eq!(raised["alert"]["user_id"], "marathon");
        assert_eq!(raised["alert"]["ip"], "127.0.0.1");
        client.close().await;
        let cleared = alert_frame(&mut admin, "long_session", true).await;
        assert_eq!(cleared["alert"]["id"], raised["alert"]["id"]);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn auth_failures_count_401s_per_ip_with_no_user() {
    within(LIMIT, async {
        let secret = "alerts-secret-of-at-least-32-bytes!";
        let hub = TestHub::start(|c| {
            c.jwt_secret = Some(secret.into());
            c.alert_auth_failures_min = 3;
            c.trusted_proxies = "127.0.0.1".into();
        })
        .await;
        let admin_token = jwt(secret, "root", Some("admin"), 600);
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let status = http
                .get(hub.http("/api/v1/users"))
                .header("x-forwarded-for", "198.51.100.7")
                .header("authorization", "Bearer wrong")
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 401);
        }
        let listed = eventually(ms(5000), "an auth_failures alert", || async {
            let listed: Value = http
                .get(hub.http("/api/v1/alerts?rule=auth_failures"))
                .bearer_auth(&admin_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (listed["total"] == 1).then_some(listed)
        })
        .await;
        let alert = &listed["alerts"][0];
        assert!(alert["user_id"].is_null());
        assert_eq!(alert["ip"], "198.51.100.7");
        assert_eq!(alert["details"]["count"], 3);
        assert!(alert["cleared_at"].is_null());
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn alert_queries_name_their_bad_parameter() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        for (query, name) in [
            ("?rule=bogus", "rule"),
            ("?active=maybe", "active"),
            ("?from=yesterday", "from"),
            ("?page=0", "page"),
            ("?page_size=501", "page_size"),
        ] {
            let response = reqwest::get(hub.http(&format!("/api/v1/alerts{query}")))
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{query}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_parameter");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(name),
                "{query}"
            );
        }
        let empty = alerts(&hub, "").await;
        assert_eq!(empty["total"], 0);
        assert_eq!(empty["page_size"], 20);
        assert_eq!(empty["alerts"], serde_json::json!([]));
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_org_stream_gets_its_users_alerts_numbered_in_its_seq() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.alert_session_flood_min = 2).await;
        let (mut acme, _) = hub.admin("?org=acme").await;
        let (mut other, _) = hub.admin("?org=other").await;
        let mut clients = Vec::new();
        for _ in 0..2 {
            let mut client = hub.client("zoe&org=acme").await;
            client.recv_type("welcome", ms(2000)).await;
            clients.push(client);
        }
        // Every frame of the stream, the alert included, is numbered in one
        // sequence: 1, 2, 3, ...
        let mut expected = 1;
        let alert = loop {
            let frame = acme.next_json(ms(5000)).await.expect("stream open");
            assert_eq!(frame["seq"].as_u64(), Some(expected), "{frame}");
            expected += 1;
            if frame["type"] == "alert" {
                break frame;
            }
        };
        assert_eq!(alert["alert"]["user_id"], "zoe");
        assert_eq!(alert["alert"]["rule"], "session_flood");
        let seen = other.collect_for(ms(500)).await;
        assert!(seen.iter().all(|f| f["type"] != "alert"), "{seen:?}");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn no_alert_is_raised_with_alerts_off() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.trusted_proxies = "127.0.0.1".into();
            c.alerts = false;
            c.alert_multi_ip_min = 2;
            c.alert_session_flood_min = 2;
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        // Both multi_ip (two IPs) and session_flood (three starts) would fire.
        let _a = client_from(&hub, "mallory", "192.0.2.1").await;
        let _b = client_from(&hub, "mallory", "198.51.100.2").await;
        let _c = client_from(&hub, "mallory", "203.0.113.3").await;
        let frames = admin.collect_for(ms(1500)).await;
        assert!(
            frames.iter().any(|f| f["type"] == "session"),
            "the admin stream saw the sessions: {frames:?}"
        );
        assert!(frames.iter().all(|f| f["type"] != "alert"), "{frames:?}");
        let listed = alerts(&hub, "").await;
        assert_eq!(listed["total"], 0, "{listed}");
    })
    .await;
}
