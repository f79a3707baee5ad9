//! The analytics as they were first written: each window a pass over
//! every interval, over whole `SessionView`s. Slow, but plain; the tests
//! check the sweep in `windows.rs` and `Spans` against it on random data.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::{
    Day, DurationGroup, GroupBy, HeatMetric, PeakOnline, hour_floor, local_date, percentile,
    round3, start_of_day, weekday_hour,
};
use crate::model::{Millis, SessionView, format_rfc3339};

/// `[weekday Monday..Sunday][hour 0..23]` of `metric` in `tz` over
/// `[from, to)`.
pub(super) fn heatmap(
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
pub(super) fn durations(
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
pub(super) fn daily(
    sessions: &[SessionView],
    tz: Tz,
    from: Millis,
    to: Millis,
    now: Millis,
) -> Vec<Day> {
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
