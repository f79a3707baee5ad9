//! Several real hub processes sharing a real `redis-server`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod alerts;
mod continuity;
mod faults;
mod replication;
mod revocation;
mod rooms;
mod sealing;
mod sharded;
mod webhooks;

use support::{HubProcess, RedisServer, unique_namespace};

/// Starts a hub node in `namespace` on `redis`.
pub async fn node(
    redis: &RedisServer,
    namespace: &str,
    id: &str,
    extra: &[(&str, &str)],
) -> HubProcess {
    let url = redis.url();
    let mut env = vec![
        ("PRESENCE_REDIS_URL", url.as_str()),
        ("PRESENCE_NAMESPACE", namespace),
        ("PRESENCE_NODE_ID", id),
        ("PRESENCE_NODE_TIMEOUT", "2s"),
    ];
    env.extend_from_slice(extra);
    let hub = HubProcess::start(&env).await;
    hub.ready().await;
    hub
}

/// Two ready nodes, `a` and `b`, in a fresh namespace.
pub async fn pair(redis: &RedisServer, name: &str) -> (HubProcess, HubProcess, String) {
    let namespace = unique_namespace(name);
    let a = node(redis, &namespace, "node-a", &[]).await;
    let b = node(redis, &namespace, "node-b", &[]).await;
    (a, b, namespace)
}
