//! The same guarantees on a real Redis Cluster (three masters with a
//! replica each, `redis+cluster://`): replication over sharded channels
//! spread by node, late joiners, cross-node requests, history, a killed
//! node, a shard failover, and a URL of the wrong kind.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::redis_cluster::RedisCluster;
use crate::support::{
    HubProcess, RedisServer, admin_session_event, eventually, ms, unique_namespace, within,
};

const LIMIT: Duration = Duration::from_secs(90);

/// A ready node on `cluster`.
async fn node_on(cluster: &RedisCluster, namespace: &str, id: &str) -> HubProcess {
    let url = cluster.url();
    let hub = HubProcess::start(&[
        ("PRESENCE_REDIS_URL", url.as_str()),
        ("PRESENCE_NAMESPACE", namespace),
        ("PRESENCE_NODE_ID", id),
        ("PRESENCE_NODE_TIMEOUT", "2s"),
    ])
    .await;
    hub.ready().await;
    hub
}

async fn session_total(hub: &HubProcess) -> serde_json::Value {
    hub.get("/api/v1/sessions").await.1["total"].clone()
}

#[tokio::test]
async fn on_a_redis_cluster_changes_reach_every_node_over_each_nodes_sharded_channel() {
    within(LIMIT, async {
        let cluster = RedisCluster::start().await;
        let namespace = unique_namespace("sharded");
        let a = node_on(&cluster, &namespace, "node-a").await;
        let b = node_on(&cluster, &namespace, "node-b").await;
        let (mut admin_b, _) = b.admin("").await;
        let (mut client, id) = a.client("user=alice&org=acme").await;
        let started = admin_session_event(&mut admin_b, ms(5000), "started on b", |e, s| {
            e == "started" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(started["session"]["node_id"], "node-a");

        let sent = Instant::now();
        client
            .send_json(json!({"type": "status", "manual": "busy"}))
            .await;
        admin_session_event(&mut admin_b, ms(5000), "busy on b", |_, s| {
            s["manual"] == "busy"
        })
        .await;
        assert!(sent.elapsed() < ms(1000), "took {:?}", sent.elapsed());

        // Each node publishes on its own sharded channel, served by the
        // master of that channel's slot (where its state hash lives too).
        for node in ["node-a", "node-b"] {
            let channel = format!("{namespace}:node:{{{node}}}:deltas");
            let state = format!("{namespace}:node:{{{node}}}:state");
            let master = cluster.master_of(&channel).await;
            assert_eq!(master, cluster.master_of(&state).await);
            let channels: Vec<String> = cluster
                .ask(master, &["PUBSUB", "SHARDCHANNELS", &channel])
                .await;
            assert_eq!(channels, vec![channel.clone()], "{node} followed");
        }
        let plain: Vec<String> = cluster
            .ask(cluster.master_of("x").await, &["PUBSUB", "CHANNELS", "*"])
            .await;
        assert!(plain.is_empty(), "no plain pub/sub on a cluster: {plain:?}");

        client.close().await;
        let ended =
            admin_session_event(&mut admin_b, ms(5000), "ended on b", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "client_closed");
        let (_, history) = eventually(ms(5000), "history in the cluster", || async {
            let found = b.get(&format!("/api/v1/sessions/{id}")).await;
            (found.0 == 200 && found.1["status"] == "ended").then_some(found)
        })
        .await;
        assert_eq!(history["end_cause"], "client_closed");
    })
    .await;
}

#[tokio::test]
async fn on_a_redis_cluster_a_late_node_bootstraps_and_requests_cross_nodes() {
    within(LIMIT, async {
        let cluster = RedisCluster::start().await;
        let namespace = unique_namespace("sharded-late");
        let a = node_on(&cluster, &namespace, "node-a").await;
        let (mut on_a, id) = a.client("user=alice").await;
        let c = node_on(&cluster, &namespace, "node-c").await;
        assert_eq!(session_total(&c).await, 1, "bootstrapped before ready");
        // a learns of c from its announcement and follows its channel.
        let (mut admin_a, _) = a.admin("").await;
        let (_on_c, id_c) = c.client("user=carol").await;
        admin_session_event(&mut admin_a, ms(5000), "c's session on a", |e, s| {
            e == "started" && s["session_id"] == id_c.as_str()
        })
        .await;

        let response = reqwest::Client::new()
            .delete(c.http(&format!("/api/v1/sessions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap(),
            json!({"terminated": true})
        );
        assert_eq!(
            on_a.recv_type("terminated", ms(2000)).await["reason"],
            "admin"
        );
    })
    .await;
}

#[tokio::test]
async fn on_a_redis_cluster_a_killed_nodes_sessions_end_node_lost_once() {
    within(LIMIT, async {
        let cluster = RedisCluster::start().await;
        let namespace = unique_namespace("sharded-kill");
        let mut a = node_on(&cluster, &namespace, "node-a").await;
        let b = node_on(&cluster, &namespace, "node-b").await;
        let (_client, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        let (mut admin_b, _) = b.admin("").await;
        let killed = Instant::now();
        a.child.start_kill().unwrap();
        let ended = admin_session_event(&mut admin_b, ms(5000), "node_lost", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "node_lost");
        assert!(killed.elapsed() < ms(3000), "after {:?}", killed.elapsed());
        let (_, history) = eventually(ms(5000), "history", || async {
            let found = b.get("/api/v1/sessions?status=ended&user_id=alice").await;
            (found.1["total"] == 1).then_some(found)
        })
        .await;
        assert_eq!(history["sessions"][0]["end_cause"], "node_lost");
        let extra = admin_b.collect_for(ms(1500)).await;
        assert!(
            !extra.iter().any(|e| e["event"] == "ended"),
            "ended once: {extra:?}"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "known gap: while one shard fails over, the other nodes may declare the node whose channel it carries lost (node_lost for live sessions) and converge later than 5 s; see docs/scaling.md"]
async fn a_failover_of_one_shard_converges_within_5_s_with_no_zombie_session() {
    within(LIMIT, async {
        let cluster = RedisCluster::start().await;
        let namespace = unique_namespace("sharded-failover");
        let a = node_on(&cluster, &namespace, "node-a").await;
        let b = node_on(&cluster, &namespace, "node-b").await;
        let (mut admin_b, _) = b.admin("").await;
        let (leaving, leaving_id) = a.client("user=alice").await;
        let (mut staying, staying_id) = a.client("user=bob").await;
        eventually(ms(5000), "both replicas on b", || async {
            (session_total(&b).await == 2).then_some(())
        })
        .await;

        // Promote the replica of the shard carrying node-a's channel.
        let master = cluster
            .master_of(&format!("{namespace}:node:{{node-a}}:deltas"))
            .await;
        let replica = cluster.replica_of(master).await;
        let answer: String = cluster.ask(replica, &["CLUSTER", "FAILOVER"]).await;
        assert_eq!(answer, "OK");
        let promoted = Instant::now();
        eventually(ms(10_000), "the replica promoted", || async {
            let role: redis::Value = cluster.ask(replica, &["ROLE"]).await;
            matches!(&role, redis::Value::Array(items)
                if matches!(items.first(), Some(redis::Value::BulkString(r)) if r == b"master"))
            .then_some(())
        })
        .await;

        // Meanwhile and after: a session ends, one changes, one starts.
        leaving.close().await;
        staying
            .send_json(json!({"type": "status", "manual": "busy"}))
            .await;
        let (_late, late_id) = a.client("user=carol").await;
        let converged = eventually(ms(5000), "b converged", || async {
            let ended = b.get(&format!("/api/v1/sessions/{leaving_id}")).await;
            let busy = b.get(&format!("/api/v1/sessions/{staying_id}")).await;
            let late = b.get(&format!("/api/v1/sessions/{late_id}")).await;
            let done = ended.1["status"] == "ended"
                && busy.1["manual"] == "busy"
                && late.0 == 200
                && session_total(&b).await == 2;
            done.then(Instant::now)
        })
        .await;
        assert!(
            converged - promoted < ms(5000),
            "converged {:?} after the failover",
            converged - promoted
        );
        // No zombie: b holds exactly what a holds.
        assert_eq!(session_total(&a).await, 2);
        let ended: Vec<_> = admin_b
            .collect_for(ms(500))
            .await
            .into_iter()
            .filter(|e| e["event"] == "ended" && e["session"]["session_id"] == leaving_id.as_str())
            .collect();
        assert!(ended.len() <= 1, "ended at most once more: {ended:?}");
    })
    .await;
}

/// Runs the hub to its exit with `url`; returns its code and log.
fn run_with_redis_url(url: &str) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"))
        .env_clear()
        .env("PRESENCE_REDIS_URL", url)
        .env("PRESENCE_DATABASE_URL", "memory:")
        .env("PRESENCE_BIND", "127.0.0.1:0")
        .output()
        .expect("run presence-hub");
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code(), log)
}

#[tokio::test]
async fn a_redis_url_of_the_wrong_kind_stops_the_hub_with_exit_2_saying_which() {
    within(LIMIT, async {
        let single = RedisServer::start().await;
        let as_cluster = format!("redis+cluster://127.0.0.1:{}", single.port);
        let (code, log) = tokio::task::spawn_blocking(move || run_with_redis_url(&as_cluster))
            .await
            .unwrap();
        assert_eq!(code, Some(2), "{log}");
        assert!(log.contains("PRESENCE_REDIS_URL"), "{log}");
        assert!(log.contains("not a cluster"), "{log}");

        let cluster = RedisCluster::start().await;
        let node = cluster.single_node_url();
        let (code, log) = tokio::task::spawn_blocking(move || run_with_redis_url(&node))
            .await
            .unwrap();
        assert_eq!(code, Some(2), "{log}");
        assert!(log.contains("redis+cluster://"), "{log}");
    })
    .await;
}
