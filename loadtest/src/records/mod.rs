//! Owns the `records` scenario: a records store (SQLite or PostgreSQL)
//! loaded with synthetic ended sessions through the hub itself, then
//! measured the way an operator uses it.
//!
//! Phases, each on a hub this scenario starts on `127.0.0.1:0`:
//! 1. **empty**: a hub on the empty store answers every query once or more
//!    (warm-up); its RSS is the "empty" figure and its time to `/readyz`
//!    200 the empty start-up;
//! 2. **load**: the set is written in chunks as v1 history files; a hub
//!    started with `PRESENCE_HISTORY_FILE` imports each (the store's
//!    `record_batch`, the call the history writer makes, 1,000 records per
//!    transaction) and is stopped; the import time is read from its log
//!    line `history file imported`;
//! 3. **full**: a hub on the full store (no history file): its time to
//!    `/readyz` 200, then every list query (first page), stats, analytics
//!    over 30 days, its RSS after those (the "full" figure), the CSV export
//!    while sampling RSS, and a live ingest through the history writer
//!    (`live`).
//!
//! Code map: `data` (the synthetic sessions), `hub` (hub processes),
//! `queries`, `export`, `live` (the measurements), `report` (the JSON).

mod data;
mod export;
mod hub;
mod live;
mod queries;
mod report;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

use crate::cli::RecordsArgs;
use crate::threshold::Threshold;
use data::Shape;
use hub::{Hub, HubSpec};
use queries::Drive;
use report::{Chunk, Ingest, RecordsReport};

/// How long a hub may take to answer `/readyz` 200 once bound.
const READY_LIMIT: Duration = Duration::from_secs(600);

/// Runs the scenario; returns the thresholds it failed.
pub async fn run(args: RecordsArgs) -> Result<Vec<String>> {
    let thresholds = args
        .fail_if
        .iter()
        .map(|t| Threshold::parse(t))
        .collect::<Result<Vec<_>>>()?;
    if args.count == 0 || args.chunk == 0 || args.users == 0 || args.orgs == 0 || args.days < 31 {
        bail!("--count, --chunk, --users and --orgs must be above 0 and --days at least 31");
    }
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create {}", args.work_dir.display()))?;
    let spec = hub_spec(&args)?;
    let shape = Shape {
        count: args.count,
        users: args.users,
        orgs: args.orgs,
        days: args.days,
        now_ms: data::now_ms(),
        seed: args.seed,
    };
    let clients = Clients::new(&args)?;
    let started = Instant::now();
    let mut report = RecordsReport::new(&args, &spec);

    eprintln!("records: empty store");
    let empty = spec.start(None).await?;
    report.startup_empty_ms = Some(ms(empty.await_ready(&clients.query, READY_LIMIT).await?));
    report.run = Some(report::run_info(&empty.url).await);
    report.records_before = ended_total(&clients.query, &empty.url).await;
    warm_up(&args, &shape, &clients, &empty).await;
    report.hub_rss_empty_bytes = hub::rss(empty.pid());
    empty.stop().await?;

    report.ingest = Some(load(&args, &shape, &spec).await?);

    eprintln!("records: full store");
    let full = spec.start(None).await?;
    report.startup_ms = Some(ms(full.await_ready(&clients.query, READY_LIMIT).await?));
    report.records_loaded = ended_total(&clients.query, &full.url).await;
    measure_full(&args, &shape, &clients, &full, &mut report).await;
    full.stop().await?;

    report.store_bytes = args.store_path.as_deref().map(disk_usage);
    report.duration_s = started.elapsed().as_secs_f64();
    report.finish();
    print!("{}", report.summary());
    let value = serde_json::to_value(&report)?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&value)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(thresholds
        .iter()
        .filter_map(|t| t.failure(&value))
        .collect())
}

fn hub_spec(args: &RecordsArgs) -> Result<HubSpec> {
    let bin = match &args.hub_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|dir| dir.join("presence-hub"))
            .context("no directory for the default --hub-bin")?,
    };
    if !bin.is_file() {
        bail!("--hub-bin {} is not a file", bin.display());
    }
    let env = args
        .hub_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--hub-env {kv:?}: expected KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HubSpec {
        bin,
        database_url: args.database_url.clone(),
        retention: format!("{}d", args.days + 5),
        env,
    })
}

/// The HTTP clients of the run: queries, analytics (its own timeout), export.
struct Clients {
    query: reqwest::Client,
    analytics: reqwest::Client,
    export: reqwest::Client,
}

impl Clients {
    fn new(args: &RecordsArgs) -> Result<Self> {
        let build = |timeout: Option<Duration>| {
            let builder = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(64);
            match timeout {
                Some(t) => builder.timeout(t),
                None => builder,
            }
            .build()
        };
        Ok(Self {
            query: build(Some(Duration::from_secs(60)))?,
            analytics: build(Some(args.analytics_timeout))?,
            export: build(None)?,
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `total` of `status=ended`: the sessions the store keeps.
async fn ended_total(client: &reqwest::Client, base: &str) -> Option<u64> {
    let url = format!("{base}/api/v1/sessions?status=ended&page_size=1");
    queries::one_request(client, &url).await.ok()?.1
}

/// The same kinds of work as on the full store, a few requests each, so
/// the empty figure includes what that work leaves allocated.
async fn warm_up(args: &RecordsArgs, shape: &Shape, clients: &Clients, hub: &Hub) {
    let drive = Drive {
        requests: 20,
        concurrency: args.concurrency,
        budget: args.query_budget,
        seed: args.seed,
    };
    for query in queries::catalogue().iter().chain([&queries::stats_query()]) {
        queries::time_query(&clients.query, &hub.url, shape, query, drive).await;
    }
    for (_, path) in queries::analytics(shape) {
        queries::time_analytics(&clients.analytics, &hub.url, path, 1).await;
    }
}

/// Writes the set chunk by chunk and has a hub import each.
async fn load(args: &RecordsArgs, shape: &Shape, spec: &HubSpec) -> Result<Ingest> {
    let file = args.work_dir.join("records-import.jsonl");
    let mut ingest = Ingest::default();
    let mut from = 0;
    while from < args.count {
        let to = (from + args.chunk).min(args.count);
        let generated = Instant::now();
        write_file(shape, from, to, &file)?;
        let generate_s = generated.elapsed().as_secs_f64();
        let hub = spec.start(Some(&file)).await?;
        let (at, imported) = hub
            .import_logged()
            .with_context(|| format!("the hub logged no import:\n{}", hub.log_tail()))?;
        let seconds = at.duration_since(hub.spawned).as_secs_f64();
        hub.stop().await?;
        std::fs::remove_file(&file).ok();
        eprintln!(
            "records: imported {imported} of {} in {seconds:.1} s ({to} written)",
            to - from
        );
        ingest
            .chunks
            .push(Chunk::new(to - from, imported, seconds, generate_s, to));
        from = to;
    }
    ingest.finish();
    Ok(ingest)
}

fn write_file(shape: &Shape, from: u64, to: u64, path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    data::write_range(shape, from, to, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Every measurement on the full store, in order.
async fn measure_full(
    args: &RecordsArgs,
    shape: &Shape,
    clients: &Clients,
    hub: &Hub,
    report: &mut RecordsReport,
) {
    let drive = Drive {
        requests: args.requests,
        concurrency: args.concurrency,
        budget: args.query_budget,
        seed: args.seed,
    };
    for query in queries::catalogue() {
        eprintln!("records: query {}", query.name);
        let timed = queries::time_query(&clients.query, &hub.url, shape, &query, drive).await;
        report.queries.insert(query.name.to_owned(), timed);
    }
    let stats = Drive {
        requests: args.stats_requests,
        ..drive
    };
    report.stats = Some(
        queries::time_query(
            &clients.query,
            &hub.url,
            shape,
            &queries::stats_query(),
            stats,
        )
        .await,
    );
    report.hub_rss_after_queries_bytes = hub::rss(hub.pid());
    let mut analytics = BTreeMap::new();
    for (name, path) in queries::analytics(shape) {
        eprintln!("records: analytics {name}");
        let timed =
            queries::time_analytics(&clients.analytics, &hub.url, path, args.analytics_runs).await;
        analytics.insert(name.to_owned(), timed);
    }
    report.analytics = analytics;
    report.hub_rss_full_bytes = hub::rss(hub.pid());
    eprintln!("records: export");
    let from = data::rfc3339(shape.now_ms - 30 * 86_400_000);
    let path = format!("/api/v1/sessions/export?format=csv&from={from}");
    report.export =
        Some(export::measure(&clients.export, &hub.url, path, hub.pid(), args.export_rows).await);
    if args.live_sessions > 0 {
        eprintln!("records: live ingest");
        report.live_ingest =
            Some(live::measure(&clients.query, &hub.url, args.live_sessions).await);
    }
}

/// Bytes on disk under `path` (a file with its SQLite `-wal`, or a tree).
fn disk_usage(path: &Path) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if !meta.is_dir() {
            return meta.len();
        }
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| walk(&e.path())).sum())
            .unwrap_or(0)
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    walk(path) + if path.is_file() { walk(&wal) } else { 0 }
}
