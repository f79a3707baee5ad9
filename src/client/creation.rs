//! Owns the session-creation rates (§13 hardening): how many new sessions
//! one user and one client IP may open, each a token bucket
//! (`PRESENCE_SESSION_RATE_PER_USER`, `PRESENCE_SESSION_RATE_PER_IP`; off
//! by default). Every `/ws` upgrade counts, a resume too, so a made-up
//! resume token cannot get around it; so does every first heartbeat (one
//! without `session_id`). Over either, 429 with `Retry-After`.

use std::net::IpAddr;

use crate::config::ClientLimits;
use crate::http::error::ApiError;
use crate::http::rate::KeyedRateLimiter;

/// The two creation limits. Cloning is shallow.
#[derive(Debug, Clone, Default)]
pub struct CreationRates {
    per_user: Option<KeyedRateLimiter>,
    per_ip: Option<KeyedRateLimiter>,
}

impl CreationRates {
    /// The limits `limits` names.
    pub fn new(limits: &ClientLimits) -> Self {
        Self {
            per_user: limits.session_rate_per_user.map(KeyedRateLimiter::new),
            per_ip: limits.session_rate_per_ip.map(KeyedRateLimiter::new),
        }
    }

    /// Admits one new session of `user` from `ip`, or says how long to wait.
    pub fn admit(&self, user: &str, ip: IpAddr) -> Result<(), ApiError> {
        if let Some(per_ip) = &self.per_ip {
            per_ip.check(&ip.to_string())?;
        }
        if let Some(per_user) = &self.per_user {
            per_user.check(user)?;
        }
        Ok(())
    }
}
