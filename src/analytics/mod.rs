//! Owns the analytics of contract v1.1 §10 as pure functions over sessions
//! (ended ones from the records store, live ones from the presence map):
//! the 7x24 heatmap, durations by group, and the daily table. Times are
//! bucketed in an IANA zone (chrono-tz). No I/O and no clock: the caller
//! passes the sessions (as `Spans`, a few numbers each), the range and
//! `now`.
//!
//! Online time is counted per user: the union of a user's sessions, so two
//! tabs open at once count once. The online figures of all the hours or
//! days of a range come from one sweep (`windows.rs`).

mod spans;
mod windows;

use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

pub use self::spans::Spans;
use self::windows::{user_intervals, window_figures};
use crate::model::{Millis, format_rfc3339};

/// Which count a heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatMetric {
    /// Sessions started in each hour.
    SessionsStarted,
    /// The hour's peak of distinct online users.
    OnlineUsers,
}

/// How durations are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One group of everything.
    None,
    /// `device.device_type`.
    DeviceType,
    /// `org`.
    Org,
    /// `app.name`.
    App,
    /// `end_cause`.
    EndCause,
}

/// One group of the durations report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationGroup {
    /// The group's key (`null` for a missing value).
    pub key: Option<String>,
    /// Sessions in the group.
    pub sessions: usize,
    /// Mean duration, seconds.
    pub avg_s: f64,
    /// Median, seconds.
    pub p50_s: f64,
    /// 90th percentile, seconds.
    pub p90_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
    /// Sum, seconds.
    pub total_s: f64,
}

/// The most users online at once, and when that was first reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeakOnline {
    /// Users.
    pub users: usize,
    /// When (RFC 3339), null when nobody was online.
    pub at: Option<String>,
}

/// One row of the daily table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// Sessions started that day.
    pub sessions_started: usize,
    /// Users online at some time that day.
    pub distinct_users: usize,
    /// The day's peak of online users.
    pub peak_online: PeakOnline,
    /// Seconds users were online that day (each user's sessions merged).
    pub online_time_s: f64,
}

/// `[weekday Monday..Sunday][hour 0..23]` of `metric` in `tz` over
/// `[from, to)`.
pub fn heatmap(
    spans: &Spans,
    metric: HeatMetric,
    tz: Tz,
    from: Millis,
    to: Millis,
    now: Millis,
) -> [[u64; 24]; 7] {
    let mut cells = [[0_u64; 24]; 7];
    match metric {
        HeatMetric::SessionsStarted => {
            for span in spans.iter() {
                if (from..to).contains(&span.connected_at) {
                    let (day, hour) = weekday_hour(tz, span.connected_at);
                    cells[day][hour] += 1;
                }
            }
        }
        HeatMetric::OnlineUsers => {
            let hours = hours(tz, from, to);
            let figures = window_figures(&user_intervals(spans, now), &hours);
            for (&(start, _), figures) in hours.iter().zip(figures) {
                let (day, hour) = weekday_hour(tz, start);
                let cell = &mut cells[day][hour];
                *cell = (*cell).max(u64::try_from(figures.peak).unwrap_or(u64::MAX));
            }
        }
    }
    cells
}

/// Durations of the sessions that ended in `[from, to)`, by the spans'
/// group.
pub fn durations(spans: &Spans, from: Millis, to: Millis) -> Vec<DurationGroup> {
    let mut by_key: Vec<Vec<f64>> = vec![Vec::new(); spans.key_count()];
    for span in spans.iter() {
        let Some(ended_at) = span.ended_at else {
            continue;
        };
        if (from..to).contains(&ended_at)
            && let Some(values) = by_key.get_mut(span.key as usize)
        {
            values.push(span.duration_s);
        }
    }
    let mut out: Vec<DurationGroup> = by_key
        .into_iter()
        .enumerate()
        .filter(|(_, values)| !values.is_empty())
        .map(|(index, values)| duration_group(spans.key(index), values))
        .collect();
    if spans.group_by() == GroupBy::None && out.is_empty() {
        out.push(duration_group(None, Vec::new()));
    }
    out.sort_by(|a, b| b.sessions.cmp(&a.sessions).then(a.key.cmp(&b.key)));
    out
}

fn duration_group(key: Option<String>, mut values: Vec<f64>) -> DurationGroup {
    values.sort_by(f64::total_cmp);
    let total: f64 = values.iter().sum();
    let count = values.len();
    DurationGroup {
        key,
        sessions: count,
        avg_s: if count == 0 {
            0.0
        } else {
            round3(total / count as f64)
        },
        p50_s: percentile(&values, 50),
        p90_s: percentile(&values, 90),
        p99_s: percentile(&values, 99),
        total_s: round3(total),
    }
}

/// One row per local date of `tz` from `from` to `to`.
pub fn daily(spans: &Spans, tz: Tz, from: Millis, to: Millis, now: Millis) -> Vec<Day> {
    let days = days(tz, from, to);
    let windows: Vec<(Millis, Millis)> = days.iter().map(|&(_, start, end)| (start, end)).collect();
    let figures = window_figures(&user_intervals(spans, now), &windows);
    let started = starts_per_window(spans, &windows);
    days.iter()
        .zip(figures)
        .zip(started)
        .map(|((&(date, _, _), figures), sessions_started)| Day {
            date: date.format("%Y-%m-%d").to_string(),
            sessions_started,
            distinct_users: figures.distinct_users,
            peak_online: PeakOnline {
                users: figures.peak,
                at: figures.peak_at.map(format_rfc3339),
            },
            online_time_s: round3(figures.online_ms as f64 / 1000.0),
        })
        .collect()
}

/// Each local date of `tz` from `from` to `to`, with the part of
/// `[from, to)` it covers.
fn days(tz: Tz, from: Millis, to: Millis) -> Vec<(NaiveDate, Millis, Millis)> {
    let mut days = Vec::new();
    let mut date = local_date(tz, from);
    let last = local_date(tz, to.saturating_sub(1).max(from));
    while date <= last {
        let start = start_of_day(tz, date).max(from);
        let end = date
            .succ_opt()
            .map_or(to, |next| start_of_day(tz, next))
            .min(to);
        days.push((date, start, end));
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    days
}

/// Every local hour of `tz` that meets `[from, to)`, clipped to it.
fn hours(tz: Tz, from: Millis, to: Millis) -> Vec<(Millis, Millis)> {
    let mut hours = Vec::new();
    let mut hour = hour_floor(tz, from);
    while hour < to {
        let next = hour + 3_600_000;
        hours.push((hour.max(from), next.min(to)));
        hour = next;
    }
    hours
}

/// Sessions started in each window (ascending, not overlapping).
fn starts_per_window(spans: &Spans, windows: &[(Millis, Millis)]) -> Vec<usize> {
    let mut started = vec![0; windows.len()];
    for span in spans.iter() {
        let at = span.connected_at;
        let index = windows.partition_point(|&(_, end)| end <= at);
        if windows
            .get(index)
            .is_some_and(|&(start, end)| (start..end).contains(&at))
        {
            started[index] += 1;
        }
    }
    started
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    round3(sorted[rank.min(sorted.len()) - 1])
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn weekday_hour(tz: Tz, at: Millis) -> (usize, usize) {
    tz.timestamp_millis_opt(at)
        .single()
        .map_or((0, 0), |local| {
            (
                local.weekday().num_days_from_monday() as usize,
                local.hour() as usize,
            )
        })
}

fn local_date(tz: Tz, at: Millis) -> NaiveDate {
    match tz.timestamp_millis_opt(at).single() {
        Some(local) => local.date_naive(),
        None => NaiveDate::default(),
    }
}

fn start_of_day(tz: Tz, date: NaiveDate) -> Millis {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or(0, |local| local.timestamp_millis())
}

/// The start of the local hour `at` is in (zones with a half-hour offset
/// have hours that do not start on a UTC hour).
fn hour_floor(tz: Tz, at: Millis) -> Millis {
    tz.timestamp_millis_opt(at).single().map_or(at, |local| {
        let into_hour = i64::from(local.minute()) * 60_000
            + i64::from(local.second()) * 1000
            + i64::from(local.timestamp_subsec_millis());
        at - into_hour
    })
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
