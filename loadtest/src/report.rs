//! Owns results: one worker's result, merging workers, and the final report.
//!
//! Workers send histograms serialized (hdrhistogram V2, base64) so the parent
//! merges exact distributions rather than averaging percentiles. The JSON
//! report has exactly the fields of the stable interface.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::stats::{Micros, Stats, new_histogram};

/// What the scenario measures, so absent figures stay absent in the report.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Measures {
    /// Ping/pong round trips (`msgs_per_s`, `rtt_ms`).
    pub rtt: bool,
    /// Admin event delays (`propagation_ms`).
    pub propagation: bool,
}

/// What one worker measured; sent as JSON from a child process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Which figures are meaningful.
    pub measures: Measures,
    /// Distinct clients that connected at least once.
    pub clients_connected: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Length of the measured phase, seconds.
    pub window_s: f64,
    /// Round trips answered in the measured phase.
    pub steady_round_trips: u64,
    /// Status changes sent (propagation).
    pub status_changes: u64,
    /// Connect latency histogram, V2 + base64.
    pub connect: String,
    /// RTT histogram, V2 + base64.
    pub rtt: String,
    /// Propagation histogram, V2 + base64.
    pub propagation: String,
    /// Scenario counters (`room_gaps`, `resume_failed`, ...).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Scenario histograms (`room_convergence_ms`, `resume_ms`), V2 + base64.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

impl WorkerResult {
    /// Collects a worker's final figures.
    pub fn collect(stats: &Stats, measures: Measures, window_s: f64) -> Result<Self> {
        let [connect, rtt, propagation] = stats.histograms();
        Ok(Self {
            measures,
            clients_connected: stats.ever_connected(),
            errors: stats.errors(),
            window_s,
            steady_round_trips: stats.steady_round_trips(),
            status_changes: stats.status_changes(),
            connect: encode(&connect)?,
            rtt: encode(&rtt)?,
            propagation: encode(&propagation)?,
            counts: stats.counts(),
            extra: stats
                .extra_histograms()
                .iter()
                .map(|(name, h)| Ok((name.clone(), encode(h)?)))
                .collect::<Result<_>>()?,
        })
    }
}

/// Serializes a histogram to base64 V2.
fn encode(histogram: &Micros) -> Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot serialize histogram: {e:?}"))?;
    Ok(BASE64.encode(bytes))
}

/// Reads a histogram written by [`encode`].
fn decode(text: &str) -> Result<Micros> {
    let bytes = BASE64.decode(text).context("histogram is not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("cannot read histogram: {e:?}"))
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
    /// Number of samples.
    pub count: u64,
}

impl Percentiles {
    /// Summarizes a microsecond histogram; `None` when it has no sample.
    pub fn of(histogram: &Micros) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self::of_samples(histogram))
    }

    /// Summarizes a histogram with at least one sample.
    fn of_samples(histogram: &Micros) -> Self {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let at = |q: f64| {
            if histogram.is_empty() {
                0.0
            } else {
                ms(histogram.value_at_quantile(q))
            }
        };
        Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: if histogram.is_empty() {
                0.0
            } else {
                ms(histogram.max())
            },
            count: histogram.len(),
        }
    }
}

/// The JSON report: the stable interface other tools read.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Clients asked for.
    pub clients_target: u64,
    /// Distinct clients that connected at least once.
    pub clients_connected: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Length of the measured phase, seconds.
    pub duration_s: f64,
    /// Ping/pong round trips per second in the measured phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msgs_per_s: Option<f64>,
    /// Ping -> pong latency (`null` when measured but no sample came).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<Option<Percentiles>>,
    /// Status change -> admin event latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation_ms: Option<Option<Percentiles>>,
    /// TCP connect + upgrade + welcome latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<Option<Percentiles>>,
    /// Hub RSS before the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_rss_before_bytes: Option<u64>,
    /// Hub RSS with every client connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_rss_after_bytes: Option<u64>,
    /// (after - before) / clients_connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_connection_bytes: Option<i64>,
    /// Hub CPU (user + system) over the measured phase, percent of one
    /// core (needs `--hub-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_cpu_percent: Option<f64>,
    /// Parameters, start time and versions of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<crate::meta::RunInfo>,
    /// Scenario figures: counters as numbers, histograms as percentiles
    /// (`null` when nothing was measured).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Hub RSS samples taken by the parent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// Before any client connected.
    pub before: Option<u64>,
    /// While every client was connected.
    pub after: Option<u64>,
}

/// Merges worker results into the report.
pub fn merge(
    scenario: &str,
    clients_target: u64,
    results: &[WorkerResult],
    rss: Rss,
) -> Result<Report> {
    let measures = results.first().map(|r| r.measures).unwrap_or_default();
    let mut errors = BTreeMap::new();
    let mut histograms = [new_histogram(), new_histogram(), new_histogram()];
    let (mut connected, mut msgs_per_s, mut window) = (0, 0.0, 0.0_f64);
    for result in results {
        connected += result.clients_connected;
        for (kind, n) in &result.errors {
            *errors.entry(kind.clone()).or_insert(0) += n;
        }
        for (merged, text) in
            histograms
                .iter_mut()
                .zip([&result.connect, &result.rtt, &result.propagation])
        {
            merged
                .add(decode(text)?)
                .map_err(|e| anyhow::anyhow!("cannot merge histograms: {e:?}"))?;
        }
        if result.window_s > 0.0 {
            msgs_per_s += result.steady_round_trips as f64 / result.window_s;
        }
        window = window.max(result.window_s);
    }
    let extra = merge_extra(results)?;
    let [connect, rtt, propagation] = histograms;
    let per_connection = match (rss.before, rss.after) {
        (Some(before), Some(after)) if connected > 0 => {
            Some((i128::from(after) - i128::from(before)) as i64 / connected as i64)
        }
        _ => None,
    };
    Ok(Report {
        scenario: scenario.to_owned(),
        clients_target,
        clients_connected: connected,
        errors,
        duration_s: (window * 1000.0).round() / 1000.0,
        msgs_per_s: measures.rtt.then(|| msgs_per_s.round()),
        rtt_ms: measures.rtt.then(|| Percentiles::of(&rtt)),
        propagation_ms: measures.propagation.then(|| Percentiles::of(&propagation)),
        connect_ms: Some(Percentiles::of(&connect)),
        hub_rss_before_bytes: rss.before,
        hub_rss_after_bytes: rss.after,
        rss_per_connection_bytes: per_connection,
        hub_cpu_percent: None,
        run: None,
        extra,
    })
}

/// Sums the scenario counters and merges the scenario histograms.
fn merge_extra(results: &[WorkerResult]) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut histograms: BTreeMap<String, Micros> = BTreeMap::new();
    for result in results {
        for (name, n) in &result.counts {
            *counts.entry(name.clone()).or_insert(0) += n;
        }
        for (name, text) in &result.extra {
            histograms
                .entry(name.clone())
                .or_insert_with(new_histogram)
                .add(decode(text)?)
                .map_err(|e| anyhow::anyhow!("cannot merge histograms: {e:?}"))?;
        }
    }
    let mut extra: BTreeMap<String, serde_json::Value> = counts
        .into_iter()
        .map(|(name, n)| (name, serde_json::Value::from(n)))
        .collect();
    for (name, histogram) in histograms {
        let value = serde_json::to_value(Percentiles::of(&histogram))?;
        extra.insert(name, value);
    }
    Ok(extra)
}

/// A human summary of a report, several lines.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}/{} clients connected, {:.2} s measured",
        report.scenario, report.clients_connected, report.clients_target, report.duration_s
    );
    if let Some(rate) = report.msgs_per_s {
        let _ = writeln!(out, "  ping/pong per second: {rate:.0}");
    }
    for (name, p) in [
        ("connect", &report.connect_ms),
        ("rtt", &report.rtt_ms),
        ("propagation", &report.propagation_ms),
    ] {
        if let Some(Some(p)) = p {
            let _ = writeln!(
                out,
                "  {name:<11} ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (n={})",
                p.p50, p.p90, p.p99, p.p999, p.max, p.count
            );
        }
    }
    if report.scenario == "churn" && report.duration_s > 0.0 {
        let accepted = report
            .connect_ms
            .as_ref()
            .map_or(0, |p| p.as_ref().map_or(0, |p| p.count));
        let rate = accepted as f64 / report.duration_s;
        let _ = writeln!(out, "  reconnects accepted: {accepted} ({rate:.0}/s)");
    }
    summarize_rss(&mut out, report);
    if let Some(cpu) = report.hub_cpu_percent {
        let _ = writeln!(
            out,
            "  hub CPU: {cpu:.1} % of one core over the measured phase"
        );
    }
    summarize_extra(&mut out, report);
    summarize_errors(&mut out, report);
    out
}

/// Appends the memory lines of the summary.
fn summarize_rss(out: &mut String, report: &Report) {
    if let (Some(before), Some(after)) = (report.hub_rss_before_bytes, report.hub_rss_after_bytes) {
        let _ = writeln!(
            out,
            "  hub RSS: {:.1} MiB -> {:.1} MiB ({} bytes per connection)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            report.rss_per_connection_bytes.unwrap_or(0)
        );
    }
}

/// Appends the scenario's own figures.
fn summarize_extra(out: &mut String, report: &Report) {
    for (name, value) in &report.extra {
        match value {
            serde_json::Value::Object(p) => {
                let get = |k: &str| p.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                let _ = writeln!(
                    out,
                    "  {name}: p50 {:.3}  p99 {:.3}  max {:.3}  (n={})",
                    get("p50"),
                    get("p99"),
                    get("max"),
                    get("count")
                );
            }
            other => {
                let _ = writeln!(out, "  {name}: {other}");
            }
        }
    }
}

/// Appends the error lines of the summary.
fn summarize_errors(out: &mut String, report: &Report) {
    if report.errors.is_empty() {
        let _ = writeln!(out, "  errors: none");
        return;
    }
    let total: u64 = report.errors.values().sum();
    let _ = writeln!(out, "  errors: {total}");
    for (kind, n) in &report.errors {
        let _ = writeln!(out, "    {kind}: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use std::time::Duration;

    fn worker(rtt_ms: u64, connected: u64) -> WorkerResult {
        let stats = Stats::default();
        stats.set_phase(crate::stats::Phase::Steady);
        for _ in 0..connected {
            stats.connected(Duration::from_millis(2), crate::stats::Attempt::Initial);
        }
        stats.round_trip(Duration::from_millis(rtt_ms));
        stats.fail(&Failure::PongTimeout);
        WorkerResult::collect(
            &stats,
            Measures {
                rtt: true,
                propagation: false,
            },
            2.0,
        )
        .unwrap()
    }

    #[test]
    fn merging_workers_adds_counts_and_histograms() {
        let rss = Rss {
            before: Some(1000),
            after: Some(1000 + 3 * 4096),
        };
        let report = merge("rtt", 3, &[worker(1, 1), worker(9, 2)], rss).unwrap();
        assert_eq!(report.clients_connected, 3);
        assert_eq!(report.errors["pong_timeout"], 2);
        assert_eq!(report.rtt_ms.clone().flatten().unwrap().count, 2);
        assert!((report.rtt_ms.clone().flatten().unwrap().max - 9.0).abs() < 0.01);
        assert_eq!(report.msgs_per_s, Some(1.0));
        assert_eq!(report.rss_per_connection_bytes, Some(4096));
        assert!(report.propagation_ms.is_none());
    }

    #[test]
    fn report_json_has_only_the_interface_fields() {
        let report = merge("rtt", 1, &[worker(1, 1)], Rss::default()).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "clients_connected",
                "clients_target",
                "connect_ms",
                "duration_s",
                "errors",
                "msgs_per_s",
                "rtt_ms",
                "scenario",
            ]
        );
        let mut fields: Vec<_> = json["rtt_ms"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.sort();
        assert_eq!(fields, ["count", "max", "p50", "p90", "p99", "p999"]);
    }
}
