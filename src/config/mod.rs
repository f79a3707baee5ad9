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

use crate::geo::GeoIp;
mod database_url;

use crate::model::{EventType, NodeId};
pub use database_url::{DEFAULT_DATABASE_URL, DatabaseUrl, redacted};

/// Shortest HS256 secret accepted: RFC 7518 section 3.2 wants a key of at
/// least the hash's size (256 bits). An empty or short secret stops the hub.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Parses a duration such as `500ms`, `2s`, `5m`, `1h` or `30d`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("{err} (use e.g. 500ms, 2s, 5m, 1h, 30d)"))
}

/// Command-line flags and `PRESENCE_*` environment variables.
#[derive(Debug, Clone, Parser)]
#[command(name = "presence-hub", version, about = "Real-time presence hub")]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the start line shows it).
    #[arg(long, env = "PRESENCE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// HS256 secret for client and admin JWTs, at least 32 bytes; unset means dev mode.
    #[arg(long, env = "PRESENCE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// Redis URL (redis:// or rediss://); unset means a single node in memory.
    #[arg(long, env = "PRESENCE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

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

    /// Lets dev mode (no JWT secret) bind a non-loopback address and answer to any Host.
    #[arg(long, env = "PRESENCE_INSECURE_DEV", default_value_t = false, action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure_dev: bool,

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

    /// Serve Prometheus metrics at /metrics.
    #[arg(long, env = "PRESENCE_METRICS", default_value_t = true, action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
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
    /// Allowed `Origin` values (None = any).
    pub allowed_origins: Option<Vec<String>>,
    /// Origins answered with CORS headers (None = no CORS).
    pub cors_origins: Option<Vec<String>>,
    /// Proxies whose X-Forwarded-For is honoured.
    pub trusted_proxies: Vec<IpNet>,
    /// Message rate per connection (burst twice that).
    pub message_rate: RateLimit,
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

/// The validated configuration, split per module.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Listen backlog.
    pub listen_backlog: u32,
    /// JWT secret (None = dev mode).
    pub jwt_secret: Option<SecretString>,
    /// Presence engine settings.
    pub presence: PresenceConfig,
    /// Client connection limits.
    pub client: ClientLimits,
    /// Redis URL (None = single node).
    pub redis_url: Option<String>,
    /// Redis key prefix.
    pub namespace: String,
    /// Node loss timeout.
    pub node_timeout: Duration,
    /// History retention.
    pub history_retention: Duration,
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
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Alert thresholds.
    pub alerts: AlertConfig,
    /// The GeoIP database (empty without `PRESENCE_GEOIP_DB`).
    pub geoip: GeoIp,
}

impl Config {
    /// The defaults, as if started with no flags and no `PRESENCE_*` variables.
    /// Tests start from this and set fields directly, never through the
    /// process environment.
    pub fn defaults() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            jwt_secret: None,
            redis_url: None,
            namespace: "presence".into(),
            node_id: None,
            idle_after: Duration::from_secs(60),
            away_after: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(20),
            dead_after: Duration::from_secs(45),
            http_session_ttl: Duration::from_secs(90),
            node_timeout: Duration::from_secs(5),
            max_sessions_per_user: 0,
            max_message_bytes: 4096,
            history_retention: Duration::from_secs(30 * 86_400),
            timeline_limit: crate::model::timeline::DEFAULT_TIMELINE_LIMIT,
            allowed_origins: None,
            cors_origins: None,
            trusted_proxies: String::new(),
            insecure_dev: false,
            history_file: None,
            database_url: None,
            api_rate_limit: "50/s".into(),
            metrics: true,
            metrics_bind: None,
            log_format: LogFormat::Text,
            admin_queue: 4096,
            listen_backlog: 4096,
            client_rate_limit: "50/s".into(),
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
        if self.jwt_secret.is_none() && !bind.ip().is_loopback() && !self.insecure_dev {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_BIND",
                reason: format!(
                    "dev mode (no PRESENCE_JWT_SECRET) refuses to bind the non-loopback address {bind}; set PRESENCE_JWT_SECRET, or PRESENCE_INSECURE_DEV=1 to allow it"
                ),
            });
        }
        Ok(Settings {
            bind,
            listen_backlog: self.listen_backlog.max(128),
            jwt_secret: self.jwt_secret.clone(),
            presence: self.presence_config(),
            client: ClientLimits {
                max_message_bytes: self.max_message_bytes,
                heartbeat_interval: self.heartbeat_interval,
                dead_after: self.dead_after,
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
                reconnect_spread: self.reconnect_spread,
                token_refresh_window: self.token_refresh_window,
                max_rooms_per_session: self.max_rooms_per_session,
                room_queue: self.room_queue,
            },
            redis_url: self.redis_url.clone().filter(|url| !url.trim().is_empty()),
            namespace: self.namespace.clone(),
            node_timeout: self.node_timeout,
            history_retention: self.history_retention,
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
            webhooks: self.webhook_config()?,
            alerts: self.alert_config()?,
            geoip: self.open_geoip()?,
        })
    }

    fn webhook_config(&self) -> Result<WebhookConfig, ConfigError> {
        let urls = self
            .webhook_urls
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(parse_webhook_url)
            .collect::<Result<Vec<_>, _>>()?;
        let secret = self
            .webhook_secret
            .clone()
            .filter(|secret| !secret.expose_secret().is_empty());
        if !urls.is_empty() && secret.is_none() {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_WEBHOOK_SECRET",
                reason: "is required when PRESENCE_WEBHOOK_URLS is set".into(),
            });
        }
        let events = parse_event_types(&self.webhook_events)?;
        if self.webhook_max_attempts == 0 {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_WEBHOOK_MAX_ATTEMPTS",
                reason: "must be at least 1".into(),
            });
        }
        if self.webhook_queue == 0 {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_WEBHOOK_QUEUE",
                reason: "must be at least 1".into(),
            });
        }
        Ok(WebhookConfig {
            urls,
            secret,
            events,
            max_attempts: self.webhook_max_attempts,
            queue: self.webhook_queue,
        })
    }

    fn alert_config(&self) -> Result<AlertConfig, ConfigError> {
        let at_least_one = |variable, value: usize| {
            if value == 0 {
                Err(ConfigError::Conflict {
                    variable,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(value)
            }
        };
        if self.alert_long_session_after.is_zero() {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_ALERT_LONG_SESSION_AFTER",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(AlertConfig {
            multi_ip_min: at_least_one("PRESENCE_ALERT_MULTI_IP_MIN", self.alert_multi_ip_min)?,
            session_flood_min: at_least_one(
                "PRESENCE_ALERT_SESSION_FLOOD_MIN",
                self.alert_session_flood_min,
            )?,
            reconnect_loop_min: at_least_one(
                "PRESENCE_ALERT_RECONNECT_LOOP_MIN",
                self.alert_reconnect_loop_min,
            )?,
            long_session_after: self.alert_long_session_after,
            auth_failures_min: at_least_one(
                "PRESENCE_ALERT_AUTH_FAILURES_MIN",
                self.alert_auth_failures_min,
            )?,
        })
    }

    /// Opens the GeoIP database now, so a missing or unreadable file stops
    /// the hub at start.
    fn open_geoip(&self) -> Result<GeoIp, ConfigError> {
        let Some(path) = self.geoip_db.as_deref() else {
            return Ok(GeoIp::none());
        };
        GeoIp::open(path).map_err(|reason| ConfigError::Invalid {
            variable: "PRESENCE_GEOIP_DB",
            value: path.display().to_string(),
            reason,
        })
    }

    /// `PRESENCE_DATABASE_URL`, resolved: unset is SQLite on a single node
    /// and Redis in cluster mode, where a node's SQLite file is refused.
    fn database(&self) -> Result<DatabaseUrl, ConfigError> {
        let clustered = self
            .redis_url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty());
        let text = match self.database_url.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => text,
            _ if clustered => "memory:",
            _ => DEFAULT_DATABASE_URL,
        };
        let database: DatabaseUrl = text.parse().map_err(|reason| ConfigError::Invalid {
            variable: "PRESENCE_DATABASE_URL",
            value: redacted(text),
            reason,
        })?;
        if clustered && matches!(database, DatabaseUrl::Sqlite(_)) {
            return Err(ConfigError::Conflict {
                variable: "PRESENCE_DATABASE_URL",
                reason: "sqlite:// cannot be used in cluster mode (PRESENCE_REDIS_URL is set): a node's file cannot be shared; use postgres://..., or leave it unset (or memory:) to keep records in Redis".into(),
            });
        }
        Ok(database)
    }

    fn parse_bind(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.trim().parse().map_err(|_| ConfigError::Invalid {
            variable: "PRESENCE_BIND",
            value: self.bind.clone(),
            reason: "expected IP:PORT, e.g. 127.0.0.1:8080".into(),
        })
    }

    fn parse_metrics_bind(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(text) = &self.metrics_bind else {
            return Ok(None);
        };
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                variable: "PRESENCE_METRICS_BIND",
                value: text.clone(),
                reason: "expected IP:PORT, e.g. 127.0.0.1:9090".into(),
            })
    }

    fn check_relations(&self) -> Result<(), ConfigError> {
        let conflict = |variable, reason: String| Err(ConfigError::Conflict { variable, reason });
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < MIN_JWT_SECRET_BYTES
        {
            return conflict(
                "PRESENCE_JWT_SECRET",
                format!(
                    "an HS256 key must be at least {MIN_JWT_SECRET_BYTES} bytes (this one has {}); unset it for dev mode",
                    secret.expose_secret().len()
                ),
            );
        }
        if self.idle_after.is_zero() {
            return conflict("PRESENCE_IDLE_AFTER", "must be greater than zero".into());
        }
        if self.away_after <= self.idle_after {
            return conflict(
                "PRESENCE_AWAY_AFTER",
                format!(
                    "must be greater than PRESENCE_IDLE_AFTER ({} <= {})",
                    humantime::format_duration(self.away_after),
                    humantime::format_duration(self.idle_after)
                ),
            );
        }
        if self.heartbeat_interval.is_zero() {
            return conflict(
                "PRESENCE_HEARTBEAT_INTERVAL",
                "must be greater than zero".into(),
            );
        }
        if self.dead_after <= self.heartbeat_interval {
            return conflict(
                "PRESENCE_DEAD_AFTER",
                "must be greater than PRESENCE_HEARTBEAT_INTERVAL".into(),
            );
        }
        if self.http_session_ttl.is_zero() {
            return conflict(
                "PRESENCE_HTTP_SESSION_TTL",
                "must be greater than zero".into(),
            );
        }
        if self.node_timeout < Duration::from_millis(500) {
            return conflict("PRESENCE_NODE_TIMEOUT", "must be at least 500ms".into());
        }
        if self.max_message_bytes < 64 {
            return conflict("PRESENCE_MAX_MESSAGE_BYTES", "must be at least 64".into());
        }
        if self.admin_queue == 0 {
            return conflict("PRESENCE_ADMIN_QUEUE", "must be at least 1".into());
        }
        if self.room_queue == 0 {
            return conflict("PRESENCE_ROOM_QUEUE", "must be at least 1".into());
        }
        if self.namespace.trim().is_empty() {
            return conflict("PRESENCE_NAMESPACE", "must not be empty".into());
        }
        if self.handshake_timeout < Duration::from_millis(100) {
            return conflict(
                "PRESENCE_HANDSHAKE_TIMEOUT",
                "must be at least 100ms".into(),
            );
        }
        if !self.resume_grace.is_zero() && self.reconnect_spread > self.resume_grace {
            return conflict(
                "PRESENCE_RECONNECT_SPREAD",
                format!(
                    "must not exceed PRESENCE_RESUME_GRACE ({} > {}), or clients paced by it could not resume",
                    humantime::format_duration(self.reconnect_spread),
                    humantime::format_duration(self.resume_grace)
                ),
            );
        }
        Ok(())
    }

    fn presence_config(&self) -> PresenceConfig {
        PresenceConfig {
            node_id: match self.node_id.as_deref().map(str::trim) {
                Some(id) if !id.is_empty() => NodeId::new(id),
                _ => NodeId::random(),
            },
            idle_after: self.idle_after,
            away_after: self.away_after,
            http_session_ttl: self.http_session_ttl,
            max_sessions_per_user: self.max_sessions_per_user,
            admin_queue: self.admin_queue,
            resume_grace: self.resume_grace,
            max_session_age: self.max_session_age,
            timeline_limit: self.timeline_limit,
        }
    }
}

/// The `PRESENCE_ALLOWED_ORIGINS` list, normalised (lowercase, no trailing
/// `/`). A value naming no origin (`""`, `",,,"`) is an error rather than
/// "allow any", and so is an entry that is not `*`, `null` or
/// `scheme://host[:port]`.
fn parse_origins(
    variable: &'static str,
    list: Option<&str>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(list) = list else {
        return Ok(None);
    };
    let invalid = |reason: &str| ConfigError::Invalid {
        variable,
        value: list.to_string(),
        reason: reason.to_string(),
    };
    let origins: Vec<String> = list
        .split(',')
        .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|origin| !origin.is_empty())
        .collect();
    if origins.is_empty() {
        return Err(invalid(
            "names no origin; list origins such as https://app.example, or unset it",
        ));
    }
    if let Some(bad) = origins.iter().find(|origin| {
        !(*origin == "*"
            || *origin == "null"
            || origin
                .split_once("://")
                .is_some_and(|(scheme, host)| !scheme.is_empty() && !host.is_empty()))
    }) {
        return Err(invalid(&format!(
            "{bad:?} is not an origin (scheme://host[:port], *, or null)"
        )));
    }
    Ok(Some(origins))
}

fn parse_webhook_url(text: &str) -> Result<reqwest::Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        variable: "PRESENCE_WEBHOOK_URLS",
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(text).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("a host is required"));
    }
    Ok(url)
}

fn parse_event_types(list: &str) -> Result<Vec<EventType>, ConfigError> {
    let mut events = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = EventType::parse(name).ok_or_else(|| ConfigError::Invalid {
            variable: "PRESENCE_WEBHOOK_EVENTS",
            value: name.to_string(),
            reason: "expected user.online, user.offline, session.started, session.ended or alert"
                .into(),
        })?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    Ok(events)
}

fn parse_proxies(list: &str) -> Result<Vec<IpNet>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError::Invalid {
                    variable: "PRESENCE_TRUSTED_PROXIES",
                    value: item.to_string(),
                    reason: "expected an IP address or CIDR".into(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut base = Config::defaults();
        let parsed =
            Config::try_parse_from(std::iter::once("presence-hub").chain(args.iter().copied()))
                .expect("flags parse");
        // Only take over what the flags said; the environment is ignored.
        for arg in args.iter().filter(|a| a.starts_with("--")) {
            match *arg {
                "--idle-after" => base.idle_after = parsed.idle_after,
                "--away-after" => base.away_after = parsed.away_after,
                "--bind" => base.bind.clone_from(&parsed.bind),
                "--insecure-dev" => base.insecure_dev = parsed.insecure_dev,
                "--trusted-proxies" => base.trusted_proxies.clone_from(&parsed.trusted_proxies),
                "--api-rate-limit" => base.api_rate_limit.clone_from(&parsed.api_rate_limit),
                "--resume-grace" => base.resume_grace = parsed.resume_grace,
                "--reconnect-spread" => base.reconnect_spread = parsed.reconnect_spread,
                "--max-session-age" => base.max_session_age = parsed.max_session_age,
                _ => {}
            }
        }
        base
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Config::defaults().validate().expect("defaults validate");
        assert_eq!(settings.bind.port(), 8080);
        assert_eq!(settings.presence.idle_after, Duration::from_secs(60));
        assert_eq!(settings.api_rate_limit.per_second, 50);
    }

    #[test]
    fn durations_accept_the_documented_units() {
        for text in ["500ms", "2s", "5m", "1h", "30d"] {
            assert!(parse_duration(text).is_ok(), "{text}");
        }
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn away_after_must_exceed_idle_after() {
        let err = config(&["--idle-after", "5m", "--away-after", "1m"])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("PRESENCE_AWAY_AFTER"), "{err}");
    }

    #[test]
    fn dev_mode_refuses_a_public_bind_unless_insecure() {
        let err = config(&["--bind", "0.0.0.0:8080"]).validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_BIND"), "{err}");
        assert!(
            config(&["--bind", "0.0.0.0:8080", "--insecure-dev", "1"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = config(&["--bind", "nowhere"]).validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_BIND"));
        let err = config(&["--trusted-proxies", "10.0.0.0/8,banana"])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("PRESENCE_TRUSTED_PROXIES"));
        let err = config(&["--api-rate-limit", "fast"])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("PRESENCE_API_RATE_LIMIT"));
    }

    #[test]
    fn the_database_defaults_to_sqlite_alone_and_redis_in_a_cluster() {
        let alone = Config::defaults().validate().unwrap();
        assert!(
            matches!(alone.database, DatabaseUrl::Sqlite(ref p) if p.as_os_str() == "presence-hub.db")
        );
        let mut clustered = Config::defaults();
        clustered.redis_url = Some("redis://127.0.0.1:6379".into());
        assert!(matches!(
            clustered.validate().unwrap().database,
            DatabaseUrl::Memory
        ));
        clustered.database_url = Some("postgres://127.0.0.1/presence".into());
        assert!(matches!(
            clustered.validate().unwrap().database,
            DatabaseUrl::Postgres(_)
        ));
        clustered.database_url = Some("sqlite://node.db".into());
        let err = clustered.validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_DATABASE_URL"), "{err}");
        let mut bad = Config::defaults();
        bad.database_url = Some("mysql://hub:secret@db/x".into());
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("PRESENCE_DATABASE_URL"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn the_reconnect_spread_fits_in_the_resume_grace() {
        let err = config(&["--resume-grace", "2s", "--reconnect-spread", "3s"])
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("PRESENCE_RECONNECT_SPREAD"),
            "{err}"
        );
        assert!(
            config(&["--resume-grace", "0s", "--reconnect-spread", "3s"])
                .validate()
                .is_ok()
        );
        let parsed = config(&["--max-session-age", "0"]);
        assert!(parsed.max_session_age.is_zero());
    }

    #[test]
    fn webhooks_need_valid_urls_and_a_secret() {
        let mut config = Config::defaults();
        config.webhook_urls = Some("http://127.0.0.1:9000/hook, https://hooks.example/p".into());
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_WEBHOOK_SECRET"), "{err}");
        config.webhook_secret = Some("s".into());
        let settings = config.validate().expect("valid");
        assert_eq!(settings.webhooks.urls.len(), 2);
        assert_eq!(settings.webhooks.events, EventType::ALL);
        config.webhook_urls = Some("mailto:x@example.com".into());
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_WEBHOOK_URLS"), "{err}");
        config.webhook_urls = None;
        config.webhook_events = "alert, user.online,alert".into();
        let events = config.validate().unwrap().webhooks.events;
        assert_eq!(events, [EventType::Alert, EventType::UserOnline]);
        config.webhook_queue = 0;
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_WEBHOOK_QUEUE"), "{err}");
    }

    #[test]
    fn alert_thresholds_must_be_positive() {
        let mut config = Config::defaults();
        config.alert_multi_ip_min = 0;
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string().contains("PRESENCE_ALERT_MULTI_IP_MIN"),
            "{err}"
        );
        let mut config = Config::defaults();
        config.alert_long_session_after = Duration::ZERO;
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string()
                .contains("PRESENCE_ALERT_LONG_SESSION_AFTER"),
            "{err}"
        );
        let defaults = Config::defaults().validate().unwrap().alerts;
        assert_eq!(defaults.long_session_after, Duration::from_secs(12 * 3600));
        assert_eq!(defaults.reconnect_loop_min, 20);
    }

    #[test]
    fn rate_limits_parse_per_unit() {
        assert_eq!(
            "50/s".parse::<RateLimit>(),
            Ok(RateLimit { per_second: 50 })
        );
        assert_eq!(
            "120/m".parse::<RateLimit>(),
            Ok(RateLimit { per_second: 2 })
        );
        assert!("0/s".parse::<RateLimit>().is_err());
    }

    #[test]
    fn a_jwt_secret_shorter_than_32_bytes_is_refused() {
        for short in ["", "s3cret", &"x".repeat(31)] {
            let mut config = Config::defaults();
            config.jwt_secret = Some(short.into());
            let err = config.validate().unwrap_err();
            assert!(err.to_string().contains("PRESENCE_JWT_SECRET"), "{err}");
        }
        let mut config = Config::defaults();
        config.jwt_secret = Some("x".repeat(32).into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            parse_origins(
                "PRESENCE_ALLOWED_ORIGINS",
                Some("https://A.example/, http://b.example")
            )
            .unwrap(),
            Some(vec![
                "https://a.example".to_string(),
                "http://b.example".to_string()
            ])
        );
        assert_eq!(
            parse_origins("PRESENCE_ALLOWED_ORIGINS", None).unwrap(),
            None
        );
    }

    #[test]
    fn an_origin_list_naming_no_origin_is_an_error() {
        for bad in [",,,", " , ", "", "app.example"] {
            let err = parse_origins("PRESENCE_ALLOWED_ORIGINS", Some(bad)).unwrap_err();
            assert!(
                err.to_string().contains("PRESENCE_ALLOWED_ORIGINS"),
                "{err}"
            );
        }
    }
}
