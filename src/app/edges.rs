//! Owns what the route handlers are built from (`Edges`): each edge's
//! context, made from the settings and the running parts, and admission
//! control from the descriptor limit.

use super::*;

/// What the route handlers are built from.
pub(super) struct Edges {
    pub(super) client_limits: crate::config::ClientLimits,
    pub(super) presence: PresenceHandle,
    pub(super) auth: Authenticator,
    pub(super) metrics: Metrics,
    pub(super) history: Arc<dyn HistoryStore>,
    pub(super) readiness: Readiness,
    pub(super) node_id: NodeId,
    pub(super) idle_after: Duration,
    pub(super) away_after: Duration,
    pub(super) http_session_ttl: Duration,
    pub(super) api_rate_limit: crate::config::RateLimit,
    pub(super) metrics_enabled: bool,
    pub(super) sockets: TaskTracker,
    pub(super) closing: CancellationToken,
    pub(super) audit: Arc<dyn AuditStore>,
    pub(super) admission: Admission,
    pub(super) origins: OriginPolicy,
    pub(super) webhooks: WebhookStatus,
    pub(super) alerts: AlertStore,
    pub(super) auth_failures: AuthFailures,
    pub(super) geoip: crate::geo::GeoIp,
    pub(super) observer_drops: Arc<std::sync::atomic::AtomicU64>,
    pub(super) series_interval: Duration,
}

impl Edges {
    pub(super) fn new(
        settings: &Settings,
        presence: PresenceHandle,
        metrics: Metrics,
        history: Arc<dyn HistoryStore>,
        readiness: Readiness,
        audit: Arc<dyn AuditStore>,
    ) -> Self {
        let admission = admission_of(settings, &metrics);
        Self {
            client_limits: settings.client.clone(),
            presence,
            auth: Authenticator::new(&settings.token_keys).expecting(
                settings.jwt_issuer.as_deref(),
                settings.jwt_audience.as_deref(),
            ),
            metrics,
            history,
            readiness,
            node_id: settings.presence.node_id.clone(),
            idle_after: settings.presence.idle_after,
            away_after: settings.presence.away_after,
            http_session_ttl: settings.presence.http_session_ttl,
            api_rate_limit: settings.api_rate_limit,
            // With a listener of its own, /metrics is not on the main one.
            metrics_enabled: settings.metrics && settings.metrics_bind.is_none(),
            sockets: TaskTracker::new(),
            closing: CancellationToken::new(),
            audit,
            admission,
            origins: OriginPolicy::new(
                settings.client.allowed_origins.clone(),
                settings.is_dev_mode(),
                settings.insecure_dev,
            ),
            webhooks: WebhookStatus::default(),
            alerts: AlertStore::default(),
            auth_failures: AuthFailures::default(),
            geoip: settings.geoip.clone(),
            observer_drops: Arc::default(),
            series_interval: settings.series_interval,
        }
    }

    /// Every route, each handler given only what it uses.
    pub(super) fn routes(
        self,
        auditor: Auditor,
    ) -> impl warp::Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone
    {
        let trusted_proxies = Arc::new(self.client_limits.trusted_proxies.clone());
        let refusals = RefusalAudit {
            auditor: auditor.clone(),
            auth: self.auth.clone(),
            trusted_proxies: trusted_proxies.clone(),
            auth_failures: self.auth_failures.clone(),
        };
        let client = ClientContext {
            presence: self.presence.clone(),
            auth: self.auth.clone(),
            connections: Arc::new(ConnectionContext {
                presence: self.presence.clone(),
                limits: self.client_limits.clone(),
                node_id: self.node_id,
                idle_after: self.idle_after,
                away_after: self.away_after,
                metrics: self.metrics.clone(),
                auth: self.auth.clone(),
            }),
            http_session_ttl: self.http_session_ttl,
            history: self.history.clone(),
            auditor: auditor.clone(),
            sockets: self.sockets.clone(),
            closing: self.closing.clone(),
            admission: self.admission.clone(),
            creation: crate::client::creation::CreationRates::new(&self.client_limits),
            origins: self.origins.clone(),
            geoip: self.geoip,
        };
        let admin = AdminContext {
            presence: self.presence.clone(),
            gate: AdminGate {
                auth: self.auth,
                limiter: KeyedRateLimiter::new(self.api_rate_limit),
            },
            history: self.history,
            metrics: self.metrics.clone(),
            origins: self.origins,
            auditor,
            audit: self.audit,
            trusted_proxies,
            webhooks: self.webhooks,
            alerts: self.alerts,
            sockets: self.sockets,
            closing: self.closing,
            admission: self.admission,
            write_timeout: self.client_limits.write_timeout,
            series_interval: self.series_interval,
        };
        let ops = OpsContext {
            presence: self.presence,
            readiness: self.readiness,
            metrics: self.metrics,
            metrics_enabled: self.metrics_enabled,
            observer_drops: self.observer_drops,
        };
        crate::routes::all(Arc::new(client), Arc::new(admin), ops, refusals)
    }
}

/// Admission control from the settings and the process's descriptor limit.
pub(super) fn admission_of(settings: &Settings, metrics: &Metrics) -> Admission {
    let nofile = read_nofile_limit();
    let connection_ceiling = nofile.map(connection_ceiling);
    tracing::debug!(?nofile, ?connection_ceiling, "descriptor guard");
    Admission::new(
        AdmissionLimits {
            max_sockets: settings.admission.max_connections,
            max_sockets_per_ip: settings.admission.max_connections_per_ip,
            trusted_proxies: settings.client.trusted_proxies.clone(),
            handshake_timeout: settings.admission.handshake_timeout,
            connection_ceiling,
        },
        metrics.admission_refusals.clone(),
    )
}
