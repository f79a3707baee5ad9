//! Owns the hub's configuration: every `PRESENCE_*` variable as an env var
//! and a CLI flag, parsed and validated once at start.
//!
//! After validation the `Config` is split into the small typed configs each
//! module needs (`PresenceConfig`, `ClientLimits`, ...). No other module reads
//! the environment.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::{JwksSource, KeySource};
use crate::geo::GeoIp;
mod database_url;
mod derive;
mod parse;
mod settings;
#[cfg(test)]
mod tests;

use crate::model::{EventType, NodeId};
pub use database_url::{DEFAULT_DATABASE_URL, DatabaseUrl, redacted};
use parse::*;
pub use settings::*;

/// Shortest HS256 secret accepted: RFC 7518 section 3.2 wants a key of at
/// least the hash's size (256 bits). An empty or short secret stops the hub.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Shortest `PRESENCE_CLUSTER_SECRET` accepted: an HMAC-SHA256 key as long
/// as the hash, as for the JWT secret. Shorter (or empty) stops the hub.
pub const MIN_CLUSTER_SECRET_BYTES: usize = 32;

/// Command-line flags and `PRESENCE_*` environment variables.
#[derive(Debug, Clone, Parser)]
#[command(name = "presence-hub", version, about = "Real-time presence hub")]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the start line shows it).
    #[arg(long, env = "PRESENCE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// HS256 secret for client and admin JWTs, at least 32 bytes. Unset, with no
    /// PRESENCE_JWT_PUBLIC_KEY or PRESENCE_JWKS_URL either, means dev mode.
    #[arg(long, env = "PRESENCE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// Path of a PEM public key (-----BEGIN PUBLIC KEY-----) that verifies JWTs:
    /// RSA is RS256, EC P-256 is ES256, Ed25519 is EdDSA.
    #[arg(long, env = "PRESENCE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,

    /// http(s) URL of a JWKS whose RS256, ES256 and EdDSA keys verify JWTs by `kid`;
    /// fetched at start and refreshed in the background.
    #[arg(long, env = "PRESENCE_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// The JWKS is fetched again this long after a successful fetch.
    #[arg(long, env = "PRESENCE_JWKS_REFRESH_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub jwks_refresh_interval: Duration,

    /// Shortest time between JWKS fetches asked for by tokens with an unknown `kid`
    /// (and between retries of a failed fetch).
    #[arg(long, env = "PRESENCE_JWKS_MIN_REFRESH_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub jwks_min_refresh_interval: Duration,

    /// When set, a JWT must carry this `iss` claim.
    #[arg(long, env = "PRESENCE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, a JWT's `aud` claim must name this audience; unset, `aud` is not checked.
    #[arg(long, env = "PRESENCE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Redis URL (redis:// or rediss://); unset means a single node in memory.
    #[arg(long, env = "PRESENCE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// HMAC-SHA256 key, at least 32 bytes, that seals every message nodes publish
    /// to each other; a node with it drops messages not sealed with it.
    #[arg(long, env = "PRESENCE_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<SecretString>,

    /// Prefix of every Redis key and channel, so clusters can share one Redis.
    #[arg(long, env = "PRESENCE_NAMESPACE", default_value = "presence")]
    pub namespace: String,

    /// This node's id; random when unset.
    #[arg(long, env = "PRESENCE_NODE_ID")]
    pub node_id: Option<String>,

    /// A session with no activity for this long is idle.
    #[arg(long, env = "PRESENCE_IDLE_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub idle_after: Duration,

    /// A session with no activity for this long is away.
    #[arg(long, env = "PRESENCE_AWAY_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub away_after: Duration,

    /// The hub sends a WebSocket Ping this often.
    #[arg(long, env = "PRESENCE_HEARTBEAT_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// No frame at all from a client for this long ends its session (timeout).
    #[arg(long, env = "PRESENCE_DEAD_AFTER", default_value = "45s", value_parser = parse_duration)]
    pub dead_after: Duration,

    /// A write to a WebSocket (client or admin) that has not finished after this long drops the socket: the peer stopped reading.
    #[arg(long, env = "PRESENCE_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// An HTTP-heartbeat session with no heartbeat for this long ends (timeout).
    #[arg(long, env = "PRESENCE_HTTP_SESSION_TTL", default_value = "90s", value_parser = parse_duration)]
    pub http_session_ttl: Duration,

    /// A node not heard from for this long is lost (cluster mode).
    #[arg(long, env = "PRESENCE_NODE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub node_timeout: Duration,

    /// Most live sessions per user; the oldest is terminated beyond it (0 = no limit).
    #[arg(long, env = "PRESENCE_MAX_SESSIONS_PER_USER", default_value_t = 0)]
    pub max_sessions_per_user: usize,

    /// Largest client message, in bytes; a bigger one closes the socket with 1009.
    #[arg(long, env = "PRESENCE_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Timeline entries kept per session (the oldest go first).
    #[arg(long, env = "PRESENCE_TIMELINE_LIMIT", default_value_t = crate::model::timeline::DEFAULT_TIMELINE_LIMIT)]
    pub timeline_limit: usize,

    /// How long ended sessions are kept in history.
    #[arg(long, env = "PRESENCE_HISTORY_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub history_retention: Duration,

    /// Length of a bucket of the online series (GET /api/v1/stats/series).
    /// For tests only: the panel's chart assumes the default 10 s.
    #[arg(long, env = "PRESENCE_SERIES_INTERVAL", default_value = "10s", value_parser = parse_duration, hide = true)]
    pub series_interval: Duration,

    /// Comma list of allowed WebSocket origins; unset allows any.
    #[arg(long, env = "PRESENCE_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,

    /// Comma list of origins whose pages may fetch /presence-client.js,
    /// POST /api/v1/heartbeat and use /api/v1/me/* (CORS); unset sends no
    /// CORS headers.
    #[arg(long, env = "PRESENCE_CORS_ORIGINS")]
    pub cors_origins: Option<String>,

    /// Comma list of proxy IPs or CIDRs whose X-Forwarded-For is honoured.
    #[arg(long, env = "PRESENCE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Lets dev mode (no JWT secret) bind a non-loopback address and answer
    /// to any Host (true/false, 1/0, yes/no, on/off).
    #[arg(long, env = "PRESENCE_INSECURE_DEV", default_value_t = false, action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), hide_possible_values = true)]
    pub insecure_dev: bool,

    /// Path of a PEM certificate chain (leaf first); with PRESENCE_TLS_KEY the
    /// hub serves HTTPS and WSS on PRESENCE_BIND. SIGHUP reloads both files.
    #[arg(long, env = "PRESENCE_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Path of the PEM private key (PKCS#8, PKCS#1 or SEC1) of PRESENCE_TLS_CERT.
    #[arg(long, env = "PRESENCE_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Single-node history is appended to this file and replayed at start.
    #[arg(long, env = "PRESENCE_HISTORY_FILE")]
    pub history_file: Option<std::path::PathBuf>,

    /// Where records are kept: sqlite://PATH, postgres://..., postgresql://... or memory:
    /// (in memory, plus PRESENCE_HISTORY_FILE). Unset: sqlite://presence-hub.db on a single
    /// node; in cluster mode, Redis (sqlite:// is refused there).
    #[arg(long, env = "PRESENCE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Admin API rate limit per token (per IP in dev mode), e.g. 50/s; burst is twice that.
    #[arg(long, env = "PRESENCE_API_RATE_LIMIT", default_value = "50/s")]
    pub api_rate_limit: String,

    /// Serve Prometheus metrics at /metrics (true/false, 1/0, yes/no, on/off).
    #[arg(long, env = "PRESENCE_METRICS", default_value_t = true, action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), hide_possible_values = true)]
    pub metrics: bool,

    /// Serve /metrics on this IP:PORT instead of PRESENCE_BIND (then not on
    /// the main listener), e.g. 127.0.0.1:9090.
    #[arg(long, env = "PRESENCE_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// Log format: text or json (level from RUST_LOG).
    #[arg(long, env = "PRESENCE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Messages per second one client connection may sustain (burst twice that); over it, close 1008.
    #[arg(long, env = "PRESENCE_CLIENT_RATE_LIMIT", default_value = "50/s")]
    pub client_rate_limit: String,

    /// New sessions one user may open, e.g. 10/s (burst twice that; every
    /// /ws upgrade and first heartbeat counts); over it, 429. 0 = no limit.
    #[arg(long, env = "PRESENCE_SESSION_RATE_PER_USER", default_value = "0")]
    pub session_rate_per_user: String,

    /// New sessions one client IP may open, e.g. 50/s (burst twice that);
    /// over it, 429. 0 = no limit.
    #[arg(long, env = "PRESENCE_SESSION_RATE_PER_IP", default_value = "0")]
    pub session_rate_per_ip: String,

    /// Events queued per admin subscriber before it is closed with 4009.
    #[arg(long, env = "PRESENCE_ADMIN_QUEUE", default_value_t = 4096)]
    pub admin_queue: usize,

    /// Listen backlog of the TCP socket (absorbs reconnect storms).
    #[arg(long, env = "PRESENCE_LISTEN_BACKLOG", default_value_t = 4096)]
    pub listen_backlog: u32,

    /// Most open WebSockets (/ws and /admin/ws) on this node; over it an upgrade gets 503 (0 = no limit).
    #[arg(long, env = "PRESENCE_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Most open WebSockets per client IP (trusted proxies honoured); over it an upgrade gets 503 (0 = no limit).
    #[arg(long, env = "PRESENCE_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: usize,

    /// Time a connection has for each request head, each request body and a WebSocket upgrade; then it is closed.
    #[arg(long, env = "PRESENCE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// How long a dropped session waits for its tab to come back; 0s disables resuming.
    #[arg(long, env = "PRESENCE_RESUME_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub resume_grace: Duration,

    /// Upper bound of the jittered `retry_after_ms` sent on shutdown.
    #[arg(long, env = "PRESENCE_RECONNECT_SPREAD", default_value = "5s", value_parser = parse_duration)]
    pub reconnect_spread: Duration,

    /// How long before a token's `exp` the hub asks the client for a new one.
    #[arg(long, env = "PRESENCE_TOKEN_REFRESH_WINDOW", default_value = "30s", value_parser = parse_duration)]
    pub token_refresh_window: Duration,

    /// A session older than this ends with cause `max_age` (0 = no limit).
    #[arg(long, env = "PRESENCE_MAX_SESSION_AGE", default_value = "0", value_parser = parse_duration)]
    pub max_session_age: Duration,

    /// Explicit rooms one session may join or watch (org: rooms do not count).
    #[arg(long, env = "PRESENCE_MAX_ROOMS_PER_SESSION", default_value_t = 16)]
    pub max_rooms_per_session: usize,

    /// Room frames queued per client connection; a watcher whose queue is full gets a fresh snapshot later.
    #[arg(long, env = "PRESENCE_ROOM_QUEUE", default_value_t = 256)]
    pub room_queue: usize,

    /// Comma list of http(s) URLs that receive presence events as signed webhooks.
    #[arg(long, env = "PRESENCE_WEBHOOK_URLS")]
    pub webhook_urls: Option<String>,

    /// HMAC-SHA256 key of webhook signatures; required when PRESENCE_WEBHOOK_URLS is set.
    #[arg(long, env = "PRESENCE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<SecretString>,

    /// Comma list of webhook event types sent.
    #[arg(
        long,
        env = "PRESENCE_WEBHOOK_EVENTS",
        default_value = "user.online,user.offline,session.started,session.ended,alert"
    )]
    pub webhook_events: String,

    /// Delivery attempts per webhook batch.
    #[arg(long, env = "PRESENCE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,

    /// Events queued per webhook endpoint before the oldest are dropped.
    #[arg(long, env = "PRESENCE_WEBHOOK_QUEUE", default_value_t = 10_000)]
    pub webhook_queue: usize,

    /// Path of a MaxMind-format .mmdb city database; sessions gain a location.
    #[arg(long, env = "PRESENCE_GEOIP_DB")]
    pub geoip_db: Option<std::path::PathBuf>,

    /// Evaluate the alert rules on this node (off: no alert is raised here;
    /// true/false, 1/0, yes/no, on/off).
    #[arg(long, env = "PRESENCE_ALERTS", default_value_t = true, action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), hide_possible_values = true)]
    pub alerts: bool,

    /// Alert multi_ip: live sessions of one user from at least this many distinct IPs.
    #[arg(long, env = "PRESENCE_ALERT_MULTI_IP_MIN", default_value_t = 3)]
    pub alert_multi_ip_min: usize,

    /// Alert session_flood: sessions one user starts within 60 s.
    #[arg(long, env = "PRESENCE_ALERT_SESSION_FLOOD_MIN", default_value_t = 10)]
    pub alert_session_flood_min: usize,

    /// Alert reconnect_loop: ends followed by a new start of one user within 60 s.
    #[arg(long, env = "PRESENCE_ALERT_RECONNECT_LOOP_MIN", default_value_t = 20)]
    pub alert_reconnect_loop_min: usize,

    /// Alert long_session: a session live longer than this.
    #[arg(long, env = "PRESENCE_ALERT_LONG_SESSION_AFTER", default_value = "12h", value_parser = parse_duration)]
    pub alert_long_session_after: Duration,

    /// Alert auth_failures: 401s this node answered one IP within 60 s.
    #[arg(long, env = "PRESENCE_ALERT_AUTH_FAILURES_MIN", default_value_t = 20)]
    pub alert_auth_failures_min: usize,
}

impl Config {
    /// The defaults, as if started with no flags and no `PRESENCE_*` variables.
    /// Tests start from this and set fields directly, never through the
    /// process environment.
    pub fn defaults() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            jwt_secret: None,
            jwt_public_key: None,
            jwks_url: None,
            jwks_refresh_interval: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(30),
            jwt_issuer: None,
            jwt_audience: None,
            redis_url: None,
            cluster_secret: None,
            namespace: "presence".into(),
            node_id: None,
            idle_after: Duration::from_secs(60),
            away_after: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(20),
            dead_after: Duration::from_secs(45),
            write_timeout: Duration::from_secs(10),
            http_session_ttl: Duration::from_secs(90),
            node_timeout: Duration::from_secs(5),
            max_sessions_per_user: 0,
            max_message_bytes: 4096,
            history_retention: Duration::from_secs(30 * 86_400),
            timeline_limit: crate::model::timeline::DEFAULT_TIMELINE_LIMIT,
            series_interval: Duration::from_secs(10),
            allowed_origins: None,
            cors_origins: None,
            trusted_proxies: String::new(),
            insecure_dev: false,
            tls_cert: None,
            tls_key: None,
            history_file: None,
            database_url: None,
            api_rate_limit: "50/s".into(),
            metrics: true,
            metrics_bind: None,
            log_format: LogFormat::Text,
            admin_queue: 4096,
            listen_backlog: 4096,
            client_rate_limit: "50/s".into(),
            session_rate_per_user: "0".into(),
            session_rate_per_ip: "0".into(),
            max_connections: 0,
            max_connections_per_ip: 0,
            handshake_timeout: Duration::from_secs(10),
            resume_grace: Duration::from_secs(10),
            reconnect_spread: Duration::from_secs(5),
            token_refresh_window: Duration::from_secs(30),
            max_session_age: Duration::ZERO,
            max_rooms_per_session: 16,
            room_queue: 256,
            webhook_urls: None,
            webhook_secret: None,
            webhook_events: "user.online,user.offline,session.started,session.ended,alert".into(),
            webhook_max_attempts: 8,
            webhook_queue: 10_000,
            geoip_db: None,
            alerts: true,
            alert_multi_ip_min: 3,
            alert_session_flood_min: 10,
            alert_reconnect_loop_min: 20,
            alert_long_session_after: Duration::from_secs(12 * 3600),
            alert_auth_failures_min: 20,
        }
    }

    /// Checks every value and relation, and splits the config per module.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let bind = self.parse_bind()?;
        self.check_relations()?;
        let token_keys = self.key_source()?;
        if token_keys.is_dev_mode() && !bind.ip().is_loopback() && !self.insecure_dev {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_BIND",
                reason: format!(
                    "dev mode (no PRESENCE_JWT_SECRET, PRESENCE_JWT_PUBLIC_KEY or PRESENCE_JWKS_URL) refuses to bind the non-loopback address {bind}; set one of them, or PRESENCE_INSECURE_DEV=1 to allow it"
                ),
            });
        }
        Ok(Settings {
            bind,
            listen_backlog: self.listen_backlog.max(128),
            token_keys,
            jwt_issuer: self.jwt_issuer.clone().filter(|v| !v.trim().is_empty()),
            jwt_audience: self.jwt_audience.clone().filter(|v| !v.trim().is_empty()),
            presence: self.presence_config(),
            client: ClientLimits {
                max_message_bytes: self.max_message_bytes,
                heartbeat_interval: self.heartbeat_interval,
                dead_after: self.dead_after,
                write_timeout: self.write_timeout,
                allowed_origins: parse_origins(
                    "PRESENCE_ALLOWED_ORIGINS",
                    self.allowed_origins.as_deref(),
                )?,
                cors_origins: parse_origins("PRESENCE_CORS_ORIGINS", self.cors_origins.as_deref())?,
                trusted_proxies: parse_proxies(&self.trusted_proxies)?,
                message_rate: self.client_rate_limit.parse().map_err(|reason| {
                    ConfigError::Invalid {
                        variable: "PRESENCE_CLIENT_RATE_LIMIT",
                        value: self.client_rate_limit.clone(),
                        reason,
                    }
                })?,
                session_rate_per_user: optional_rate(
                    "PRESENCE_SESSION_RATE_PER_USER",
                    &self.session_rate_per_user,
                )?,
                session_rate_per_ip: optional_rate(
                    "PRESENCE_SESSION_RATE_PER_IP",
                    &self.session_rate_per_ip,
                )?,
                reconnect_spread: self.reconnect_spread,
                token_refresh_window: self.token_refresh_window,
                max_rooms_per_session: self.max_rooms_per_session,
                room_queue: self.room_queue,
            },
            redis_url: parse_redis_url(self.redis_url.as_deref())?,
            cluster_secret: self.cluster_secret.clone(),
            namespace: self.namespace.clone(),
            node_timeout: self.node_timeout,
            history_retention: self.history_retention,
            series_interval: self.series_interval,
            history_file: self.history_file.clone(),
            database: self.database()?,
            api_rate_limit: self
                .api_rate_limit
                .parse()
                .map_err(|reason| ConfigError::Invalid {
                    variable: "PRESENCE_API_RATE_LIMIT",
                    value: self.api_rate_limit.clone(),
                    reason,
                })?,
            metrics: self.metrics,
            metrics_bind: self.parse_metrics_bind()?,
            log_format: self.log_format,
            admission: AdmissionConfig {
                max_connections: self.max_connections,
                max_connections_per_ip: self.max_connections_per_ip,
                handshake_timeout: self.handshake_timeout,
            },
            insecure_dev: self.insecure_dev,
            tls: self.tls_files()?,
            webhooks: self.webhook_config()?,
            alerts: self.alert_config()?,
            geoip: self.open_geoip()?,
        })
    }
}
