//! Owns the healthy receiver's count of this run's events: which arrived,
//! which twice, how late (event `at` to receipt, one machine's clock), how
//! many inside the measured window, and which of the events the short
//! sessions caused never came.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::worker::Ctx;

/// Histogram of event `at` -> receipt.
pub const DELIVERY_MS: &str = "webhook_delivery_ms";
/// Events of this run received (each id once).
pub const RECEIVED: &str = "webhook_events";
/// Events received a second time (same id).
pub const DUPLICATES: &str = "webhook_duplicates";
/// Events the short sessions caused that never arrived.
pub const MISSING: &str = "webhook_missing";
/// Events the short sessions caused.
pub const EXPECTED: &str = "webhook_expected";
/// Events received within the measured window, per second.
pub const PER_S: &str = "webhook_events_per_s";

/// The event types a short session causes, one bit each.
const TYPES: [(&str, u8); 4] = [
    ("session.started", 1),
    ("user.online", 2),
    ("session.ended", 4),
    ("user.offline", 8),
];
/// Every event of a session that started and ended.
pub const ALL_FOUR: u8 = 15;
/// The events of a session that started but whose end the harness could
/// not send.
pub const STARTED_ONLY: u8 = 3;

/// One POSTed batch.
#[derive(Debug, Deserialize)]
struct Batch {
    events: Vec<Event>,
}

/// One event; only what the tally reads.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    at: String,
    #[serde(default)]
    data: serde_json::Value,
}

/// The receiver's record of this run's events.
#[derive(Debug)]
pub struct Tally {
    /// `<run id>-`: events of other users are not this run's.
    prefix: String,
    /// Client indexes from here on are short sessions.
    first_session: u64,
    ids: Mutex<HashSet<String>>,
    /// Event-type bits received, per short session.
    seen: Mutex<HashMap<u64, u8>>,
    /// Event-type bits the harness caused, per short session.
    expected: Mutex<HashMap<u64, u8>>,
    /// Measured window, Unix microseconds (0: not started).
    window_from: AtomicU64,
    window_to: AtomicU64,
    in_window: AtomicU64,
    received: AtomicU64,
}

impl Tally {
    /// A tally for users `<run_id>-<index>`; indexes from `first_session`
    /// on are the short sessions.
    pub fn new(run_id: &str, first_session: u64) -> Self {
        Self {
            prefix: format!("{run_id}-"),
            first_session,
            ids: Mutex::default(),
            seen: Mutex::default(),
            expected: Mutex::default(),
            window_from: AtomicU64::new(0),
            window_to: AtomicU64::new(0),
            in_window: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// Starts the measured window now, for `length`.
    pub fn open_window(&self, length: Duration) {
        let from = unix_micros(SystemTime::now());
        let to = from.saturating_add(u64::try_from(length.as_micros()).unwrap_or(u64::MAX));
        self.window_to.store(to, Ordering::Relaxed);
        self.window_from.store(from, Ordering::Relaxed);
    }

    /// Notes that short session `index` caused the events in `bits`.
    pub fn expect(&self, index: u64, bits: u8) {
        let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        *expected.entry(index).or_insert(0) |= bits;
    }

    /// Records one batch received at `at`; `Err` when it is not a batch.
    pub fn batch(&self, ctx: &Ctx, body: &[u8], at: SystemTime) -> Result<(), serde_json::Error> {
        let batch: Batch = serde_json::from_slice(body)?;
        let received = unix_micros(at);
        let mut delays = Vec::with_capacity(batch.events.len());
        let (mut fresh, mut duplicates) = (0, 0);
        {
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for event in &batch.events {
                let Some(user) = self.user_index(&event.data) else {
                    continue;
                };
                if !ids.insert(event.id.clone()) {
                    duplicates += 1;
                    continue;
                }
                fresh += 1;
                if let Some(delay) = delay(&event.at, received) {
                    delays.push(delay);
                }
                if user >= self.first_session
                    && let Some((_, bit)) = TYPES.iter().find(|(t, _)| *t == event.kind)
                {
                    *seen.entry(user).or_insert(0) |= bit;
                }
            }
        }
        self.received.fetch_add(fresh, Ordering::Relaxed);
        let from = self.window_from.load(Ordering::Relaxed);
        if from > 0 && received >= from && received < self.window_to.load(Ordering::Relaxed) {
            self.in_window.fetch_add(fresh, Ordering::Relaxed);
        }
        ctx.stats.count(RECEIVED, fresh);
        ctx.stats.count(DUPLICATES, duplicates);
        ctx.stats.record_extra(DELIVERY_MS, &delays);
        Ok(())
    }

    /// The client index of the event's user when it is this run's.
    fn user_index(&self, data: &serde_json::Value) -> Option<u64> {
        let user = data.get("user_id")?.as_str()?;
        user.strip_prefix(&self.prefix)?.parse().ok()
    }

    /// Expected events not received so far.
    pub fn missing(&self) -> u64 {
        let expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        expected
            .iter()
            .map(|(index, bits)| {
                let got = seen.get(index).copied().unwrap_or(0);
                u64::from((bits & !got).count_ones())
            })
            .sum()
    }

    /// Events the short sessions caused.
    pub fn expected(&self) -> u64 {
        let expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        expected.values().map(|b| u64::from(b.count_ones())).sum()
    }

    /// Events received in the measured window.
    pub fn in_window(&self) -> u64 {
        self.in_window.load(Ordering::Relaxed)
    }
}

/// Receipt minus the event's `at` (RFC 3339); zero when the clock says
/// it came before it happened, `None` when `at` does not parse.
fn delay(at: &str, received_us: u64) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    let at_us = u64::try_from(at.timestamp_micros()).ok()?;
    Some(Duration::from_micros(received_us.saturating_sub(at_us)))
}

/// Microseconds since the Unix epoch.
fn unix_micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_receipt_minus_the_event_time() {
        let at = "2026-12-01T22:39:59.311Z";
        let at_us = 1_796_164_799_311_000;
        assert_eq!(delay(at, at_us + 1500), Some(Duration::from_micros(1500)));
        assert_eq!(delay(at, at_us - 5), Some(Duration::ZERO));
        assert_eq!(delay("yesterday", at_us), None);
    }

    #[test]
    fn missing_counts_expected_bits_not_seen() {
        let tally = Tally::new("lt1", 10);
        tally.expect(10, ALL_FOUR);
        tally.expect(11, STARTED_ONLY);
        tally
            .seen
            .lock()
            .unwrap()
            .extend([(10, 1 | 2 | 8), (11, 3)]);
        assert_eq!(tally.expected(), 6);
        assert_eq!(tally.missing(), 1);
        assert_eq!(
            tally.user_index(&serde_json::json!({"user_id": "lt1-12"})),
            Some(12)
        );
        assert_eq!(
            tally.user_index(&serde_json::json!({"user_id": "lt2-12"})),
            None
        );
    }
}
