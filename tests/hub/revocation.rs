//! Revoking is revocation: after `DELETE /api/v1/users/{id}/sessions` the
//! tokens the user held are refused (401) until they expire; tokens issued
//! after the revoke pass.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(20);
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

async fn revoke(hub: &TestHub, user: &str) -> Value {
    let admin = jwt(SECRET, "ops", Some("admin"), 60);
    let response = reqwest::Client::new()
        .delete(hub.http(&format!("/api/v1/users/{user}/sessions")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn heartbeat(hub: &TestHub, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(hub.http("/api/v1/heartbeat"))
        .bearer_auth(token)
        .json(&json!({"active": true}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_revoked_token_cannot_reconnect_and_a_new_one_can() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let with_iat = token(&json!({"sub": "alice", "iat": now(), "exp": now() + 600}));
        let without_iat = token(&json!({"sub": "alice", "exp": now() + 300}));
        let bob = token(&json!({"sub": "bob", "iat": now(), "exp": now() + 600}));
        let mut alice = WsClient::connect(&hub.ws_url(&format!("/ws?token={with_iat}"))).await;
        alice.recv_type("welcome", ms(5000)).await;
        assert_eq!(heartbeat(&hub, &without_iat).await.0, 200);

        let answer = revoke(&hub, "alice").await;
        assert_eq!(answer["terminated"], 2);
        alice.recv_type("terminated", ms(5000)).await;

        for token in [&with_iat, &without_iat] {
            let refused =
                WsClient::try_connect(&hub.ws_url(&format!("/ws?token={token}")), &[]).await;
            let refused = refused.err().expect("a revoked token is refused");
            assert_eq!(refused.status, 401);
            assert!(refused.body.contains("revoked"), "{}", refused.body);
            let (status, body) = heartbeat(&hub, token).await;
            assert_eq!(status, 401);
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("revoked"),
                "{body}"
            );
        }
        // Another user is not affected.
        let mut other = WsClient::connect(&hub.ws_url(&format!("/ws?token={bob}"))).await;
        other.recv_type("welcome", ms(5000)).await;
        // A token issued after the revoke second, or expiring after every
        // token seen, opens a session.
        let fresh = token(&json!({"sub": "alice", "iat": now() + 1, "exp": now() + 600}));
        let mut again = WsClient::connect(&hub.ws_url(&format!("/ws?token={fresh}"))).await;
        again.recv_type("welcome", ms(5000)).await;
        let longer = token(&json!({"sub": "alice", "exp": now() + 900}));
        assert_eq!(heartbeat(&hub, &longer).await.0, 200);
    })
    .await;
}

#[tokio::test]
async fn a_revoke_kept_in_sqlite_outlives_a_restart() {
    within(LIMIT, async {
        let dir = crate::support::temp::TempDir::new("revoked");
        let url = format!("sqlite://{}", dir.join("records.db").display());
        let configure = |c: &mut presence_hub::Config| {
            c.jwt_secret = Some(SECRET.into());
            c.database_url = Some(url.clone());
        };
        let alice = token(&json!({"sub": "alice", "iat": now(), "exp": now() + 600}));
        let hub = TestHub::start(configure).await;
        assert_eq!(heartbeat(&hub, &alice).await.0, 200);
        revoke(&hub, "alice").await;
        assert_eq!(heartbeat(&hub, &alice).await.0, 401);
        hub.shutdown().await;

        let hub = TestHub::start(configure).await;
        let (status, body) = heartbeat(&hub, &alice).await;
        assert_eq!(status, 401, "{body}");
        let fresh = token(&json!({"sub": "alice", "iat": now() + 1, "exp": now() + 600}));
        assert_eq!(heartbeat(&hub, &fresh).await.0, 200);
    })
    .await;
}
