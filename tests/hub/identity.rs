//! Tokens of identity providers: a PEM public key (RS256, ES256, EdDSA)
//! and a JWKS served over real HTTP, fetched in the background.

use std::net::SocketAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use presence_hub::Config;

use crate::support::idp::{JwksServer, KeyKind, KeyPair, claims, hs256_token};
use crate::support::{TestHub, WsClient, eventually, free_port, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

/// The status of a `/ws` handshake with `token` (101 after a welcome).
async fn handshake(hub: &TestHub, token: &str) -> u16 {
    handshake_with(hub, token, &[]).await
}

async fn handshake_with(hub: &TestHub, token: &str, headers: &[(&str, &str)]) -> u16 {
    let url = hub.ws_url(&format!("/ws?token={token}"));
    match WsClient::try_connect(&url, headers).await {
        Ok(mut client) => {
            let welcome = client.recv_type("welcome", ms(5000)).await;
            assert_eq!(welcome["user_id"], "alice", "{welcome}");
            101
        }
        Err(refused) => refused.status,
    }
}

/// A hub verifying tokens with the JWKS at `url`, refreshed every
/// `interval`, and on an unknown `kid` at most every 200 ms.
async fn jwks_hub(url: String, interval: Duration) -> TestHub {
    jwks_hub_with(url, interval, ms(200)).await
}

async fn jwks_hub_with(url: String, interval: Duration, min_interval: Duration) -> TestHub {
    TestHub::start(|c: &mut Config| {
        c.jwks_url = Some(url);
        c.jwks_refresh_interval = interval;
        c.jwks_min_refresh_interval = min_interval;
    })
    .await
}

async fn readiness(hub: &TestHub) -> (u16, serde_json::Value) {
    let response = reqwest::get(hub.http("/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// `presence_jwks_fetches_total{result}` as scraped (0 before the first).
async fn jwks_fetches(hub: &TestHub, result: &str) -> u64 {
    let text = crate::support::scrape(&hub.http("/metrics")).await;
    let series = format!("presence_jwks_fetches_total{{result=\"{result}\"}}");
    crate::support::sample(&text, &series).map_or(0, |value| value as u64)
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_against_a_pem_public_key() {
    within(LIMIT, async {
        for kind in KeyKind::ALL {
            let key = KeyPair::generate(kind);
            let other = KeyPair::generate(kind);
            let hub = TestHub::start(|c| c.jwt_public_key = Some(key.public_path())).await;
            assert_eq!(
                handshake(&hub, &key.token("alice", None)).await,
                101,
                "{kind:?}"
            );
            assert_eq!(
                handshake(&hub, &other.token("alice", None)).await,
                401,
                "{kind:?}: signed with another key"
            );
            let confused = hs256_token(key.public_pem.as_bytes(), "alice", None);
            assert_eq!(
                handshake(&hub, &confused).await,
                401,
                "{kind:?}: HS256 with the public key as its secret"
            );
            hub.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_token_is_checked_only_with_the_algorithm_of_the_key() {
    within(LIMIT, async {
        let rsa = KeyPair::generate(KeyKind::Rsa);
        let hub = TestHub::start(|c| c.jwt_public_key = Some(rsa.public_path())).await;
        assert_eq!(handshake(&hub, &rsa.token("alice", None)).await, 101);
        for algorithm in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
            let token = rsa.token_as(algorithm, "alice", None);
            assert_eq!(handshake(&hub, &token).await, 401, "{algorithm:?}");
        }
        let p256 = KeyPair::generate(KeyKind::P256);
        assert_eq!(
            handshake(&hub, &p256.token("alice", None)).await,
            401,
            "ES256 against an RSA key"
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_mode_is_not_dev_mode() {
    within(LIMIT, async {
        let key = KeyPair::generate(KeyKind::P256);
        let hub = TestHub::start(|c| c.jwt_public_key = Some(key.public_path())).await;
        let url = hub.ws_url("/ws?user=mallory");
        let refused = WsClient::try_connect(&url, &[]).await.err().unwrap();
        assert_eq!(refused.status, 401, "no naming oneself in the query");
        let admin = hub.ws_url("/admin/ws");
        let refused = WsClient::try_connect(&admin, &[]).await.err().unwrap();
        assert_eq!(refused.status, 401, "the admin stream needs a token");
        let users = hub.http("/api/v1/users");
        let client = reqwest::Client::new();
        let status = |token: Option<String>| {
            let mut request = client.get(&users);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let mut admin_claims = claims("root");
        admin_claims["role"] = "admin".into();
        let admin_token = key.sign(Algorithm::ES256, &admin_claims, None);
        assert_eq!(status(None).await, 401, "the admin API needs a token");
        assert_eq!(status(Some(key.token("alice", None))).await, 403);
        assert_eq!(status(Some(admin_token)).await, 200);
        let page = [("origin", "https://app.example")];
        assert_eq!(
            handshake_with(&hub, &key.token("alice", None), &page).await,
            101,
            "any origin, as with a secret (dev mode allows only loopback pages)"
        );
    })
    .await;
}

#[tokio::test]
async fn jwks_keys_verify_by_kid_and_a_key_added_later_is_fetched_on_demand() {
    within(LIMIT, async {
        let first = KeyPair::generate(KeyKind::Rsa);
        let second = KeyPair::generate(KeyKind::Ed25519);
        let symmetric = serde_json::json!({"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ"});
        let future = serde_json::json!({"kty": "PQC", "kid": "future", "x": "AAAA"});
        let server = JwksServer::start(vec![symmetric, future, first.jwk("k1")]).await;
        // Refreshed on its own only every hour: only a token can ask sooner.
        let hub = jwks_hub(server.url(), Duration::from_secs(3600)).await;
        assert_eq!(readiness(&hub).await.0, 200);
        assert_eq!(handshake(&hub, &first.token("alice", Some("k1"))).await, 101);
        let forged = KeyPair::generate(KeyKind::Rsa).token("alice", Some("k1"));
        assert_eq!(handshake(&hub, &forged).await, 401, "another key, a known kid");
        let wrong_kid = first.token("alice", Some("k2"));
        assert_eq!(handshake(&hub, &wrong_kid).await, 401, "kid not in the set");
        let hmac = hs256_token(b"secret-secret-secret-secret-1234", "alice", Some("shared"));
        assert_eq!(handshake(&hub, &hmac).await, 401, "oct keys are never used");

        let rotated = second.token("alice", Some("k2"));
        assert_eq!(handshake(&hub, &rotated).await, 401, "not fetched yet");
        server.set_keys(vec![first.jwk("k1"), second.jwk("k2")]);
        eventually(ms(10_000), "the new key is fetched", || {
            let (hub, rotated) = (&hub, &rotated);
            async move { (handshake(hub, rotated).await == 101).then_some(()) }
        })
        .await;
        assert_eq!(handshake(&hub, &first.token("alice", Some("k1"))).await, 101);
        let crossed = first.token("alice", Some("k2"));
        assert_eq!(
            handshake(&hub, &crossed).await,
            401,
            "an RS256 token naming the EdDSA key"
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_stops_verifying_after_a_periodic_refresh() {
    within(LIMIT, async {
        let old = KeyPair::generate(KeyKind::P256);
        let new = KeyPair::generate(KeyKind::P256);
        let server = JwksServer::start(vec![old.jwk("old")]).await;
        let hub = jwks_hub(server.url(), ms(300)).await;
        let token = old.token("alice", Some("old"));
        assert_eq!(handshake(&hub, &token).await, 101);
        server.set_keys(vec![new.jwk("new")]);
        // A known kid asks for no fetch: only the periodic refresh can
        // drop the old key.
        eventually(ms(10_000), "the old key is dropped", || {
            let (hub, token) = (&hub, &token);
            async move { (handshake(hub, token).await == 401).then_some(()) }
        })
        .await;
        assert_eq!(handshake(&hub, &new.token("alice", Some("new"))).await, 101);
    })
    .await;
}

#[tokio::test]
async fn a_slow_jwks_server_does_not_hold_the_handshake() {
    within(LIMIT, async {
        let key = KeyPair::generate(KeyKind::Ed25519);
        let server = JwksServer::start(vec![key.jwk("k1")]).await;
        let hub = jwks_hub(server.url(), Duration::from_secs(3600)).await;
        assert_eq!(server.answered(), 1, "fetched once at start");
        server.set_delay(Duration::from_secs(30));
        let unknown = key.token("alice", Some("unknown"));
        assert_eq!(handshake(&hub, &unknown).await, 401);
        eventually(ms(10_000), "a refresh is under way", || async {
            (server.requests() == 2).then_some(())
        })
        .await;
        assert_eq!(handshake(&hub, &key.token("alice", Some("k1"))).await, 101);
        assert_eq!(handshake(&hub, &unknown).await, 401);
        assert_eq!(
            server.answered(),
            1,
            "the handshakes ended while the fetch was still waiting for its answer"
        );
    })
    .await;
}

#[tokio::test]
async fn a_hub_whose_jwks_is_unreachable_starts_and_refuses_tokens_until_a_fetch_works() {
    within(LIMIT, async {
        let key = KeyPair::generate(KeyKind::P256);
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let url = format!("http://{addr}/jwks");
        let hub = jwks_hub(url, Duration::from_secs(3600)).await;
        let token = key.token("alice", Some("k1"));
        assert_eq!(handshake(&hub, &token).await, 401);
        let (status, body) = readiness(&hub).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (503, Some("jwks_unavailable"))
        );
        assert!(jwks_fetches(&hub, "error").await >= 1);
        assert_eq!(jwks_fetches(&hub, "ok").await, 0);
        let _server = JwksServer::start_on(addr, vec![key.jwk("k1")]).await;
        eventually(ms(10_000), "a retried fetch", || {
            let (hub, token) = (&hub, &token);
            async move { (handshake(hub, token).await == 101).then_some(()) }
        })
        .await;
        assert_eq!(readiness(&hub).await.0, 200);
        assert!(jwks_fetches(&hub, "ok").await >= 1);
    })
    .await;
}

#[tokio::test]
async fn unknown_kids_ask_for_at_most_one_fetch_per_minimum_interval() {
    within(LIMIT, async {
        let key = KeyPair::generate(KeyKind::P256);
        let server = JwksServer::start(vec![key.jwk("k1")]).await;
        let hub = jwks_hub_with(server.url(), Duration::from_secs(3600), ms(2000)).await;
        let burst = |round: usize| {
            let (hub, key) = (&hub, &key);
            async move {
                for n in 0..5 {
                    let token = key.token("alice", Some(&format!("unknown-{round}-{n}")));
                    assert_eq!(handshake(hub, &token).await, 401);
                }
            }
        };
        // Within 2 s of the start fetch, five unknown kids wait for one fetch.
        burst(1).await;
        assert_eq!(server.requests(), 1, "no fetch within the minimum interval");
        eventually(ms(10_000), "one fetch for the first burst", || async {
            (server.requests() == 2).then_some(())
        })
        .await;
        burst(2).await;
        assert_eq!(server.requests(), 2, "the next is 2 s after the last");
        eventually(ms(10_000), "one fetch for the second burst", || async {
            (server.requests() == 3).then_some(())
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn issuer_and_audience_apply_to_public_keys_and_jwks_alike() {
    within(LIMIT, async {
        let key = KeyPair::generate(KeyKind::Rsa);
        let server = JwksServer::start(vec![key.jwk("k1")]).await;
        let expect = |c: &mut Config| {
            c.jwt_issuer = Some("https://idp.example".into());
            c.jwt_audience = Some("presence".into());
        };
        let pem = TestHub::start(|c| {
            c.jwt_public_key = Some(key.public_path());
            expect(c);
        })
        .await;
        let jwks = TestHub::start(|c| {
            c.jwks_url = Some(server.url());
            expect(c);
        })
        .await;
        let with = |extra: serde_json::Value| {
            let mut claims = claims("alice");
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            key.sign(Algorithm::RS256, &claims, Some("k1"))
        };
        let ours = with(serde_json::json!({"iss": "https://idp.example", "aud": "presence"}));
        let other_aud = with(serde_json::json!({"iss": "https://idp.example", "aud": "other"}));
        let other_iss = with(serde_json::json!({"iss": "https://evil.example", "aud": "presence"}));
        let neither = with(serde_json::json!({}));
        for hub in [&pem, &jwks] {
            assert_eq!(handshake(hub, &ours).await, 101);
            assert_eq!(handshake(hub, &other_aud).await, 401, "another audience");
            assert_eq!(handshake(hub, &other_iss).await, 401, "another issuer");
            assert_eq!(handshake(hub, &neither).await, 401, "no iss or aud");
        }
    })
    .await;
}
