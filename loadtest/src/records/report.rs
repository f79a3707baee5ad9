//! Owns the `records` report: the JSON other tools read (and `--fail-if`
//! judges), its summary fields (worst query p99, slowest analytics route,
//! RSS growth, the error total) and the text summary printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::export::Exported;
use super::hub::HubSpec;
use super::live::LiveIngest;
use super::queries::{AnalyticsTimed, Timed};
use crate::cli::RecordsArgs;
use crate::meta::RunInfo;
use crate::target::Target;

/// One imported history file.
#[derive(Debug, Clone, Serialize)]
pub struct Chunk {
    /// Sessions in the file.
    pub records: u64,
    /// Sessions the hub said it imported (new ids).
    pub imported: u64,
    /// From the hub's spawn to its `history file imported` line.
    pub seconds: f64,
    /// `imported / seconds`.
    pub records_per_s: f64,
    /// Time to write the file (not part of the ingest figure).
    pub generate_s: f64,
    /// Sessions in the store after this chunk.
    pub store_records: u64,
}

impl Chunk {
    /// A chunk's figures.
    pub fn new(
        records: u64,
        imported: u64,
        seconds: f64,
        generate_s: f64,
        store_records: u64,
    ) -> Self {
        Self {
            records,
            imported,
            seconds,
            records_per_s: rate(imported, seconds),
            generate_s,
            store_records,
        }
    }
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (n as f64 / seconds).round()
    } else {
        0.0
    }
}

/// The load phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ingest {
    /// Sessions imported in all.
    pub records: u64,
    /// Import time in all (hub starts included).
    pub seconds: f64,
    /// `records / seconds`: the sustained rate.
    pub records_per_s: f64,
    /// The slowest chunk's rate (the store at its fullest is usually slowest).
    pub min_chunk_records_per_s: f64,
    /// Each file.
    pub chunks: Vec<Chunk>,
}

impl Ingest {
    /// Sums the chunks.
    pub fn finish(&mut self) {
        self.records = self.chunks.iter().map(|c| c.imported).sum();
        self.seconds = self.chunks.iter().map(|c| c.seconds).sum();
        self.records_per_s = rate(self.records, self.seconds);
        self.min_chunk_records_per_s = self
            .chunks
            .iter()
            .map(|c| c.records_per_s)
            .reduce(f64::min)
            .unwrap_or(0.0);
    }
}

/// The JSON report of `records`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordsReport {
    /// `records`.
    pub scenario: &'static str,
    /// `sqlite` or `postgres` (from the URL's scheme).
    pub store: String,
    /// `--count`.
    pub records_target: u64,
    /// Sessions the store kept before the load (should be 0).
    pub records_before: Option<u64>,
    /// `total` of `status=ended` on the full store.
    pub records_loaded: Option<u64>,
    /// Failed requests by kind, over every phase.
    pub errors: BTreeMap<String, u64>,
    /// The load phase.
    pub ingest: Option<Ingest>,
    /// Sessions ended at once and written by the history writer.
    pub live_ingest: Option<LiveIngest>,
    /// Every list query, first page.
    pub queries: BTreeMap<String, Timed>,
    /// The highest p99 of `queries`, ms.
    pub query_p99_max_ms: Option<f64>,
    /// `GET /api/v1/stats`.
    pub stats: Option<Timed>,
    /// Each analytics route over 30 days.
    pub analytics: BTreeMap<String, AnalyticsTimed>,
    /// The slowest analytics run, ms; null when a route failed or timed out.
    pub analytics_max_ms: Option<f64>,
    /// The CSV export.
    pub export: Option<Exported>,
    /// Hub RSS on the empty store after the warm-up queries.
    pub hub_rss_empty_bytes: Option<u64>,
    /// Hub RSS on the full store after the list queries and stats, before
    /// the analytics routes (which read the whole range into the hub).
    pub hub_rss_after_queries_bytes: Option<u64>,
    /// Hub RSS on the full store after the queries, stats and analytics.
    pub hub_rss_full_bytes: Option<u64>,
    /// `full - empty`.
    pub hub_rss_growth_bytes: Option<i64>,
    /// Time from spawn to `/readyz` 200 on the empty store, ms.
    pub startup_empty_ms: Option<f64>,
    /// Time from spawn to `/readyz` 200 on the full store, ms.
    pub startup_ms: Option<f64>,
    /// Bytes on disk of `--store-path`.
    pub store_bytes: Option<u64>,
    /// The whole run, seconds.
    pub duration_s: f64,
    /// Parameters, start time, versions.
    pub run: Option<RunInfo>,
}

impl RecordsReport {
    /// An empty report for this run.
    pub fn new(args: &RecordsArgs, spec: &HubSpec) -> Self {
        let store = spec
            .database_url
            .split(':')
            .next()
            .map(|s| if s == "postgresql" { "postgres" } else { s })
            .unwrap_or("unknown")
            .to_owned();
        Self {
            scenario: "records",
            store,
            records_target: args.count,
            records_before: None,
            records_loaded: None,
            errors: BTreeMap::new(),
            ingest: None,
            live_ingest: None,
            queries: BTreeMap::new(),
            query_p99_max_ms: None,
            stats: None,
            analytics: BTreeMap::new(),
            analytics_max_ms: None,
            export: None,
            hub_rss_empty_bytes: None,
            hub_rss_after_queries_bytes: None,
            hub_rss_full_bytes: None,
            hub_rss_growth_bytes: None,
            startup_empty_ms: None,
            startup_ms: None,
            store_bytes: None,
            duration_s: 0.0,
            run: None,
        }
    }

    /// Fills in the summary fields.
    pub fn finish(&mut self) {
        let mut errors = BTreeMap::new();
        for timed in self.queries.values().chain(self.stats.iter()) {
            for (kind, n) in &timed.failed {
                *errors.entry(kind.clone()).or_insert(0) += n;
            }
        }
        for timed in self.analytics.values() {
            for (kind, n) in &timed.failed {
                *errors.entry(format!("analytics_{kind}")).or_insert(0) += n;
            }
        }
        if let Some(error) = self.export.as_ref().and_then(|e| e.error.as_ref()) {
            errors.insert(format!("export: {error}"), 1);
        }
        if let Some(live) = &self.live_ingest {
            if live.failed > 0 {
                errors.insert("live_heartbeat".to_owned(), live.failed);
            }
            if !live.complete {
                errors.insert("live_not_written".to_owned(), 1);
            }
        }
        self.errors = errors;
        self.query_p99_max_ms = self
            .queries
            .values()
            .filter_map(|t| t.latency_ms.as_ref().map(|p| p.p99))
            .reduce(f64::max);
        let all_answered = self.analytics.values().all(|a| a.failed.is_empty());
        self.analytics_max_ms = self
            .analytics
            .values()
            .filter_map(|a| a.max_ms)
            .reduce(f64::max)
            .filter(|_| all_answered);
        self.hub_rss_growth_bytes = match (self.hub_rss_empty_bytes, self.hub_rss_full_bytes) {
            (Some(a), Some(b)) => {
                Some(i64::try_from(b).unwrap_or(i64::MAX) - i64::try_from(a).unwrap_or(0))
            }
            _ => None,
        };
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mb = |b: Option<u64>| b.map_or("-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
        let _ = writeln!(
            out,
            "records on {}: {} loaded of {}",
            self.store,
            opt(self.records_loaded),
            self.records_target
        );
        if let Some(i) = &self.ingest {
            let _ = writeln!(
                out,
                "  ingest {:.0}/s (slowest chunk {:.0}/s) over {:.1} s",
                i.records_per_s, i.min_chunk_records_per_s, i.seconds
            );
        }
        if let Some(l) = &self.live_ingest {
            let _ = writeln!(
                out,
                "  live ingest {} sessions at {:.0}/s",
                l.sessions, l.sessions_per_s
            );
        }
        for (name, t) in &self.queries {
            let _ = writeln!(out, "  {name:<14} {} (total {})", latency(t), opt(t.total));
        }
        if let Some(s) = &self.stats {
            let _ = writeln!(out, "  stats          {}", latency(s));
        }
        for (name, a) in &self.analytics {
            let _ = writeln!(
                out,
                "  {name:<26} runs {:?} ms{}",
                a.runs_ms,
                if a.failed.is_empty() {
                    String::new()
                } else {
                    format!(" failed {:?}", a.failed)
                }
            );
        }
        if let Some(e) = &self.export {
            let _ = writeln!(
                out,
                "  export {} rows at {:.0}/s, hub RSS {} -> {}",
                e.rows,
                e.rows_per_s,
                mb(e.hub_rss_start_bytes),
                mb(e.hub_rss_max_bytes)
            );
        }
        let _ = writeln!(
            out,
            "  hub RSS empty {} after queries {} full {}; start-up empty {} ms full {} ms; store {}",
            mb(self.hub_rss_empty_bytes),
            mb(self.hub_rss_after_queries_bytes),
            mb(self.hub_rss_full_bytes),
            optf(self.startup_empty_ms),
            optf(self.startup_ms),
            mb(self.store_bytes)
        );
        if !self.errors.is_empty() {
            let _ = writeln!(out, "  errors {:?}", self.errors);
        }
        out
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

fn optf(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.0}"))
}

fn latency(t: &Timed) -> String {
    match &t.latency_ms {
        Some(p) => format!(
            "p50 {:.3} p99 {:.3} ms (n {}){}",
            p.p50,
            p.p99,
            p.count,
            if t.failed.is_empty() {
                String::new()
            } else {
                format!(" failed {:?}", t.failed)
            }
        ),
        None => format!("no answer {:?}", t.failed),
    }
}

/// The `run` object, with the hub's version read from its `/metrics`.
pub async fn run_info(url: &str) -> RunInfo {
    match Target::resolve(url, None, false, 1).await {
        Ok(target) => RunInfo::start(&target).await,
        Err(_) => RunInfo::without_hub(),
    }
}
