//! Owns the analytics of contract v1.1 §10 as pure functions over sessions
//! (ended ones from the records store, live ones from the presence map):
//! the 7x24 heatmap, durations by group, and the daily table. Times are
//! bucketed in an IANA zone (chrono-tz). No I/O and no clock: the caller
//! passes the sessions, the range and `now`.
//!
//! Online time is counted per user: the union of a user's sessions, so two
//! tabs open at once count once.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

use crate::model::{Millis, SessionView, format_rfc3339};

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
    sessions: &[SessionView],
    metric: HeatMetric,
    tz: Tz,
    from: Millis,
    to: Millis,
    now: Millis,
) -> [[u64; 24]; 7] {
    let mut cells = [[0_u64; 24]; 7];
    match metric {
        HeatMetric::SessionsStarted => {
            for session in sessions {
                if (from..to).contains(&session.connected_at) {
                    let (day, hour) = weekday_hour(tz, session.connected_at);
                    cells[day][hour] += 1;
                }
            }
        }
        HeatMetric::OnlineUsers => {
            for (start, peak) in hourly_peaks(sessions, tz, from, to, now) {
                let (day, hour) = weekday_hour(tz, start);
                let cell = &mut cells[day][hour];
                *cell = (*cell).max(u64::try_from(peak).unwrap_or(u64::MAX));
            }
        }
    }
    cells
}

/// Durations of the sessions that ended in `[from, to)`, by `group_by`.
pub fn durations(
    sessions: &[SessionView],
    group_by: GroupBy,
    from: Millis,
    to: Millis,
) -> Vec<DurationGroup> {
    let mut groups: BTreeMap<Option<String>, Vec<f64>> = BTreeMap::new();
    for session in sessions {
        let Some(ended_at) = session.ended_at else {
            continue;
        };
        if !(from..to).contains(&ended_at) {
            continue;
        }
        groups
            .entry(group_key(session, group_by))
            .or_default()
            .push(session.duration_s);
    }
    if group_by == GroupBy::None && groups.is_empty() {
        groups.insert(None, Vec::new());
    }
    let mut out: Vec<DurationGroup> = groups
        .into_iter()
        .map(|(key, mut values)| {
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
        })
        .collect();
    out.sort_by(|a, b| b.sessions.cmp(&a.sessions).then(a.key.cmp(&b.key)));
    out
}

/// One row per local date of `tz` from `from` to `to`.
pub fn daily(sessions: &[SessionView], tz: Tz, from: Millis, to: Millis, now: Millis) -> Vec<Day> {
    let mut days = Vec::new();
    let mut date = local_date(tz, from);
    let last = local_date(tz, to.saturating_sub(1).max(from));
    let online = user_intervals(sessions, now);
    while date <= last {
        let start = start_of_day(tz, date).max(from);
        let end = date
            .succ_opt()
            .map_or(to, |next| start_of_day(tz, next))
            .min(to);
        days.push(day_row(sessions, &online, date, start, end));
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    days
}

fn day_row(
    sessions: &[SessionView],
    online: &HashMap<&str, Vec<(Millis, Millis)>>,
    date: NaiveDate,
    start: Millis,
    end: Millis,
) -> Day {
    let sessions_started = sessions
        .iter()
        .filter(|s| (start..end).contains(&s.connected_at))
        .count();
    let mut distinct_users = 0;
    let mut online_ms: i64 = 0;
    for intervals in online.values() {
        let overlap: i64 = intervals
            .iter()
            .map(|(a, b)| (*b).min(end) - (*a).max(start))
            .filter(|ms| *ms > 0)
            .sum();
        if overlap > 0 || intervals.iter().any(|(a, b)| *a < end && *b > start) {
            distinct_users += 1;
        }
        online_ms += overlap;
    }
    let (users, at) = peak_between(online, start, end);
    Day {
        date: date.format("%Y-%m-%d").to_string(),
        sessions_started,
        distinct_users,
        peak_online: PeakOnline {
            users,
            at: at.map(format_rfc3339),
        },
        online_time_s: round3(online_ms as f64 / 1000.0),
    }
}

/// Each user's online intervals: the union of its sessions.
fn user_intervals(sessions: &[SessionView], now: Millis) -> HashMap<&str, Vec<(Millis, Millis)>> {
    let mut by_user: HashMap<&str, Vec<(Millis, Millis)>> = HashMap::new();
    for session in sessions {
        let end = session.ended_at.unwrap_or(now).max(session.connected_at);
        by_user
            .entry(session.user_id.as_str())
            .or_default()
            .push((session.connected_at, end));
    }
    for intervals in by_user.values_mut() {
        intervals.sort_unstable();
        let mut merged: Vec<(Millis, Millis)> = Vec::with_capacity(intervals.len());
        for &(a, b) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *intervals = merged;
    }
    by_user
}

/// The most users online at once within `[start, end)` and when first.
fn peak_between(
    online: &HashMap<&str, Vec<(Millis, Millis)>>,
    start: Millis,
    end: Millis,
) -> (usize, Option<Millis>) {
    let mut events: Vec<(Millis, i32)> = Vec::new();
    for intervals in online.values() {
        for &(a, b) in intervals {
            if a < end && b > start {
                events.push((a.max(start), 1));
                events.push((b.min(end), -1));
            }
        }
    }
    // Ends before starts at the same instant: a reconnect is not a peak.
    events.sort_unstable();
    let (mut current, mut best, mut at) = (0_i64, 0_i64, None);
    for (time, delta) in events {
        current += i64::from(delta);
        if current > best {
            best = current;
            at = Some(time);
        }
    }
    (usize::try_from(best).unwrap_or(0), at)
}

/// The peak of online users in every whole local hour of `[from, to)`.
fn hourly_peaks(
    sessions: &[SessionView],
    tz: Tz,
    from: Millis,
    to: Millis,
    now: Millis,
) -> Vec<(Millis, usize)> {
    let online = user_intervals(sessions, now);
    let mut out = Vec::new();
    let mut hour = hour_floor(tz, from);
    while hour < to {
        let next = hour + 3_600_000;
        let (peak, _) = peak_between(&online, hour.max(from), next.min(to));
        if peak > 0 {
            out.push((hour.max(from), peak));
        }
        hour = next;
    }
    out
}

fn group_key(session: &SessionView, group_by: GroupBy) -> Option<String> {
    match group_by {
        GroupBy::None => None,
        GroupBy::DeviceType => session.device.device_type.clone(),
        GroupBy::Org => session.org.clone(),
        GroupBy::App => session.app.as_ref().and_then(|app| app.name.clone()),
        GroupBy::EndCause => session.end_cause.map(|cause| cause.as_str().to_string()),
    }
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
mod tests;
