//! `PRESENCE_CLUSTER_SECRET`: nodes sharing the secret replicate as
//! before; messages written straight into Redis without its MAC (a forged
//! delta, a forged inbox `terminate`, a forged revoke) are dropped and
//! counted; a node with another secret sees nothing of the others. Without
//! the secret, the same forgeries take effect, which is why the secret
//! exists.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use crate::node;
use crate::support::{
    HubProcess, RedisServer, WsClient, eventually, jwt, ms, unique_namespace, within,
};

const LIMIT: Duration = Duration::from_secs(60);
const SECRET: &str = "a-cluster-secret-of-32-bytes-or-more";
const OTHER_SECRET: &str = "another-cluster-secret-of-32-bytes";

/// Nodes `node-a` and `node-b` in a fresh namespace, each with its
/// cluster secret when given, and `extra` settings.
async fn pair_sealed(
    redis: &RedisServer,
    name: &str,
    secrets: [Option<&'static str>; 2],
    extra: &[(&str, &str)],
) -> (HubProcess, HubProcess, String) {
    let namespace = unique_namespace(name);
    let env = |secret: Option<&'static str>| {
        let mut env = extra.to_vec();
        env.extend(secret.map(|s| ("PRESENCE_CLUSTER_SECRET", s)));
        env
    };
    let a = node(redis, &namespace, "node-a", &env(secrets[0])).await;
    let b = node(redis, &namespace, "node-b", &env(secrets[1])).await;
    (a, b, namespace)
}

/// `presence_cluster_rejected_total{reason}` of `node`.
async fn rejected(node: &HubProcess, reason: &str) -> u64 {
    let text = crate::support::scrape(&node.http("/metrics")).await;
    let series = format!(r#"presence_cluster_rejected_total{{reason="{reason}"}}"#);
    crate::support::sample(&text, &series).map_or(0, |value| value as u64)
}

/// Live sessions `node` lists.
async fn live_sessions(node: &HubProcess) -> Value {
    node.get("/api/v1/sessions").await.1["total"].clone()
}

async fn publish(conn: &mut MultiplexedConnection, channel: String, text: String) {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(text)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

/// A well-formed `end` of session `id` as if from `node-a`: its current
/// epoch, the next `seq`, the session as `b` shows it.
async fn forged_end(
    conn: &mut MultiplexedConnection,
    namespace: &str,
    b: &HubProcess,
    id: &str,
) -> String {
    let (epoch, seq): (u64, u64) = redis::cmd("HMGET")
        .arg(format!("{namespace}:node:{{node-a}}:meta"))
        .arg("epoch")
        .arg("seq")
        .query_async(conn)
        .await
        .unwrap();
    let (_, session) = b.get(&format!("/api/v1/sessions/{id}")).await;
    let now = chrono::Utc::now().timestamp_millis();
    json!({
        "v": 1, "node_id": "node-a", "epoch": epoch, "seq": seq + 1,
        "sent_at": now, "kind": "end", "session": session,
    })
    .to_string()
}

/// A well-formed inbox request asking `node-a` to terminate session `id`.
fn forged_terminate(id: &str) -> String {
    json!({
        "kind": "request", "from": "node-b", "request_id": 9,
        "request": {"op": "terminate", "session_id": id, "reason": "admin"},
    })
    .to_string()
}

/// A client on `a` whose session `b` lists.
async fn replicated_client(a: &HubProcess, b: &HubProcess) -> (WsClient, String) {
    let (client, id) = a.client("user=alice").await;
    eventually(ms(5000), "the session replicated to b", || async {
        (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
    })
    .await;
    (client, id)
}

#[tokio::test]
async fn nodes_with_the_same_secret_share_sessions_and_requests() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair_sealed(&redis, "sealed", [Some(SECRET), Some(SECRET)], &[]).await;
        let (mut on_a, id) = replicated_client(&a, &b).await;
        let (_on_b, _) = b.client("user=bob").await;
        eventually(ms(5000), "b's session on a", || async {
            (live_sessions(&a).await == 2).then_some(())
        })
        .await;

        // A request through a's inbox, and its answer through b's.
        let response = reqwest::Client::new()
            .delete(b.http(&format!("/api/v1/sessions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"terminated": true})
        );
        assert_eq!(
            on_a.recv_type("terminated", ms(2000)).await["reason"],
            "admin"
        );
        eventually(ms(5000), "the end replicated to b", || async {
            (live_sessions(&b).await == 1).then_some(())
        })
        .await;
        for node in [&a, &b] {
            for reason in ["missing_mac", "bad_mac"] {
                assert_eq!(rejected(node, reason).await, 0, "{reason}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn without_a_secret_a_forged_delta_and_terminate_take_effect() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, namespace) = pair_sealed(&redis, "unsealed", [None, None], &[]).await;
        let (mut on_a, id) = replicated_client(&a, &b).await;
        let mut conn = redis.connection().await;

        let end = forged_end(&mut conn, &namespace, &b, &id).await;
        publish(&mut conn, format!("{namespace}:deltas"), end).await;
        eventually(
            ms(5000),
            "the forged end hides the session on b",
            || async { (live_sessions(&b).await == 0).then_some(()) },
        )
        .await;
        assert_eq!(live_sessions(&a).await, 1, "a still holds it");

        let inbox = format!("{namespace}:node:{{node-a}}:inbox");
        publish(&mut conn, inbox, forged_terminate(&id)).await;
        assert_eq!(
            on_a.recv_type("terminated", ms(2000)).await["reason"],
            "admin"
        );
    })
    .await;
}

#[tokio::test]
async fn with_a_secret_forged_messages_are_dropped_and_counted() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let secrets = [Some(SECRET), Some(SECRET)];
        let (a, b, namespace) = pair_sealed(&redis, "forged", secrets, &[]).await;
        let (mut on_a, id) = replicated_client(&a, &b).await;
        let mut conn = redis.connection().await;

        let end = forged_end(&mut conn, &namespace, &b, &id).await;
        let deltas = format!("{namespace}:deltas");
        publish(&mut conn, deltas.clone(), end.clone()).await;
        let wrong_mac = format!("v1.{}.{end}", "0".repeat(64));
        publish(&mut conn, deltas, wrong_mac).await;
        eventually(ms(5000), "both forgeries counted on b", || async {
            let missing = rejected(&b, "missing_mac").await;
            let bad = rejected(&b, "bad_mac").await;
            (missing == 1 && bad == 1).then_some(())
        })
        .await;

        // a listens on the delta channel too.
        eventually(ms(5000), "the forged deltas counted on a", || async {
            (rejected(&a, "missing_mac").await == 1).then_some(())
        })
        .await;
        let inbox = format!("{namespace}:node:{{node-a}}:inbox");
        publish(&mut conn, inbox, forged_terminate(&id)).await;
        eventually(ms(5000), "the forged terminate counted on a", || async {
            (rejected(&a, "missing_mac").await == 2).then_some(())
        })
        .await;
        let frames = on_a.collect_for(ms(1000)).await;
        assert!(
            frames.iter().all(|f| f["type"] != "terminated"),
            "{frames:?}"
        );
        assert_eq!(live_sessions(&b).await, 1, "the session is still on b");
        assert_eq!(live_sessions(&a).await, 1);

        let logged = |node: &HubProcess| {
            let logs = node.logs.lock().unwrap();
            logs.iter()
                .filter(|l| l.contains("dropped a cluster message"))
                .count()
        };
        assert_eq!(logged(&b), 1, "two refusals, one log line");
        assert_eq!(logged(&a), 1, "three refusals, one log line");
    })
    .await;
}

#[tokio::test]
async fn a_node_with_another_secret_sees_none_of_the_others_sessions() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let secrets = [Some(SECRET), Some(OTHER_SECRET)];
        let (a, b, _) = pair_sealed(&redis, "other-secret", secrets, &[]).await;
        let (_on_a, _) = a.client("user=alice").await;
        let (_on_b, _) = b.client("user=bob").await;
        eventually(ms(5000), "each refuses the other's messages", || async {
            let a_refused = rejected(&a, "bad_mac").await;
            let b_refused = rejected(&b, "bad_mac").await;
            // Each node's heartbeats and deltas reach the other.
            (a_refused > 3 && b_refused > 3).then_some(())
        })
        .await;
        tokio::time::sleep(ms(1000)).await;
        assert_eq!(live_sessions(&a).await, 1, "a lists only its own");
        assert_eq!(live_sessions(&b).await, 1, "b lists only its own");
        assert_eq!(
            rejected(&b, "missing_mac").await,
            0,
            "every message had a MAC"
        );
    })
    .await;
}

/// The HTTP status of an upgrade with `token` (101 when it opens).
async fn upgrade_status(hub: &HubProcess, token: &str) -> u16 {
    crate::support::upgrade_status(&hub.ws_url("/ws"), token).await
}

#[tokio::test]
async fn a_forged_revoke_is_obeyed_without_a_secret_and_dropped_with_one() {
    const JWT_SECRET: &str = "test-secret-of-at-least-32-bytes";
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let mut conn = redis.connection().await;
        let now = chrono::Utc::now().timestamp();
        let revoke = json!({
            "user_id": "alice", "revoked_at": now + 60,
            "max_exp": now + 3600, "until": now + 86_400,
        })
        .to_string();
        let alice = jwt(JWT_SECRET, "alice", None, 600);
        let tokens = [("PRESENCE_JWT_SECRET", JWT_SECRET)];
        for secret in [None, Some(SECRET)] {
            let (a, _b, namespace) = pair_sealed(&redis, "revoke", [secret, secret], &tokens).await;
            assert_eq!(upgrade_status(&a, &alice).await, 101);
            let channel = format!("{namespace}:revoked:new");
            publish(&mut conn, channel, revoke.clone()).await;
            if secret.is_none() {
                eventually(ms(5000), "the forged revoke denies alice", || async {
                    (upgrade_status(&a, &alice).await == 401).then_some(())
                })
                .await;
            } else {
                eventually(ms(5000), "the forged revoke counted", || async {
                    (rejected(&a, "missing_mac").await == 1).then_some(())
                })
                .await;
                assert_eq!(upgrade_status(&a, &alice).await, 101, "alice is not denied");
            }
        }
    })
    .await;
}
