//! Owns the phases of `start`, in the order it runs them: binding a
//! listener, the alert task, the engine and its outboxes, the revocations,
//! the record keepers (pruning, database watch, peak), the audit trail,
//! the metrics listener, and the TLS certificate with its SIGHUP reloader.
//! Each phase spawns its tasks into one `Tasks`.

use super::*;

use crate::auth::jwks::FetchOutcome;
use crate::history::outbox::OutboxStore;
use crate::http::tls::{self, CertificateStore};
use crate::webhooks::adopt::{ADOPTED_QUEUE, Adoption};
use crate::webhooks::delivery::BATCH_MAX;
use crate::webhooks::persist::{OutboxLog, restore, write_outbox};
use crate::webhooks::{Dispatcher, Webhooks};

/// The long-lived tasks `start` spawned, and the token that stops all of
/// them but the engine (replication, records, webhooks, alerts).
pub(super) struct Tasks {
    pub(super) handles: Vec<JoinHandle<()>>,
    pub(super) stop: CancellationToken,
}

impl Tasks {
    pub(super) fn new() -> Self {
        Self {
            handles: Vec::new(),
            stop: CancellationToken::new(),
        }
    }

    pub(super) fn push(&mut self, task: JoinHandle<()>) {
        self.handles.push(task);
    }
}

/// A listener on `addr` and the address it got (the real port for port 0).
pub(super) fn bind(
    addr: SocketAddr,
    backlog: u32,
) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let bound = server::bind(addr, backlog).and_then(|l| l.local_addr().map(|local| (l, local)));
    bound.map_err(|source| StartError::Bind { addr, source })
}

/// The alert task, fed by the engine's changes and refused
/// authentications; the alerts it keeps and the sender of those refusals.
/// With `PRESENCE_ALERTS=off` there is no task: the store stays empty
/// (alerts other nodes raise still reach it through the cluster) and
/// refusals are not counted.
pub(super) fn spawn_alerts(
    settings: &Settings,
    presence: &PresenceHandle,
    metrics: &Metrics,
    observers: &mut Vec<mpsc::Sender<Applied>>,
    tasks: &mut Tasks,
) -> (AlertStore, AuthFailures) {
    let alerts = AlertStore::default();
    if !settings.alerts.enabled {
        return (alerts, AuthFailures::default());
    }
    let (auth_failures, failure_queue) = AuthFailures::channel();
    let (alert_sender, alert_changes) = mpsc::channel(crate::alerts::CHANGE_QUEUE);
    observers.push(alert_sender);
    let alert_task = AlertTask::new(
        settings.alerts.clone(),
        settings.presence.node_id.clone(),
        alerts.clone(),
        presence.clone(),
        metrics.clone(),
    );
    let run = alert_task.run(alert_changes, failure_queue, tasks.stop.clone());
    tasks.push(tokio::spawn(run));
    (alerts, auth_failures)
}

/// The webhook dispatcher and one delivery task per endpoint, when
/// endpoints are configured, and on a database store the outbox writer,
/// after the queues are refilled from the outbox (and, in a cluster on
/// PostgreSQL, the task that adopts lost nodes' rows). They stop with
/// replication, after the last session has ended: the dispatcher queues
/// what the engine sent, then each delivery task makes one last attempt
/// (`FLUSH_TIMEOUT`), then the outbox writer writes what is left.
pub(super) async fn spawn_webhooks(
    settings: &Settings,
    (metrics, auditor, history): (&Metrics, &Auditor, &Arc<dyn HistoryStore>),
    observers: &mut Vec<mpsc::Sender<Applied>>,
    tasks: &mut Tasks,
) -> Result<WebhookStatus, StartError> {
    let node_id = settings.presence.node_id.clone();
    let outbox = history.outbox();
    let (log, changes) = OutboxLog::new(&node_id, metrics);
    let config = &settings.webhooks;
    let kept = outbox.as_ref().map(|_| &log);
    let Some(webhooks) = Webhooks::build(config, node_id.clone(), metrics, kept)? else {
        return Ok(WebhookStatus::default());
    };
    let mut dispatcher = webhooks.dispatcher.audited_by(auditor.clone());
    if let Some(store) = &outbox {
        dispatcher = refill_from_outbox(settings, store, &log, dispatcher, tasks).await;
    }
    let (sender, queue) = mpsc::channel(crate::webhooks::DISPATCH_QUEUE);
    observers.push(sender);
    let done = CancellationToken::new();
    let dispatch = dispatcher.run(queue, tasks.stop.clone(), done.clone());
    tasks.push(tokio::spawn(dispatch));
    let deliveries = TaskTracker::new();
    for delivery in webhooks.deliveries {
        deliveries.spawn(delivery.run(done.clone()));
    }
    deliveries.close();
    let waited = deliveries.clone();
    tasks.push(tokio::spawn(async move { waited.wait().await }));
    if let Some(store) = outbox {
        let keep = config.queue + BATCH_MAX;
        let writer = write_outbox(changes, store, keep, deliveries, metrics.clone());
        tasks.push(tokio::spawn(writer));
    }
    Ok(webhooks.status)
}

/// Refills the queues from the outbox before any new event. In a cluster
/// sharing PostgreSQL this node's rows are its own, and the rows of lost
/// nodes are adopted while it runs; otherwise every row is this node's.
async fn refill_from_outbox(
    settings: &Settings,
    store: &Arc<dyn OutboxStore>,
    log: &OutboxLog,
    mut dispatcher: Dispatcher,
    tasks: &mut Tasks,
) -> Dispatcher {
    let node_id = &settings.presence.node_id;
    let clustered = settings.redis_url.is_some() && store.shared();
    let adoption = Adoption {
        store: store.clone(),
        node: node_id.clone(),
        node_timeout: settings.node_timeout,
        endpoints: settings
            .webhooks
            .urls
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    if clustered {
        adoption.heartbeat().await;
    }
    let restored = restore(store.as_ref(), node_id, !clustered).await;
    log.continue_from(restored.next_key);
    dispatcher.restore(restored.endpoints);
    if !clustered {
        return dispatcher;
    }
    let (adopted, adoptions) = mpsc::channel(ADOPTED_QUEUE);
    tasks.push(tokio::spawn(adoption.run(adopted, tasks.stop.clone())));
    dispatcher.adopting(adoptions)
}

/// What the running engine hands to the replicator and the edges.
pub(super) struct EngineLinks {
    pub(super) local_changes: mpsc::Receiver<crate::model::Change>,
    pub(super) republish: Arc<AtomicBool>,
    pub(super) remote: mpsc::Receiver<crate::presence::RemoteCommand>,
    pub(super) observer_drops: Arc<std::sync::atomic::AtomicU64>,
    /// Stops the engine, last of all.
    pub(super) stop: CancellationToken,
}

/// The engine task and the writer of ended sessions. Only a cluster gets
/// the queues to the replicator.
pub(super) fn spawn_engine(
    settings: &Settings,
    commands: mpsc::Receiver<crate::presence::Command>,
    observers: Vec<mpsc::Sender<Applied>>,
    history: &Arc<dyn HistoryStore>,
    metrics: &Metrics,
    tasks: &mut Tasks,
) -> EngineLinks {
    let clustered = settings.redis_url.is_some();
    let (ended, ended_queue) = mpsc::channel(ENDED_QUEUE);
    let (local_changes, local_changes_queue) = mpsc::channel(LOCAL_CHANGES_QUEUE);
    let (remote, remote_queue) = mpsc::channel(REMOTE_QUEUE);
    let republish = Arc::new(AtomicBool::new(false));
    let observer_drops = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let engine = Engine::new(
        settings.presence.clone(),
        Outboxes {
            ended: Some(ended),
            local_changes: clustered.then_some(local_changes),
            republish: republish.clone(),
            remote: clustered.then_some(remote),
            observers,
            observer_drops: observer_drops.clone(),
        },
    );
    let stop = CancellationToken::new();
    tasks.push(tokio::spawn(engine.run(commands, stop.clone())));
    // Ends by itself once the engine (the only sender) has stopped.
    let writer = record_ended(ended_queue, history.clone(), metrics.clone());
    tasks.push(tokio::spawn(writer));
    EngineLinks {
        local_changes: local_changes_queue,
        republish,
        remote: remote_queue,
        observer_drops,
        stop,
    }
}

/// The deny list, loaded from the records store; in a cluster also the
/// queue of revokes to publish to the other nodes.
pub(super) async fn load_revocations(
    history: &Arc<dyn HistoryStore>,
    settings: &Settings,
) -> (Revocations, mpsc::Receiver<crate::revocation::Revoked>) {
    let revocations = Revocations::default();
    load_revoked(history.as_ref(), &revocations).await;
    let (revoked, revoked_queue) = mpsc::channel(REVOKED_QUEUE);
    if settings.redis_url.is_some() {
        revocations.replicate_to(revoked);
    }
    (revocations, revoked_queue)
}

/// Pruning past the retention, the database watch behind `/readyz`,
/// today's peak and the online series kept in the store.
pub(super) fn spawn_record_keepers(
    settings: &Settings,
    history: &Arc<dyn HistoryStore>,
    readiness: &Readiness,
    presence: &PresenceHandle,
    tasks: &mut Tasks,
) {
    let stop = tasks.stop.clone();
    let prune = prune_expired(history.clone(), settings.history_retention, stop.clone());
    tasks.push(tokio::spawn(prune));
    if settings.database.is_database() {
        let readiness = readiness.clone();
        let report = move |reachable| {
            if reachable {
                readiness.clear_store_problem();
            } else {
                readiness.set_store_problem("database_unreachable");
            }
        };
        tasks.push(tokio::spawn(watch_store(
            history.clone(),
            report,
            stop.clone(),
        )));
    }
    let peak = crate::peaks::keep_peak(history.clone(), presence.clone(), stop.clone());
    tasks.push(tokio::spawn(peak));
    let sampler = crate::series::Sampler {
        store: history.clone(),
        presence: presence.clone(),
        readiness: readiness.clone(),
        interval: settings.series_interval,
    };
    tasks.push(tokio::spawn(sampler.run(stop)));
}

/// In JWKS mode, the first fetch of the key set and the task that keeps it
/// fresh. The first fetch is waited for (at most `jwks::FETCH_TIMEOUT`), so
/// that tokens are not refused just after a restart; when it fails the hub
/// still starts, refusing every token and not ready (`jwks_unavailable`)
/// until a fetch succeeds.
pub(super) async fn spawn_jwks_refresher(
    auth: &Authenticator,
    (readiness, metrics): (&Readiness, &Metrics),
    tasks: &mut Tasks,
) -> Result<(), StartError> {
    let Some(cache) = auth.jwks() else {
        return Ok(());
    };
    let mut refresher = cache.refresher().map_err(StartError::Jwks)?;
    let (readiness, fetches) = (readiness.clone(), metrics.jwks_fetches.clone());
    let report = move |outcome: FetchOutcome| {
        let result = if outcome.fetched { "ok" } else { "error" };
        fetches.with_label_values(&[result]).inc();
        if outcome.has_keys {
            readiness.clear_keys_problem();
        } else {
            readiness.set_keys_problem("jwks_unavailable");
        }
    };
    let first = refresher.refresh().await;
    match &first {
        Ok(keys) => tracing::info!(keys, "JWKS fetched"),
        Err(reason) => tracing::warn!(
            reason,
            "JWKS could not be fetched at start; every token is refused until a fetch succeeds"
        ),
    }
    report(refresher.outcome(first.is_ok()));
    tasks.push(tokio::spawn(refresher.run(report, tasks.stop.clone())));
    Ok(())
}

/// The audit trail's store and writer. A database keeps it beside the
/// records; otherwise (and in a Redis cluster without PostgreSQL) each node
/// keeps its own in memory.
pub(super) fn spawn_audit(
    settings: &Settings,
    history: &Arc<dyn HistoryStore>,
    inbox: crate::audit::AuditInbox,
    presence: &PresenceHandle,
    metrics: &Metrics,
    tasks: &mut Tasks,
) -> Result<Arc<dyn AuditStore>, StartError> {
    let audit: Arc<dyn AuditStore> = history
        .audit()
        .unwrap_or_else(|| Arc::new(MemoryAudit::new()));
    let stop = tasks.stop.clone();
    let prune = crate::audit::prune_audit(audit.clone(), settings.history_retention, stop.clone());
    tasks.push(tokio::spawn(prune));
    let writer = AuditTask::new(inbox, audit.clone(), presence.clone(), metrics)?;
    tasks.push(tokio::spawn(writer.run(stop)));
    Ok(audit)
}

/// How every listener serves its connections.
pub(super) struct Serving {
    pub(super) policy: ConnectionPolicy,
    pub(super) closing: CancellationToken,
    pub(super) connections: TaskTracker,
}

/// Admission and header deadlines; a dev-mode hub reachable only through
/// loopback names unless `PRESENCE_INSECURE_DEV`.
pub(super) fn connection_policy(
    settings: &Settings,
    edges: &Edges,
    tls: Option<&Arc<CertificateStore>>,
) -> Result<ConnectionPolicy, StartError> {
    Ok(ConnectionPolicy {
        admission: edges.admission.clone(),
        header_timeout: settings.admission.handshake_timeout,
        loopback_hosts_only: edges.auth.is_dev_mode() && !settings.insecure_dev,
        tls: tls.cloned().map(tls::server).transpose()?,
    })
}

/// The certificate the main listener serves, read and checked now, when
/// `PRESENCE_TLS_CERT` and `PRESENCE_TLS_KEY` are set.
pub(super) fn open_tls(settings: &Settings) -> Result<Option<Arc<CertificateStore>>, StartError> {
    let Some(files) = &settings.tls else {
        return Ok(None);
    };
    Ok(Some(CertificateStore::open(files.clone())?))
}

/// With TLS, the task that reloads the certificate on SIGHUP; its handler
/// is installed before this returns.
pub(super) fn spawn_tls_reloader(
    tls: Option<Arc<CertificateStore>>,
    metrics: &Metrics,
    tasks: &mut Tasks,
) -> Result<(), StartError> {
    let Some(store) = tls else {
        return Ok(());
    };
    let reloads = metrics.tls_reloads.clone();
    let reloader = tls::reload_on_hangup(store, reloads, tasks.stop.clone());
    tasks.push(tokio::spawn(reloader.map_err(StartError::Signal)?));
    Ok(())
}

/// `/metrics` on `PRESENCE_METRICS_BIND`, when set (and metrics are on).
pub(super) fn serve_metrics_apart(
    settings: &Settings,
    edges: &Edges,
    serving: &Serving,
    tasks: &mut Tasks,
) -> Result<(), StartError> {
    let Some(addr) = settings.metrics_bind.filter(|_| settings.metrics) else {
        return Ok(());
    };
    let ops = OpsContext {
        presence: edges.presence.clone(),
        readiness: edges.readiness.clone(),
        metrics: edges.metrics.clone(),
        metrics_enabled: true,
        observer_drops: edges.observer_drops.clone(),
    };
    let (listener, _) = bind(addr, settings.listen_backlog)?;
    tracing::info!(addr = %addr, "metrics on their own listener (plain HTTP)");
    let policy = ConnectionPolicy {
        tls: None,
        ..serving.policy.clone()
    };
    tasks.push(tokio::spawn(server::serve(
        listener,
        crate::ops::metrics_only(ops),
        policy,
        serving.closing.clone(),
        serving.connections.clone(),
    )));
    Ok(())
}
