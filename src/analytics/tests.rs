use super::*;
use crate::model::{AppInfo, DeviceInfo, EndCause, NodeId, SessionStatus, SessionView};

const H: Millis = 3_600_000;
/// Monday 2026-11-23 00:00:00 UTC.
const MONDAY: Millis = 1_795_392_000_000;

fn session(user: &str, start: Millis, end: Option<Millis>) -> SessionView {
    SessionView {
        org: Some("acme".into()),
        node_id: NodeId::new("n"),
        status: if end.is_some() {
            SessionStatus::Ended
        } else {
            SessionStatus::Active
        },
        device: DeviceInfo {
            device_type: Some("desktop".into()),
            ..DeviceInfo::default()
        },
        app: Some(AppInfo {
            name: Some("web".into()),
            version: None,
        }),
        ended_at: end,
        end_cause: end.map(|_| EndCause::ClientClosed),
        duration_s: end.map_or(0.0, |e| (e - start) as f64 / 1000.0),
        ..SessionView::sample(user, start)
    }
}

#[test]
fn the_monday_fixture_is_a_monday() {
    assert_eq!(weekday_hour(Tz::UTC, MONDAY), (0, 0));
    assert_eq!(weekday_hour(Tz::UTC, MONDAY + 6 * 24 * H + 23 * H), (6, 23));
}

#[test]
fn starts_are_bucketed_by_local_weekday_and_hour() {
    let sessions = [
        session("a", MONDAY + 9 * H, Some(MONDAY + 10 * H)),
        session("b", MONDAY + 9 * H + 60_000, None),
        session("c", MONDAY - H, Some(MONDAY)),
    ];
    let utc = heatmap(
        &Spans::of(&sessions, GroupBy::None),
        HeatMetric::SessionsStarted,
        Tz::UTC,
        MONDAY,
        MONDAY + 7 * 24 * H,
        MONDAY + 11 * H,
    );
    assert_eq!(utc[0][9], 2);
    assert_eq!(
        utc.iter().flatten().sum::<u64>(),
        2,
        "c started before the range"
    );
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    let local = heatmap(
        &Spans::of(&sessions, GroupBy::None),
        HeatMetric::SessionsStarted,
        tokyo,
        MONDAY,
        MONDAY + 7 * 24 * H,
        MONDAY + 11 * H,
    );
    assert_eq!(local[0][18], 2, "09:00 UTC is 18:00 in Tokyo");
}

#[test]
fn online_users_is_the_hours_peak_of_distinct_users() {
    // alice has two tabs at once (one user), bob overlaps alice's first,
    // carol comes after bob left.
    let sessions = [
        session("alice", MONDAY + 9 * H, Some(MONDAY + 9 * H + 40 * 60_000)),
        session(
            "alice",
            MONDAY + 9 * H + 10 * 60_000,
            Some(MONDAY + 9 * H + 20 * 60_000),
        ),
        session(
            "bob",
            MONDAY + 9 * H + 5 * 60_000,
            Some(MONDAY + 9 * H + 15 * 60_000),
        ),
        session(
            "carol",
            MONDAY + 9 * H + 50 * 60_000,
            Some(MONDAY + 10 * H + 30 * 60_000),
        ),
    ];
    let cells = heatmap(
        &Spans::of(&sessions, GroupBy::None),
        HeatMetric::OnlineUsers,
        Tz::UTC,
        MONDAY,
        MONDAY + 24 * H,
        MONDAY + 24 * H,
    );
    assert_eq!(cells[0][9], 2, "alice and bob at once; carol alone later");
    assert_eq!(cells[0][10], 1);
    assert_eq!(cells[0][11], 0);
}

#[test]
fn durations_group_and_take_nearest_rank_percentiles() {
    let mut sessions: Vec<SessionView> = (1..=10)
        .map(|n| session("u", MONDAY, Some(MONDAY + n * 1000)))
        .collect();
    sessions[0].app = None;
    let all = durations(&Spans::of(&sessions, GroupBy::None), MONDAY, MONDAY + H);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].sessions, 10);
    assert_eq!((all[0].p50_s, all[0].p90_s, all[0].p99_s), (5.0, 9.0, 10.0));
    assert_eq!(all[0].total_s, 55.0);
    assert_eq!(all[0].avg_s, 5.5);
    let by_app = durations(&Spans::of(&sessions, GroupBy::App), MONDAY, MONDAY + H);
    let keys: Vec<Option<&str>> = by_app.iter().map(|g| g.key.as_deref()).collect();
    assert_eq!(
        keys,
        vec![Some("web"), None],
        "a missing app is the key null"
    );
    let none_in_range = durations(
        &Spans::of(&sessions, GroupBy::None),
        MONDAY + H,
        MONDAY + 2 * H,
    );
    assert_eq!(none_in_range[0].sessions, 0);
}

#[test]
fn daily_rows_count_starts_users_peak_and_merged_online_time() {
    let sessions = [
        session("alice", MONDAY + 9 * H, Some(MONDAY + 11 * H)),
        session("alice", MONDAY + 10 * H, Some(MONDAY + 12 * H)),
        session("bob", MONDAY + 10 * H, Some(MONDAY + 10 * H + 30 * 60_000)),
        session("bob", MONDAY + 24 * H + H, None),
    ];
    let days = daily(
        &Spans::of(&sessions, GroupBy::None),
        Tz::UTC,
        MONDAY,
        MONDAY + 2 * 24 * H,
        MONDAY + 24 * H + 2 * H,
    );
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].date, "2026-11-23");
    assert_eq!(days[0].sessions_started, 3);
    assert_eq!(days[0].distinct_users, 2);
    assert_eq!(days[0].peak_online.users, 2);
    assert_eq!(
        days[0].peak_online.at.as_deref(),
        Some("2026-11-23T10:00:00.000Z")
    );
    assert_eq!(
        days[0].online_time_s,
        3.0 * 3600.0 + 1800.0,
        "alice 9-12 merged, bob 30 min"
    );
    assert_eq!(days[1].sessions_started, 1);
    assert_eq!(days[1].online_time_s, 3600.0, "bob live until now");
}

/// A small deterministic generator (xorshift), so a failing case can be
/// replayed from its seed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn random_sessions(random: &mut Random, around: Millis) -> Vec<SessionView> {
    let users = ["a", "b", "c", "d", "e"];
    let count = random.below(40);
    (0..count)
        .map(|_| {
            let user = users[random.below(users.len() as u64) as usize];
            // Starts on whole minutes often, so ends and starts meet.
            let start = around
                + (random.below(4 * 24 * 60) as Millis - 2 * 24 * 60) * 60_000
                + if random.below(2) == 0 {
                    0
                } else {
                    random.below(60_000) as Millis
                };
            let end = match random.below(5) {
                0 => None,
                1 => Some(start),
                2 => Some(start - random.below(3_600_000) as Millis),
                _ => Some(start + random.below(30 * 3_600_000) as Millis),
            };
            let mut view = session(user, start, end);
            view.app = match random.below(3) {
                0 => None,
                n => Some(AppInfo {
                    name: Some(format!("app{n}")),
                    version: None,
                }),
            };
            view
        })
        .collect()
}

#[test]
fn the_sweep_gives_what_one_pass_per_window_gave() {
    let zones: [Tz; 3] = [
        Tz::UTC,
        "Asia/Kolkata".parse().unwrap(),
        "America/New_York".parse().unwrap(),
    ];
    for seed in 1..=300_u64 {
        let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let sessions = random_sessions(&mut random, MONDAY);
        let tz = zones[random.below(3) as usize];
        let from = MONDAY + (random.below(48 * 60) as Millis - 24 * 60) * 60_000;
        let to = from + random.below(4 * 24 * 60) as Millis * 60_000;
        let now = from + random.below(5 * 24 * 3_600) as Millis * 1000;
        for group_by in [GroupBy::None, GroupBy::App, GroupBy::EndCause] {
            let spans = Spans::of(&sessions, group_by);
            assert_eq!(
                durations(&spans, from, to),
                reference::durations(&sessions, group_by, from, to),
                "seed {seed}"
            );
        }
        let spans = Spans::of(&sessions, GroupBy::None);
        for metric in [HeatMetric::SessionsStarted, HeatMetric::OnlineUsers] {
            assert_eq!(
                heatmap(&spans, metric, tz, from, to, now),
                reference::heatmap(&sessions, metric, tz, from, to, now),
                "seed {seed} {metric:?}"
            );
        }
        assert_eq!(
            daily(&spans, tz, from, to, now),
            reference::daily(&sessions, tz, from, to, now),
            "seed {seed}"
        );
    }
}
