//! Owns the admin subscribers of the `resume` scenario: they read
//! `/admin/ws` (on `--admin-url`, by default the node tabs come back to)
//! and count the `ended` session events and `offline` user events of this
//! worker's tabs while they run (before the drain at the end). A storm of
//! resumes should cause neither.
//!
//! A lost stream is counted as an error and not reopened: events missed
//! while it was down could not be counted anyway.

use std::borrow::Cow;
use std::sync::Arc;

use anyhow::{Result, bail};
use serde::Deserialize;
use tokio::task::JoinSet;

use super::admin;
use crate::client::{self, Ws};
use crate::worker::Ctx;

/// Report counter: `ended` session events of this run's tabs during the storm.
pub const RESUME_ENDED: &str = "resume_ended_events";
/// Report counter: user events with status `offline` during the storm.
pub const RESUME_OFFLINE: &str = "resume_offline_events";

/// The fields of an admin frame counted here.
#[derive(Debug, Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    session: Option<Subject<'a>>,
    #[serde(default, borrow)]
    user: Option<Subject<'a>>,
}

/// A Session's or User's `user_id` and `status`.
#[derive(Debug, Deserialize)]
struct Subject<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
}

/// Connects `admins` subscribers (snapshot read) before any tab.
pub async fn start(ctx: &Arc<Ctx>, admins: u32) -> Result<JoinSet<()>> {
    let mut set = JoinSet::new();
    for _ in 0..admins {
        let ws = match admin::subscribe(ctx).await {
            Ok(ws) => ws,
            Err(failure) => bail!("admin stream did not open: {}", failure.key()),
        };
        set.spawn(count_events(Arc::clone(ctx), ws));
    }
    Ok(set)
}

/// Reads one stream until the worker stops or the stream is lost.
async fn count_events(ctx: Arc<Ctx>, mut ws: Ws) {
    if admin::read_texts(&ctx, &mut ws, |text| on_event(&ctx, text)).await {
        client::close(ws).await;
    }
}

/// Counts an `ended` or `offline` event of one of this worker's tabs.
fn on_event(ctx: &Ctx, text: &str) {
    let Ok(event) = serde_json::from_str::<Event<'_>>(text) else {
        return;
    };
    match (event.kind.as_ref(), event.event.as_deref()) {
        ("session", Some("ended")) if event.session.is_some_and(|s| ours(ctx, &s.user_id)) => {
            ctx.stats.count(RESUME_ENDED, 1);
        }
        ("user", _)
            if event.user.is_some_and(|u| {
                u.status.as_deref() == Some("offline") && ours(ctx, &u.user_id)
            }) =>
        {
            ctx.stats.count(RESUME_OFFLINE, 1);
        }
        _ => {}
    }
}

/// True when `user_id` is one of this worker's tabs.
fn ours(ctx: &Ctx, user_id: &str) -> bool {
    let index = user_id
        .strip_prefix(ctx.plan.run_id.as_str())
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.parse::<u64>().ok());
    index
        .is_some_and(|i| i >= ctx.plan.first_client && i < ctx.plan.first_client + ctx.plan.clients)
}
