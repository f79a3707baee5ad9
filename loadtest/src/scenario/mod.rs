//! Owns the scenarios: what simulated clients do in each, and when a
//! scenario's measured phase ends.
//!
//! Each scenario runs inside one worker and returns what it measured and how
//! long the measured phase lasted. Connection mechanics live in `client` and
//! `tab`; phases and the ramp live in `worker`.

mod admin;
mod churn;
mod heartbeat;
mod hold;
mod mix;
mod propagation;
mod resume;
mod resume_events;
mod room_check;
mod room_view;
mod rooms;
mod rtt;
mod tab;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::plan::Scenario;
use crate::report::Measures;
use crate::worker::Ctx;

/// Runs the worker's scenario; returns what it measures and the measured window.
pub async fn run(ctx: Arc<Ctx>) -> Result<(Measures, Duration)> {
    match ctx.plan.scenario.clone() {
        Scenario::Hold { ping_interval } => hold::run(ctx, ping_interval).await,
        Scenario::Rtt { client_rate } => rtt::run(ctx, client_rate).await,
        Scenario::Propagation {
            change_interval,
            changes,
            admins,
        } => propagation::run(ctx, change_interval, changes, admins).await,
        Scenario::Churn {
            reconnects,
            reconnect_rate,
        } => churn::run(ctx, reconnects, reconnect_rate).await,
        Scenario::Mix(shape) => mix::run(ctx, shape).await,
        Scenario::Rooms(shape) => rooms::run(ctx, shape).await,
        Scenario::Resume(shape) => resume::run(ctx, shape).await,
        Scenario::Webhooks(shape) => webhooks::run(ctx, shape).await,
    }
}
