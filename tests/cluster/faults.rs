//! Failures: a node killed, Redis killed and restarted, lost messages.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::pair;
use crate::support::{RedisServer, admin_session_event, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_killed_node_is_noticed_within_the_node_timeout() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (mut a, b, _) = pair(&redis, "sigkill").await;
        let (_client, id) = a.client("user=alice").await;
        let (mut admin_b, _) = b.admin("").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        let killed = Instant::now();
        a.child.start_kill().unwrap();
        let ended = admin_session_event(&mut admin_b, ms(5000), "node_lost", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "node_lost");
        assert!(
            killed.elapsed() < ms(2000),
            "noticed after {:?} (node timeout 2s)",
            killed.elapsed()
        );
        let (_, history) = eventually(ms(5000), "history", || async {
            let found = b.get(&format!("/api/v1/sessions/{id}")).await;
            (found.1["end_cause"] == "node_lost").then_some(found)
        })
        .await;
        assert_eq!(history["status"], "ended");
    })
    .await;
}

#[tokio::test]
async fn a_redis_outage_keeps_local_clients_and_views_converge_after() {
    within(LIMIT, async {
        let mut redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "outage").await;
        let (mut before, _) = a.client("user=alice").await;
        redis.kill();
        let down = Instant::now();
        eventually(ms(6000), "readyz 503", || async {
            let (status, body) = a.get("/readyz").await;
            (status == 503 && body["reason"] == "redis_unreachable").then_some(())
        })
        .await;
        assert!(down.elapsed() < ms(6000));
        before.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(
            before.recv_type("pong", ms(2000)).await["id"],
            1,
            "local clients keep working"
        );
        let (_during, during_id) = a.client("user=bob").await;

        redis.restart().await;
        let back = Instant::now();
        eventually(
            ms(5000),
            "b sees the session made during the outage",
            || async {
                (b.get(&format!("/api/v1/sessions/{during_id}")).await.0 == 200).then_some(())
            },
        )
        .await;
        assert!(
            back.elapsed() < ms(5000),
            "converged after {:?}",
            back.elapsed()
        );
        a.ready().await;
        b.ready().await;
        let (_, on_a) = a.get("/api/v1/sessions").await;
        let (_, on_b) = b.get("/api/v1/sessions").await;
        assert_eq!(on_a["total"], 2);
        assert_eq!(on_b["total"], 2);
    })
    .await;
}

#[tokio::test]
async fn a_skipped_sequence_number_triggers_a_resync() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, namespace) = pair(&redis, "gap").await;
        let (_client, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica on b", || async { (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(()) }).await;
        // A heartbeat from node-a claiming a sequence number b never saw.
        let mut conn = redis.connection().await;
        let meta: Vec<String> = redis::cmd("HMGET")
            .arg(format!("{namespace}:node:{{node-a}}:meta"))
            .arg("epoch")
            .query_async(&mut conn)
            .await
            .unwrap();
        let forged = json!({"v": 1, "node_id": "node-a", "epoch": meta[0].parse::<u64>().unwrap(), "seq": 999, "sent_at": 0, "kind": "heartbeat"});
        redis::cmd("PUBLISH")
            .arg(format!("{namespace}:deltas"))
            .arg(forged.to_string())
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        let metric = eventually(ms(5000), "resync counted", || async {
            let text = reqwest::get(b.http("/metrics")).await.ok()?.text().await.ok()?;
            text.lines().find(|l| l.starts_with("presence_resyncs_total{reason=\"gap\"}")).map(str::to_string)
        })
        .await;
        assert!(metric.ends_with(" 1"), "{metric}");
        assert_eq!(b.get("/api/v1/sessions").await.1["total"], 1, "the view is still right");
    })
    .await;
}

#[tokio::test]
async fn a_killed_subscriber_connection_reconnects_and_resyncs() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "client-kill").await;
        let mut conn = redis.connection().await;
        // Kill every pub/sub connection (both nodes' subscribers).
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await
            .unwrap();
        let (_client, id) = a.client("user=alice").await;
        eventually(ms(5000), "b converges", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_node_that_dies_during_a_redis_outage_is_dropped_when_redis_returns() {
    within(LIMIT, async {
        let mut redis = RedisServer::start().await;
        let (mut a, b, _) = pair(&redis, "die-in-outage").await;
        let (_client, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        redis.kill();
        a.child.start_kill().unwrap();
        a.child.wait().await.unwrap();
        redis.restart().await;
        let (_, gone) = eventually(ms(8000), "b drops a's session", || async {
            let found = b.get(&format!("/api/v1/sessions/{id}")).await;
            (found.1["status"] == "ended").then_some(found)
        })
        .await;
        assert_eq!(gone["end_cause"], "node_lost");
        assert_eq!(b.get("/api/v1/sessions").await.1["total"], 0);
    })
    .await;
}

#[tokio::test]
async fn a_paused_node_comes_back_with_its_sessions() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let (a, b, _) = pair(&redis, "paused").await;
        let (_client, id) = a.client("user=alice").await;
        eventually(ms(5000), "replica on b", || async {
            (b.get(&format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        a.signal(19); // SIGSTOP
        eventually(ms(8000), "b declares a lost", || async {
            (b.get("/api/v1/sessions").await.1["total"] == 0).then_some(())
        })
        .await;
        a.signal(18); // SIGCONT
        eventually(
            ms(8000),
            "a republishes and b sees the session again",
            || async { (b.get("/api/v1/sessions").await.1["total"] == 1).then_some(()) },
        )
        .await;
    })
    .await;
}
