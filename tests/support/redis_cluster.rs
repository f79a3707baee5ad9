//! A real Redis Cluster on loopback for tests: three masters, each with
//! one replica (six `redis-server --cluster-enabled yes`), joined by
//! `redis-cli --cluster create`, stopped (and its files removed) on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{eventually, free_port, ms};

/// One server of the cluster.
struct Member {
    port: u16,
    child: Child,
}

/// Three masters and three replicas.
pub struct RedisCluster {
    members: Vec<Member>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts six servers and waits until the cluster says `ok` on all.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "presence-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let members: Vec<Member> = (0..6).map(|_| Self::spawn_member(&dir)).collect();
        let cluster = Self { members, dir };
        for port in cluster.ports() {
            wait_for_ping(port).await;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in cluster.ports() {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed with redis-server");
        assert!(
            output.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        for port in cluster.ports() {
            eventually(
                ms(20_000),
                "cluster_state:ok and three replicas everywhere",
                || async move {
                    let state = info(port, "CLUSTER", "INFO").await?;
                    let ok = state.contains("cluster_state:ok");
                    let slots = state.contains("cluster_slots_assigned:16384");
                    let nodes = info(port, "CLUSTER", "NODES").await?;
                    let replicas = nodes
                        .lines()
                        .filter(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("slave")))
                        .count();
                    (ok && slots && replicas == 3).then_some(())
                },
            )
            .await;
        }
        cluster
    }

    fn spawn_member(dir: &std::path::Path) -> Member {
        let port = free_port();
        let bus = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &bus.to_string()])
            .args(["--cluster-node-timeout", "2000"])
            .arg("--cluster-config-file")
            .arg(dir.join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        Member { port, child }
    }

    fn ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.port).collect()
    }

    /// `redis+cluster://` naming two of the servers as seeds.
    pub fn url(&self) -> String {
        let ports = self.ports();
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
            ports[0], ports[1]
        )
    }

    /// `redis://` naming one server alone (a cluster node used wrongly).
    pub fn single_node_url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.ports()[0])
    }

    /// A connection to the cluster, for looking and for fault injection.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect();
        redis::cluster::ClusterClient::new(seeds)
            .unwrap()
            .get_async_connection()
            .await
            .unwrap()
    }

    /// The port of the master serving `key`'s slot.
    pub async fn master_of(&self, key: &str) -> u16 {
        let slot: i64 = self
            .ask(self.ports()[0], &["CLUSTER", "KEYSLOT", key])
            .await;
        for port in self.ports() {
            let role = info(port, "ROLE", "").await.unwrap_or_default();
            if !role.starts_with("master") {
                continue;
            }
            let owned: String = self.ask(port, &["CLUSTER", "NODES"]).await;
            let myself = owned.lines().find(|l| l.contains("myself")).unwrap_or("");
            if owns_slot(myself, slot) {
                return port;
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// The replica of the master on `master` (from CLUSTER NODES).
    pub async fn replica_of(&self, master: u16) -> u16 {
        let nodes: String = self.ask(master, &["CLUSTER", "NODES"]).await;
        let master_id = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .and_then(|l| l.split(' ').next())
            .unwrap()
            .to_string();
        let replica = nodes
            .lines()
            .find(|l| l.split(' ').nth(3) == Some(master_id.as_str()))
            .expect("every master has a replica");
        let addr = replica.split(' ').nth(1).unwrap();
        addr.split(['@', ':']).nth(1).unwrap().parse().unwrap()
    }

    /// Runs one command on one server.
    pub async fn ask<T: redis::FromRedisValue>(&self, port: u16, args: &[&str]) -> T {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await.unwrap()
    }
}

/// True when a CLUSTER NODES line lists `slot` among its ranges.
fn owns_slot(line: &str, slot: i64) -> bool {
    line.split(' ').skip(8).any(|range| {
        let mut bounds = range.split('-').filter_map(|b| b.parse::<i64>().ok());
        match (bounds.next(), bounds.next()) {
            (Some(lo), Some(hi)) => (lo..=hi).contains(&slot),
            (Some(only), None) => only == slot,
            _ => false,
        }
    })
}

async fn wait_for_ping(port: u16) {
    eventually(ms(10_000), "redis to answer PING", || async move {
        info(port, "PING", "").await
    })
    .await;
}

/// One command with at most one argument, as text; None while the server
/// does not answer.
async fn info(port: u16, command: &str, arg: &str) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let mut cmd = redis::cmd(command);
    if !arg.is_empty() {
        cmd.arg(arg);
    }
    let value: redis::Value = cmd.query_async(&mut conn).await.ok()?;
    Some(text_of(&value))
}

fn text_of(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) => text.clone(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        redis::Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.child.kill();
            let _ = member.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
