//! Owns one worker's run: the shared context, the ramp, phases and stopping.
//!
//! A worker runs one plan share in this process. The parent uses it directly
//! for `--workers 1` and through child processes otherwise (see `spawn`).
//! What each simulated client does lives in `scenario`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client::{self, Dial, OwnedFrame, Ws};
use crate::failure::Failure;
use crate::plan::Plan;
use crate::report::WorkerResult;
use crate::scenario;
use crate::stats::{Attempt, Phase, Progress, Stats};
use crate::target::Endpoint;
use crate::token::Minter;

/// How often a worker reports progress.
const TICK: Duration = Duration::from_millis(250);
/// How long closing connections may take at the end.
const DRAIN: Duration = Duration::from_secs(5);

/// Where and how one client connection opens.
#[derive(Debug, Clone, Copy)]
pub struct Open<'a> {
    /// The hub node.
    pub endpoint: &'a Endpoint,
    /// `resume_token` to present (`?resume=`).
    pub resume: Option<&'a str>,
    /// Buffer sizes and limits.
    pub config: WebSocketConfig,
}

impl<'a> Open<'a> {
    /// A fresh session on `endpoint` with a simulated client's buffers.
    pub fn new(endpoint: &'a Endpoint) -> Self {
        Self {
            endpoint,
            resume: None,
            config: client::client_config(),
        }
    }
}

/// What every task of one worker shares.
#[derive(Debug)]
pub struct Ctx {
    /// This worker's share of the run.
    pub plan: Plan,
    /// Counters and histograms.
    pub stats: Stats,
    /// When the worker started.
    pub start: Instant,
    /// Cancelled when the measured phase begins.
    pub go: CancellationToken,
    /// Cancelled when clients must stop.
    pub stop: CancellationToken,
    /// Clients whose first connection attempt is over (either way).
    settled: AtomicU64,
    /// Clients that finished their counted work (propagation, churn).
    pub finished: AtomicU64,
    /// Bounds handshakes in flight.
    pending: Semaphore,
    /// Mints tokens in JWT mode.
    minter: Option<Minter>,
}

impl Ctx {
    /// A context for `plan`.
    pub fn new(plan: Plan) -> Self {
        let lifetime = plan.deadline() + Duration::from_secs(3600);
        let minter = plan.jwt_secret.as_deref().map(|s| Minter::new(s, lifetime));
        let permits = usize::try_from(plan.max_pending).unwrap_or(256);
        Self {
            plan,
            stats: Stats::default(),
            start: Instant::now(),
            go: CancellationToken::new(),
            stop: CancellationToken::new(),
            settled: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            pending: Semaphore::new(permits),
            minter,
        }
    }

    /// Nanoseconds since the worker started (never 0).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Opens a connection for client `index` (absolute) and records it.
    pub async fn connect_client(&self, index: u64, attempt: Attempt) -> Option<Ws> {
        let open = Open::new(&self.plan.target.hub);
        self.open_client(index, &open, attempt)
            .await
            .map(|(ws, _, _)| ws)
    }

    /// Opens a connection as `open` says for client `index` and records it;
    /// returns the socket, its `welcome` and the latency.
    pub async fn open_client(
        &self,
        index: u64,
        open: &Open<'_>,
        attempt: Attempt,
    ) -> Option<(Ws, OwnedFrame, Duration)> {
        let result = self.dial_client(index, open).await;
        if attempt.is_first() {
            self.settle();
        }
        match result {
            Ok((ws, welcome, latency)) => {
                self.stats.connected(latency, attempt);
                Some((ws, welcome, latency))
            }
            Err(failure) => {
                self.stats.fail(&failure);
                None
            }
        }
    }

    /// Dials `/ws` as client `index`; returns the socket, welcome and latency.
    async fn dial_client(
        &self,
        index: u64,
        open: &Open<'_>,
    ) -> Result<(Ws, OwnedFrame, Duration), Failure> {
        let _permit = self.pending.acquire().await.map_err(|_| Failure::Io)?;
        let user = self.plan.user_id(index);
        let (mut query, bearer) = match &self.minter {
            Some(minter) => (
                "app=presence-loadtest".to_owned(),
                Some(minter.client(&user).map_err(|_| Failure::Handshake)?),
            ),
            None => (
                format!("user={user}&name={user}&org=loadtest&app=presence-loadtest"),
                None,
            ),
        };
        if let Some(token) = open.resume {
            query.push_str("&resume=");
            query.extend(url::form_urlencoded::byte_serialize(token.as_bytes()));
        }
        let started = Instant::now();
        let (ws, welcome) = client::dial_first(Dial {
            endpoint: open.endpoint,
            path: "/ws",
            query,
            source: self.plan.target.source_for(index),
            bearer,
            config: open.config,
            first_frame: "welcome",
            timeout: self.plan.connect_timeout,
        })
        .await?;
        Ok((ws, welcome, started.elapsed()))
    }

    /// Marks one client's first attempt as over.
    pub fn settle(&self) {
        self.settled.fetch_add(1, Ordering::Relaxed);
    }

    /// Bearer token for an HTTP client, in JWT mode.
    pub fn http_token(&self, user: &str) -> Option<String> {
        self.minter.as_ref().and_then(|m| m.client(user).ok())
    }

    /// Bearer token for an admin subscriber, in JWT mode.
    pub fn admin_token(&self) -> Result<Option<String>> {
        self.minter
            .as_ref()
            .map(|m| m.admin(&format!("{}-admin", self.plan.run_id)))
            .transpose()
    }

    /// When client `local` (0-based in this worker) may start connecting.
    pub fn ramp_slot(&self, local: u64) -> Instant {
        if self.plan.rate > 0.0 {
            self.start + Duration::from_secs_f64(local as f64 / self.plan.rate)
        } else {
            self.start
        }
    }

    /// Waits until every client's first attempt is over, or the ramp's bound.
    pub async fn ramp_done(&self) {
        let bound = self.ramp_slot(self.plan.clients) + self.plan.connect_timeout * 2;
        while self.settled.load(Ordering::Relaxed) < self.plan.clients && Instant::now() < bound {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `target` clients finished their counted work, or `bound`.
    pub async fn all_finished(&self, target: u64, bound: Instant) {
        while self.finished.load(Ordering::Relaxed) < target && Instant::now() < bound {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                () = self.stop.cancelled() => return,
            }
        }
    }

    /// Starts the measured phase; returns when it began.
    pub fn begin_steady(&self) -> Instant {
        self.stats.set_phase(Phase::Steady);
        self.go.cancel();
        Instant::now()
    }

    /// Sleeps until `at` unless the worker is stopping; false when stopping.
    pub async fn sleep_until(&self, at: Instant) -> bool {
        tokio::select! {
            () = tokio::time::sleep_until(at) => true,
            () = self.stop.cancelled() => false,
        }
    }
}

/// Spawns one task per client of this worker; each waits for its ramp slot.
pub fn spawn_clients<F, Fut>(ctx: &Arc<Ctx>, body: F) -> JoinSet<()>
where
    F: Fn(Arc<Ctx>, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut set = JoinSet::new();
    for local in 0..ctx.plan.clients {
        let slot = ctx.ramp_slot(local);
        let task = body(Arc::clone(ctx), ctx.plan.first_client + local);
        let stop = ctx.stop.clone();
        set.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(slot) => task.await,
                () = stop.cancelled() => {}
            }
        });
    }
    set
}

/// Waits for the ramp, then holds the steady phase for the plan's
/// duration; returns the measured window.
pub async fn hold_steady(ctx: &Ctx) -> Duration {
    ctx.ramp_done().await;
    let began = ctx.begin_steady();
    ctx.sleep_until(began + ctx.plan.duration).await;
    began.elapsed()
}

/// Stops every client and waits (bounded) for them to close.
pub async fn drain(ctx: &Ctx, mut set: JoinSet<()>) {
    ctx.stats.set_phase(Phase::Draining);
    ctx.stop.cancel();
    let joined = tokio::time::timeout(DRAIN, async { while set.join_next().await.is_some() {} });
    if joined.await.is_err() {
        set.abort_all();
    }
}

/// Runs `plan` in this process, sending progress on `progress`.
pub async fn run(plan: Plan, progress: mpsc::Sender<Progress>) -> Result<WorkerResult> {
    let deadline = plan.deadline();
    let ctx = Arc::new(Ctx::new(plan));
    let ticker = tokio::spawn(report_progress(Arc::clone(&ctx), progress));
    let outcome = tokio::time::timeout(deadline, scenario::run(Arc::clone(&ctx))).await;
    ctx.stop.cancel();
    ctx.stats.set_phase(Phase::Done);
    let _ = ticker.await;
    let (measures, window) = outcome
        .context("worker passed its deadline")?
        .context("scenario failed")?;
    WorkerResult::collect(&ctx.stats, measures, window.as_secs_f64())
}

/// Sends a progress snapshot every tick until the worker is done.
async fn report_progress(ctx: Arc<Ctx>, progress: mpsc::Sender<Progress>) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let snapshot = ctx.stats.progress();
        if progress.send(snapshot).await.is_err() || snapshot.phase == Some(Phase::Done) {
            return;
        }
    }
}
