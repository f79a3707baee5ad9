//! Owns turning the parsed flags into the typed configs: the token keys,
//! webhook, alert, GeoIP, records store, bind and presence parts of
//! `Settings`, and the checks between variables (`check_relations`).

use super::*;

/// The variables that each choose what JWTs are verified against.
const KEY_VARIABLES: [&str; 3] = [
    "PRESENCE_JWT_SECRET",
    "PRESENCE_JWT_PUBLIC_KEY",
    "PRESENCE_JWKS_URL",
];

/// The public key file `path` names, read and checked now.
fn public_key_source(path: &std::path::Path) -> Result<KeySource, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::Conflict {
            variable: "PRESENCE_JWT_PUBLIC_KEY",
            reason: "is empty; name a PEM public key file, or unset it".into(),
        });
    }
    crate::auth::keys::read_public_key(path)
        .map(KeySource::PublicKey)
        .map_err(|reason| ConfigError::Invalid {
            variable: "PRESENCE_JWT_PUBLIC_KEY",
            value: path.display().to_string(),
            reason,
        })
}

/// `path` as set for `variable`, refusing an empty value.
fn tls_path(
    variable: &'static str,
    path: &std::path::Path,
) -> Result<std::path::PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::Conflict {
            variable,
            reason:
                "is empty; name a PEM file, or unset both PRESENCE_TLS_CERT and PRESENCE_TLS_KEY"
                    .into(),
        });
    }
    Ok(path.to_path_buf())
}

impl Config {
    /// The TLS files: both variables or neither. The files themselves are
    /// read and checked when the hub starts (`http::tls`).
    pub(super) fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: tls_path("PRESENCE_TLS_CERT", cert)?,
                key: tls_path("PRESENCE_TLS_KEY", key)?,
            })),
            (Some(_), None) => Err(ConfigError::Conflict {
                variable: "PRESENCE_TLS_KEY",
                reason: "is unset while PRESENCE_TLS_CERT is set; TLS needs both".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Conflict {
                variable: "PRESENCE_TLS_CERT",
                reason: "is unset while PRESENCE_TLS_KEY is set; TLS needs both".into(),
            }),
        }
    }

    /// What JWTs are verified against: at most one of the secret, the
    /// public key file (read and checked now) and the JWKS URL; none is dev
    /// mode. As for the secret, an empty value is an error, not "unset":
    /// that would turn a broken setting into an open hub.
    pub(super) fn key_source(&self) -> Result<KeySource, ConfigError> {
        self.check_one_key_source()?;
        if let Some(secret) = &self.jwt_secret {
            return Ok(KeySource::Secret(secret.clone()));
        }
        if let Some(path) = &self.jwt_public_key {
            return public_key_source(path);
        }
        match self.jwks_url.as_deref().map(str::trim) {
            Some(url) => self.jwks_source(url).map(KeySource::Jwks),
            None => Ok(KeySource::Dev),
        }
    }

    /// Refuses more than one of `KEY_VARIABLES`, naming the second.
    fn check_one_key_source(&self) -> Result<(), ConfigError> {
        let chosen = [
            self.jwt_secret.is_some(),
            self.jwt_public_key.is_some(),
            self.jwks_url.is_some(),
        ];
        let named: Vec<&'static str> = KEY_VARIABLES
            .into_iter()
            .zip(chosen)
            .filter_map(|(variable, set)| set.then_some(variable))
            .collect();
        match named.as_slice() {
            [_, second, ..] => Err(ConfigError::Conflict {
                variable: second,
                reason: format!(
                    "only one of PRESENCE_JWT_SECRET, PRESENCE_JWT_PUBLIC_KEY and PRESENCE_JWKS_URL may be set ({} are)",
                    named.join(" and ")
                ),
            }),
            _ => Ok(()),
        }
    }

    fn jwks_source(&self, url: &str) -> Result<JwksSource, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            variable: "PRESENCE_JWKS_URL",
            value: without_password(url),
            reason: reason.to_string(),
        };
        if url.is_empty() {
            return Err(invalid("is empty; name an http(s) URL, or unset it"));
        }
        let parsed = reqwest::Url::parse(url).map_err(|err| invalid(&err.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("a host is required"));
        }
        let conflict = |variable, reason: &str| ConfigError::Conflict {
            variable,
            reason: reason.to_string(),
        };
        if self.jwks_min_refresh_interval < Duration::from_millis(100) {
            return Err(conflict(
                "PRESENCE_JWKS_MIN_REFRESH_INTERVAL",
                "must be at least 100ms",
            ));
        }
        if self.jwks_refresh_interval < self.jwks_min_refresh_interval {
            return Err(conflict(
                "PRESENCE_JWKS_REFRESH_INTERVAL",
                "must not be shorter than PRESENCE_JWKS_MIN_REFRESH_INTERVAL",
            ));
        }
        Ok(JwksSource {
            url: parsed,
            refresh_interval: self.jwks_refresh_interval,
            min_refresh_interval: self.jwks_min_refresh_interval,
        })
    }

    pub(super) fn webhook_config(&self) -> Result<WebhookConfig, ConfigError> {
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

    pub(super) fn alert_config(&self) -> Result<AlertConfig, ConfigError> {
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
            enabled: self.alerts,
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
    pub(super) fn open_geoip(&self) -> Result<GeoIp, ConfigError> {
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
    pub(super) fn database(&self) -> Result<DatabaseUrl, ConfigError> {
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

    pub(super) fn parse_bind(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.trim().parse().map_err(|_| ConfigError::Invalid {
            variable: "PRESENCE_BIND",
            value: self.bind.clone(),
            reason: "expected IP:PORT, e.g. 127.0.0.1:8080".into(),
        })
    }

    pub(super) fn parse_metrics_bind(&self) -> Result<Option<SocketAddr>, ConfigError> {
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

    pub(super) fn check_relations(&self) -> Result<(), ConfigError> {
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
        if let Some(secret) = &self.cluster_secret
            && secret.expose_secret().len() < MIN_CLUSTER_SECRET_BYTES
        {
            return conflict(
                "PRESENCE_CLUSTER_SECRET",
                format!(
                    "an HMAC-SHA256 key must be at least {MIN_CLUSTER_SECRET_BYTES} bytes (this one has {}); unset it on every node for unsealed cluster messages",
                    secret.expose_secret().len()
                ),
            );
        }
        if self.idle_after.is_zero() {
            return conflict("PRESENCE_IDLE_AFTER", "must be greater than zero".into());
        }
        if self.series_interval < std::time::Duration::from_millis(100) {
            return conflict("PRESENCE_SERIES_INTERVAL", "must be at least 100ms".into());
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
        if self.write_timeout < Duration::from_millis(100) {
            return conflict("PRESENCE_WRITE_TIMEOUT", "must be at least 100ms".into());
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

    pub(super) fn presence_config(&self) -> PresenceConfig {
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
