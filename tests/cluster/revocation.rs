//! A revoke on one node denies the user's tokens on every node, including
//! one that joins after the revoke.

use std::time::Duration;

use serde_json::{Value, json};

use crate::node;
use crate::support::{
    HubProcess, RedisServer, WsClient, eventually, jwt, ms, unique_namespace, within,
};

const LIMIT: Duration = Duration::from_secs(60);
const SECRET: &str = "test-secret-of-at-least-32-bytes";

fn token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The HTTP status of an upgrade with `token` (101 when it opens).
async fn upgrade_status(hub: &HubProcess, token: &str) -> u16 {
    crate::support::upgrade_status(&hub.ws_url("/ws"), token).await
}

#[tokio::test]
async fn a_revoke_on_one_node_denies_the_token_on_every_node() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let namespace = unique_namespace("revoke");
        let env = [("PRESENCE_JWT_SECRET", SECRET)];
        let a = node(&redis, &namespace, "node-a", &env).await;
        let b = node(&redis, &namespace, "node-b", &env).await;
        let alice = token(&json!({"sub": "alice", "iat": now(), "exp": now() + 600}));
        let mut client = WsClient::connect(&a.ws_url(&format!("/ws?token={alice}"))).await;
        client.recv_type("welcome", ms(5000)).await;

        let admin = jwt(SECRET, "ops", Some("admin"), 60);
        eventually(ms(10_000), "b sees alice's session", || async {
            let response = reqwest::Client::new()
                .get(b.http("/api/v1/users/alice"))
                .bearer_auth(&admin)
                .send()
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            (body["session_count"] == 1).then_some(())
        })
        .await;
        let response = reqwest::Client::new()
            .delete(b.http("/api/v1/users/alice/sessions"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["terminated"], 1, "b ended the session a holds");
        client.recv_type("terminated", ms(5000)).await;

        assert_eq!(
            upgrade_status(&b, &alice).await,
            401,
            "denied where revoked"
        );
        eventually(ms(10_000), "the deny entry reaches a", || async {
            (upgrade_status(&a, &alice).await == 401).then_some(())
        })
        .await;
        let c = node(&redis, &namespace, "node-c", &env).await;
        assert_eq!(
            upgrade_status(&c, &alice).await,
            401,
            "a late node reads the entry"
        );

        let fresh = token(&json!({"sub": "alice", "iat": now() + 1, "exp": now() + 600}));
        for hub in [&a, &b, &c] {
            assert_eq!(upgrade_status(hub, &fresh).await, 101);
        }
    })
    .await;
}
