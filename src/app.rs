//! Owns the composition of the hub: builds every part from the validated
//! settings, binds the listener, spawns the long-lived tasks, and orders
//! shutdown (stop accepting, tell clients, end sessions, flush, exit). The
//! only file that knows every part.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::client::socket::ConnectionContext;
use crate::cluster::{Readiness, Replicator, SingleNode};
use crate::config::Settings;
use crate::history::HistoryStore;
use crate::history::memory::{DEFAULT_CAPACITY, MemoryHistory};
use crate::history::writer::{ENDED_QUEUE, prune_expired, record_ended};
use crate::http::auth::{AdminGate, AdminRateLimiter};
use crate::http::{HubContext, routes, server};
use crate::metrics::Metrics;
use crate::model::NodeId;
use crate::presence::{Engine, Outboxes, PresenceHandle};

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
}

/// A running hub.
#[derive(Debug)]
pub struct RunningHub {
    local_addr: SocketAddr,
    node_id: NodeId,
    hub: Arc<HubContext>,
    http_connections: TaskTracker,
    stop_engine: CancellationToken,
    stop_replication: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Builds and starts every part; returns once the listener is bound.
pub async fn start(settings: Settings) -> Result<RunningHub, StartError> {
    let listener = server::bind(settings.bind, settings.listen_backlog).map_err(|source| {
        StartError::Bind {
            addr: settings.bind,
            source,
        }
    })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.bind,
        source,
    })?;
    let metrics = Metrics::new()?;
    let node_id = settings.presence.node_id.clone();

    let history = open_history(&settings)?;

    let (presence, commands) = PresenceHandle::channel();
    let stop_engine = CancellationToken::new();
    let (ended, ended_queue) = mpsc::channel(ENDED_QUEUE);
    let engine = Engine::new(
        settings.presence.clone(),
        Outboxes {
            ended: Some(ended),
            ..Outboxes::default()
        },
    );
    let mut tasks = vec![tokio::spawn(engine.run(commands, stop_engine.clone()))];
    // Ends by itself once the engine (the only sender) has stopped.
    tasks.push(tokio::spawn(record_ended(
        ended_queue,
        history.clone(),
        metrics.clone(),
    )));

    let stop_replication = CancellationToken::new();
    tasks.push(tokio::spawn(SingleNode.run(stop_replication.clone())));
    tasks.push(tokio::spawn(prune_expired(
        history.clone(),
        settings.history_retention,
        stop_replication.clone(),
    )));

    let hub = Arc::new(hub_context(&settings, presence, metrics, history));
    let http_connections = TaskTracker::new();
    tasks.push(tokio::spawn(server::serve(
        listener,
        routes(hub.clone()),
        hub.closing.clone(),
        http_connections.clone(),
    )));
    announce(&settings, local_addr, &node_id, hub.auth.is_dev_mode());
    Ok(RunningHub {
        local_addr,
        node_id,
        hub,
        http_connections,
        stop_engine,
        stop_replication,
        tasks,
    })
}

fn open_history(settings: &Settings) -> Result<Arc<dyn HistoryStore>, StartError> {
    Ok(match &settings.history_file {
        Some(path) => Arc::new(MemoryHistory::open(path, DEFAULT_CAPACITY)?),
        None => Arc::new(MemoryHistory::new(DEFAULT_CAPACITY)),
    })
}

fn hub_context(
    settings: &Settings,
    presence: PresenceHandle,
    metrics: Metrics,
    history: Arc<dyn HistoryStore>,
) -> HubContext {
    let auth = Authenticator::new(settings.jwt_secret.as_ref());
    HubContext {
        gate: AdminGate {
            auth: auth.clone(),
            limiter: AdminRateLimiter::new(settings.api_rate_limit),
        },
        auth,
        connections: Arc::new(ConnectionContext {
            presence: presence.clone(),
            limits: settings.client.clone(),
            node_id: settings.presence.node_id.clone(),
            idle_after: settings.presence.idle_after,
            away_after: settings.presence.away_after,
            metrics: metrics.clone(),
        }),
        presence,
        history,
        readiness: Readiness::new(),
        metrics,
        metrics_enabled: settings.metrics,
        http_session_ttl: settings.presence.http_session_ttl,
        sockets: TaskTracker::new(),
        closing: CancellationToken::new(),
    }
}

fn announce(settings: &Settings, addr: SocketAddr, node_id: &NodeId, dev_mode: bool) {
    if dev_mode {
        tracing::warn!(
            "DEV MODE: no PRESENCE_JWT_SECRET is set; clients name themselves with ?user= and the admin API is open to anyone who can reach {addr}"
        );
    }
    tracing::info!(
        mode = if dev_mode { "dev" } else { "jwt" },
        bind = %addr,
        node_id = %node_id,
        cluster = if settings.redis_url.is_some() { "redis" } else { "single-node" },
        panel = %format!("http://{addr}/"),
        admin_stream = %format!("ws://{addr}/admin/ws"),
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
        self.hub.closing.cancel();
        let _ = self.hub.presence.shutdown().await;
        self.hub.sockets.close();
        if tokio::time::timeout(SOCKET_GRACE, self.hub.sockets.wait())
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
    let hub = start(settings).await?;
    crate::shutdown::signal().await;
    hub.shutdown().await;
    Ok(())
}
