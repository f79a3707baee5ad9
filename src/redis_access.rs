//! Owns how the hub reaches Redis: one instance (`redis://`, `rediss://`,
//! `redis+unix://`) or a Redis Cluster (`redis+cluster://HOST:PORT,...`,
//! `rediss+cluster://` with TLS), read from `PRESENCE_REDIS_URL`; the
//! command connection either way (`RedisConn`, one type for both, so the
//! code that speaks Redis does not care which); the subscription, with
//! plain channels on one instance and sharded channels (`SSUBSCRIBE`) on a
//! cluster; and the start-up check that the URL's kind matches the server.
//!
//! Which names are sharded channels and which keys share a slot is
//! `crate::keyspace`'s business; this module only carries the commands.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection, PubSubStream};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Msg, Pipeline, PushInfo, PushKind, RedisFuture, RedisResult, Value};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// How long a Redis command may take before the connection counts as down.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// What `PRESENCE_REDIS_URL` names.
#[derive(Clone)]
pub enum Deployment {
    /// One Redis instance.
    Single(Box<redis::Client>),
    /// A Redis Cluster, reached through any of these nodes.
    Cluster {
        /// One URL per seed node, each with the credentials and options of
        /// the cluster URL.
        seeds: Vec<String>,
    },
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Deployment::Single"),
            Self::Cluster { seeds } => write!(f, "Deployment::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl Deployment {
    /// Reads a Redis URL: `redis+cluster://` and `rediss+cluster://` name
    /// a cluster by one or more comma-separated `HOST:PORT` seeds; anything
    /// else is one instance. The error says what is wrong.
    pub fn parse(url: &str) -> Result<Self, String> {
        match cluster_seeds(url)? {
            Some(seeds) => Ok(Self::Cluster { seeds }),
            None => redis::Client::open(url)
                .map(|client| Self::Single(Box::new(client)))
                .map_err(|err| err.to_string()),
        }
    }

    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    fn cluster_client(
        seeds: &[String],
        push: Option<tokio::sync::mpsc::UnboundedSender<PushInfo>>,
    ) -> RedisResult<ClusterClient> {
        let builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(REDIS_TIMEOUT)
            .response_timeout(REDIS_TIMEOUT);
        match push {
            Some(sender) => builder
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(sender)
                .build(),
            None => builder.build(),
        }
    }

    /// A command connection, connected now.
    pub async fn commands(&self) -> RedisResult<RedisConn> {
        match self {
            Self::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(RedisConn::Single(conn))
            }
            Self::Cluster { seeds } => {
                let client = Self::cluster_client(seeds, None)?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A command connection that connects on first use and reconnects
    /// after failures, so a hub starts even while Redis is down.
    pub fn lazy(&self) -> RedisResult<LazyConn> {
        match self {
            Self::Single(client) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                let manager =
                    ConnectionManager::new_lazy_with_config(client.as_ref().clone(), config)?;
                Ok(LazyConn::Single(manager))
            }
            Self::Cluster { seeds } => Ok(LazyConn::Cluster {
                client: Box::new(Self::cluster_client(seeds, None)?),
                conn: Arc::default(),
            }),
        }
    }

    /// A subscription to `channels`: plain channels on one instance,
    /// sharded ones on a cluster, where more can be followed later
    /// (`Follower`).
    pub async fn subscribe(&self, channels: &[String]) -> RedisResult<(Messages, Follower)> {
        match self {
            Self::Single(client) => {
                let mut pubsub = client.get_async_pubsub().await?;
                for channel in channels {
                    pubsub.subscribe(channel).await?;
                }
                Ok((Messages::Single(pubsub.into_on_message()), Follower::Single))
            }
            Self::Cluster { seeds } => {
                let (sender, pushes) = unbounded_channel();
                let client = Self::cluster_client(seeds, Some(sender))?;
                let conn = client.get_async_connection().await?;
                let followed = Arc::new(Mutex::new(HashSet::new()));
                let mut follower = Follower::Sharded {
                    conn,
                    followed: Arc::clone(&followed),
                };
                for channel in channels {
                    follower.follow(channel).await?;
                }
                Ok((Messages::Sharded { pushes, followed }, follower))
            }
        }
    }

    /// Whether the server is of the kind the URL says. A server that
    /// cannot be reached now is no mismatch (the hub retries).
    pub async fn check_kind(&self) -> KindCheck {
        let (url, expect_cluster) = match self {
            Self::Single(client) => (client.get_connection_info().clone(), false),
            Self::Cluster { seeds } => match seeds.first().map(|s| redis::Client::open(s.as_str()))
            {
                Some(Ok(client)) => (client.get_connection_info().clone(), true),
                _ => return KindCheck::Unreachable("no usable seed".to_string()),
            },
        };
        let probe = async {
            let client = redis::Client::open(url)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("INFO")
                .arg("cluster")
                .query_async::<String>(&mut conn)
                .await
        };
        match tokio::time::timeout(REDIS_TIMEOUT, probe).await {
            Ok(Ok(info)) => {
                let is_cluster = info.contains("cluster_enabled:1");
                match (expect_cluster, is_cluster) {
                    (true, false) => KindCheck::Mismatch(
                        "redis+cluster:// names a Redis that is not a cluster (cluster_enabled:0); use redis://HOST:PORT for one instance".to_string(),
                    ),
                    (false, true) => KindCheck::Mismatch(
                        "this Redis is a node of a Redis Cluster (cluster_enabled:1); use redis+cluster://HOST:PORT,HOST:PORT,... to use the cluster".to_string(),
                    ),
                    _ => KindCheck::Matches,
                }
            }
            Ok(Err(err)) => KindCheck::Unreachable(err.to_string()),
            Err(_) => KindCheck::Unreachable("timed out".to_string()),
        }
    }
}

/// What `Deployment::check_kind` found.
#[derive(Debug, PartialEq, Eq)]
pub enum KindCheck {
    /// The server is of the kind the URL names.
    Matches,
    /// The server could not be asked now.
    Unreachable(String),
    /// One instance named as a cluster, or the reverse: why.
    Mismatch(String),
}

/// The seed URLs of a `redis+cluster://` or `rediss+cluster://` URL, or
/// None for a URL of another scheme.
fn cluster_seeds(url: &str) -> Result<Option<Vec<String>>, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
        ("rediss", rest)
    } else {
        return Ok(None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let seeds: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}://{credentials}{host}{tail}"))
        .collect();
    if seeds.is_empty() {
        return Err("a cluster URL needs at least one HOST:PORT".to_string());
    }
    for seed in &seeds {
        redis::Client::open(seed.as_str()).map_err(|err| format!("{err} (in {seed})"))?;
    }
    Ok(Some(seeds))
}

/// A command connection to one instance or to a cluster. Commands and
/// pipelines are routed by their keys on a cluster, so a pipeline must
/// keep to one slot (the keyspace's hash tags see to that).
#[derive(Clone)]
pub enum RedisConn {
    /// One instance, multiplexed.
    Single(MultiplexedConnection),
    /// One instance, reconnecting on failure.
    Managed(ConnectionManager),
    /// A cluster: follows MOVED and ASK redirections itself.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Managed(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Managed(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Managed(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// A command connection opened on first use (`Deployment::lazy`).
#[derive(Clone)]
pub enum LazyConn {
    /// One instance: the connection manager connects lazily itself.
    Single(ConnectionManager),
    /// A cluster: connected at the first command, again after a failed try.
    Cluster {
        /// Opens the connection.
        client: Box<ClusterClient>,
        /// The connection, once made.
        conn: Arc<tokio::sync::OnceCell<ClusterConnection>>,
    },
}

impl LazyConn {
    /// The connection, connecting first if needed.
    pub async fn get(&self) -> RedisResult<RedisConn> {
        match self {
            Self::Single(manager) => Ok(RedisConn::Managed(manager.clone())),
            Self::Cluster { client, conn } => {
                let conn = conn
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(RedisConn::Cluster(conn.clone()))
            }
        }
    }
}

/// The messages of a subscription.
pub enum Messages {
    /// Plain pub/sub on one instance.
    Single(PubSubStream),
    /// Sharded pub/sub on a cluster: pushes of every shard's connection.
    Sharded {
        /// Everything the cluster connections push.
        pushes: UnboundedReceiver<PushInfo>,
        /// The channels this node wants (shared with its `Follower`).
        followed: Arc<Mutex<HashSet<String>>>,
    },
}

impl Messages {
    /// The next message; None when the subscription is lost: closed, cut
    /// off, or (on a cluster) a followed channel unsubscribed by the server
    /// because its slot moved (failover, resharding). Messages may have
    /// been missed then, so the caller starts over.
    pub async fn next(&mut self) -> Option<Msg> {
        match self {
            Self::Single(stream) => stream.next().await,
            Self::Sharded { pushes, followed } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::Message | PushKind::SMessage => {
                        if let Some(message) = Msg::from_push_info(push) {
                            return Some(message);
                        }
                    }
                    PushKind::Disconnection => return None,
                    PushKind::SUnsubscribe if is_followed(followed, &push) => return None,
                    _ => {}
                }
            },
        }
    }
}

/// True when a (server-sent) unsubscribe names a channel still wanted.
fn is_followed(followed: &Mutex<HashSet<String>>, push: &PushInfo) -> bool {
    let Some(Value::BulkString(channel)) = push.data.first() else {
        return false;
    };
    let channel = String::from_utf8_lossy(channel);
    followed
        .lock()
        .is_ok_and(|set| set.contains(channel.as_ref()))
}

/// Adds and removes channels of a subscription. On one instance every
/// channel is subscribed from the start, so there is nothing to do.
#[derive(Clone)]
pub enum Follower {
    /// One instance.
    Single,
    /// A cluster.
    Sharded {
        /// The connection whose pushes feed `Messages`.
        conn: ClusterConnection,
        /// The channels wanted.
        followed: Arc<Mutex<HashSet<String>>>,
    },
}

impl Follower {
    /// Subscribes to a sharded channel (once).
    pub async fn follow(&mut self, channel: &str) -> RedisResult<()> {
        let Self::Sharded { conn, followed } = self else {
            return Ok(());
        };
        let new = followed
            .lock()
            .is_ok_and(|mut set| set.insert(channel.to_string()));
        if new && let Err(err) = conn.ssubscribe(channel).await {
            if let Ok(mut set) = followed.lock() {
                set.remove(channel);
            }
            return Err(err);
        }
        Ok(())
    }

    /// Unsubscribes from a sharded channel.
    pub async fn unfollow(&mut self, channel: &str) -> RedisResult<()> {
        let Self::Sharded { conn, followed } = self else {
            return Ok(());
        };
        let known = followed.lock().is_ok_and(|mut set| set.remove(channel));
        if known {
            conn.sunsubscribe(channel).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_its_seeds_with_the_credentials_and_options() {
        let seeds =
            cluster_seeds("redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001/?protocol=2")
                .unwrap()
                .unwrap();
        assert_eq!(
            seeds,
            [
                "redis://user:pw@10.0.0.1:7000/?protocol=2",
                "redis://user:pw@10.0.0.2:7001/?protocol=2"
            ]
        );
        let tls = cluster_seeds("rediss+cluster://h:1").unwrap().unwrap();
        assert_eq!(tls, ["rediss://h:1"]);
    }

    #[test]
    fn other_urls_are_one_instance_and_an_empty_cluster_is_refused() {
        assert_eq!(cluster_seeds("redis://127.0.0.1:6379").unwrap(), None);
        assert!(
            !Deployment::parse("redis://127.0.0.1:6379")
                .unwrap()
                .is_cluster()
        );
        assert!(
            Deployment::parse("redis+cluster://a:1,b:2")
                .unwrap()
                .is_cluster()
        );
        assert!(cluster_seeds("redis+cluster://").is_err());
        assert!(cluster_seeds("redis+cluster://,,").is_err());
        assert!(Deployment::parse("http://x").is_err());
    }
}
