//! Owns the command line: the stable interface other tools script.
//!
//! `presence-loadtest <hold|rtt|propagation|churn|mix|rooms|resume|webhooks> --url URL [--clients N]
//! [--duration 30s] [--workers K] [--hub-pid PID] [--json FILE]` plus the
//! options each scenario needs; `presence-loadtest records --database-url URL
//! --work-dir DIR [--count N]` starts its own hubs instead. It does not
//! validate targets (see `target`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// Drives a presence hub with simulated clients and reports what it measured.
#[derive(Debug, Parser)]
#[command(name = "presence-loadtest", version, about)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// One scenario, or the hidden worker mode used by `--workers`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ramp N clients at R per second, each pinging every P seconds, and hold.
    Hold(HoldArgs),
    /// Closed-loop ping -> pong: round trips per second and RTT percentiles.
    Rtt(RttArgs),
    /// Clients toggle a manual status; admin subscribers time the events.
    Propagation(PropagationArgs),
    /// Connect/disconnect storm: reconnects at a target rate.
    Churn(ChurnArgs),
    /// A realistic blend: idle and active tabs, churners, HTTP heartbeats, admins.
    Mix(MixArgs),
    /// Every client joins and watches a room; members change, watchers time
    /// the changes, check `seq` and compare their view with the hub's.
    Rooms(RoomsArgs),
    /// Tabs drop at once and come back with their resume token.
    Resume(ResumeArgs),
    /// Short sessions make webhook events; its own receivers time their
    /// delivery while pinging clients measure RTT.
    Webhooks(WebhooksArgs),
    /// Loads a records store with synthetic ended sessions through the
    /// hub's history-file import, then times queries, stats, analytics,
    /// export, live ingest, memory and start-up on hubs it starts itself.
    Records(RecordsArgs),
    /// Runs one share of a plan read from stdin; prints JSON lines on stdout.
    #[command(hide = true)]
    Worker,
    /// Prints the Markdown tables of docs/benchmarks.md from `SERVER:RUN=FILE` reports.
    #[command(hide = true)]
    Table {
        /// `SERVER:RUN=FILE`, e.g. `hub:rtt-1000=results/hub-rtt-1000.json`.
        reports: Vec<String>,
    },
}

/// Options every scenario shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Base URL of the hub (http:// or ws://).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Number of simulated clients.
    #[arg(long, default_value_t = 100)]
    pub clients: u64,
    /// How long the measured phase lasts (after the ramp), e.g. `30s`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Child processes to spread the clients over (each has its own fd limit).
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// Hub process id: its RSS is read from /proc/PID/status.
    #[arg(long)]
    pub hub_pid: Option<u32>,
    /// Write the JSON report to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// HS256 secret: mint a token per simulated user (JWT mode).
    #[arg(long, env = "PRESENCE_LOADTEST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Connections opened per second during the ramp (0 = as fast as allowed).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Client sockets bind to source addresses 127.0.0.1 .. 127.0.0.N.
    #[arg(long, default_value_t = 16)]
    pub source_addrs: u32,
    /// Handshakes in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub max_pending: u32,
    /// Give up on one connection attempt after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Exit with status 3 when the report meets this condition, e.g.
    /// `rtt.p99>5ms`, `errors>0`, `room_gaps>0` (repeatable; a field not
    /// measured also fails). Fewer clients connected than --clients always
    /// exits with 3.
    #[arg(long = "fail-if", value_name = "FIELD>VALUE")]
    pub fail_if: Vec<String>,
}

/// Options of `hold`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Each client sends a ping this often, jittered (0 = never).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,
}

/// Options of `rtt`.
#[derive(Debug, Args)]
pub struct RttArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Cap on pings per second per client (0 = closed loop, as fast as
    /// pongs come back). The hub closes a client above 50 messages/s
    /// sustained with 1008 unless its limit is raised.
    #[arg(long, default_value_t = 0.0)]
    pub client_rate: f64,
}

/// Options of `propagation`.
#[derive(Debug, Args)]
pub struct PropagationArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Each client changes its manual status this often.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub change_interval: Duration,
    /// Status changes per client (default: duration / change interval).
    #[arg(long)]
    pub changes: Option<u32>,
    /// Admin subscribers per worker, each timing every change.
    #[arg(long, default_value_t = 1)]
    pub admins: u32,
    /// Admin stream base URL when it is another node (default: --url).
    #[arg(long)]
    pub admin_url: Option<String>,
}

/// Options of `churn`.
#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Disconnect + reconnect cycles to run (default: one per client).
    #[arg(long)]
    pub reconnects: Option<u64>,
    /// Reconnects per second (0 = as fast as allowed).
    #[arg(long, default_value_t = 0.0)]
    pub reconnect_rate: f64,
}

/// Options of `mix`.
#[derive(Debug, Args)]
pub struct MixArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Active tabs ping this often, jittered.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,
    /// Percent of clients that are active tabs.
    #[arg(long, default_value_t = 15)]
    pub active_pct: u8,
    /// Percent of clients that reconnect over and over.
    #[arg(long, default_value_t = 3)]
    pub churn_pct: u8,
    /// A churning client reconnects this often, jittered.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub churn_interval: Duration,
    /// Percent of clients that use HTTP heartbeats instead of a socket.
    #[arg(long, default_value_t = 2)]
    pub http_pct: u8,
    /// HTTP clients send a heartbeat this often.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
    /// Admin subscribers per worker watching the stream.
    #[arg(long, default_value_t = 1)]
    pub admins: u32,
}

/// Options of `rooms`.
#[derive(Debug, Args)]
pub struct RoomsArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Rooms; client i is a member of room i mod N, so each room has about
    /// clients / N members, all of them watching it.
    #[arg(long, default_value_t = 10)]
    pub rooms: u64,
    /// Member changes per second in each room, taken by its members in
    /// turn; a change is a ping with a new page carrying its send time (a
    /// member may change at most 50 times a second, the hub's client limit).
    #[arg(long, default_value_t = 1.0)]
    pub room_changes_per_s: f64,
    /// Base URL for the final check, GET /api/v1/rooms/{room} (default: --url).
    #[arg(long)]
    pub admin_url: Option<String>,
    /// A second hub node on the same Redis: every other member of each room
    /// connects there, so each room is spread over both nodes.
    #[arg(long)]
    pub peer_url: Option<String>,
    /// How long after the last change the views get before the check.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
}

/// Options of `resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Shared options. `--duration` is how long admin subscribers keep
    /// counting after the last tab came back.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The tabs come back with `?resume=<token>` spread evenly over this
    /// window (the hub's PRESENCE_RESUME_GRACE must be longer).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub storm_window: Duration,
    /// How the tabs drop: `eof` (TCP closed without a close frame), `close`
    /// (a close frame), or `hub` (wait until the hub closes them, e.g. a
    /// node stopped with SIGTERM, and come back after its retry_after_ms).
    #[arg(long, value_enum, default_value = "close")]
    pub drop: DropKind,
    /// The node tabs come back to (default: --url).
    #[arg(long)]
    pub peer_url: Option<String>,
    /// Admin stream base URL (default: --peer-url, else --url).
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Admin subscribers per worker counting ended and offline events.
    #[arg(long, default_value_t = 1)]
    pub admins: u32,
}

/// How tabs lose their connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    /// Close the TCP connection without a close frame.
    Eof,
    /// Send a close frame and close at once, without waiting for the answer.
    Close,
    /// Wait for the hub to close the socket (e.g. a node stopped with
    /// SIGTERM), then reconnect after its `retry_after_ms`.
    Hub,
}

/// Options of `webhooks`.
#[derive(Debug, Args)]
pub struct WebhooksArgs {
    /// Shared options. `--clients` is the number of pinging clients whose
    /// RTT is measured; the short sessions come on top of them.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Short sessions started per second in the measured phase; each makes
    /// four events (session.started, user.online, session.ended,
    /// user.offline), so 2,500 is 10,000 events/s.
    #[arg(long, default_value_t = 2500.0)]
    pub sessions_per_s: f64,
    /// Pings per second of each pinging client.
    #[arg(long, default_value_t = 10.0)]
    pub client_rate: f64,
    /// Address the healthy receiver listens on (the hub's
    /// PRESENCE_WEBHOOK_URLS lists `http://ADDR/hook`).
    #[arg(long)]
    pub receiver: SocketAddr,
    /// Address of a second receiver that answers every request after
    /// `--slow-delay` (listed in PRESENCE_WEBHOOK_URLS as `http://ADDR/slow`).
    #[arg(long)]
    pub slow_receiver: Option<SocketAddr>,
    /// How long the slow receiver waits before it answers.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub slow_delay: Duration,
    /// A loopback address nothing listens on, listed in
    /// PRESENCE_WEBHOOK_URLS as a dead endpoint; the run checks that it
    /// refuses connections and reports the hub's figures for it.
    #[arg(long)]
    pub dead_endpoint: Option<SocketAddr>,
    /// The hub's PRESENCE_WEBHOOK_SECRET: every request's
    /// X-Presence-Signature is checked with it.
    #[arg(long, env = "PRESENCE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: String,
    /// After the measured phase, how long to wait for events still on
    /// their way before counting the missing ones.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
}

/// Options of `records`. It starts its own hubs (on 127.0.0.1:0), so it
/// takes the binary and the store instead of `--url`.
#[derive(Debug, Args)]
pub struct RecordsArgs {
    /// The `presence-hub` binary (default: `presence-hub` beside this one).
    #[arg(long)]
    pub hub_bin: Option<PathBuf>,
    /// The store under test, as `PRESENCE_DATABASE_URL` (`sqlite://PATH`,
    /// `postgres://...`); it should start empty.
    #[arg(long)]
    pub database_url: String,
    /// Ended sessions to load.
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Sessions per generated history file (one hub start imports each).
    #[arg(long, default_value_t = 1_000_000)]
    pub chunk: u64,
    /// Distinct users.
    #[arg(long, default_value_t = 20_000)]
    pub users: u32,
    /// Distinct organisations.
    #[arg(long, default_value_t = 200)]
    pub orgs: u32,
    /// Days the sessions spread over (the hub keeps 40 days).
    #[arg(long, default_value_t = 35)]
    pub days: u32,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for the generated history files (deleted after import).
    #[arg(long)]
    pub work_dir: PathBuf,
    /// A file or directory whose size is reported as the store's size on
    /// disk (for SQLite also its `-wal`).
    #[arg(long)]
    pub store_path: Option<PathBuf>,
    /// Requests per list query.
    #[arg(long, default_value_t = 200)]
    pub requests: u32,
    /// Requests of `GET /api/v1/stats`.
    #[arg(long, default_value_t = 500)]
    pub stats_requests: u32,
    /// Clients sending queries at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u32,
    /// No new request of one query starts after this long.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub query_budget: Duration,
    /// Sequential runs of each analytics route.
    #[arg(long, default_value_t = 3)]
    pub analytics_runs: u32,
    /// One analytics request fails after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub analytics_timeout: Duration,
    /// The CSV export is read up to this many rows.
    #[arg(long, default_value_t = 2_000_000)]
    pub export_rows: u64,
    /// HTTP-heartbeat sessions ended at once for the live-ingest figure (0: skip).
    #[arg(long, default_value_t = 20_000)]
    pub live_sessions: u64,
    /// Extra hub environment, `KEY=VALUE` (repeatable).
    #[arg(long = "hub-env", value_name = "KEY=VALUE")]
    pub hub_env: Vec<String>,
    /// Write the JSON report to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Exit with status 3 when the report meets this condition, e.g.
    /// `query_p99_max_ms>100`, `stats.p99>20ms`, `errors>0` (repeatable).
    #[arg(long = "fail-if", value_name = "FIELD>VALUE")]
    pub fail_if: Vec<String>,
}
