//! Owns the pure parts of a delivery: the `X-Presence-Signature` value, the
//! retry decision for an answer, the backoff between attempts and the
//! reading of `Retry-After`. No I/O, no clock: time is a parameter.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// First retry waits about this long; each further one twice as long.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// No wait between attempts is longer than this (also caps `Retry-After`).
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; the fallback
    // keeps the code free of panics all the same.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return format!("t={unix_seconds},v1=");
    };
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What to do after an answer with HTTP status `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 408, 429, 5xx: try again.
    Retry,
    /// Anything else (other 4xx, 3xx, 1xx): give the batch up.
    GiveUp,
}

/// The verdict of a status code.
pub fn verdict_of(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::GiveUp,
    }
}

/// The wait before attempt `failed + 1` after `failed` failed attempts,
/// with `jitter` in [0, 1] scaling it between half and all of the
/// exponential step.
pub fn backoff(failed: u32, jitter: f64) -> Duration {
    let step = BACKOFF_BASE.saturating_mul(1u32 << failed.saturating_sub(1).min(16));
    let step = step.min(BACKOFF_MAX);
    step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A `Retry-After` value (seconds, or an HTTP date) as a wait from
/// `now_unix_ms`, capped at `BACKOFF_MAX`.
pub fn retry_after(value: &str, now_unix_ms: i64) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let millis = at.timestamp_millis().saturating_sub(now_unix_ms).max(0);
        Duration::from_millis(u64::try_from(millis).unwrap_or(0))
    };
    Some(wait.min(BACKOFF_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        let value = signature(b"secret", 1_700_000_000, r#"{"a":1}"#);
        assert!(value.starts_with("t=1700000000,v1="), "{value}");
        assert_eq!(
            value,
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        assert_ne!(signature(b"other", 1_700_000_000, r#"{"a":1}"#), value);
        assert_ne!(signature(b"secret", 1_700_000_001, r#"{"a":1}"#), value);
    }

    #[test]
    fn statuses_decide_between_done_retry_and_give_up() {
        assert_eq!(verdict_of(200), Verdict::Delivered);
        assert_eq!(verdict_of(204), Verdict::Delivered);
        for status in [408, 429, 500, 502, 503] {
            assert_eq!(verdict_of(status), Verdict::Retry, "{status}");
        }
        for status in [301, 302, 400, 401, 404, 410] {
            assert_eq!(verdict_of(status), Verdict::GiveUp, "{status}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(30, 1.0), BACKOFF_MAX);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("2", 0), Some(Duration::from_secs(2)));
        let now = chrono::DateTime::parse_from_rfc2822("Sun, 06 Nov 1994 08:49:37 GMT")
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after("soon", 0), None);
        assert_eq!(retry_after("99999", 0), Some(BACKOFF_MAX));
    }
}
