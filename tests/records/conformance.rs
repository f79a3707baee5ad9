//! The `HistoryStore` conformance suite: what every store must do, written
//! once against the trait and run against each implementation by
//! `stores.rs` (as centrifuge runs one suite against its memory and Redis
//! brokers). Each function gets a fresh, empty backend.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use presence_hub::history::{HistoryStore, SessionFilter};
use presence_hub::model::{
    AppInfo, DeviceInfo, EndCause, MetaCriterion, Millis, NodeId, SessionId, SessionStatus,
    SessionView, Transport, UserId,
};

/// Where a store under test lives.
pub trait Backend: Send + Sync {
    /// Opens the store at this backend's location; opened again after the
    /// last one was dropped, it holds the same records if it `persists`.
    fn open(&self) -> BoxFuture<'_, Arc<dyn HistoryStore>>;
    /// Whether records survive reopening.
    fn persists(&self) -> bool;
    /// Whether the timelines of ended sessions are kept (all but Redis,
    /// which keeps the Session JSON only).
    fn keeps_timelines(&self) -> bool {
        true
    }
    /// Whether daily peaks are kept (the SQL stores).
    fn keeps_peaks(&self) -> bool {
        false
    }
    /// Whether the online series survives reopening (all that persist but
    /// the memory store's file, which holds sessions only).
    fn series_persists(&self) -> bool {
        self.persists()
    }
    /// Whether a webhook outbox is kept (the SQL stores).
    fn keeps_outbox(&self) -> bool {
        false
    }
}

/// 2026-11-02T00:00:00Z: every test time is after it.
pub const BASE: Millis = 1_793_577_600_000;
const DAY: Millis = 86_400_000;

/// An ended session of `user` that started `at` ms after `BASE` and lasted
/// `lasted` ms.
pub fn ended(user: &str, at: Millis, lasted: Millis) -> SessionView {
    let connected_at = BASE + at;
    let ended_at = connected_at + lasted;
    SessionView {
        session_id: SessionId::generate(),
        user_id: UserId::parse(user).unwrap(),
        name: Some(format!("{user} Name")),
        org: Some("acme".into()),
        email: None,
        team: None,
        node_id: NodeId::new("node-a"),
        transport: Transport::Ws,
        status: SessionStatus::Ended,
        manual: None,
        connected_at,
        last_activity: connected_at + lasted / 2,
        page: Some("/inbox".into()),
        ip: Some("10.1.2.3".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".into()),
        device: DeviceInfo {
            platform: Some("Linux".into()),
            device_type: Some("desktop".into()),
            browser: Some("Firefox".into()),
        },
        app: Some(AppInfo {
            name: Some("web".into()),
            version: Some("2.3.0".into()),
        }),
        meta: serde_json::json!({"plan": "pro", "seats": 3})
            .as_object()
            .cloned(),
        ended_at: Some(ended_at),
        end_cause: Some(EndCause::ClientClosed),
        duration_s: lasted as f64 / 1000.0,
        location: None,
        reconnecting: false,
        rooms: Vec::new(),
        traffic: presence_hub::model::Traffic {
            msgs_in: 12,
            msgs_out: 14,
            bytes_in: 900,
            bytes_out: 1_400,
        },
        rtt_ms: Some(12.345),
        timeline: None,
    }
}

fn filter() -> SessionFilter {
    SessionFilter::default()
}

async fn record_all(store: &dyn HistoryStore, sessions: &[SessionView]) {
    for session in sessions {
        store.record(session.clone()).await.unwrap();
    }
}

fn ids(sessions: &[SessionView]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.session_id).collect()
}

pub async fn recording_is_idempotent_per_id(backend: &dyn Backend) {
    let store = backend.open().await;
    let first = ended("alice", 1_000, 5_000);
    let second = ended("bob", 2_000, 5_000);
    store.record(first.clone()).await.unwrap();
    store.record(first.clone()).await.unwrap();
    store
        .record_batch(&[first.clone(), second.clone(), second.clone()])
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(store.find(filter(), 10).await.unwrap().total, 2);
}

pub async fn get_returns_exactly_what_was_recorded(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut full = ended("alice", 1_000, 61_500);
    full.manual = None;
    let mut sparse = ended("bob", 2_000, 1_000);
    sparse.name = None;
    sparse.org = None;
    sparse.ip = None;
    sparse.user_agent = None;
    sparse.page = None;
    sparse.app = None;
    sparse.meta = None;
    sparse.device = DeviceInfo::default();
    sparse.transport = Transport::Http;
    sparse.end_cause = Some(EndCause::Timeout);
    record_all(store.as_ref(), &[full.clone(), sparse.clone()]).await;
    assert_eq!(store.get(full.session_id).await.unwrap(), Some(full));
    assert_eq!(store.get(sparse.session_id).await.unwrap(), Some(sparse));
    assert_eq!(store.get(SessionId::generate()).await.unwrap(), None);
}

pub async fn find_filters_on_every_field(backend: &dyn Backend) {
    let store = backend.open().await;
    let alice = ended("alice", 1_000, 1_000);
    let mut bob = ended("bob", 2_000, 1_000);
    bob.org = Some("globex".into());
    bob.node_id = NodeId::new("node-b");
    let mut carol = ended("carol", 3_000, 1_000);
    carol.org = None;
    record_all(store.as_ref(), &[alice.clone(), bob.clone(), carol.clone()]).await;
    let found = |filter: SessionFilter| {
        let store = store.clone();
        async move {
            let page = store.find(filter, 10).await.unwrap();
            assert_eq!(page.total, page.sessions.len());
            ids(&page.sessions)
        }
    };
    let by = |f: fn(&mut SessionFilter)| {
        let mut filter = filter();
        f(&mut filter);
        filter
    };
    assert_eq!(
        found(by(|f| f.user_id = Some("bob".into()))).await,
        vec![bob.session_id]
    );
    assert_eq!(
        found(by(|f| f.org = Some("acme".into()))).await,
        vec![alice.session_id]
    );
    assert_eq!(
        found(by(|f| f.node_id = Some("node-a".into()))).await,
        vec![carol.session_id, alice.session_id]
    );
    assert_eq!(found(by(|f| f.user_id = Some("dave".into()))).await, []);
    assert_eq!(
        found(by(|f| f.user_id = Some("Bob".into()))).await,
        [],
        "user_id matches exactly"
    );
    // `from` is inclusive, `to` exclusive, both on connected_at.
    let mut range = filter();
    range.from = Some(BASE + 2_000);
    range.to = Some(BASE + 3_000);
    assert_eq!(found(range).await, vec![bob.session_id]);
    let mut from = filter();
    from.from = Some(BASE + 2_001);
    assert_eq!(found(from).await, vec![carol.session_id]);
    let mut to = filter();
    to.to = Some(BASE + 2_000);
    assert_eq!(found(to).await, vec![alice.session_id]);
    let mut all = filter();
    all.user_id = Some("bob".into());
    all.org = Some("globex".into());
    all.node_id = Some("node-b".into());
    all.q = Some("bob".into());
    all.from = Some(BASE);
    all.to = Some(BASE + DAY);
    assert_eq!(found(all.clone()).await, vec![bob.session_id]);
    all.node_id = Some("node-a".into());
    assert_eq!(found(all).await, [], "every criterion must hold");
}

pub async fn q_is_a_case_insensitive_substring_of_user_name_ip_or_id(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut alice = ended("Alice.Smith", 1_000, 1_000);
    alice.name = Some("Alice SMITH".into());
    alice.ip = Some("192.168.7.20".into());
    let mut bob = ended("bob", 2_000, 1_000);
    bob.name = Some("Robert 100%_done \"quoted\"".into());
    bob.ip = Some("10.0.0.9".into());
    record_all(store.as_ref(), &[alice.clone(), bob.clone()]).await;
    let q = |text: &str| {
        let store = store.clone();
        let text = text.to_lowercase();
        async move {
            let mut filter = filter();
            filter.q = Some(text);
            ids(&store.find(filter, 10).await.unwrap().sessions)
        }
    };
    let alice_only = vec![alice.session_id];
    let bob_only = vec![bob.session_id];
    assert_eq!(q("alice.s").await, alice_only, "user_id, any case");
    assert_eq!(q("SMITH").await, alice_only, "name");
    assert_eq!(q("168.7").await, alice_only, "ip");
    let id = alice.session_id.to_string();
    assert_eq!(q(&id[4..16]).await, alice_only, "session id");
    assert_eq!(q("ce s").await, alice_only, "spaces are part of it");
    assert_eq!(q("ob").await, bob_only, "two characters");
    assert_eq!(q("x").await, [], "one character, no match");
    assert_eq!(q("100%_").await, bob_only, "% and _ are literal");
    assert_eq!(q("0%d").await, [], "% matches only itself");
    assert_eq!(q("\"quoted\"").await, bob_only, "quotes are literal");
    assert_eq!(q("smith 192").await, [], "no match across fields");
    assert_eq!(q("nobody").await, []);
    let both = q("").await;
    assert_eq!(both.len(), 2, "an empty q matches everything");
}

pub async fn email_and_team_match_exactly_and_are_searched_by_q(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut alice = ended("alice", 1_000, 1_000);
    alice.email = Some("alice@acme.test".into());
    alice.team = Some("Platform".into());
    let mut bob = ended("bob", 2_000, 1_000);
    bob.email = Some("bob@globex.test".into());
    bob.team = Some("platform".into());
    let carol = ended("carol", 3_000, 1_000);
    record_all(store.as_ref(), &[alice.clone(), bob.clone(), carol.clone()]).await;
    let found = |f: fn(&mut SessionFilter)| {
        let store = store.clone();
        let mut filter = filter();
        f(&mut filter);
        async move { ids(&store.find(filter, 10).await.unwrap().sessions) }
    };
    assert_eq!(
        found(|f| f.email = Some("alice@acme.test".into())).await,
        vec![alice.session_id]
    );
    assert_eq!(found(|f| f.email = Some("alice@acme".into())).await, []);
    assert_eq!(
        found(|f| f.team = Some("platform".into())).await,
        vec![bob.session_id],
        "team matches exactly, case included"
    );
    assert_eq!(
        found(|f| f.q = Some("globex".into())).await,
        vec![bob.session_id],
        "q searches email"
    );
    assert_eq!(
        found(|f| f.q = Some("platf".into())).await,
        vec![bob.session_id, alice.session_id],
        "q searches team, any case"
    );
    let read = store.get(alice.session_id).await.unwrap().unwrap();
    assert_eq!(
        (read.email.as_deref(), read.team.as_deref()),
        (Some("alice@acme.test"), Some("Platform"))
    );
    let read = store.get(carol.session_id).await.unwrap().unwrap();
    assert_eq!((read.email, read.team), (None, None));
}

pub async fn meta_criteria_match_strings_numbers_and_booleans(backend: &dyn Backend) {
    let store = backend.open().await;
    let with = |user: &str, at: Millis, meta: serde_json::Value| {
        let mut session = ended(user, at, 1_000);
        session.meta = meta.as_object().cloned();
        session
    };
    let a = with(
        "a",
        1_000,
        serde_json::json!({"plan": "pro", "seats": 3, "trial": false, "tier.x": "1"}),
    );
    let b = with(
        "b",
        2_000,
        serde_json::json!({"plan": "Pro", "seats": 3.0, "trial": true}),
    );
    let c = with(
        "c",
        3_000,
        serde_json::json!({"plan": "3", "seats": "3", "nested": {"plan": "pro"}}),
    );
    let mut d = ended("d", 4_000, 1_000);
    d.meta = None;
    record_all(store.as_ref(), &[a.clone(), b.clone(), c.clone(), d]).await;
    let found = |criteria: &[(&str, &str)]| {
        let store = store.clone();
        let mut filter = filter();
        filter.meta = criteria
            .iter()
            .map(|(key, value)| MetaCriterion {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect();
        async move { ids(&store.find(filter, 10).await.unwrap().sessions) }
    };
    assert_eq!(
        found(&[("plan", "pro")]).await,
        vec![a.session_id],
        "strings exactly, case included"
    );
    assert_eq!(
        found(&[("seats", "3")]).await,
        vec![c.session_id, b.session_id, a.session_id],
        "the string \"3\" or the number 3 (3.0 too)"
    );
    assert_eq!(
        found(&[("seats", "3.0")]).await,
        vec![b.session_id, a.session_id]
    );
    assert_eq!(found(&[("trial", "false")]).await, vec![a.session_id]);
    assert_eq!(found(&[("trial", "true")]).await, vec![b.session_id]);
    assert_eq!(found(&[("plan", "3")]).await, vec![c.session_id]);
    assert_eq!(
        found(&[("tier.x", "1")]).await,
        vec![a.session_id],
        "a dot is part of the key"
    );
    assert_eq!(found(&[("nested", "pro")]).await, [], "objects never match");
    assert_eq!(found(&[("missing", "pro")]).await, []);
    assert_eq!(
        found(&[("seats", "3"), ("trial", "true")]).await,
        vec![b.session_id],
        "criteria are ANDed"
    );
    let mut scan = filter();
    scan.meta = vec![MetaCriterion {
        key: "seats".into(),
        value: "3".into(),
    }];
    let (batch, _) = store.scan(scan, 0, 10).await.unwrap();
    assert_eq!(batch.len(), 3, "scans filter on meta too");
}

pub async fn ended_durations_since_counts_by_end_time(backend: &dyn Backend) {
    let store = backend.open().await;
    // Ends at +2s, +5s and +11s.
    let sessions = [
        ended("a", 1_000, 1_000),
        ended("b", 1_000, 4_000),
        ended("c", 3_000, 8_000),
    ];
    record_all(store.as_ref(), &sessions).await;
    assert_eq!(store.ended_durations_since(BASE).await.unwrap(), (3, 13.0));
    assert_eq!(
        store.ended_durations_since(BASE + 5_000).await.unwrap(),
        (2, 12.0),
        "ended_at equal to since counts; connected_at does not matter"
    );
    assert_eq!(
        store.ended_durations_since(BASE + 11_001).await.unwrap(),
        (0, 0.0)
    );
}

pub async fn timelines_are_kept_with_ended_sessions(backend: &dyn Backend) {
    use presence_hub::model::timeline::{Timeline, TimelineEntry, TimelineKind};
    let store = backend.open().await;
    let mut timeline = Timeline::with_limit(2);
    for (i, page) in ["/a", "/b", "/c"].into_iter().enumerate() {
        timeline.push(TimelineEntry {
            at: BASE + i as Millis,
            kind: TimelineKind::Page,
            from: None,
            to: Some(page.into()),
        });
    }
    let mut with = ended("alice", 1_000, 1_000);
    with.timeline = Some(timeline.clone());
    let without = ended("bob", 2_000, 1_000);
    record_all(store.as_ref(), &[with.clone(), without.clone()]).await;
    let kept = store.timeline(with.session_id).await.unwrap().unwrap();
    if backend.keeps_timelines() {
        assert_eq!(kept, timeline);
        assert!(kept.truncated);
    } else {
        assert_eq!(kept, Timeline::default());
    }
    assert_eq!(
        store.timeline(without.session_id).await.unwrap(),
        Some(Timeline::default()),
        "a session recorded without one has an empty timeline"
    );
    assert_eq!(store.timeline(SessionId::generate()).await.unwrap(), None);
}

pub async fn the_highest_peak_of_each_day_is_kept(backend: &dyn Backend) {
    let store = backend.open().await;
    let day = presence_hub::history::day_of(BASE);
    store.save_peak(day, 5, BASE + 10).await.unwrap();
    store.save_peak(day, 3, BASE + 20).await.unwrap();
    store.save_peak(day + 1, 2, BASE + DAY).await.unwrap();
    if !backend.keeps_peaks() {
        assert_eq!(store.peak(day).await.unwrap(), None);
        return;
    }
    assert_eq!(
        store.peak(day).await.unwrap(),
        Some((5, BASE + 10)),
        "a lower peak never replaces a higher one"
    );
    store.save_peak(day, 7, BASE + 30).await.unwrap();
    assert_eq!(store.peak(day).await.unwrap(), Some((7, BASE + 30)));
    assert_eq!(store.peak(day + 2).await.unwrap(), None);
    let peaks = store.peaks(day, day + 5).await.unwrap();
    assert_eq!(
        peaks.into_iter().collect::<Vec<_>>(),
        vec![(day, (7, BASE + 30)), (day + 1, (2, BASE + DAY))]
    );
    drop(store);
    if backend.persists() {
        let store = backend.open().await;
        assert_eq!(store.peak(day).await.unwrap(), Some((7, BASE + 30)));
    }
}

/// The online series: one point per bucket (the last write wins), read by
/// range oldest first, pruned by time, and kept across reopening where the
/// store persists it.
pub async fn the_online_series_keeps_one_point_per_bucket(backend: &dyn Backend) {
    use presence_hub::history::SeriesPoint;
    let store = backend.open().await;
    let point = |i: i64, users: u64| SeriesPoint {
        at: BASE + i * 10_000,
        users,
        sessions: users + 1,
    };
    for i in [2, 0, 1, 3] {
        store.save_series_point(point(i, 1)).await.unwrap();
    }
    store.save_series_point(point(1, 7)).await.unwrap();
    let all = store.series(BASE, BASE + 30_000).await.unwrap();
    assert_eq!(
        all,
        vec![point(0, 1), point(1, 7), point(2, 1), point(3, 1)],
        "oldest first, one point per bucket, the last write kept"
    );
    assert_eq!(
        store.series(BASE + 10_000, BASE + 20_000).await.unwrap(),
        vec![point(1, 7), point(2, 1)],
        "both ends are inclusive"
    );
    assert!(
        store
            .series(BASE + 40_000, BASE + 90_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.prune_series(BASE + 20_000).await.unwrap(), 2);
    assert_eq!(
        store.series(BASE, BASE + 30_000).await.unwrap(),
        vec![point(2, 1), point(3, 1)]
    );
    drop(store);
    let reopened = backend.open().await;
    let kept = reopened.series(BASE, BASE + 30_000).await.unwrap();
    if backend.series_persists() {
        assert_eq!(kept, vec![point(2, 1), point(3, 1)]);
    } else {
        assert!(kept.is_empty(), "an in-memory series starts empty");
    }
}

/// Stores without a database keep at most 8,640 points (24 h of 10 s),
/// the newest; the SQL stores are bounded by pruning to 24 h instead.
pub async fn the_online_series_is_bounded(backend: &dyn Backend) {
    use presence_hub::history::SeriesPoint;
    use presence_hub::history::series::MAX_SERIES_POINTS;
    let store = backend.open().await;
    let extra = 5;
    let count = i64::try_from(MAX_SERIES_POINTS).unwrap() + extra;
    for i in 0..count {
        let point = SeriesPoint {
            at: BASE + i * 10_000,
            users: 1,
            sessions: 1,
        };
        store.save_series_point(point).await.unwrap();
    }
    let kept = store.series(BASE, BASE + count * 10_000).await.unwrap();
    assert_eq!(kept.len(), MAX_SERIES_POINTS);
    assert_eq!(kept[0].at, BASE + extra * 10_000, "the oldest went first");
}

pub async fn find_is_newest_first_with_total_and_limit(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut sessions: Vec<SessionView> = (0..5)
        .map(|i| ended(&format!("u{i}"), (i % 3) * 1_000, 500))
        .collect();
    // Recorded in no particular order.
    sessions.swap(0, 4);
    record_all(store.as_ref(), &sessions).await;
    let page = store.find(filter(), 3).await.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.sessions.len(), 3);
    let mut expected = sessions.clone();
    expected.sort_by(|a, b| {
        b.connected_at
            .cmp(&a.connected_at)
            .then(b.session_id.cmp(&a.session_id))
    });
    assert_eq!(
        ids(&page.sessions),
        ids(&expected[..3]),
        "newest connected_at first, ties by session id descending"
    );
    let all = store.find(filter(), 100).await.unwrap();
    assert_eq!(ids(&all.sessions), ids(&expected));
    let none = store.find(filter(), 0).await.unwrap();
    assert_eq!((none.total, none.sessions.len()), (5, 0));
}

pub async fn scan_covers_every_record_exactly_once(backend: &dyn Backend) {
    let store = backend.open().await;
    let sessions: Vec<SessionView> = (0..23)
        .map(|i| ended(if i % 2 == 0 { "even" } else { "odd" }, i * 100, 50))
        .collect();
    store.record_batch(&sessions).await.unwrap();
    for batch in [1, 4, 7, 23, 100] {
        for user in [None, Some("even")] {
            let mut filter = filter();
            filter.user_id = user.map(str::to_string);
            let mut seen = Vec::new();
            let mut cursor = 0;
            let mut rounds = 0;
            loop {
                let (found, next) = store.scan(filter.clone(), cursor, batch).await.unwrap();
                assert!(found.len() <= batch, "a batch holds at most {batch}");
                seen.extend(ids(&found));
                rounds += 1;
                assert!(rounds <= 100, "the scan ends");
                match next {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
            let mut want: Vec<SessionId> = sessions
                .iter()
                .filter(|s| user.is_none_or(|u| s.user_id.as_str() == u))
                .map(|s| s.session_id)
                .collect();
            let total = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), total, "batch {batch}: no record twice");
            want.sort();
            assert_eq!(seen, want, "batch {batch}, user {user:?}: every record");
        }
    }
}

pub async fn active_since_keeps_only_sessions_that_can_overlap(backend: &dyn Backend) {
    let store = backend.open().await;
    let long_gone = ended("a", 0, 1_000);
    let ends_at_the_bound = ended("b", 9_000, 1_000);
    let ends_inside = ended("c", 9_500, 2_000);
    let starts_inside = ended("d", 11_000, 500);
    let mut skewed = ended("e", 12_000, 0);
    skewed.ended_at = Some(BASE + 1_000);
    let sessions = [
        long_gone,
        ends_at_the_bound.clone(),
        ends_inside.clone(),
        starts_inside.clone(),
        skewed.clone(),
    ];
    store.record_batch(&sessions).await.unwrap();
    let mut filter = filter();
    filter.active_since = Some(BASE + 10_000);
    let (found, next) = store.scan(filter.clone(), 0, 100).await.unwrap();
    assert_eq!(next, None);
    let mut got = ids(&found);
    got.sort();
    let mut want = ids(&[ends_at_the_bound, ends_inside, starts_inside, skewed]);
    want.sort();
    assert_eq!(got, want, "everything but the session that ended before");
    let page = store.find(filter, 100).await.unwrap();
    assert_eq!(
        (page.sessions.len(), page.total),
        (4, 4),
        "find applies it too"
    );
}

pub async fn last_of_user_is_the_most_recent_ended_session(backend: &dyn Backend) {
    let store = backend.open().await;
    let older = ended("alice", 1_000, 1_000);
    let newer = ended("alice", 5_000, 1_000);
    let other = ended("bob", 9_000, 1_000);
    record_all(store.as_ref(), &[older, newer.clone(), other]).await;
    let last = store
        .last_of_user(UserId::parse("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(last.map(|s| s.session_id), Some(newer.session_id));
    let nobody = store.last_of_user(UserId::parse("carol").unwrap()).await;
    assert_eq!(nobody.unwrap(), None);
    store.prune(BASE + 7_000).await.unwrap();
    let pruned = store.last_of_user(UserId::parse("alice").unwrap()).await;
    assert_eq!(pruned.unwrap(), None, "pruned sessions are gone");
}

pub async fn started_by_day_counts_kept_sessions_by_start_day(backend: &dyn Backend) {
    let store = backend.open().await;
    let day0 = BASE / DAY;
    // Ends the next day: counted on the day it started.
    let late = ended("a", DAY - 1_000, 5_000);
    let sessions = [
        ended("a", 1_000, 10),
        ended("b", 2_000, 10),
        late,
        ended("a", DAY + 1_000, 10),
        ended("a", 3 * DAY, 10),
    ];
    record_all(store.as_ref(), &sessions).await;
    let all = store.started_by_day(day0).await.unwrap();
    let want: Vec<(i64, u64)> = vec![(day0, 3), (day0 + 1, 1), (day0 + 3, 1)];
    assert_eq!(all.into_iter().collect::<Vec<_>>(), want);
    let later = store.started_by_day(day0 + 2).await.unwrap();
    assert_eq!(later.into_iter().collect::<Vec<_>>(), vec![(day0 + 3, 1)]);
    store.prune(BASE + DAY).await.unwrap();
    let after = store.started_by_day(day0).await.unwrap();
    assert_eq!(
        after.into_iter().collect::<Vec<_>>(),
        vec![(day0, 1), (day0 + 1, 1), (day0 + 3, 1)],
        "pruned sessions are not counted"
    );
}

pub async fn prune_drops_sessions_that_ended_before_the_cutoff(backend: &dyn Backend) {
    let store = backend.open().await;
    // More than one delete batch (1,000) and one Redis batch (500).
    let old: Vec<SessionView> = (0..2_345).map(|i| ended("old", i, 1_000)).collect();
    for chunk in old.chunks(500) {
        store.record_batch(chunk).await.unwrap();
    }
    let boundary = ended("edge", 5_000, 1_000); // ends at BASE + 6_000
    let kept = ended("new", 10_000, 1_000);
    record_all(store.as_ref(), &[boundary.clone(), kept.clone()]).await;
    assert_eq!(store.count().await.unwrap(), 2_347);
    assert_eq!(store.prune(BASE + 6_000).await.unwrap(), 2_345);
    assert_eq!(store.count().await.unwrap(), 2, "ended_at == cutoff stays");
    assert_eq!(store.get(old[7].session_id).await.unwrap(), None);
    let left = store.find(filter(), 10).await.unwrap();
    assert_eq!(
        ids(&left.sessions),
        vec![kept.session_id, boundary.session_id]
    );
    assert_eq!(store.prune(BASE + 6_000).await.unwrap(), 0);
}

pub async fn count_follows_records_and_pruning(backend: &dyn Backend) {
    let store = backend.open().await;
    assert_eq!(store.count().await.unwrap(), 0);
    let sessions: Vec<SessionView> = (0..1_234).map(|i| ended("u", i, 10)).collect();
    assert!(store.record_batch(&sessions).await.unwrap() <= sessions.len());
    assert_eq!(store.count().await.unwrap(), 1_234);
    store.prune(BASE + 110).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 1_134);
}

pub async fn flushed_records_survive_reopening(backend: &dyn Backend) {
    let store = backend.open().await;
    let sessions: Vec<SessionView> = (0..5).map(|i| ended("alice", i * 1_000, 10)).collect();
    record_all(store.as_ref(), &sessions).await;
    store.flush().await.unwrap();
    drop(store);
    let reopened = backend.open().await;
    let page = reopened.find(filter(), 10).await.unwrap();
    if backend.persists() {
        assert_eq!(page.total, 5);
        assert_eq!(
            reopened.get(sessions[2].session_id).await.unwrap(),
            Some(sessions[2].clone())
        );
        let last = reopened.last_of_user(UserId::parse("alice").unwrap());
        assert_eq!(
            last.await.unwrap().map(|s| s.session_id),
            Some(sessions[4].session_id)
        );
        // And it keeps working after the reopen.
        reopened.record(ended("bob", 9_000, 10)).await.unwrap();
        assert_eq!(reopened.count().await.unwrap(), 6);
    } else {
        assert_eq!(page.total, 0, "an in-memory store starts empty");
    }
}

/// SQL stores keep deny entries of revoked users, merged per user, and
/// drop those that ran out when loading.
pub async fn revoked_users_are_kept_merged_and_pruned(backend: &dyn Backend) {
    use presence_hub::revocation::{Deny, Revoked};
    let store = backend.open().await;
    let entry = |user: &str, revoked_at: i64, max_exp: i64, until: i64| Revoked {
        user_id: UserId::parse(user).unwrap(),
        deny: Deny {
            revoked_at,
            max_exp,
            until,
        },
    };
    store
        .save_revoked(entry("alice", 100, 500, 1_000))
        .await
        .unwrap();
    store
        .save_revoked(entry("alice", 200, 400, 900))
        .await
        .unwrap();
    store
        .save_revoked(entry("bob", 100, 100, 150))
        .await
        .unwrap();
    drop(store);
    let reopened = backend.open().await;
    let kept = reopened.load_revoked(160).await.unwrap();
    assert_eq!(
        kept,
        vec![entry("alice", 200, 500, 1_000)],
        "bob's ran out at 150"
    );
    assert_eq!(reopened.load_revoked(160).await.unwrap().len(), 1);
    assert!(reopened.load_revoked(1_001).await.unwrap().is_empty());
}

/// One outbox row of `node` for `endpoint`.
fn outbox_row(node: &str, endpoint: &str, key: i64) -> presence_hub::history::outbox::OutboxRow {
    presence_hub::history::outbox::OutboxRow {
        endpoint: endpoint.to_string(),
        event_id: format!("{endpoint}#{node}#{key}"),
        node_id: node.to_string(),
        order_key: key,
        queued_at: BASE + key,
        payload: format!(
            r#"{{"id":"{key}","type":"alert","at":"2026-11-02T00:00:00.000Z","data":{{}}}}"#
        ),
    }
}

fn outbox_batch(
    queued: Vec<presence_hub::history::outbox::OutboxRow>,
    gone: &[&presence_hub::history::outbox::OutboxRow],
    keep: usize,
) -> presence_hub::history::outbox::OutboxBatch {
    presence_hub::history::outbox::OutboxBatch {
        replaced: Vec::new(),
        queued,
        gone: gone
            .iter()
            .map(|row| (row.endpoint.clone(), row.event_id.clone()))
            .collect(),
        keep,
    }
}

fn keys(rows: &[presence_hub::history::outbox::OutboxRow]) -> Vec<(String, i64)> {
    rows.iter()
        .map(|row| (row.endpoint.clone(), row.order_key))
        .collect()
}

const HOOK_A: &str = "http://a.example/hook";
const HOOK_B: &str = "http://b.example/hook";

/// The database stores keep queued webhook events per node and endpoint,
/// in order key order, until they leave; stores without an outbox say so.
pub async fn the_webhook_outbox_keeps_events_in_order_until_they_leave(backend: &dyn Backend) {
    let store = backend.open().await;
    let Some(outbox) = store.outbox() else {
        assert!(!backend.keeps_outbox(), "{} has an outbox", store.name());
        return;
    };
    assert!(backend.keeps_outbox());
    let a: Vec<_> = (0..5).map(|k| outbox_row("node-a", HOOK_A, k)).collect();
    let b: Vec<_> = (0..2).map(|k| outbox_row("node-a", HOOK_B, k)).collect();
    let other = outbox_row("node-b", HOOK_A, 0);
    // Out of order on purpose: the order key orders, not the insert.
    let mut queued = vec![b[1].clone(), a[3].clone(), a[4].clone(), other.clone()];
    queued.extend([a[0].clone(), a[1].clone(), a[2].clone(), b[0].clone()]);
    outbox.apply(&outbox_batch(queued, &[], 0)).await.unwrap();
    let loaded = outbox.load("node-a").await.unwrap();
    assert_eq!(loaded[0], a[0], "rows read back as written");
    let expected: Vec<(String, i64)> = keys(&a).into_iter().chain(keys(&b)).collect();
    assert_eq!(keys(&loaded), expected, "by endpoint, in order key order");
    // Queued again (a retried write): kept once. Queued and gone in one
    // batch: not kept.
    let late = outbox_row("node-a", HOOK_A, 9);
    let again = outbox_batch(vec![a[0].clone(), late.clone()], &[&late], 0);
    outbox.apply(&again).await.unwrap();
    assert_eq!(outbox.load("node-a").await.unwrap().len(), 7);
    let gone = outbox_batch(Vec::new(), &[&a[1], &a[3], &b[0], &other], 0);
    outbox.apply(&gone).await.unwrap();
    drop((outbox, store));
    let store = backend.open().await;
    let outbox = store.outbox().unwrap();
    let left = keys(&outbox.load("node-a").await.unwrap());
    let expected = [(HOOK_A, 0), (HOOK_A, 2), (HOOK_A, 4), (HOOK_B, 1)]
        .map(|(endpoint, key)| (endpoint.to_string(), key));
    assert_eq!(left, expected, "what is left survives reopening");
    assert!(outbox.load("node-b").await.unwrap().is_empty());
    outbox
        .apply(&outbox_batch(vec![outbox_row("node-b", HOOK_A, 7)], &[], 0))
        .await
        .unwrap();
    assert_eq!(keys(&outbox.load("node-b").await.unwrap()).len(), 1);
    assert_eq!(outbox.adopt_all("node-c").await.unwrap(), 5);
    assert!(outbox.load("node-a").await.unwrap().is_empty());
    let adopted = outbox.load("node-c").await.unwrap();
    assert_eq!(adopted.len(), 5, "every row now belongs to node-c");
    assert_eq!(adopted[0].event_id, a[0].event_id, "ids kept");
    assert_eq!(outbox.adopt_all("node-c").await.unwrap(), 0);
}

/// A batch trims each endpoint it queued for to its newest `keep` rows of
/// that node, and touches no other endpoint or node.
pub async fn the_webhook_outbox_keeps_the_newest_rows_per_endpoint(backend: &dyn Backend) {
    let store = backend.open().await;
    let Some(outbox) = store.outbox() else {
        assert!(!backend.keeps_outbox());
        return;
    };
    let b: Vec<_> = (0..6).map(|k| outbox_row("node-a", HOOK_B, k)).collect();
    let other: Vec<_> = (0..6).map(|k| outbox_row("node-b", HOOK_A, k)).collect();
    outbox
        .apply(&outbox_batch([b, other].concat(), &[], 0))
        .await
        .unwrap();
    let first: Vec<_> = (0..3).map(|k| outbox_row("node-a", HOOK_A, k)).collect();
    outbox.apply(&outbox_batch(first, &[], 4)).await.unwrap();
    assert_eq!(
        outbox.load("node-a").await.unwrap().len(),
        9,
        "under the bound"
    );
    let more: Vec<_> = (3..10).map(|k| outbox_row("node-a", HOOK_A, k)).collect();
    outbox.apply(&outbox_batch(more, &[], 4)).await.unwrap();
    let kept: Vec<(String, i64)> = keys(&outbox.load("node-a").await.unwrap());
    let expected: Vec<(String, i64)> = (6..10)
        .map(|k| (HOOK_A.to_string(), k))
        .chain((0..6).map(|k| (HOOK_B.to_string(), k)))
        .collect();
    assert_eq!(
        kept, expected,
        "the oldest of HOOK_A dropped, HOOK_B untouched"
    );
    assert_eq!(
        outbox.load("node-b").await.unwrap().len(),
        6,
        "other nodes untouched"
    );
}

/// A replaced endpoint keeps exactly the rows given, of that node only,
/// before the batch's own inserts and deletes; other endpoints and nodes
/// are untouched.
pub async fn the_webhook_outbox_replaces_an_endpoints_rows_at_once(backend: &dyn Backend) {
    use presence_hub::history::outbox::OutboxReplace;
    let store = backend.open().await;
    let Some(outbox) = store.outbox() else {
        assert!(!backend.keeps_outbox());
        return;
    };
    let old: Vec<_> = (0..5).map(|k| outbox_row("node-a", HOOK_A, k)).collect();
    let untouched = [
        outbox_row("node-a", HOOK_B, 0),
        outbox_row("node-b", HOOK_A, 0),
    ];
    outbox
        .apply(&outbox_batch(
            [old.clone(), untouched.to_vec()].concat(),
            &[],
            0,
        ))
        .await
        .unwrap();
    let snapshot: Vec<_> = [3, 20, 21]
        .map(|k| outbox_row("node-a", HOOK_A, k))
        .to_vec();
    let after = outbox_row("node-a", HOOK_A, 22);
    let mut batch = outbox_batch(vec![after.clone()], &[&snapshot[1]], 0);
    batch.replaced.push(OutboxReplace {
        node_id: "node-a".into(),
        endpoint: HOOK_A.into(),
        rows: snapshot.clone(),
    });
    outbox.apply(&batch).await.unwrap();
    let kept = keys(&outbox.load("node-a").await.unwrap());
    let expected: Vec<(String, i64)> = [(HOOK_A, 3), (HOOK_A, 21), (HOOK_A, 22), (HOOK_B, 0)]
        .map(|(endpoint, key)| (endpoint.to_string(), key))
        .to_vec();
    assert_eq!(
        kept, expected,
        "the snapshot, then the batch's insert and delete; HOOK_B untouched"
    );
    assert_eq!(
        outbox.load("node-b").await.unwrap().len(),
        1,
        "node-b untouched"
    );
    let empty = presence_hub::history::outbox::OutboxBatch {
        replaced: vec![OutboxReplace {
            node_id: "node-a".into(),
            endpoint: HOOK_A.into(),
            rows: Vec::new(),
        }],
        ..presence_hub::history::outbox::OutboxBatch::default()
    };
    outbox.apply(&empty).await.unwrap();
    assert_eq!(
        keys(&outbox.load("node-a").await.unwrap()),
        [(HOOK_B.to_string(), 0)]
    );
}

/// Rows of nodes not seen alive since the cutoff (or never) go to the
/// adopting node, each to one adopter even when two adopt at once; a row
/// queued again takes the new node and order key.
pub async fn the_webhook_outbox_hands_lost_nodes_rows_to_one_live_node(backend: &dyn Backend) {
    let store = backend.open().await;
    let Some(outbox) = store.outbox() else {
        assert!(!backend.keeps_outbox());
        return;
    };
    assert_eq!(outbox.shared(), store.name() == "postgres");
    let lost: Vec<_> = (0..2).map(|k| outbox_row("node-lost", HOOK_A, k)).collect();
    let alive = outbox_row("node-alive", HOOK_A, 0);
    let silent = outbox_row("node-silent", HOOK_B, 0);
    let rows = vec![
        lost[1].clone(),
        alive.clone(),
        silent.clone(),
        lost[0].clone(),
    ];
    outbox.apply(&outbox_batch(rows, &[], 0)).await.unwrap();
    for (node, at) in [("node-lost", 1_000), ("node-alive", 5_000), ("me", 5_000)] {
        outbox.heartbeat(node, at).await.unwrap();
    }
    outbox.heartbeat("node-lost", 1_500).await.unwrap();
    let both = [HOOK_A.to_string(), HOOK_B.to_string()];
    // The never seen, for the endpoints asked for only.
    let only_b = outbox.adopt_lost("me", 2_000, &both[1..]).await.unwrap();
    assert_eq!(keys(&only_b), keys(std::slice::from_ref(&silent)));
    let adopted = outbox.adopt_lost("me", 2_000, &both).await.unwrap();
    assert_eq!(keys(&adopted), keys(&lost), "the lost, in order");
    let expected: Vec<(String, i64)> = keys(&[lost[0].clone(), lost[1].clone(), silent]);
    assert!(adopted.iter().all(|row| row.node_id == "me"));
    assert_eq!(keys(&outbox.load("me").await.unwrap()), expected);
    assert_eq!(outbox.load("node-alive").await.unwrap(), [alive]);
    assert!(
        outbox
            .adopt_lost("me", 2_000, &both)
            .await
            .unwrap()
            .is_empty()
    );
    // Queued again under a new node and key (how adopted rows join the
    // adopter's order).
    let mut again = lost[0].clone();
    again.node_id = "me".into();
    again.order_key = 100;
    outbox
        .apply(&outbox_batch(vec![again], &[], 0))
        .await
        .unwrap();
    let keys_now: Vec<i64> = outbox
        .load("me")
        .await
        .unwrap()
        .iter()
        .map(|r| r.order_key)
        .collect();
    assert_eq!(keys_now, [1, 100, 0], "HOOK_A: 1 then 100; HOOK_B: 0");

    // Two adopters at once: every row goes to exactly one of them.
    let many: Vec<_> = (0..400)
        .map(|k| outbox_row("node-gone", HOOK_A, k))
        .collect();
    outbox.apply(&outbox_batch(many, &[], 0)).await.unwrap();
    for node in ["x", "y", "me", "node-alive"] {
        outbox.heartbeat(node, 9_000).await.unwrap();
    }
    let (x, y) = tokio::join!(
        outbox.adopt_lost("x", 8_000, &both),
        outbox.adopt_lost("y", 8_000, &both)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut ids: Vec<String> = x.iter().chain(&y).map(|r| r.event_id.clone()).collect();
    let taken = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400, "every row of the gone node, and only those");
    assert_eq!(ids.len(), taken, "no row adopted twice");
    let held = outbox.load("x").await.unwrap().len() + outbox.load("y").await.unwrap().len();
    assert_eq!(held, taken);
}
