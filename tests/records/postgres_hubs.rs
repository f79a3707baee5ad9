//! Hub binaries on PostgreSQL: two cluster nodes sharing one database see
//! each other's ended sessions, and a node that loses its database reports
//! `database_unreachable` on `/readyz` while the sessions that end meanwhile
//! wait and are written once it is back.

use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

use crate::support::postgres::PgServer;
use crate::support::{HubProcess, RedisServer, eventually, ms, unique_namespace, within};

const LIMIT: Duration = Duration::from_secs(90);

async fn node(redis: &RedisServer, namespace: &str, id: &str, database: &str) -> HubProcess {
    let url = redis.url();
    let hub = HubProcess::start(&[
        ("PRESENCE_REDIS_URL", url.as_str()),
        ("PRESENCE_NAMESPACE", namespace),
        ("PRESENCE_NODE_ID", id),
        ("PRESENCE_NODE_TIMEOUT", "2s"),
        ("PRESENCE_DATABASE_URL", database),
    ])
    .await;
    hub.ready().await;
    hub
}

async fn ended_ids(hub: &HubProcess) -> Option<Vec<String>> {
    let (status, body) = hub.get("/api/v1/sessions?status=ended&page_size=100").await;
    (status == 200).then(|| {
        body["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["session_id"].as_str().map(str::to_string))
            .collect()
    })
}

async fn readyz(hub: &HubProcess) -> (u16, Value) {
    hub.get("/readyz").await
}

#[tokio::test]
async fn two_nodes_on_postgres_see_each_others_ended_sessions() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let database = PgServer::shared().database("cluster").await;
        let namespace = unique_namespace("postgres");
        let a = node(&redis, &namespace, "node-a", &database).await;
        let b = node(&redis, &namespace, "node-b", &database).await;
        let (alice, alice_id) = a.client("user=alice").await;
        let (bob, bob_id) = b.client("user=bob").await;
        alice.close().await;
        bob.close().await;
        for (hub, name) in [(&a, "node a"), (&b, "node b")] {
            eventually(
                ms(5000),
                &format!("both ended sessions on {name}"),
                || async {
                    let ids = ended_ids(hub).await?;
                    (ids.contains(&alice_id) && ids.contains(&bob_id) && ids.len() == 2)
                        .then_some(())
                },
            )
            .await;
        }
        // Kept in PostgreSQL (once), not in Redis.
        let mut conn = sqlx::PgConnection::connect(&database).await.unwrap();
        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT session_id, node_id FROM sessions ORDER BY user_id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            stored,
            vec![
                (alice_id, "node-a".to_string()),
                (bob_id, "node-b".to_string())
            ]
        );
        let mut redis_conn = redis.connection().await;
        let history_keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{namespace}*history*"))
            .query_async(&mut redis_conn)
            .await
            .unwrap();
        assert_eq!(history_keys, Vec::<String>::new(), "no history in Redis");
    })
    .await;
}

#[tokio::test]
async fn a_lost_database_makes_the_node_unready_and_records_wait_for_it() {
    within(LIMIT, async {
        let server = PgServer::start();
        let database = server.database("outage").await;
        let hub = HubProcess::start(&[("PRESENCE_DATABASE_URL", database.as_str())]).await;
        hub.ready().await;
        let (before, before_id) = hub.client("user=alice").await;
        before.close().await;
        eventually(ms(5000), "alice recorded", || async {
            ended_ids(&hub).await?.contains(&before_id).then_some(())
        })
        .await;

        let (during, during_id) = hub.client("user=bob").await;
        server.stop();
        let (_, body) = eventually(ms(10_000), "readyz 503", || async {
            let (status, body) = readyz(&hub).await;
            (status == 503).then_some((status, body))
        })
        .await;
        assert_eq!(body["reason"], "database_unreachable", "{body}");
        // The live view does not need the database.
        let (status, live) = hub.get("/api/v1/sessions").await;
        assert_eq!(status, 200);
        assert_eq!(live["total"], 1);
        during.close().await;
        let (status, _) = hub.get("/api/v1/sessions?status=ended").await;
        assert_eq!(status, 503, "history cannot be read without the database");
        let metrics = reqwest::get(hub.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("presence_history_dropped_total{reason=\"overflow\"} 0"),
            "nothing dropped"
        );

        server.resume();
        eventually(
            ms(5000),
            "bob's session written after the outage",
            || async { ended_ids(&hub).await?.contains(&during_id).then_some(()) },
        )
        .await;
        eventually(ms(5000), "readyz 200 again", || async {
            (readyz(&hub).await.0 == 200).then_some(())
        })
        .await;
        let (_, session) = hub.get(&format!("/api/v1/sessions/{during_id}")).await;
        assert_eq!(session["end_cause"], "client_closed");
    })
    .await;
}
