//! Hub binaries on PostgreSQL: two cluster nodes sharing one database see
//! each other's ended sessions, and a node that loses its database reports
//! `database_unreachable` on `/readyz` while the sessions that end meanwhile
//! wait and are written once it is back; both nodes sample the online
//! series into the one database, one point per bucket.

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

/// The bucket starts (Unix ms) of `hub`'s series in the hour up to `to`
/// (RFC 3339, or now when `None`), and the online users of each point.
async fn series_until(hub: &HubProcess, to: Option<&str>) -> (Vec<i64>, Vec<u64>) {
    let query = to.map_or(String::new(), |to| format!("?to={to}"));
    let (status, body) = hub.get(&format!("/api/v1/stats/series{query}")).await;
    assert_eq!(status, 200, "{body}");
    let points = body["points"].as_array().cloned().unwrap_or_default();
    let at = |p: &Value| {
        chrono::DateTime::parse_from_rfc3339(p["at"].as_str().unwrap_or_default())
            .map(|t| t.timestamp_millis())
            .unwrap_or(-1)
    };
    (
        points.iter().map(at).collect(),
        points.iter().filter_map(|p| p["users"].as_u64()).collect(),
    )
}

#[tokio::test]
async fn two_nodes_on_postgres_keep_one_series_point_per_bucket() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let database = PgServer::shared().database("series").await;
        let namespace = unique_namespace("series");
        let url = redis.url();
        let env = |id: &'static str| {
            vec![
                ("PRESENCE_REDIS_URL", url.clone()),
                ("PRESENCE_NAMESPACE", namespace.clone()),
                ("PRESENCE_NODE_ID", id.to_string()),
                ("PRESENCE_NODE_TIMEOUT", "2s".to_string()),
                ("PRESENCE_DATABASE_URL", database.clone()),
                ("PRESENCE_SERIES_INTERVAL", "200ms".to_string()),
            ]
        };
        let mut nodes = Vec::new();
        for id in ["node-a", "node-b"] {
            let vars = env(id);
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let hub = HubProcess::start(&vars).await;
            hub.ready().await;
            nodes.push(hub);
        }
        let (a, b) = (&nodes[0], &nodes[1]);
        let (_alice, _) = a.client("user=alice").await;
        let (_bob, _) = b.client("user=bob").await;
        eventually(ms(10_000), "a point of both users", || async {
            let (_, users) = series_until(b, None).await;
            users.contains(&2).then_some(())
        })
        .await;
        // Both nodes sample the same buckets; up to a moment already a
        // second past, both read the same series, one point per bucket.
        tokio::time::sleep(ms(2_500)).await;
        let until = chrono::Utc::now() - chrono::Duration::seconds(1);
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (from_a, _) = series_until(a, Some(&until)).await;
        let (from_b, _) = series_until(b, Some(&until)).await;
        assert_eq!(from_a, from_b, "one series in the shared database");
        assert!(from_a.len() >= 5, "{from_a:?}");
        assert!(
            from_a.iter().all(|at| at % 200 == 0) && from_a.windows(2).all(|w| w[0] < w[1]),
            "one point per bucket, oldest first: {from_a:?}"
        );
        for hub in [a, b] {
            let logs = hub.logs.lock().unwrap().join("\n");
            assert!(
                !logs.contains("online series failed"),
                "both nodes write every bucket without a conflict: {logs}"
            );
        }
    })
    .await;
}
