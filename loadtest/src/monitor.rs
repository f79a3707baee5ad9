//! Owns the parent's view of a run: the live progress line (connected/target,
//! msgs/s, errors, elapsed), collecting results, sampling hub RSS once
//! every worker holds its clients, and reading the hub's CPU time when the
//! measured phase starts and when the first worker leaves it.

use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cpu;
use crate::report::{Rss, WorkerResult};
use crate::rss;
use crate::spawn::Event;
use crate::stats::{Phase, Progress};
use crate::target::Target;

/// How long after every worker reaches the steady phase the RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// What the monitor needs to know about the run.
#[derive(Debug)]
pub struct Watch<'a> {
    /// Number of workers.
    pub workers: usize,
    /// Clients of the whole run.
    pub clients_target: u64,
    /// Where the hub is (for `/metrics`).
    pub target: &'a Target,
    /// The hub's pid, if given.
    pub hub_pid: Option<u32>,
    /// When to give up on the workers.
    pub deadline: Instant,
}

/// Per-worker state seen by the monitor.
#[derive(Debug, Default)]
struct Seen {
    progress: Vec<Progress>,
    results: Vec<Option<Result<WorkerResult>>>,
}

impl Seen {
    /// Sum of a field over workers.
    fn total(&self, field: fn(&Progress) -> u64) -> u64 {
        self.progress.iter().map(field).sum()
    }

    /// True once every worker reached the steady phase.
    fn all_steady(&self) -> bool {
        self.progress.iter().all(|p| p.phase >= Some(Phase::Steady))
    }

    /// True once any worker left the steady phase.
    fn any_past_steady(&self) -> bool {
        self.progress.iter().any(|p| p.phase > Some(Phase::Steady))
    }

    /// True once every worker reported its result.
    fn all_finished(&self) -> bool {
        self.results.iter().all(Option::is_some)
    }
}

/// What the monitor measured on the hub.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubUse {
    /// Memory before and with every client connected.
    pub rss: Rss,
    /// CPU over the measured phase, percent of one core.
    pub cpu_percent: Option<f64>,
}

/// The two CPU readings around the measured phase.
#[derive(Debug, Default)]
struct CpuWindow {
    from: Option<cpu::Reading>,
    to: Option<cpu::Reading>,
    taken_from: bool,
    taken_to: bool,
}

impl CpuWindow {
    /// Takes the first reading when the phase starts, the second when it ends.
    async fn update(&mut self, seen: &Seen, pid: Option<u32>) {
        if !self.taken_from && seen.all_steady() {
            self.taken_from = true;
            self.from = cpu::read(pid).await;
        }
        if self.taken_from && !self.taken_to && seen.any_past_steady() {
            self.taken_to = true;
            self.to = cpu::read(pid).await;
        }
    }

    /// Percent of one core between the readings.
    fn percent(&self) -> Option<f64> {
        cpu::percent(self.from?, self.to?)
    }
}

/// Receives events until every worker finished; returns results and what
/// the hub used.
pub async fn watch(
    watch: &Watch<'_>,
    rss_before: Option<u64>,
    mut events: mpsc::Receiver<Event>,
) -> Result<(Vec<WorkerResult>, HubUse)> {
    let bar = progress_bar();
    let mut seen = Seen {
        progress: vec![Progress::default(); watch.workers],
        results: (0..watch.workers).map(|_| None).collect(),
    };
    let mut rss = Rss {
        before: rss_before,
        after: None,
    };
    let mut rss_due: Option<Instant> = None;
    let mut cpu_window = CpuWindow::default();
    let mut rate = Rate::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !seen.all_finished() {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => record(&mut seen, event),
                None => break,
            },
            _ = tick.tick() => {
                rate.update(seen.total(|p| p.round_trips));
                bar.set_message(line(&seen, watch.clients_target, rate.per_s));
            }
            () = tokio::time::sleep_until(rss_due.unwrap_or(far)), if rss_due.is_some() => {
                rss.after = rss::hub_rss(watch.hub_pid, watch.target).await;
                rss_due = None;
            }
            () = tokio::time::sleep_until(watch.deadline) => {
                bar.finish_and_clear();
                bail!("workers did not finish before the run's deadline");
            }
        }
        cpu_window.update(&seen, watch.hub_pid).await;
        if rss.after.is_none() && rss_due.is_none() && seen.all_steady() {
            rss_due = Some(Instant::now() + SETTLE);
        }
    }
    bar.finish_and_clear();
    let hub = HubUse {
        rss,
        cpu_percent: cpu_window.percent(),
    };
    Ok((collect(seen)?, hub))
}

/// Stores one event.
fn record(seen: &mut Seen, event: Event) {
    match event {
        Event::Progress(w, tick) => {
            if let Some(slot) = seen.progress.get_mut(w) {
                *slot = tick;
            }
        }
        Event::Finished(w, result) => {
            if let Some(slot) = seen.results.get_mut(w) {
                *slot = Some(result);
            }
            if let Some(slot) = seen.progress.get_mut(w) {
                slot.phase = Some(Phase::Done);
            }
        }
    }
}

/// Every worker's result, or the first failure.
fn collect(seen: Seen) -> Result<Vec<WorkerResult>> {
    let mut results = Vec::new();
    for (w, result) in seen.results.into_iter().enumerate() {
        match result {
            Some(Ok(result)) => results.push(result),
            Some(Err(e)) => return Err(e.context(format!("worker {w} failed"))),
            None => bail!("worker {w} did not report"),
        }
    }
    Ok(results)
}

/// Round trips per second between two ticks.
#[derive(Debug, Default)]
struct Rate {
    last: u64,
    at: Option<Instant>,
    per_s: f64,
}

impl Rate {
    /// Updates the rate from a new cumulative count.
    fn update(&mut self, total: u64) {
        let now = Instant::now();
        if let Some(at) = self.at {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                self.per_s = total.saturating_sub(self.last) as f64 / secs;
            }
        }
        self.last = total;
        self.at = Some(now);
    }
}

/// The progress line's text.
fn line(seen: &Seen, target: u64, per_s: f64) -> String {
    let phase = seen
        .progress
        .iter()
        .filter_map(|p| p.phase)
        .min()
        .map_or("starting", phase_name);
    format!(
        "{phase:<8} connected {}/{target}  msgs/s {per_s:.0}  errors {}",
        seen.total(|p| p.open),
        seen.total(|p| p.errors)
    )
}

/// A short name for a phase.
fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Ramp => "ramp",
        Phase::Steady => "steady",
        Phase::Draining => "draining",
        Phase::Done => "done",
    }
}

/// A spinner on stderr: `elapsed  phase  connected a/b  msgs/s  errors`.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
