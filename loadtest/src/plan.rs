//! Owns the plan: what one worker runs, built from the command line.
//!
//! A plan is plain data (serde) so the parent can hand each child process its
//! share on stdin. It does not run anything.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::cli::{
    ChurnArgs, CommonArgs, DropKind, HoldArgs, MixArgs, PropagationArgs, ResumeArgs, RoomsArgs,
    RttArgs, WebhooksArgs,
};
use crate::target::Target;

/// A scenario and its own parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scenario {
    /// Ramp and hold; optional periodic pings.
    Hold {
        /// Ping period (zero: never).
        ping_interval: Duration,
    },
    /// Closed-loop ping -> pong.
    Rtt {
        /// Cap on pings per second per client (0: none).
        client_rate: f64,
    },
    /// Manual status toggles timed by admin subscribers.
    Propagation {
        /// Time between two changes of one client.
        change_interval: Duration,
        /// Changes per client.
        changes: u32,
        /// Admin subscribers in this worker.
        admins: u32,
    },
    /// Close and reopen connections.
    Churn {
        /// Reconnect cycles this worker runs.
        reconnects: u64,
        /// Reconnects per second for this worker (0: as fast as allowed).
        reconnect_rate: f64,
    },
    /// A blend of client kinds.
    Mix(MixShape),
    /// Room members changing and watching.
    Rooms(RoomsShape),
    /// A drop of every tab and a storm of resumes.
    Resume(ResumeShape),
    /// Short sessions making webhook events, timed by the run's receivers.
    Webhooks(WebhooksShape),
}

/// The shape of the `webhooks` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhooksShape {
    /// Short sessions per second in the measured phase.
    pub sessions_per_s: f64,
    /// Pings per second of each pinging client.
    pub client_rate: f64,
    /// The healthy receiver's address.
    pub receiver: std::net::SocketAddr,
    /// The slow receiver's address, if any.
    pub slow_receiver: Option<std::net::SocketAddr>,
    /// How long the slow receiver takes to answer.
    pub slow_delay: Duration,
    /// The dead endpoint's address, if any.
    pub dead_endpoint: Option<std::net::SocketAddr>,
    /// The hub's webhook secret.
    pub secret: String,
    /// Wait for late events after the measured phase.
    pub settle: Duration,
}

/// How long `--drop hub` waits for the hub to close a socket.
pub const HUB_DROP_WAIT: Duration = Duration::from_secs(60);

/// The shape of the `resume` scenario.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ResumeShape {
    /// Reconnects are spread evenly over this window (not with `Hub`).
    pub storm_window: Duration,
    /// How the tabs drop.
    pub drop: DropKind,
    /// Admin subscribers in this worker.
    pub admins: u32,
}

/// The shape of the `rooms` scenario.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RoomsShape {
    /// Rooms of the run (client i is in room i mod rooms).
    pub rooms: u64,
    /// Member changes per second in each room.
    pub changes_per_s: f64,
    /// Wait after the last change before views are compared.
    pub settle: Duration,
}

/// The proportions and periods of the `mix` scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixShape {
    /// Ping period of active tabs.
    pub ping_interval: Duration,
    /// Percent of active tabs.
    pub active_pct: u8,
    /// Percent of churning clients.
    pub churn_pct: u8,
    /// Reconnect period of churning clients.
    pub churn_interval: Duration,
    /// Percent of HTTP-heartbeat clients.
    pub http_pct: u8,
    /// Heartbeat period of HTTP clients.
    pub heartbeat_interval: Duration,
    /// Admin subscribers in this worker.
    pub admins: u32,
}

impl Scenario {
    /// The scenario's name as used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hold { .. } => "hold",
            Self::Rtt { .. } => "rtt",
            Self::Propagation { .. } => "propagation",
            Self::Churn { .. } => "churn",
            Self::Mix(_) => "mix",
            Self::Rooms(_) => "rooms",
            Self::Resume(_) => "resume",
            Self::Webhooks(_) => "webhooks",
        }
    }
}

/// Everything one worker needs to run its share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// What to run.
    pub scenario: Scenario,
    /// Where to send it.
    pub target: Target,
    /// Prefix of every simulated user id, unique per run.
    pub run_id: String,
    /// Index of this worker (0-based).
    pub worker: u32,
    /// First client index this worker owns.
    pub first_client: u64,
    /// Clients this worker owns.
    pub clients: u64,
    /// Clients of the whole run.
    pub clients_total: u64,
    /// Length of the measured phase.
    pub duration: Duration,
    /// Ramp rate of this worker, connections per second (0: unlimited).
    pub rate: f64,
    /// Handshakes in flight at once.
    pub max_pending: u32,
    /// Give up on one connection attempt after this long.
    pub connect_timeout: Duration,
    /// HS256 secret for JWT mode.
    pub jwt_secret: Option<String>,
}

impl Plan {
    /// The longest this plan can take before a worker must have stopped.
    pub fn deadline(&self) -> Duration {
        let ramp = if self.rate > 0.0 {
            Duration::from_secs_f64(self.clients as f64 / self.rate)
        } else {
            Duration::ZERO
        };
        let steady = match &self.scenario {
            Scenario::Propagation {
                change_interval,
                changes,
                ..
            } => change_interval.saturating_mul(changes.saturating_add(1)),
            Scenario::Rooms(shape) => self.duration + shape.settle + Duration::from_secs(60),
            Scenario::Resume(shape) => {
                let drop_wait = match shape.drop {
                    DropKind::Hub => HUB_DROP_WAIT,
                    DropKind::Eof | DropKind::Close => Duration::ZERO,
                };
                drop_wait + shape.storm_window + self.duration + Duration::from_secs(30)
            }
            Scenario::Webhooks(shape) => {
                self.duration + shape.settle + shape.slow_delay + Duration::from_secs(30)
            }
            _ => self.duration,
        };
        ramp + steady + self.connect_timeout * 2 + Duration::from_secs(15)
    }

    /// The user id of client number `index`.
    pub fn user_id(&self, index: u64) -> String {
        format!("{}-{index}", self.run_id)
    }

    /// Splits this whole-run plan into `workers` contiguous shares.
    pub fn split(&self, workers: u32) -> Vec<Plan> {
        let workers = workers.max(1);
        let k = u64::from(workers);
        (0..workers)
            .map(|w| {
                let w64 = u64::from(w);
                let first = self.clients * w64 / k;
                let end = self.clients * (w64 + 1) / k;
                let mut share = self.clone();
                share.worker = w;
                share.first_client = first;
                share.clients = end - first;
                share.rate = self.rate / k as f64;
                share.scenario = scenario_share(&self.scenario, w64, k);
                share
            })
            .collect()
    }
}

/// The part of a scenario's counted work that worker `w` of `k` does.
fn scenario_share(scenario: &Scenario, w: u64, k: u64) -> Scenario {
    match scenario {
        Scenario::Churn {
            reconnects,
            reconnect_rate,
        } => Scenario::Churn {
            reconnects: reconnects * (w + 1) / k - reconnects * w / k,
            reconnect_rate: reconnect_rate / k as f64,
        },
        other => other.clone(),
    }
}

/// Builds the whole-run plan (before splitting) from parsed options.
pub fn build(scenario: Scenario, common: &CommonArgs, target: Target) -> Result<Plan> {
    if common.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if common.workers == 0 || u64::from(common.workers) > common.clients {
        bail!("--workers must be between 1 and --clients");
    }
    if common.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    Ok(Plan {
        scenario,
        target,
        run_id: run_id(),
        worker: 0,
        first_client: 0,
        clients: common.clients,
        clients_total: common.clients,
        duration: common.duration,
        rate: common.rate.max(0.0),
        max_pending: common.max_pending.max(1),
        connect_timeout: common.connect_timeout,
        jwt_secret: common.jwt_secret.clone(),
    })
}

/// A short id that keeps this run's users apart from other runs'.
fn run_id() -> String {
    format!("lt{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The `hold` scenario from its options.
pub fn hold(args: &HoldArgs) -> Scenario {
    Scenario::Hold {
        ping_interval: args.ping_interval,
    }
}

/// The `rtt` scenario from its options.
pub fn rtt(args: &RttArgs) -> Scenario {
    Scenario::Rtt {
        client_rate: args.client_rate.max(0.0),
    }
}

/// The `propagation` scenario from its options.
pub fn propagation(args: &PropagationArgs) -> Result<Scenario> {
    if args.change_interval.is_zero() {
        bail!("--change-interval must be more than 0");
    }
    let by_duration = args.common.duration.as_nanos() / args.change_interval.as_nanos();
    let changes = args
        .changes
        .unwrap_or_else(|| u32::try_from(by_duration).unwrap_or(u32::MAX).max(1));
    Ok(Scenario::Propagation {
        change_interval: args.change_interval,
        changes,
        admins: args.admins.max(1),
    })
}

/// The `churn` scenario from its options.
pub fn churn(args: &ChurnArgs) -> Scenario {
    Scenario::Churn {
        reconnects: args.reconnects.unwrap_or(args.common.clients),
        reconnect_rate: args.reconnect_rate.max(0.0),
    }
}

/// The `mix` scenario from its options.
pub fn mix(args: &MixArgs) -> Result<Scenario> {
    let total = u32::from(args.active_pct) + u32::from(args.churn_pct) + u32::from(args.http_pct);
    if total > 100 {
        bail!("--active-pct + --churn-pct + --http-pct must not exceed 100");
    }
    Ok(Scenario::Mix(MixShape {
        ping_interval: args.ping_interval,
        active_pct: args.active_pct,
        churn_pct: args.churn_pct,
        churn_interval: args.churn_interval,
        http_pct: args.http_pct,
        heartbeat_interval: args.heartbeat_interval,
        admins: args.admins,
    }))
}

/// The `rooms` scenario from its options.
pub fn rooms(args: &RoomsArgs) -> Result<Scenario> {
    if args.rooms == 0 || args.rooms > args.common.clients {
        bail!("--rooms must be between 1 and --clients");
    }
    if !(args.room_changes_per_s >= 0.0 && args.room_changes_per_s.is_finite()) {
        bail!("--room-changes-per-s must be a number of at least 0");
    }
    Ok(Scenario::Rooms(RoomsShape {
        rooms: args.rooms,
        changes_per_s: args.room_changes_per_s,
        settle: args.settle,
    }))
}

/// The `resume` scenario from its options.
pub fn resume(args: &ResumeArgs) -> Scenario {
    Scenario::Resume(ResumeShape {
        storm_window: args.storm_window,
        drop: args.drop,
        admins: args.admins,
    })
}

/// The `webhooks` scenario from its options.
pub fn webhooks(args: &WebhooksArgs) -> Result<Scenario> {
    if args.common.workers != 1 {
        bail!("webhooks runs in one process (--workers 1): its receiver counts every event");
    }
    if !(args.sessions_per_s > 0.0 && args.sessions_per_s.is_finite()) {
        bail!("--sessions-per-s must be a number above 0");
    }
    if !(args.client_rate > 0.0 && args.client_rate.is_finite()) {
        bail!("--client-rate must be a number above 0");
    }
    let addrs = [Some(args.receiver), args.slow_receiver, args.dead_endpoint];
    if addrs.iter().flatten().any(|a| !a.ip().is_loopback()) {
        bail!("--receiver, --slow-receiver and --dead-endpoint must be loopback addresses");
    }
    if args.webhook_secret.is_empty() {
        bail!("--webhook-secret (PRESENCE_WEBHOOK_SECRET) must not be empty");
    }
    Ok(Scenario::Webhooks(WebhooksShape {
        sessions_per_s: args.sessions_per_s,
        client_rate: args.client_rate,
        receiver: args.receiver,
        slow_receiver: args.slow_receiver,
        slow_delay: args.slow_delay,
        dead_endpoint: args.dead_endpoint,
        secret: args.webhook_secret.clone(),
        settle: args.settle,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Endpoint;

    fn plan(clients: u64) -> Plan {
        let endpoint = Endpoint {
            addr: "127.0.0.1:9".parse().unwrap(),
            authority: "127.0.0.1:9".into(),
            base_path: String::new(),
        };
        Plan {
            scenario: Scenario::Churn {
                reconnects: 10,
                reconnect_rate: 0.0,
            },
            target: Target {
                hub: endpoint.clone(),
                admin: endpoint,
                source_addrs: 1,
                peer: None,
            },
            run_id: "lt".into(),
            worker: 0,
            first_client: 0,
            clients,
            clients_total: clients,
            duration: Duration::from_secs(1),
            rate: 90.0,
            max_pending: 8,
            connect_timeout: Duration::from_secs(1),
            jwt_secret: None,
        }
    }

    #[test]
    fn split_covers_every_client_and_reconnect_once() {
        let shares = plan(10).split(3);
        let clients: Vec<_> = shares.iter().map(|s| (s.first_client, s.clients)).collect();
        assert_eq!(clients, [(0, 3), (3, 3), (6, 4)]);
        let reconnects: u64 = shares
            .iter()
            .map(|s| match s.scenario {
                Scenario::Churn { reconnects, .. } => reconnects,
                _ => 0,
            })
            .sum();
        assert_eq!(reconnects, 10);
        assert!(shares.iter().all(|s| (s.rate - 30.0).abs() < 1e-9));
    }
}
