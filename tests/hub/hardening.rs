//! Small hardening rules (issue 14): tokens in URLs only on WebSocket
//! upgrades, strict query decoding, CSV formula injection, the panel's
//! security headers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(20);
const SECRET: &str = "hardening-secret-of-at-least-32-bytes";

#[tokio::test]
async fn rest_routes_take_the_token_only_as_a_bearer_header() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let admin = jwt(SECRET, "root", Some("admin"), 60);
        let client = reqwest::Client::new();
        let by_query = client
            .get(hub.http(&format!("/api/v1/stats?token={admin}")))
            .send()
            .await
            .unwrap();
        assert_eq!(by_query.status(), 401);
        let body: Value = by_query.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer"),
            "{body}"
        );
        let by_header = client
            .get(hub.http("/api/v1/stats"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(by_header.status(), 200);
        let user = jwt(SECRET, "alice", None, 60);
        let beat = client
            .post(hub.http(&format!("/api/v1/heartbeat?token={user}")))
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(beat.status(), 401, "the heartbeat is REST too");
        let beat = client
            .post(hub.http("/api/v1/heartbeat"))
            .bearer_auth(&user)
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(beat.status(), 200);
        // Upgrades still take ?token= (browsers cannot set headers there).
        let mut ws = WsClient::connect(&hub.ws_url(&format!("/ws?token={user}"))).await;
        ws.recv_type("welcome", ms(2000)).await;
        let mut stream = WsClient::connect(&hub.ws_url(&format!("/admin/ws?token={admin}"))).await;
        stream.recv_type("snapshot", ms(2000)).await;
    })
    .await;
}

#[tokio::test]
async fn query_values_that_are_not_utf8_get_400_instead_of_colliding() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        for path in ["/ws?user=%ff%fe", "/ws?user=alice&page=%c3"] {
            match WsClient::try_connect(&hub.ws_url(path), &[]).await {
                Ok(_) => panic!("{path} was admitted"),
                Err(refused) => {
                    assert_eq!(refused.status, 400, "{path}");
                    let body: Value = serde_json::from_str(&refused.body).unwrap();
                    assert_eq!(body["error"]["code"], "bad_parameter", "{path}");
                }
            }
        }
        let beat = reqwest::Client::new()
            .post(hub.http("/api/v1/heartbeat?user=%fe"))
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(beat.status(), 400);
        let list = reqwest::get(hub.http("/api/v1/sessions?user_id=%ff"))
            .await
            .unwrap();
        assert_eq!(list.status(), 400);
        let mut fine = WsClient::connect(&hub.ws_url("/ws?user=%C3%A9lodie")).await;
        let welcome = fine.recv_type("welcome", ms(2000)).await;
        assert_eq!(welcome["user_id"], "élodie");
    })
    .await;
}

#[tokio::test]
async fn csv_cells_that_look_like_formulas_are_prefixed_with_an_apostrophe() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let mut client = WsClient::connect(&hub.ws_url(
            "/ws?user=%3Dcmd&name=%3DHYPERLINK(%22http%3A%2F%2Fx%22)&org=%2B1&page=%40SUM(A1)&app=-2",
        ))
        .await;
        client.recv_type("welcome", ms(2000)).await;
        let text = reqwest::get(hub.http("/api/v1/sessions/export?format=csv"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "'=cmd");
        assert_eq!(&row[2], "'=HYPERLINK(\"http://x\")");
        assert_eq!(&row[3], "'+1");
        assert_eq!(&row[15], "'-2");
        assert_eq!(&row[17], "'@SUM(A1)");
        let ndjson = reqwest::get(hub.http("/api/v1/sessions/export?format=ndjson"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let session: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
        assert_eq!(session["user_id"], "=cmd", "NDJSON keeps values as they are");
    })
    .await;
}

#[tokio::test]
async fn the_panel_is_sent_with_csp_frame_and_nosniff_headers() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        for path in ["/", "/app.js", "/demo.html"] {
            let response = reqwest::get(hub.http(path)).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let headers = response.headers();
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
            assert_eq!(headers["x-frame-options"], "DENY", "{path}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        }
    })
    .await;
}

/// A heartbeat body of `page_bytes` of page from `user`: the status.
async fn beat_with_page(hub: &TestHub, user: &str, page_bytes: usize) -> u16 {
    reqwest::Client::new()
        .post(hub.http(&format!("/api/v1/heartbeat?user={user}")))
        .json(&json!({"active": true, "page": "p".repeat(page_bytes)}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_heartbeat_body_has_the_size_limit_of_a_websocket_message() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        // The default PRESENCE_MAX_MESSAGE_BYTES is 4096, as for a `hello`.
        assert_eq!(beat_with_page(&hub, "alice", 3_900).await, 200);
        assert_eq!(beat_with_page(&hub, "alice", 4_100).await, 413);
        assert_eq!(beat_with_page(&hub, "alice", 8_001).await, 413);
        let small = TestHub::start(|c| c.max_message_bytes = 512).await;
        assert_eq!(beat_with_page(&small, "alice", 600).await, 413);
        assert_eq!(beat_with_page(&small, "alice", 400).await, 200);
    })
    .await;
}

/// Opens `/ws` for `user` from `ip` (`X-Forwarded-For`): the HTTP status
/// of the upgrade, and `Retry-After` when there is one.
async fn upgrade_status(hub: &TestHub, user: &str, ip: &str) -> (u16, Option<String>) {
    let url = hub.ws_url(&format!("/ws?user={user}"));
    match WsClient::try_connect(&url, &[("x-forwarded-for", ip)]).await {
        Ok(_) => (101, None),
        Err(refused) => (refused.status, refused.retry_after),
    }
}

#[tokio::test]
async fn new_sessions_are_limited_per_user_over_both_transports() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.session_rate_per_user = "1/m".into();
            c.trusted_proxies = "127.0.0.1".into();
        })
        .await;
        // 1/m is one per second after rounding up, with a burst of two.
        assert_eq!(upgrade_status(&hub, "alice", "192.0.2.1").await.0, 101);
        assert_eq!(beat_with_page(&hub, "alice", 1).await, 200);
        let (status, retry_after) = upgrade_status(&hub, "alice", "192.0.2.2").await;
        assert_eq!(status, 429);
        assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
        assert_eq!(beat_with_page(&hub, "alice", 1).await, 429);
        assert_eq!(upgrade_status(&hub, "bob", "192.0.2.1").await.0, 101);
    })
    .await;
}

#[tokio::test]
async fn new_sessions_are_limited_per_client_ip() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.session_rate_per_ip = "1/s".into();
            c.trusted_proxies = "127.0.0.1".into();
        })
        .await;
        for user in ["u1", "u2"] {
            assert_eq!(upgrade_status(&hub, user, "198.51.100.7").await.0, 101);
        }
        assert_eq!(upgrade_status(&hub, "u3", "198.51.100.7").await.0, 429);
        assert_eq!(upgrade_status(&hub, "u3", "198.51.100.8").await.0, 101);
        let off = TestHub::start(|c| c.trusted_proxies = "127.0.0.1".into()).await;
        for user in 0..10 {
            let user = format!("u{user}");
            assert_eq!(
                upgrade_status(&off, &user, "198.51.100.7").await.0,
                101,
                "off by default"
            );
        }
    })
    .await;
}
