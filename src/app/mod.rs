//! Owns the composition of the hub: builds every part from the validated
//! settings, binds the listener, spawns the long-lived tasks, and orders
//! shutdown (stop accepting, tell clients, end sessions, flush, exit). The
//! only file that knows every part.

mod edges;
mod startup;
mod stores;

use edges::Edges;
use startup::{
    Serving, Tasks, bind, connection_policy, load_revocations, open_tls, serve_metrics_apart,
    spawn_alerts, spawn_audit, spawn_engine, spawn_jwks_refresher, spawn_record_keepers,
    spawn_tls_reloader, spawn_webhooks,
};
use stores::{load_revoked, open_history};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::AdminContext;
use crate::alerts::store::AlertStore;
use crate::alerts::{AlertTask, AuthFailures};
use crate::audit::store::{AuditStore, MemoryAudit};
use crate::audit::{AuditTask, Auditor};
use crate::auth::Authenticator;
use crate::client::ClientContext;
use crate::client::socket::ConnectionContext;
use crate::cluster::redis::{ClusterConfig, RedisReplicator};
use crate::cluster::seal::Seal;
use crate::cluster::{EndRecords, Readiness, ReplicationLink, Replicator, SingleNode};
use crate::config::DatabaseUrl;
use crate::config::Settings;
use crate::history::HistoryStore;
use crate::history::memory::MemoryHistory;
use crate::history::mirror::{self, FileMirror};
use crate::history::postgres::PostgresHistory;
use crate::history::redis::RedisHistory;
use crate::history::sqlite::SqliteHistory;
use crate::history::writer::{ENDED_QUEUE, prune_expired, record_ended, watch_store};
use crate::http::admission::{Admission, AdmissionLimits, connection_ceiling, read_nofile_limit};
use crate::http::auth::AdminGate;
use crate::http::origin::OriginPolicy;
use crate::http::rate::KeyedRateLimiter;
use crate::http::server::{self, ConnectionPolicy};
use crate::metrics::Metrics;
use crate::model::{Applied, NodeId, SessionId, SessionView};
use crate::ops::OpsContext;
use crate::presence::{Engine, Outboxes, PresenceHandle};
use crate::redis_access::{Deployment, KindCheck};
use crate::revocation::Revocations;
use crate::routes::RefusalAudit;
use crate::webhooks::WebhookStatus;

/// This node's changes waiting for the replicator (overflow: full republish).
const LOCAL_CHANGES_QUEUE: usize = 65_536;
/// Cross-node requests waiting for the replicator (overflow: not found).
/// A shutdown offers every local session at once, and a storm of resumes
/// asks for as many handovers: the tabs of a full node must fit.
const REMOTE_QUEUE: usize = 65_536;
/// Revokes waiting to be published to the other nodes.
const REVOKED_QUEUE: usize = 1024;

/// How long shutdown waits for sockets to close.
const SOCKET_GRACE: Duration = Duration::from_millis(2500);

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("metrics setup failed: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The history file could not be opened.
    #[error("PRESENCE_HISTORY_FILE: {0}")]
    History(#[from] crate::history::HistoryError),
    /// The records store in Redis (cluster mode) could not be set up.
    #[error("PRESENCE_REDIS_URL: {0}")]
    RedisRecords(crate::history::HistoryError),
    /// The Redis URL is not usable.
    #[error("PRESENCE_REDIS_URL: {0}")]
    Cluster(#[from] crate::cluster::redis::ClusterError),
    /// `PRESENCE_REDIS_URL` names one Redis instance as a cluster, or a
    /// Redis Cluster node as one instance.
    #[error("PRESENCE_REDIS_URL: {0}")]
    RedisKind(String),
    /// The cluster secret is not a usable HMAC key.
    #[error("PRESENCE_CLUSTER_SECRET: not a usable HMAC-SHA256 key")]
    ClusterSecret,
    /// Webhook delivery could not be set up.
    #[error("{0}")]
    Webhooks(#[from] crate::webhooks::WebhookError),
    /// The JWKS client could not be built.
    #[error("PRESENCE_JWKS_URL: {0}")]
    Jwks(reqwest::Error),
    /// The records database cannot be used: unreachable, not a database, or
    /// a schema newer than this binary.
    #[error("PRESENCE_DATABASE_URL: {0}")]
    Database(crate::history::HistoryError),
    /// The TLS certificate or key cannot be served with.
    #[error("{0}")]
    Tls(#[from] crate::http::tls::TlsError),
    /// The SIGHUP handler (TLS reload) could not be installed.
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(std::io::Error),
}

impl StartError {
    /// The process exit code: 2 for a database or Redis URL or TLS files
    /// the hub must not run on (as for an invalid configuration), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Database(_) | Self::RedisRecords(_) | Self::RedisKind(_) | Self::Tls(_) => 2,
            _ => 1,
        }
    }
}

/// A running hub.
#[derive(Debug)]
pub struct RunningHub {
    local_addr: SocketAddr,
    node_id: NodeId,
    presence: PresenceHandle,
    sockets: TaskTracker,
    closing: CancellationToken,
    http_connections: TaskTracker,
    stop_engine: CancellationToken,
    stop_replication: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Builds and starts every part; returns once the listener is bound.
pub async fn start(settings: Settings) -> Result<RunningHub, StartError> {
    let tls = open_tls(&settings)?;
    let (listener, local_addr) = bind(settings.bind, settings.listen_backlog)?;
    let metrics = Metrics::new()?;
    let node_id = settings.presence.node_id.clone();
    check_redis_kind(&settings).await?;
    let history = open_history(&settings).await?;
    let readiness = Readiness::new();
    let mut tasks = Tasks::new();
    let (presence, commands) = PresenceHandle::channel();
    let (auditor, audit_inbox) = Auditor::new(node_id.clone(), &metrics)?;

    let mut observers = Vec::new();
    let hooks = (&metrics, &auditor, &history);
    let webhooks = spawn_webhooks(&settings, hooks, &mut observers, &mut tasks).await?;
    let (alerts, auth_failures) =
        spawn_alerts(&settings, &presence, &metrics, &mut observers, &mut tasks);
    let engine = spawn_engine(
        &settings, commands, observers, &history, &metrics, &mut tasks,
    );
    let revocations = load_revocations(&history, &settings).await;
    let link = ReplicationLink {
        local_changes: engine.local_changes,
        republish: engine.republish,
        remote_commands: engine.remote,
        presence: presence.clone(),
        end_records: Arc::new(history.clone()),
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        revoked: revocations.1,
        revocations: revocations.0.clone(),
        alerts: alerts.clone(),
    };
    tasks.push(spawn_replicator(&settings, link, tasks.stop.clone())?);
    spawn_record_keepers(&settings, &history, &readiness, &presence, &mut tasks);
    let audit = spawn_audit(
        &settings,
        &history,
        audit_inbox,
        &presence,
        &metrics,
        &mut tasks,
    )?;

    let store_name = history.name();
    let mut edges = Edges::new(
        &settings,
        presence.clone(),
        metrics,
        history,
        readiness,
        audit,
    );
    edges.webhooks = webhooks;
    edges.alerts = alerts;
    edges.auth_failures = auth_failures;
    edges.observer_drops = engine.observer_drops;
    edges.auth = edges.auth.with_revocations(revocations.0);
    let keys_report = (&edges.readiness, &edges.metrics);
    spawn_jwks_refresher(&edges.auth, keys_report, &mut tasks).await?;
    let http_connections = TaskTracker::new();
    let serving = Serving {
        policy: connection_policy(&settings, &edges, tls.as_ref())?,
        closing: edges.closing.clone(),
        connections: http_connections.clone(),
    };
    serve_metrics_apart(&settings, &edges, &serving, &mut tasks)?;
    spawn_tls_reloader(tls, &edges.metrics, &mut tasks)?;
    let (sockets, closing) = (edges.sockets.clone(), edges.closing.clone());
    let dev_mode = edges.auth.is_dev_mode();
    tasks.push(tokio::spawn(server::serve(
        listener,
        edges.routes(auditor),
        serving.policy,
        serving.closing,
        serving.connections,
    )));
    let tls_on = settings.tls.is_some();
    announce(
        &settings,
        (local_addr, tls_on),
        &node_id,
        dev_mode,
        store_name,
    );
    Ok(RunningHub {
        local_addr,
        node_id,
        presence,
        sockets,
        closing,
        http_connections,
        stop_engine: engine.stop,
        stop_replication: tasks.stop,
        tasks: tasks.handles,
    })
}

/// Stops the start when the Redis URL's kind (one instance or a cluster)
/// is not the server's. A Redis out of reach now is no reason to stop: the
/// hub serves its own clients and keeps trying.
async fn check_redis_kind(settings: &Settings) -> Result<(), StartError> {
    let Some(url) = &settings.redis_url else {
        return Ok(());
    };
    let deployment = Deployment::parse(url).map_err(StartError::RedisKind)?;
    match deployment.check_kind().await {
        KindCheck::Matches => Ok(()),
        KindCheck::Unreachable(reason) => {
            tracing::warn!(
                reason,
                "cannot ask Redis whether it is a cluster now; going on"
            );
            Ok(())
        }
        KindCheck::Mismatch(reason) => Err(StartError::RedisKind(reason)),
    }
}

/// Redis replication when configured, else the single-node default. A
/// clustered node is not ready until it has loaded the cluster's view.
fn spawn_replicator(
    settings: &Settings,
    link: ReplicationLink,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, StartError> {
    let Some(url) = &settings.redis_url else {
        return Ok(tokio::spawn(SingleNode.run(link, stop)));
    };
    link.readiness.set_problem("cluster_syncing");
    let seal = match &settings.cluster_secret {
        Some(secret) => Seal::with_secret(secret.expose_secret().as_bytes())
            .map_err(|_| StartError::ClusterSecret)?,
        None => Seal::off(),
    };
    tracing::info!(
        sealed = seal.is_keyed(),
        "cluster messages are {}",
        if seal.is_keyed() {
            "sealed with PRESENCE_CLUSTER_SECRET"
        } else {
            "not sealed"
        }
    );
    let replicator = RedisReplicator::new(ClusterConfig {
        url: url.clone(),
        namespace: settings.namespace.clone(),
        node_id: settings.presence.node_id.clone(),
        node_timeout: settings.node_timeout,
        seal,
    })?;
    Ok(tokio::spawn(replicator.run(link, stop)))
}

fn announce(
    settings: &Settings,
    (addr, tls): (SocketAddr, bool),
    node_id: &NodeId,
    dev_mode: bool,
    records: &'static str,
) {
    if dev_mode {
        tracing::warn!(
            "DEV MODE: no PRESENCE_JWT_SECRET, PRESENCE_JWT_PUBLIC_KEY or PRESENCE_JWKS_URL is set; clients name themselves with ?user= and the admin API is open to anyone who can reach {addr}"
        );
    }
    tracing::info!(
        mode = if dev_mode { "dev" } else { "jwt" },
        keys = settings.token_keys.name(),
        bind = %addr,
        node_id = %node_id,
        cluster = if settings.redis_url.is_some() { "redis" } else { "single-node" },
        records,
        tls,
        panel = %format!("{}://{addr}/", if tls { "https" } else { "http" }),
        admin_stream = %format!("{}://{addr}/admin/ws", if tls { "wss" } else { "ws" }),
        "presence hub listening"
    );
}

impl RunningHub {
    /// The bound address (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// Stops accepting, terminates every client with `shutdown` (close 1001),
    /// ends their sessions, flushes, and stops every task.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.closing.cancel();
        let _ = self.presence.shutdown().await;
        self.sockets.close();
        if tokio::time::timeout(SOCKET_GRACE, self.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sockets did not close in time");
        }
        self.http_connections.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.http_connections.wait()).await;
        self.stop_replication.cancel();
        self.stop_engine.cancel();
        // One shared deadline, so the whole shutdown stays within 5 s.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        for task in self.tasks {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        tracing::info!("shutdown complete");
    }
}

/// Starts the hub and runs it until SIGINT or SIGTERM.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    // Polled once so the handlers are installed before the start line: a
    // SIGTERM right after it must shut down cleanly, not kill the process.
    let signal = crate::shutdown::signal();
    tokio::pin!(signal);
    if futures_util::poll!(&mut signal).is_ready() {
        return Ok(());
    }
    let hub = start(settings).await?;
    signal.await;
    hub.shutdown().await;
    Ok(())
}
