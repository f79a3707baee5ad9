//! Owns one worker's counters and latency histograms while it runs.
//!
//! Client tasks record into a shared `Stats`; the worker turns it into a
//! `Progress` line every tick and into a `WorkerResult` at the end. Locks are
//! held only for one histogram record, never across an `.await`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::failure::Failure;

/// Where a worker is in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening connections.
    Ramp,
    /// Every client has connected or failed; measuring.
    Steady,
    /// Closing connections.
    Draining,
    /// Finished.
    Done,
}

impl Phase {
    /// Inverse of `as u8`.
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Ramp,
            1 => Self::Steady,
            2 => Self::Draining,
            _ => Self::Done,
        }
    }
}

/// A snapshot of one worker, sent every tick.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Current phase (`None` before the first tick).
    pub phase: Option<Phase>,
    /// Connections open now.
    pub open: u64,
    /// Ping/pong round trips since the start.
    pub round_trips: u64,
    /// Errors since the start.
    pub errors: u64,
}

/// Which connection of a client this is, deciding what gets counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The client's first connection; its latency is measured.
    Initial,
    /// The client's first connection, set-up only (not in `connect_ms`).
    InitialUntimed,
    /// A later connection of the same client; its latency is measured.
    Reconnect,
    /// A later session with no connect latency of its own (HTTP).
    Renewed,
}

impl Attempt {
    /// True for a client's first connection.
    pub fn is_first(self) -> bool {
        matches!(self, Self::Initial | Self::InitialUntimed)
    }

    /// True when the latency belongs in the connect histogram.
    pub fn is_timed(self) -> bool {
        matches!(self, Self::Initial | Self::Reconnect)
    }
}

/// A latency histogram in microseconds.
pub type Micros = Histogram<u64>;

/// Creates an empty microsecond histogram (1 us .. 1 h, 3 significant digits).
pub fn new_histogram() -> Micros {
    // Bounds are constants that satisfy hdrhistogram's preconditions
    // (low >= 1, high >= 2 * low, sigfig <= 5), so this cannot fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Counters and histograms shared by one worker's tasks.
#[derive(Debug)]
pub struct Stats {
    phase: AtomicU8,
    open: AtomicU64,
    ever_connected: AtomicU64,
    round_trips: AtomicU64,
    steady_round_trips: AtomicU64,
    status_changes: AtomicU64,
    errors_total: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    connect: Mutex<Micros>,
    rtt: Mutex<Micros>,
    propagation: Mutex<Micros>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    extra: Mutex<BTreeMap<&'static str, Micros>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Ramp as u8),
            open: AtomicU64::new(0),
            ever_connected: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            steady_round_trips: AtomicU64::new(0),
            status_changes: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            connect: Mutex::new(new_histogram()),
            rtt: Mutex::new(new_histogram()),
            propagation: Mutex::new(new_histogram()),
            counts: Mutex::new(BTreeMap::new()),
            extra: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Records `value` into a locked histogram, tolerating a poisoned lock.
fn record(histogram: &Mutex<Micros>, value: Duration) {
    let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX).max(1);
    let mut guard = histogram.lock().unwrap_or_else(|e| e.into_inner());
    guard.saturating_record(micros);
}

/// Takes a copy of a locked histogram.
fn copy(histogram: &Mutex<Micros>) -> Micros {
    histogram.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Stats {
    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    /// A connection was established (welcome received) after `latency`.
    pub fn connected(&self, latency: Duration, attempt: Attempt) {
        self.open.fetch_add(1, Ordering::Relaxed);
        if attempt.is_first() {
            self.ever_connected.fetch_add(1, Ordering::Relaxed);
        }
        if attempt.is_timed() {
            record(&self.connect, latency);
        }
    }

    /// A connection was closed (by either side).
    pub fn disconnected(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A ping was answered after `rtt`.
    pub fn round_trip(&self, rtt: Duration) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        if self.phase() == Phase::Steady {
            self.steady_round_trips.fetch_add(1, Ordering::Relaxed);
        }
        record(&self.rtt, rtt);
    }

    /// A status change was sent.
    pub fn status_changed(&self) {
        self.status_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// An admin subscriber saw a change `delay` after it was sent.
    pub fn propagated(&self, delay: Duration) {
        record(&self.propagation, delay);
    }

    /// Counts one failure.
    pub fn fail(&self, failure: &Failure) {
        self.fail_n(failure, 1);
    }

    /// Counts `n` failures of one kind.
    pub fn fail_n(&self, failure: &Failure, n: u64) {
        if n == 0 {
            return;
        }
        self.errors_total.fetch_add(n, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(failure.key()).or_insert(0) += n;
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// A progress snapshot.
    pub fn progress(&self) -> Progress {
        Progress {
            phase: Some(self.phase()),
            open: self.open(),
            round_trips: self.round_trips.load(Ordering::Relaxed),
            errors: self.errors_total.load(Ordering::Relaxed),
        }
    }

    /// Distinct clients that connected at least once.
    pub fn ever_connected(&self) -> u64 {
        self.ever_connected.load(Ordering::Relaxed)
    }

    /// Round trips answered during the steady phase.
    pub fn steady_round_trips(&self) -> u64 {
        self.steady_round_trips.load(Ordering::Relaxed)
    }

    /// Status changes sent.
    pub fn status_changes(&self) -> u64 {
        self.status_changes.load(Ordering::Relaxed)
    }

    /// Errors by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Names report counters (`room_gaps`, ...) so they show even when 0.
    pub fn declare(&self, counters: &[&'static str], histograms: &[&'static str]) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for name in counters {
            counts.entry(name).or_insert(0);
        }
        drop(counts);
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        for name in histograms {
            extra.entry(name).or_insert_with(new_histogram);
        }
    }

    /// Adds `n` to the report counter `name`.
    pub fn count(&self, name: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(name).or_insert(0) += n;
    }

    /// Records samples into the scenario histogram `name` under one lock.
    pub fn record_extra(&self, name: &'static str, samples: &[Duration]) {
        if samples.is_empty() {
            return;
        }
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = extra.entry(name).or_insert_with(new_histogram);
        for sample in samples {
            let micros = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX).max(1);
            histogram.saturating_record(micros);
        }
    }

    /// The report counters by name.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// Copies of the scenario histograms by name.
    pub fn extra_histograms(&self) -> BTreeMap<String, Micros> {
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// Copies of the connect, RTT and propagation histograms.
    pub fn histograms(&self) -> [Micros; 3] {
        [
            copy(&self.connect),
            copy(&self.rtt),
            copy(&self.propagation),
        ]
    }
}
