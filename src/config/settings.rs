//! Owns the typed configuration the hub runs with (`Settings` and the small
//! configs each module is handed), the configuration errors, and the
//! `RateLimit` value type.

use super::*;

/// What admission control needs (contract v1.1 section 13).
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// Open WebSockets on this node (0 = no limit).
    pub max_connections: usize,
    /// Open WebSockets per client IP (0 = no limit).
    pub max_connections_per_ip: usize,
    /// Time for a request head, a request body, an upgrade.
    pub handshake_timeout: Duration,
}

/// The PEM files TLS is served with (`PRESENCE_TLS_CERT`, `PRESENCE_TLS_KEY`),
/// read at start and again on every SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key of the leaf.
    pub key: std::path::PathBuf,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A configuration value the hub cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse.
    #[error("{variable}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The environment variable (its flag is the same name lowercased).
        variable: &'static str,
        /// The bad value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Two values that contradict each other.
    #[error("{variable}: {reason}")]
    Conflict {
        /// The environment variable at fault.
        variable: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The admin API's token-bucket rate: `per_second` with a burst of twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second.
    pub per_second: u32,
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (count, unit) = text.trim().split_once('/').unwrap_or((text.trim(), "s"));
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| "expected N/s, N/m or N/h".to_string())?;
        let per_second = match unit.trim() {
            "s" | "sec" | "second" => count,
            "m" | "min" | "minute" => count.div_ceil(60),
            "h" | "hour" => count.div_ceil(3600),
            _ => return Err("unit must be s, m or h".to_string()),
        };
        if per_second == 0 {
            return Err("rate must be at least 1 per second".to_string());
        }
        Ok(Self { per_second })
    }
}

/// What the presence engine needs.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// This node.
    pub node_id: NodeId,
    /// Active to idle.
    pub idle_after: Duration,
    /// Idle to away.
    pub away_after: Duration,
    /// HTTP session expiry.
    pub http_session_ttl: Duration,
    /// Per-user session limit (0 = none).
    pub max_sessions_per_user: usize,
    /// Per-subscriber admin queue bound.
    pub admin_queue: usize,
    /// How long a dropped session stays resumable (zero: never).
    pub resume_grace: Duration,
    /// Longest session life (zero: no limit).
    pub max_session_age: Duration,
    /// Timeline entries kept per session.
    pub timeline_limit: usize,
}

/// What each client connection needs.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Largest message in bytes.
    pub max_message_bytes: usize,
    /// WebSocket Ping period.
    pub heartbeat_interval: Duration,
    /// Silence that ends a session.
    pub dead_after: Duration,
    /// How long one write to a WebSocket may take.
    pub write_timeout: Duration,
    /// Allowed `Origin` values (None = any).
    pub allowed_origins: Option<Vec<String>>,
    /// Origins answered with CORS headers (None = no CORS).
    pub cors_origins: Option<Vec<String>>,
    /// Proxies whose X-Forwarded-For is honoured.
    pub trusted_proxies: Vec<IpNet>,
    /// Message rate per connection (burst twice that).
    pub message_rate: RateLimit,
    /// New sessions per user (burst twice that; None = no limit).
    pub session_rate_per_user: Option<RateLimit>,
    /// New sessions per client IP (burst twice that; None = no limit).
    pub session_rate_per_ip: Option<RateLimit>,
    /// Upper bound of `retry_after_ms` on shutdown.
    pub reconnect_spread: Duration,
    /// How long before `exp` the client is asked for a new token.
    pub token_refresh_window: Duration,
    /// Explicit rooms one session may join or watch.
    pub max_rooms_per_session: usize,
    /// Room frames queued per connection.
    pub room_queue: usize,
}

/// What webhook delivery needs (§11).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The endpoints (empty: webhooks off).
    pub urls: Vec<reqwest::Url>,
    /// The signing key (always set when `urls` is not empty).
    pub secret: Option<SecretString>,
    /// Event types sent.
    pub events: Vec<EventType>,
    /// Attempts per batch (at least 1).
    pub max_attempts: u32,
    /// Events queued per endpoint (at least 1).
    pub queue: usize,
}

/// The alert thresholds (§12).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Whether this node evaluates the rules at all (`PRESENCE_ALERTS`).
    pub enabled: bool,
    /// `multi_ip`: distinct IPs.
    pub multi_ip_min: usize,
    /// `session_flood`: starts within 60 s.
    pub session_flood_min: usize,
    /// `reconnect_loop`: end-then-start within 60 s.
    pub reconnect_loop_min: usize,
    /// `long_session`: age.
    pub long_session_after: Duration,
    /// `auth_failures`: 401s per IP within 60 s.
    pub auth_failures_min: usize,
}

impl Settings {
    /// True when no JWT is verified: no secret, public key or JWKS is set,
    /// and clients name themselves.
    pub fn is_dev_mode(&self) -> bool {
        self.token_keys.is_dev_mode()
    }
}

/// The validated configuration, split per module.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Listen backlog.
    pub listen_backlog: u32,
    /// What JWTs are verified against (`Dev`: dev mode).
    pub token_keys: KeySource,
    /// The `iss` a JWT must carry, when set.
    pub jwt_issuer: Option<String>,
    /// The audience a JWT's `aud` must name, when set.
    pub jwt_audience: Option<String>,
    /// Presence engine settings.
    pub presence: PresenceConfig,
    /// Client connection limits.
    pub client: ClientLimits,
    /// Redis URL (None = single node).
    pub redis_url: Option<String>,
    /// The key that seals cluster messages (None: unsealed, wire v1).
    pub cluster_secret: Option<SecretString>,
    /// Redis key prefix.
    pub namespace: String,
    /// Node loss timeout.
    pub node_timeout: Duration,
    /// History retention.
    pub history_retention: Duration,
    /// Bucket length of the online series (10 s; shorter in tests).
    pub series_interval: Duration,
    /// History file (single node).
    pub history_file: Option<std::path::PathBuf>,
    /// Where records are kept (`Memory` in cluster mode: in Redis).
    pub database: DatabaseUrl,
    /// Admin API rate.
    pub api_rate_limit: RateLimit,
    /// Serve /metrics.
    pub metrics: bool,
    /// Serve /metrics on its own listener here (None: on the main one).
    pub metrics_bind: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Connection limits and handshake timeouts.
    pub admission: AdmissionConfig,
    /// `PRESENCE_INSECURE_DEV`: dev mode may bind any address and answers
    /// to any `Host`.
    pub insecure_dev: bool,
    /// Serve HTTPS and WSS with these files (None: plain HTTP).
    pub tls: Option<TlsFiles>,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Alert thresholds.
    pub alerts: AlertConfig,
    /// The GeoIP database (empty without `PRESENCE_GEOIP_DB`).
    pub geoip: GeoIp,
}
