//! Owns running worker shares: in this process for one worker, as child
//! processes of this same binary (hidden `worker` subcommand) for several.
//!
//! A child reads its plan as JSON on stdin (so a JWT secret never shows in
//! `ps`) and writes JSON lines on stdout: progress ticks, then its result.
//! Every worker's events reach the parent on one bounded channel.

use std::process::Stdio;

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::plan::Plan;
use crate::report::WorkerResult;
use crate::stats::Progress;
use crate::worker;

/// One line a child writes on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// A progress tick.
    Progress(Progress),
    /// The final result.
    Result(WorkerResult),
    /// The worker failed.
    Error(String),
}

/// What the parent hears from worker `usize`.
#[derive(Debug)]
pub enum Event {
    /// A progress tick.
    Progress(usize, Progress),
    /// The worker finished.
    Finished(usize, Result<WorkerResult>),
}

/// Starts every share; events arrive on the returned channel. The returned
/// children are killed when dropped.
pub fn start(plans: Vec<Plan>) -> Result<(mpsc::Receiver<Event>, Vec<Child>)> {
    let (events, rx) = mpsc::channel(1024);
    if let [plan] = plans.as_slice() {
        tokio::spawn(run_in_process(plan.clone(), events));
        return Ok((rx, Vec::new()));
    }
    let mut children = Vec::new();
    for (index, plan) in plans.into_iter().enumerate() {
        children.push(spawn_child(index, &plan, events.clone())?);
    }
    Ok((rx, children))
}

/// Runs one share here, forwarding its progress.
async fn run_in_process(plan: Plan, events: mpsc::Sender<Event>) {
    let (progress, mut ticks) = mpsc::channel(64);
    let forward = {
        let events = events.clone();
        tokio::spawn(async move {
            while let Some(tick) = ticks.recv().await {
                let _ = events.send(Event::Progress(0, tick)).await;
            }
        })
    };
    let result = worker::run(plan, progress).await;
    let _ = forward.await;
    let _ = events.send(Event::Finished(0, result)).await;
}

/// Spawns a child worker and a task that reads its stdout.
fn spawn_child(index: usize, plan: &Plan, events: mpsc::Sender<Event>) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut child = Command::new(exe)
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot spawn worker process")?;
    let plan_json = serde_json::to_vec(plan)?;
    let mut stdin = child.stdin.take().context("worker has no stdin")?;
    let stdout = child.stdout.take().context("worker has no stdout")?;
    tokio::spawn(async move {
        let sent = stdin.write_all(&plan_json).await;
        drop(stdin); // closing the pipe is the child's end of input
        let result = match sent {
            Ok(()) => read_child(index, stdout, &events).await,
            Err(e) => Err(anyhow!("cannot send plan to worker {index}: {e}")),
        };
        let _ = events.send(Event::Finished(index, result)).await;
    });
    Ok(child)
}

/// Forwards a child's progress lines; returns its result line.
async fn read_child(
    index: usize,
    stdout: tokio::process::ChildStdout,
    events: &mpsc::Sender<Event>,
) -> Result<WorkerResult> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Progress(tick)) => {
                let _ = events.send(Event::Progress(index, tick)).await;
            }
            Ok(Line::Result(result)) => return Ok(result),
            Ok(Line::Error(message)) => return Err(anyhow!("worker {index}: {message}")),
            Err(e) => return Err(anyhow!("worker {index} wrote an unreadable line: {e}")),
        }
    }
    Err(anyhow!("worker {index} exited without a result"))
}

/// The hidden `worker` subcommand: plan on stdin, JSON lines on stdout.
pub async fn child_main() -> Result<()> {
    let mut input = String::new();
    tokio::io::stdin()
        .read_to_string(&mut input)
        .await
        .context("cannot read plan from stdin")?;
    let plan: Plan = serde_json::from_str(&input).context("plan on stdin is not valid")?;
    let (progress, mut ticks) = mpsc::channel(64);
    let printer = tokio::spawn(async move {
        while let Some(tick) = ticks.recv().await {
            if print_line(&Line::Progress(tick)).await.is_err() {
                return;
            }
        }
    });
    let result = worker::run(plan, progress).await;
    let _ = printer.await;
    let line = match result {
        Ok(result) => Line::Result(result),
        Err(e) => Line::Error(format!("{e:#}")),
    };
    print_line(&line).await
}

/// Writes one JSON line to stdout.
async fn print_line(line: &Line) -> Result<()> {
    let mut bytes = serde_json::to_vec(line)?;
    bytes.push(b'\n');
    let mut stdout = tokio::io::stdout();
    stdout.write_all(&bytes).await?;
    stdout.flush().await?;
    Ok(())
}
