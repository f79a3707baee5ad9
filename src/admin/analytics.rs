//! Owns the analytics routes (contract v1.1 §10): `GET
//! /api/v1/analytics/heatmap`, `/durations` and `/daily`. Parameters are
//! checked here (400 naming `from`, `to`, `tz`, `metric` or `group_by`);
//! the sessions come from the records store and the presence map, and the
//! numbers from `crate::analytics`.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde_json::json;
use warp::reply::Reply;

use super::AdminContext;
use super::query::{parse_pairs, text, time};
use crate::analytics::{self, GroupBy, HeatMetric, Spans};
use crate::http::error::ApiError;
use crate::model::time::now_millis;
use crate::model::{Millis, SessionFilter, format_rfc3339};

/// The default range: the last 7 days.
const DEFAULT_RANGE_MS: Millis = 7 * 24 * 3_600_000;
/// Ended sessions read from the store per batch.
const BATCH: usize = 1_000;

/// What every analytics route takes.
struct Range {
    from: Millis,
    to: Millis,
    tz: Tz,
}

/// `GET /api/v1/analytics/heatmap?from=&to=&tz=&metric=`.
pub async fn heatmap(hub: &AdminContext, query: &str) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let range = range(&pairs)?;
    let (metric, name) = match text(&pairs, "metric").as_deref() {
        None | Some("sessions_started") => (HeatMetric::SessionsStarted, "sessions_started"),
        Some("online_users") => (HeatMetric::OnlineUsers, "online_users"),
        Some(other) => {
            return Err(ApiError::bad_parameter(
                "metric",
                format!("{other:?} is not sessions_started or online_users"),
            ));
        }
    };
    let spans = spans_overlapping(hub, &range, GroupBy::None).await?;
    let cells = analytics::heatmap(&spans, metric, range.tz, range.from, range.to, now_millis());
    Ok(warp::reply::json(&json!({
        "metric": name,
        "tz": range.tz.name(),
        "from": format_rfc3339(range.from),
        "to": format_rfc3339(range.to),
        "cells": cells,
    }))
    .into_response())
}

/// `GET /api/v1/analytics/durations?from=&to=&group_by=`.
pub async fn durations(hub: &AdminContext, query: &str) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let range = range(&pairs)?;
    let (group_by, name) = match text(&pairs, "group_by").as_deref() {
        None | Some("none") => (GroupBy::None, "none"),
        Some("device_type") => (GroupBy::DeviceType, "device_type"),
        Some("org") => (GroupBy::Org, "org"),
        Some("app") => (GroupBy::App, "app"),
        Some("end_cause") => (GroupBy::EndCause, "end_cause"),
        Some(other) => {
            return Err(ApiError::bad_parameter(
                "group_by",
                format!("{other:?} is not one of none, device_type, org, app, end_cause"),
            ));
        }
    };
    let spans = spans_overlapping(hub, &range, group_by).await?;
    let groups = analytics::durations(&spans, range.from, range.to);
    Ok(warp::reply::json(&json!({"group_by": name, "groups": groups})).into_response())
}

/// `GET /api/v1/analytics/daily?from=&to=&tz=`.
pub async fn daily(hub: &AdminContext, query: &str) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let range = range(&pairs)?;
    let spans = spans_overlapping(hub, &range, GroupBy::None).await?;
    let days = analytics::daily(&spans, range.tz, range.from, range.to, now_millis());
    Ok(warp::reply::json(&json!({"tz": range.tz.name(), "days": days})).into_response())
}

/// `from`, `to` (default the last 7 days) and `tz` (default UTC).
fn range(pairs: &HashMap<String, String>) -> Result<Range, ApiError> {
    let now = now_millis();
    let to = time(pairs, "to")?.unwrap_or(now);
    let from = time(pairs, "from")?.unwrap_or(to - DEFAULT_RANGE_MS);
    if from > to {
        return Err(ApiError::bad_parameter("to", "must not be before from"));
    }
    let tz = match text(pairs, "tz") {
        None => Tz::UTC,
        Some(name) => name.parse::<Tz>().map_err(|_| {
            ApiError::bad_parameter("tz", format!("{name:?} is not an IANA time zone name"))
        })?,
    };
    Ok(Range { from, to, tz })
}

/// Every session that can overlap the range, as spans grouped by
/// `group_by`: started before `to`, and live or ended (or started) at or
/// after `from`. Ended ones come from the records store (read in batches,
/// each kept only as spans), live ones from the presence map. A session
/// that ended before `from` adds nothing to any figure, so it is not read.
async fn spans_overlapping(
    hub: &AdminContext,
    range: &Range,
    group_by: GroupBy,
) -> Result<Spans, ApiError> {
    let filter = SessionFilter {
        to: Some(range.to),
        active_since: Some(range.from),
        ..SessionFilter::default()
    };
    let mut spans = Spans::of(&hub.presence.live_sessions(filter.clone()).await?, group_by);
    let mut cursor = 0;
    loop {
        let (batch, next) = hub.history.scan(filter.clone(), cursor, BATCH).await?;
        for session in &batch {
            spans.add(session);
        }
        match next {
            Some(next) => cursor = next,
            None => return Ok(spans),
        }
    }
}
