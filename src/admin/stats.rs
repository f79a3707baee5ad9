//! Owns `GET /api/v1/stats`, read from the counters the presence map keeps
//! and the history's per-day index; nothing scans every session.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use warp::reply::Reply;

use super::AdminContext;
use crate::http::error::ApiError;
use crate::model::{Day, SessionStatus, format_rfc3339};
use crate::presence::LiveStats;

/// `GET /api/v1/stats`.
pub async fn stats(hub: &AdminContext) -> Result<warp::reply::Response, ApiError> {
    let LiveStats {
        counters,
        online_users,
        peak,
        started_by_day: started_live,
        today,
    } = hub.presence.live_stats().await?;
    let started_ended = hub.history.started_by_day(today - 29).await?;
    let (ended_today, seconds_today) = hub
        .history
        .ended_durations_since(today.saturating_mul(86_400_000))
        .await?;
    let by_status = |status| counters.by_status.get(&status).copied().unwrap_or(0);
    let (active, idle, away) = (
        by_status(SessionStatus::Active),
        by_status(SessionStatus::Idle),
        by_status(SessionStatus::Away),
    );
    let started = |days: i64| {
        started_since(&started_live, today - days + 1)
            + started_since(&started_ended, today - days + 1)
    };
    let body = json!({
        "online_users": online_users,
        "sessions": {"live": active + idle + away, "active": active, "idle": idle, "away": away},
        "by_device_type": non_zero(counters.by_device_type.iter().map(|(k, v)| (k.clone(), *v))),
        "by_node": non_zero(counters.by_node.iter().map(|(k, v)| (k.to_string(), *v))),
        "by_country": non_zero(counters.by_country.iter().map(|(k, v)| (k.clone(), *v))),
        "started": {"today": started(1), "last_7d": started(7), "last_30d": started(30)},
        "peak_online": {"users": peak.users, "at": format_rfc3339(peak.at)},
        "by_org": non_zero(counters.by_org.iter().map(|(k, v)| (k.clone(), *v))),
        "avg_duration_s_today": if ended_today == 0 { 0.0 } else { seconds_today / ended_today as f64 },
    });
    Ok(warp::reply::json(&body).into_response())
}

fn started_since(by_day: &BTreeMap<Day, u64>, first_day: Day) -> u64 {
    by_day.range(first_day..).map(|(_, n)| n).sum()
}

fn non_zero(counts: impl Iterator<Item = (String, usize)>) -> Map<String, Value> {
    counts
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k, Value::from(n)))
        .collect()
}
