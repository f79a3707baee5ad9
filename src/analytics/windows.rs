//! Owns the online figures of consecutive time windows (the hours of a
//! heatmap, the days of the daily table), computed in one sweep over
//! every user's merged online intervals, however many windows there are.
//!
//! For a window `[start, end)`: the peak of users online at once and when
//! it was first reached (an end and a start at the same instant are a
//! reconnect, not a peak), the online time (the integral of the users
//! online over the window) and the distinct users whose online time
//! overlaps it.

use super::spans::Spans;
use crate::model::Millis;

/// What one window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct WindowFigures {
    pub peak: usize,
    pub peak_at: Option<Millis>,
    pub online_ms: i64,
    pub distinct_users: usize,
}

/// Each user's online intervals: the union of its sessions (a live one
/// lasts until `now`), sorted and disjoint. Indexed by interned user.
pub(super) fn user_intervals(spans: &Spans, now: Millis) -> Vec<Vec<(Millis, Millis)>> {
    let mut by_user: Vec<Vec<(Millis, Millis)>> = vec![Vec::new(); spans.user_count()];
    for span in spans.iter() {
        let end = span.ended_at.unwrap_or(now).max(span.connected_at);
        if let Some(intervals) = by_user.get_mut(span.user as usize) {
            intervals.push((span.connected_at, end));
        }
    }
    for intervals in &mut by_user {
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

/// The figures of each of `windows` (ascending, not overlapping).
pub(super) fn window_figures(
    online: &[Vec<(Millis, Millis)>],
    windows: &[(Millis, Millis)],
) -> Vec<WindowFigures> {
    let mut figures = sweep(&edges(online), windows);
    count_distinct_users(online, windows, &mut figures);
    figures
}

/// Every interval's start (+1) and end (-1), ends first at one instant.
/// An empty interval changes no figure, so it has no edges.
fn edges(online: &[Vec<(Millis, Millis)>]) -> Vec<(Millis, i64)> {
    let mut edges: Vec<(Millis, i64)> = online
        .iter()
        .flatten()
        .filter(|(a, b)| b > a)
        .flat_map(|&(a, b)| [(a, 1), (b, -1)])
        .collect();
    edges.sort_unstable();
    edges
}

/// Peak, when, and online time of each window, walking the edges once.
fn sweep(edges: &[(Millis, i64)], windows: &[(Millis, Millis)]) -> Vec<WindowFigures> {
    let mut figures = Vec::with_capacity(windows.len());
    let (mut next, mut online) = (0_usize, 0_i64);
    for &(start, end) in windows {
        if next > 0 && edges[next - 1].0 > start {
            // Not after the previous window: start over.
            (next, online) = (0, 0);
        }
        while let Some(&(_, delta)) = edges.get(next).filter(|(at, _)| *at <= start) {
            online += delta;
            next += 1;
        }
        if end <= start {
            figures.push(WindowFigures::default());
            continue;
        }
        let (mut peak, mut peak_at) = (online, (online > 0).then_some(start));
        let (mut since, mut online_ms) = (start, 0_i64);
        while let Some(&(at, delta)) = edges.get(next).filter(|(at, _)| *at < end) {
            online_ms += online * (at - since);
            since = at;
            online += delta;
            next += 1;
            if online > peak {
                (peak, peak_at) = (online, Some(at));
            }
        }
        online_ms += online * (end - since);
        figures.push(WindowFigures {
            peak: usize::try_from(peak).unwrap_or(0),
            peak_at,
            online_ms,
            distinct_users: 0,
        });
    }
    figures
}

/// Adds to each window the users with an interval that overlaps it.
fn count_distinct_users(
    online: &[Vec<(Millis, Millis)>],
    windows: &[(Millis, Millis)],
    figures: &mut [WindowFigures],
) {
    let mut counted_for: Vec<usize> = vec![usize::MAX; windows.len()];
    for (user, intervals) in online.iter().enumerate() {
        for &(a, b) in intervals {
            let first = windows.partition_point(|&(_, end)| end <= a);
            for (index, &(start, end)) in windows.iter().enumerate().skip(first) {
                if start >= b {
                    break;
                }
                if a < end && b > start && counted_for[index] != user {
                    counted_for[index] = user;
                    figures[index].distinct_users += 1;
                }
            }
        }
    }
}
