//! Owns the hub's notion of a point in time: Unix milliseconds, the hub
//! clock that produces them, and their RFC 3339 UTC rendering with
//! milliseconds.
//!
//! Pure code takes `now: Millis` as a parameter; only the edges read a clock.
//!
//! The hub clock is the wall clock read once, at the first reading, and
//! advanced from then on by the monotonic clock (as Erlang's "no time
//! warp" mode). Every deadline (idle, away, HTTP expiry, retention) is a
//! difference of two hub-clock readings, so a step of the system clock (an
//! NTP correction, a VM resumed from a snapshot) shifts no timer. The price:
//! after such a step, the timestamps the hub shows differ from the system
//! clock by the step until the process restarts.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// The current hub-clock time in Unix milliseconds.
pub fn now_millis() -> Millis {
    static CLOCK: OnceLock<HubClock> = OnceLock::new();
    CLOCK
        .get_or_init(|| HubClock::starting_at(Utc::now().timestamp_millis(), Instant::now()))
        .at(Instant::now())
}

/// Wall-clock time at one instant, advanced by the monotonic clock after it.
#[derive(Debug, Clone, Copy)]
pub struct HubClock {
    wall_at_start: Millis,
    start: Instant,
}

impl HubClock {
    /// A clock that reads `wall` at `start`.
    pub fn starting_at(wall: Millis, start: Instant) -> Self {
        Self {
            wall_at_start: wall,
            start,
        }
    }

    /// The time at `instant` (an instant before the start reads as the start).
    pub fn at(&self, instant: Instant) -> Millis {
        let elapsed = instant.saturating_duration_since(self.start);
        self.wall_at_start.saturating_add(millis_of(elapsed))
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis_of(duration: std::time::Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// How often the pruner runs for a retention period.
pub fn prune_interval(retention: std::time::Duration) -> std::time::Duration {
    (retention / 10).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3600),
    )
}

/// One UTC day, as days since the Unix epoch.
pub type Day = i64;

/// The UTC day of a point in time.
pub fn day_of(at: Millis) -> Day {
    at.div_euclid(86_400_000)
}

/// Renders a point in time as the contract's RFC 3339 UTC string with
/// milliseconds, e.g. `2026-11-23T10:00:00.000Z`.
pub fn format_rfc3339(at: Millis) -> String {
    let mut text = String::with_capacity(24);
    push_rfc3339(&mut text, at);
    text
}

/// Appends `at` in RFC 3339 UTC with milliseconds. Every `pong` carries a
/// timestamp, so the date-and-seconds prefix is formatted once per second
/// per thread and reused.
pub fn push_rfc3339(out: &mut String, at: Millis) {
    thread_local! {
        static PREFIX: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let second = at.div_euclid(1000);
    let millis = at.rem_euclid(1000);
    PREFIX.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let full = DateTime::<Utc>::from_timestamp(second, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            // "YYYY-MM-DDTHH:MM:SS." without "000Z"
            cache.1 = full.trim_end_matches("000Z").to_string();
            cache.0 = second;
        }
        out.push_str(&cache.1);
    });
    out.push(char::from(b'0' + u8::try_from(millis / 100).unwrap_or(0)));
    out.push(char::from(
        b'0' + u8::try_from(millis / 10 % 10).unwrap_or(0),
    ));
    out.push(char::from(b'0' + u8::try_from(millis % 10).unwrap_or(0)));
    out.push('Z');
}

/// Parses an RFC 3339 timestamp (any offset) into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.timestamp_millis())
}

/// Serde helper: a `Millis` field rendered as RFC 3339.
pub fn serialize_time<S: Serializer>(at: &Millis, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_rfc3339(*at))
}

/// Serde helper: an optional `Millis` field rendered as RFC 3339 or `null`.
pub fn serialize_opt_time<S: Serializer>(
    at: &Option<Millis>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&format_rfc3339(*at)),
        None => serializer.serialize_none(),
    }
}

/// Serde helper: reads an RFC 3339 string into `Millis`.
pub fn deserialize_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Millis, D::Error> {
    let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
    parse_rfc3339(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time"))
}

/// Serde helper: reads an optional RFC 3339 string into `Option<Millis>`.
pub fn deserialize_opt_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Millis>, D::Error> {
    let text: Option<std::borrow::Cow<'de, str>> = serde::Deserialize::deserialize(deserializer)?;
    match text {
        None => Ok(None),
        Some(text) => parse_rfc3339(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time")),
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_utc_with_milliseconds() {
        assert_eq!(
            format_rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_rfc3339(1_700_000_000_007),
            "2023-11-14T22:13:20.007Z"
        );
        assert_eq!(
            format_rfc3339(1_700_000_001_000),
            "2023-11-14T22:13:21.000Z"
        );
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_fast_path_matches_chrono_for_many_times() {
        for at in (1_600_000_000_000_i64..1_600_000_005_000).step_by(7) {
            let expected = DateTime::<Utc>::from_timestamp_millis(at)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(format_rfc3339(at), expected);
        }
    }

    #[test]
    fn the_hub_clock_never_runs_backwards() {
        let a = now_millis();
        let b = now_millis();
        assert!(b >= a);
        let start = Instant::now();
        let clock = HubClock::starting_at(5_000, start + std::time::Duration::from_secs(1));
        assert_eq!(
            clock.at(start),
            5_000,
            "before the start reads as the start"
        );
    }

    #[test]
    fn rendered_times_parse_back() {
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
