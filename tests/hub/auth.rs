//! The authentication matrix of contract section 3.

use std::time::Duration;

use crate::support::{TestHub, WsClient, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(20);
const SECRET: &str = "test-secret-of-at-least-32-bytes";

async fn jwt_hub() -> TestHub {
    TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await
}

async fn status_of(url: &str, headers: &[(&str, &str)]) -> u16 {
    match WsClient::try_connect(url, headers).await {
        Ok(mut client) => {
            let first = client.next_json(ms(5000)).await.expect("first frame");
            assert!(
                first["type"] == "welcome" || first["type"] == "snapshot",
                "{first}"
            );
            101
        }
        Err(refused) => {
            let body: serde_json::Value = serde_json::from_str(&refused.body).unwrap_or_default();
            assert!(
                body["error"]["code"].is_string(),
                "JSON error body: {}",
                refused.body
            );
            refused.status
        }
    }
}

#[tokio::test]
async fn client_tokens_are_checked_before_the_upgrade() {
    within(LIMIT, async {
        let hub = jwt_hub().await;
        let ws = hub.ws_url("/ws");
        let good = jwt(SECRET, "alice", None, 60);
        assert_eq!(status_of(&ws, &[]).await, 401, "no token");
        assert_eq!(
            status_of(
                &format!("{ws}?token={}", jwt(SECRET, "alice", None, -60)),
                &[]
            )
            .await,
            401,
            "expired"
        );
        assert_eq!(
            status_of(
                &format!("{ws}?token={}", jwt("wrong", "alice", None, 60)),
                &[]
            )
            .await,
            401,
            "bad signature"
        );
        assert_eq!(
            status_of(&format!("{ws}?token=garbage"), &[]).await,
            401,
            "not a JWT"
        );
        assert_eq!(
            status_of(&format!("{ws}?token={good}"), &[]).await,
            101,
            "query token"
        );
        let bearer = format!("Bearer {good}");
        assert_eq!(
            status_of(&ws, &[("authorization", &bearer)]).await,
            101,
            "header token"
        );
        assert_eq!(
            status_of(&format!("{ws}?user=mallory"), &[]).await,
            401,
            "dev identity ignored in JWT mode"
        );
    })
    .await;
}

#[tokio::test]
async fn the_token_names_the_user_of_the_session() {
    within(LIMIT, async {
        let hub = jwt_hub().await;
        let mut client = WsClient::connect(
            &hub.ws_url(&format!("/ws?token={}", jwt(SECRET, "alice", None, 60))),
        )
        .await;
        let welcome = client.recv_type("welcome", ms(5000)).await;
        assert_eq!(welcome["user_id"], "alice");
        let admin_token = jwt(SECRET, "root", Some("admin"), 60);
        let (_admin, snapshot) = hub.admin(&format!("?token={admin_token}")).await;
        assert_eq!(snapshot["sessions"][0]["name"], "alice name");
        assert_eq!(snapshot["sessions"][0]["org"], "acme");
    })
    .await;
}

#[tokio::test]
async fn the_admin_stream_needs_an_admin_token() {
    within(LIMIT, async {
        let hub = jwt_hub().await;
        let url = hub.ws_url("/admin/ws");
        assert_eq!(status_of(&url, &[]).await, 401, "no token");
        assert_eq!(
            status_of(
                &format!("{url}?token={}", jwt(SECRET, "bob", None, 60)),
                &[]
            )
            .await,
            403,
            "not admin"
        );
        assert_eq!(
            status_of(
                &format!("{url}?token={}", jwt(SECRET, "root", Some("admin"), -5)),
                &[]
            )
            .await,
            401,
            "expired"
        );
        let admin = jwt(SECRET, "root", Some("admin"), 60);
        assert_eq!(
            status_of(&format!("{url}?token={admin}"), &[]).await,
            101,
            "admin by query"
        );
        let bearer = format!("Bearer {admin}");
        assert_eq!(
            status_of(&url, &[("authorization", &bearer)]).await,
            101,
            "admin by header"
        );
    })
    .await;
}

#[tokio::test]
async fn dev_mode_needs_a_valid_user_parameter() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        assert_eq!(status_of(&hub.ws_url("/ws"), &[]).await, 400);
        let long = "x".repeat(129);
        assert_eq!(
            status_of(&hub.ws_url(&format!("/ws?user={long}")), &[]).await,
            400
        );
        let max = "x".repeat(128);
        assert_eq!(
            status_of(&hub.ws_url(&format!("/ws?user={max}")), &[]).await,
            101
        );
        assert_eq!(
            status_of(&hub.ws_url("/admin/ws"), &[]).await,
            101,
            "dev admin needs no token"
        );
    })
    .await;
}

#[tokio::test]
async fn a_listed_out_origin_gets_403() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.allowed_origins = Some("https://app.example".into())).await;
        let url = hub.ws_url("/ws?user=alice");
        assert_eq!(
            status_of(&url, &[("origin", "https://evil.example")]).await,
            403
        );
        assert_eq!(
            status_of(&url, &[("origin", "https://app.example")]).await,
            101
        );
        assert_eq!(status_of(&url, &[]).await, 101, "no Origin: not a browser");
        let admin = hub.ws_url("/admin/ws");
        assert_eq!(
            status_of(&admin, &[("origin", "https://evil.example")]).await,
            403,
            "admin stream too"
        );
        assert_eq!(
            status_of(&admin, &[("origin", "https://app.example")]).await,
            101
        );
    })
    .await;
}

#[tokio::test]
async fn dev_mode_opens_websockets_only_to_loopback_pages() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let port = hub.addr.port();
        let own = format!("http://127.0.0.1:{port}");
        let localhost = format!("http://localhost:{port}");
        for url in [hub.ws_url("/ws?user=alice"), hub.ws_url("/admin/ws")] {
            for foreign in [
                "https://evil.example",
                "null",
                "http://127.0.0.1.evil.example",
            ] {
                assert_eq!(
                    status_of(&url, &[("origin", foreign)]).await,
                    403,
                    "{url} from {foreign}"
                );
            }
            for page in [own.as_str(), localhost.as_str(), "http://[::1]:3000"] {
                assert_eq!(status_of(&url, &[("origin", page)]).await, 101, "{page}");
            }
            assert_eq!(status_of(&url, &[]).await, 101, "no Origin: not a browser");
        }
    })
    .await;
}

#[tokio::test]
async fn jwt_mode_without_a_list_allows_any_origin() {
    within(LIMIT, async {
        let hub = jwt_hub().await;
        let url = format!(
            "{}?token={}",
            hub.ws_url("/ws"),
            jwt(SECRET, "alice", None, 60)
        );
        assert_eq!(
            status_of(&url, &[("origin", "https://app.example")]).await,
            101
        );
    })
    .await;
}

#[tokio::test]
async fn dev_mode_refuses_a_foreign_host_unless_insecure() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let client = reqwest::Client::new();
        let get = |host: &'static str, path: &'static str| {
            let request = client.get(hub.http(path)).header("host", host);
            async move { request.send().await.unwrap() }
        };
        let rebound = get("attacker.example:8080", "/api/v1/stats").await;
        assert_eq!(rebound.status(), 403);
        let body: serde_json::Value = rebound.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(get("attacker.example", "/").await.status(), 403, "panel");
        assert_eq!(
            status_of(&hub.ws_url("/admin/ws"), &[("host", "attacker.example")]).await,
            403
        );
        assert_eq!(get("localhost:8080", "/api/v1/stats").await.status(), 200);
        assert_eq!(get("127.0.0.1", "/api/v1/stats").await.status(), 200);
        let insecure = TestHub::start(|c| c.insecure_dev = true).await;
        let response = client
            .get(insecure.http("/api/v1/stats"))
            .header("host", "presence.lan:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "PRESENCE_INSECURE_DEV answers any Host"
        );
    })
    .await;
}
