//! The webhook outbox across restarts of the hub binary, with a real HTTP
//! receiver on loopback: the receiver is down (connection refused, or
//! answering 503), events are queued and kept in the records store, the hub
//! is stopped (SIGTERM) or killed (SIGKILL), started again on the same
//! database, the receiver comes up, and every event arrives with the id it
//! had, in order. On SQLite (the default file, restarted with a new random
//! node id) and PostgreSQL; and in a cluster on PostgreSQL, a node killed
//! for good whose events another node adopts and sends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

use crate::support::postgres::PgServer;
use crate::support::receiver::{Answer, Receiver};
use crate::support::temp::TempDir;
use crate::support::{
    HubProcess, RedisServer, eventually, free_port, ms, unique_namespace, within,
};

const LIMIT: Duration = Duration::from_secs(90);
const SECRET: &str = "outbox-test-secret";
const USERS: usize = 5;

/// Where the hub keeps its records.
enum Db {
    /// `presence-hub.db` in this directory (the default store).
    Sqlite(PathBuf),
    /// This PostgreSQL database.
    Postgres(String),
}

impl Db {
    /// The outbox rows `(event_id, payload)`, in order key order.
    async fn rows(&self) -> Vec<(String, String)> {
        let select = "SELECT event_id, payload FROM webhook_outbox ORDER BY order_key";
        match self {
            Self::Sqlite(dir) => {
                let url = format!("sqlite://{}?mode=ro", dir.join("presence-hub.db").display());
                let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let rows = sqlx::query_as(select).fetch_all(&mut db).await;
                db.close().await.unwrap();
                rows.unwrap()
            }
            Self::Postgres(url) => {
                let mut db = sqlx::PgConnection::connect(url).await.unwrap();
                let rows = sqlx::query_as(select).fetch_all(&mut db).await;
                db.close().await.unwrap();
                rows.unwrap()
            }
        }
    }

    /// Waits until the outbox holds `n` rows; returns their event ids.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        eventually(ms(15_000), &format!("{n} rows in the outbox"), || async {
            let rows = self.rows().await;
            (rows.len() == n).then(|| rows.into_iter().map(|(id, _)| id).collect())
        })
        .await
    }
}

async fn start_hub(db: &Db, dir: &Path, url: &str) -> HubProcess {
    let mut env = vec![
        ("PRESENCE_WEBHOOK_URLS", url.to_string()),
        ("PRESENCE_WEBHOOK_SECRET", SECRET.to_string()),
        (
            "PRESENCE_WEBHOOK_EVENTS",
            "session.started,session.ended".into(),
        ),
        // Never given up while the receiver is down.
        ("PRESENCE_WEBHOOK_MAX_ATTEMPTS", "1000".into()),
    ];
    if let Db::Postgres(database) = db {
        env.push(("PRESENCE_DATABASE_URL", database.clone()));
        env.push(("PRESENCE_NODE_ID", "outbox-node".into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let hub = HubProcess::start_in(dir, &env).await;
    hub.ready().await;
    hub
}

/// Opens and closes a session per user: 2 events each, in this order.
async fn sessions(hub: &HubProcess, round: &str) -> Vec<String> {
    let mut users = Vec::new();
    for n in 0..USERS {
        let user = format!("{round}{n}");
        let (client, _) = hub.client(&format!("user={user}")).await;
        client.close().await;
        users.push(user);
    }
    users
}

async fn exit(mut hub: HubProcess, signal: i32) {
    hub.signal(signal);
    let status = tokio::time::timeout(ms(10_000), hub.child.wait())
        .await
        .expect("exits in time")
        .unwrap();
    if signal == 15 {
        assert_eq!(status.code(), Some(0));
    }
}

/// Event ids in the order first received (a resent one counted once).
fn first_seen(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for event in events {
        let id = event["id"].as_str().unwrap().to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// What the receiver must get: `(type, user)` for every session, in order.
fn expected(users: &[String]) -> Vec<(String, String)> {
    users
        .iter()
        .flat_map(|user| {
            ["session.started", "session.ended"].map(|kind| (kind.to_string(), user.clone()))
        })
        .collect()
}

fn received(events: &[Value]) -> Vec<(String, String)> {
    let ids = first_seen(events);
    ids.iter()
        .map(|id| {
            let event = events.iter().find(|e| e["id"] == id.as_str()).unwrap();
            let kind = event["type"].as_str().unwrap().to_string();
            (kind, event["data"]["user_id"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Receiver down (connection refused), SIGTERM, restart, receiver up.
async fn refused_then_stopped(db: Db, dir: &TempDir) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let url = format!("http://{addr}/hook");
    let hub = start_hub(&db, dir.path(), &url).await;
    let users = sessions(&hub, "before").await;
    let queued = db.wait_for(2 * USERS).await;
    exit(hub, 15).await;
    assert_eq!(
        db.rows().await.len(),
        2 * USERS,
        "kept through the shutdown"
    );

    let hub = start_hub(&db, dir.path(), &url).await;
    let (_, status) = hub.get("/api/v1/webhooks").await;
    assert_eq!(
        status["endpoints"][0]["queued"],
        2 * USERS,
        "queued again at start: {status}"
    );
    let receiver = Receiver::start_on(addr, vec![]).await;
    let events = eventually(ms(30_000), "the events from before", || async {
        let events = receiver.events();
        (first_seen(&events).len() >= 2 * USERS).then_some(events)
    })
    .await;
    assert_eq!(first_seen(&events), queued, "the same ids, in order");
    assert_eq!(received(&events), expected(&users));
    assert!(receiver.received().iter().all(|r| r.signed_with(SECRET)));
    // New events follow the old ones, and delivered rows leave the outbox.
    let later = sessions(&hub, "after").await;
    let all = eventually(ms(15_000), "the new events", || async {
        let events = receiver.events();
        (first_seen(&events).len() >= 4 * USERS).then_some(events)
    })
    .await;
    assert_eq!(
        received(&all),
        [expected(&users), expected(&later)].concat()
    );
    db.wait_for(0).await;
    exit(hub, 15).await;
}

/// Receiver answering 503, SIGKILL, restart, receiver up.
async fn unavailable_then_killed(db: Db, dir: &TempDir) {
    let down = Receiver::start(vec![Answer::Status(503); 1000]).await;
    let (addr, url) = (down.addr, down.url());
    let hub = start_hub(&db, dir.path(), &url).await;
    let users = sessions(&hub, "killed").await;
    let queued = db.wait_for(2 * USERS).await;
    let refused = eventually(ms(15_000), "a refused attempt", || async {
        let events = down.events();
        (!events.is_empty()).then_some(events)
    })
    .await;
    exit(hub, 9).await;
    drop(down);
    assert_eq!(db.rows().await.len(), 2 * USERS, "kept through the kill");

    let receiver = Receiver::start_on(addr, vec![]).await;
    let hub = start_hub(&db, dir.path(), &url).await;
    let events = eventually(ms(30_000), "the events from before the kill", || async {
        let events = receiver.events();
        (first_seen(&events).len() >= 2 * USERS).then_some(events)
    })
    .await;
    let tried = first_seen(&refused);
    assert_eq!(tried, queued[..tried.len()], "refused in queue order");
    assert_eq!(first_seen(&events), queued, "the same ids, in order");
    assert_eq!(received(&events), expected(&users));
    db.wait_for(0).await;
    exit(hub, 15).await;
}

#[tokio::test]
async fn sqlite_queued_events_survive_a_stop_and_arrive_after_the_restart() {
    within(LIMIT, async {
        let dir = TempDir::new("outbox-stop");
        refused_then_stopped(Db::Sqlite(dir.path().to_path_buf()), &dir).await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_queued_events_survive_a_kill_and_arrive_after_the_restart() {
    within(LIMIT, async {
        let dir = TempDir::new("outbox-kill");
        unavailable_then_killed(Db::Sqlite(dir.path().to_path_buf()), &dir).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_queued_events_survive_a_stop_and_arrive_after_the_restart() {
    within(LIMIT, async {
        let dir = TempDir::new("outbox-pg-stop");
        let url = PgServer::shared().database("outbox_stop").await;
        refused_then_stopped(Db::Postgres(url), &dir).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_queued_events_survive_a_kill_and_arrive_after_the_restart() {
    within(LIMIT, async {
        let dir = TempDir::new("outbox-pg-kill");
        let url = PgServer::shared().database("outbox_kill").await;
        unavailable_then_killed(Db::Postgres(url), &dir).await;
    })
    .await;
}

async fn cluster_node(
    redis: &RedisServer,
    namespace: &str,
    id: &str,
    db: &str,
    url: &str,
) -> HubProcess {
    let redis_url = redis.url();
    let hub = HubProcess::start(&[
        ("PRESENCE_REDIS_URL", redis_url.as_str()),
        ("PRESENCE_NAMESPACE", namespace),
        ("PRESENCE_NODE_ID", id),
        ("PRESENCE_NODE_TIMEOUT", "2s"),
        ("PRESENCE_DATABASE_URL", db),
        ("PRESENCE_WEBHOOK_URLS", url),
        ("PRESENCE_WEBHOOK_SECRET", SECRET),
        ("PRESENCE_WEBHOOK_EVENTS", "session.started,session.ended"),
        ("PRESENCE_WEBHOOK_MAX_ATTEMPTS", "1000"),
    ])
    .await;
    hub.ready().await;
    hub
}

/// The outbox rows of `node`.
async fn rows_of(database: &str, node: &str) -> Vec<String> {
    let mut db = sqlx::PgConnection::connect(database).await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT event_id FROM webhook_outbox WHERE node_id = $1 ORDER BY order_key")
            .bind(node)
            .fetch_all(&mut db)
            .await
            .unwrap();
    db.close().await.unwrap();
    rows.into_iter().map(|(id,)| id).collect()
}

#[tokio::test]
async fn a_cluster_node_adopts_the_queued_events_of_a_node_that_never_comes_back() {
    within(LIMIT, async {
        let redis = RedisServer::start().await;
        let database = PgServer::shared().database("outbox_cluster").await;
        let namespace = unique_namespace("outbox");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let url = format!("http://{addr}/hook");
        let a = cluster_node(&redis, &namespace, "node-a", &database, &url).await;
        let b = cluster_node(&redis, &namespace, "node-b", &database, &url).await;
        let on_a = sessions(&a, "on-a").await;
        let queued = eventually(ms(15_000), "node a's events in the outbox", || async {
            let rows = rows_of(&database, "node-a").await;
            (rows.len() == 2 * USERS).then_some(rows)
        })
        .await;
        // Both alive: node b leaves node a's rows alone.
        tokio::time::sleep(ms(3_000)).await;
        assert_eq!(rows_of(&database, "node-a").await, queued);
        assert!(rows_of(&database, "node-b").await.is_empty());
        exit(a, 9).await;
        let adopted = eventually(ms(15_000), "node b adopting them", || async {
            let rows = rows_of(&database, "node-b").await;
            (rows.len() == 2 * USERS).then_some(rows)
        })
        .await;
        let mut sorted = (adopted.clone(), queued.clone());
        sorted.0.sort();
        sorted.1.sort();
        assert_eq!(sorted.0, sorted.1, "the same events, now node b's");
        assert!(rows_of(&database, "node-a").await.is_empty());
        let receiver = Receiver::start_on(addr, vec![]).await;
        let events = eventually(ms(30_000), "node a's events from node b", || async {
            let events = receiver.events();
            (first_seen(&events).len() >= 2 * USERS).then_some(events)
        })
        .await;
        assert_eq!(first_seen(&events), queued, "the same ids, in order");
        assert_eq!(received(&events), expected(&on_a));
        eventually(ms(10_000), "delivered rows gone", || async {
            rows_of(&database, "node-b").await.is_empty().then_some(())
        })
        .await;
        exit(b, 15).await;
    })
    .await;
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_rows_too_and_the_rest_arrive_after_a_restart() {
    within(LIMIT, async {
        let dir = TempDir::new("outbox-full");
        let db = Db::Sqlite(dir.path().to_path_buf());
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let url = format!("http://{addr}/hook");
        let env = [
            ("PRESENCE_WEBHOOK_URLS", url.as_str()),
            ("PRESENCE_WEBHOOK_SECRET", SECRET),
            ("PRESENCE_WEBHOOK_EVENTS", "session.started"),
            ("PRESENCE_WEBHOOK_MAX_ATTEMPTS", "1000"),
            ("PRESENCE_WEBHOOK_QUEUE", "3"),
        ];
        let hub = HubProcess::start_in(dir.path(), &env).await;
        let (_first, _) = hub.client("user=first").await;
        // The first batch is in flight (its first attempt refused) before
        // five more sessions start while only three may wait.
        eventually(ms(10_000), "a refused first attempt", || async {
            let (_, status) = hub.get("/api/v1/webhooks").await;
            status["endpoints"][0]["last_error"]
                .is_string()
                .then_some(())
        })
        .await;
        let mut clients = Vec::new();
        for n in 0..5 {
            clients.push(hub.client(&format!("user=later{n}")).await.0);
        }
        let (_, status) = eventually(ms(10_000), "two drops counted", || async {
            let (code, status) = hub.get("/api/v1/webhooks").await;
            (status["endpoints"][0]["dropped"] == 2).then_some((code, status))
        })
        .await;
        assert_eq!(status["endpoints"][0]["queued"], 4, "{status}");
        // An overflowing queue is kept by snapshots: the rows are what it
        // held when the overflow started (later0 dropped for later3), not
        // yet later4's drop of later1. The writer may still be applying it.
        let kept = eventually(ms(10_000), "the snapshot rows", || async {
            let rows = db.rows().await;
            let users: Vec<String> = rows
                .iter()
                .map(|(_, payload)| {
                    let event: Value = serde_json::from_str(payload).unwrap();
                    event["data"]["user_id"].as_str().unwrap().to_string()
                })
                .collect();
            (users == ["first", "later1", "later2", "later3"])
                .then(|| rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
        })
        .await;
        // Drops are reported once a second at most.
        eventually(ms(5000), "the drops audited", || async {
            let (_, audit) = hub.get("/api/v1/audit?action=webhook.dropped").await;
            (audit["total"].as_u64().unwrap_or(0) >= 1).then_some(())
        })
        .await;
        drop(clients);
        // SIGTERM writes the queue as it is.
        exit(hub, 15).await;

        let receiver = Receiver::start_on(addr, vec![]).await;
        let hub = HubProcess::start_in(dir.path(), &env).await;
        let events = eventually(ms(30_000), "the kept events", || async {
            let events = receiver.events();
            (first_seen(&events).len() >= 4).then_some(events)
        })
        .await;
        assert_eq!(
            first_seen(&events)[..3],
            [kept[0].clone(), kept[2].clone(), kept[3].clone()],
            "the same ids"
        );
        let users: Vec<&str> = events
            .iter()
            .map(|e| e["data"]["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["first", "later2", "later3", "later4"]);
        db.wait_for(0).await;
        exit(hub, 15).await;
    })
    .await;
}
