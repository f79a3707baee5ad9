//! Owns the `presence-loadtest` binary: simulated clients that measure a hub.
//!
//! Code map:
//! - `cli`: the command line (stable interface);
//! - `target`: where traffic goes, and the loopback guard;
//! - `plan`: what each worker runs, split over `--workers`;
//! - `spawn`: runs shares in-process or as child processes;
//! - `worker`: one share's ramp, phases and stopping;
//! - `scenario`: what simulated clients do (hold, rtt, propagation, churn,
//!   mix, rooms, resume, webhooks);
//! - `records`: the records store at scale (it starts its own hubs);
//! - `client`: one WebSocket connection (bind, connect, upgrade, frames);
//! - `stats`, `report`: counters, histograms, merging and the JSON report;
//! - `monitor`: the live progress line and hub RSS sampling;
//! - `rss`, `cpu`, `token`, `failure`: hub memory, hub CPU, JWT minting,
//!   error kinds;
//! - `meta`: the run's parameters, start time and versions in the report;
//! - `threshold`: `--fail-if` and the clients-connected rule (exit 3);
//! - `bench`: the Markdown tables `scripts/bench` writes into the docs.
//!
//! Exit status: 0 the run passed, 1 it could not run, 2 bad usage, 3 it ran
//! but failed a threshold or fewer clients connected than asked for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod cli;
mod client;
mod cpu;
mod failure;
mod meta;
mod monitor;
mod plan;
mod records;
mod report;
mod rss;
mod scenario;
mod spawn;
mod stats;
mod target;
mod threshold;
mod token;
mod worker;

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use tokio::time::Instant;

use crate::cli::{Cli, Command, CommonArgs};
use crate::plan::Scenario;
use crate::target::Target;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Worker => spawn::child_main().await.map(|()| Vec::new()),
        Command::Records(args) => records::run(args).await,
        Command::Table { reports } => bench::print_tables(&reports).map(|()| Vec::new()),
        command => run_command(command).await,
    };
    match outcome {
        Ok(failures) if failures.is_empty() => ExitCode::SUCCESS,
        Ok(failures) => {
            for failure in failures {
                eprintln!("presence-loadtest: failed: {failure}");
            }
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("presence-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Other nodes a scenario talks to besides `--url`.
#[derive(Debug, Default)]
struct Nodes {
    /// Admin stream / admin REST base URL.
    admin: Option<String>,
    /// A second node clients connect to.
    peer: Option<String>,
}

/// Builds the scenario from its subcommand and runs it; returns why the
/// run failed its thresholds (empty when it passed).
async fn run_command(command: Command) -> Result<Vec<String>> {
    let none = Nodes::default;
    let (scenario, common, nodes) = match command {
        Command::Hold(args) => (plan::hold(&args), args.common, none()),
        Command::Rtt(args) => (plan::rtt(&args), args.common, none()),
        Command::Propagation(args) => {
            let nodes = Nodes {
                admin: args.admin_url.clone(),
                peer: None,
            };
            (plan::propagation(&args)?, args.common, nodes)
        }
        Command::Churn(args) => (plan::churn(&args), args.common, none()),
        Command::Mix(args) => (plan::mix(&args)?, args.common, none()),
        Command::Rooms(args) => {
            let nodes = Nodes {
                admin: args.admin_url.clone(),
                peer: args.peer_url.clone(),
            };
            (plan::rooms(&args)?, args.common, nodes)
        }
        Command::Resume(args) => {
            let nodes = Nodes {
                admin: args.admin_url.clone().or_else(|| args.peer_url.clone()),
                peer: args.peer_url.clone(),
            };
            (plan::resume(&args), args.common, nodes)
        }
        Command::Webhooks(args) => (plan::webhooks(&args)?, args.common, none()),
        Command::Worker | Command::Table { .. } | Command::Records(_) => internal_command()?,
    };
    run_scenario(scenario, &common, &nodes).await
}

/// Internal subcommands are dispatched before `run_command`.
fn internal_command() -> Result<(Scenario, CommonArgs, Nodes)> {
    anyhow::bail!("internal subcommands are not scenarios")
}

/// Resolves the target, runs every worker, prints and writes the report;
/// returns the thresholds it failed.
async fn run_scenario(
    scenario: Scenario,
    common: &CommonArgs,
    nodes: &Nodes,
) -> Result<Vec<String>> {
    let thresholds = common
        .fail_if
        .iter()
        .map(|t| threshold::Threshold::parse(t))
        .collect::<Result<Vec<_>>>()?;
    let target = Target::resolve(
        &common.url,
        nodes.admin.as_deref(),
        common.allow_remote,
        common.source_addrs,
    )
    .await?
    .with_peer(nodes.peer.as_deref(), common.allow_remote)
    .await?;
    let name = scenario.name();
    let whole = plan::build(scenario, common, target.clone())?;
    let deadline = Instant::now() + whole.deadline() + std::time::Duration::from_secs(10);
    let run = meta::RunInfo::start(&target).await;
    let rss_before = rss::hub_rss(common.hub_pid, &target).await;
    let (events, _children) = spawn::start(whole.split(common.workers))?;
    let watch = monitor::Watch {
        workers: usize::try_from(common.workers).unwrap_or(1),
        clients_target: common.clients,
        target: &target,
        hub_pid: common.hub_pid,
        deadline,
    };
    let (results, hub) = monitor::watch(&watch, rss_before, events).await?;
    let mut report = report::merge(name, common.clients, &results, hub.rss)?;
    report.hub_cpu_percent = hub.cpu_percent;
    report.run = Some(run);
    print!("{}", report::summary(&report));
    if let Some(path) = &common.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(threshold::failures(
        &serde_json::to_value(&report)?,
        &thresholds,
    ))
}
