//! Owns keyed token-bucket rate limits: one bucket per key (an admin
//! token, a user, a client IP), `rate` per second with a burst of twice
//! that; over it, 429 with `Retry-After`. Stale keys are pruned once many
//! are kept, so the map stays bounded.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use crate::config::RateLimit;

/// Keys kept before stale ones are pruned.
const PRUNE_AT: usize = 10_000;

/// A token bucket per key. Cloning is shallow.
#[derive(Clone)]
pub struct KeyedRateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for KeyedRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedRateLimiter")
    }
}

impl KeyedRateLimiter {
    /// `rate` per second with a burst of twice that.
    pub fn new(rate: RateLimit) -> Self {
        let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.per_second.saturating_mul(2)).unwrap_or(per_second);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// Admits one request for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.limiter.len() > PRUNE_AT {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::RateLimited {
                    retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_a_burst_of_twice_the_rate() {
        let limiter = KeyedRateLimiter::new(RateLimit { per_second: 5 });
        let admitted = (0..20).filter(|_| limiter.check("t").is_ok()).count();
        assert_eq!(admitted, 10);
        assert!(limiter.check("other").is_ok(), "keys are separate");
        match limiter.check("t") {
            Err(ApiError::RateLimited { retry_after_s }) => assert!(retry_after_s >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
    }
}
