use super::*;
use crate::model::{Change, SessionEvent};
use crate::model::{
    EndCause, ManualStatus, NodeId, SessionMeta, SessionStatus, UserStatus, UserView,
};

const T: Thresholds = Thresholds {
    idle_after: 1_000,
    away_after: 3_000,
};

fn state() -> PresenceState {
    PresenceState::new(T, 5_000)
}

fn new_session(user: &str, org: Option<&str>) -> NewSession {
    NewSession {
        id: SessionId::generate(),
        user_id: UserId::parse(user).unwrap(),
        name: Some(user.to_uppercase()),
        org: org.map(str::to_string),
        email: None,
        team: None,
        node_id: NodeId::new("n1"),
        transport: Transport::Ws,
        meta: SessionMeta::default(),
        expires_at: None,
        rooms: crate::model::RoomGrant::Any,
    }
}

fn user_changes(changes: &[Change]) -> Vec<&UserView> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::User(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn session_events(changes: &[Change]) -> Vec<(SessionEvent, SessionStatus)> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Session { event, session } => Some((*event, session.status)),
            _ => None,
        })
        .collect()
}

#[test]
fn opening_a_session_starts_it_and_brings_the_user_online() {
    let mut s = state();
    let changes = s.open(new_session("alice", None), 0);
    assert_eq!(
        session_events(&changes),
        vec![(SessionEvent::Started, SessionStatus::Active)]
    );
    let users = user_changes(&changes);
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].status, UserStatus::Active);
    assert_eq!(users[0].session_count, 1);
}

#[test]
fn a_second_tab_changes_the_count_but_not_the_status() {
    let mut s = state();
    s.open(new_session("alice", None), 0);
    let changes = s.open(new_session("alice", None), 10);
    let users = user_changes(&changes);
    assert_eq!(users[0].session_count, 2);
    assert_eq!(s.online_users(), 1);
}

#[test]
fn time_moves_a_quiet_session_to_idle_then_away() {
    let mut s = state();
    let id = {
        let n = new_session("alice", None);
        let id = n.id;
        s.open(n, 0);
        id
    };
    assert_eq!(s.next_deadline(id), Some(1_000));
    assert!(s.refresh(id, 999).is_empty());
    let changes = s.refresh(id, 1_000);
    assert_eq!(
        session_events(&changes),
        vec![(SessionEvent::Updated, SessionStatus::Idle)]
    );
    assert_eq!(user_changes(&changes)[0].status, UserStatus::Idle);
    assert_eq!(s.next_deadline(id), Some(3_000));
    let changes = s.refresh(id, 3_000);
    assert_eq!(
        session_events(&changes),
        vec![(SessionEvent::Updated, SessionStatus::Away)]
    );
    assert_eq!(s.next_deadline(id), None);
}

#[test]
fn activity_on_an_idle_session_makes_it_active_at_once() {
    let mut s = state();
    let n = new_session("alice", None);
    let id = n.id;
    s.open(n, 0);
    s.refresh(id, 1_500);
    let changes = s.record_activity(id, 1_600, None, 1_600);
    assert_eq!(
        session_events(&changes),
        vec![(SessionEvent::Updated, SessionStatus::Active)]
    );
    assert_eq!(s.next_deadline(id), Some(2_600));
}

#[test]
fn activity_only_updates_are_coalesced_to_one_per_second_with_a_trailing_edge() {
    let slow = Thresholds {
        idle_after: 10_000,
        away_after: 30_000,
    };
    let mut s = PresenceState::new(slow, 5_000);
    let n = new_session("alice", None);
    let id = n.id;
    s.open(n, 0);
    // Within a second of the start: nothing now, a check at 1 s.
    assert!(s.record_activity(id, 300, None, 300).is_empty());
    assert_eq!(s.next_deadline(id), Some(1_000));
    let flushed = s.refresh(id, 1_000);
    assert_eq!(
        session_events(&flushed),
        vec![(SessionEvent::Updated, SessionStatus::Active)]
    );
    // An unreported ping seen only through liveness is delivered at the next check.
    s.observe_activity(id, 1_400);
    assert_eq!(s.next_deadline(id), Some(2_000));
    let flushed = s.refresh(id, 2_000);
    match &flushed[0] {
        Change::Session { session, .. } => assert_eq!(session.last_activity, 1_400),
        other => panic!("unexpected {other:?}"),
    }
    // Nothing new: the check lapses and no event is published.
    assert!(s.refresh(id, 3_000).is_empty());
    assert_eq!(
        s.next_deadline(id),
        Some(11_400),
        "only the idle transition is left"
    );
}

#[test]
fn a_page_change_is_published_at_once() {
    let mut s = state();
    let n = new_session("alice", None);
    let id = n.id;
    s.open(n, 0);
    let changes = s.record_activity(id, 100, Some("/inbox".into()), 100);
    assert_eq!(changes.len(), 1, "page change, user unchanged");
}

#[test]
fn manual_away_forces_away_and_clearing_restores_derived_status() {
    let mut s = state();
    let n = new_session("alice", None);
    let id = n.id;
    s.open(n, 0);
    let changes = s.set_manual(id, Some(ManualStatus::Away), 10);
    assert_eq!(
        session_events(&changes),
        vec![(SessionEvent::Updated, SessionStatus::Away)]
    );
    assert_eq!(user_changes(&changes)[0].manual, Some(ManualStatus::Away));
    let changes = s.set_manual(id, None, 20);
    assert_eq!(
        session_events(&changes),
        vec![(SessionEvent::Updated, SessionStatus::Active)]
    );
    assert!(s.set_manual(id, None, 30).is_empty(), "no change, no event");
}

#[test]
fn the_user_takes_the_manual_status_of_its_most_present_session() {
    let mut s = state();
    let a = new_session("alice", None);
    let b = new_session("alice", None);
    let (ida, idb) = (a.id, b.id);
    s.open(a, 0);
    s.open(b, 0);
    s.set_manual(ida, Some(ManualStatus::Busy), 10);
    s.set_manual(idb, Some(ManualStatus::Away), 20);
    let user = s.user_view(&UserId::parse("alice").unwrap()).unwrap();
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.manual, Some(ManualStatus::Busy));
}

#[test]
fn ending_the_last_session_takes_the_user_offline() {
    let mut s = state();
    let n = new_session("alice", Some("acme"));
    let id = n.id;
    s.open(n, 0);
    let changes = s.end(id, EndCause::ClientClosed, 2_500);
    match &changes[0] {
        Change::Session { event, session } => {
            assert_eq!(*event, SessionEvent::Ended);
            assert_eq!(session.status, SessionStatus::Ended);
            assert_eq!(session.end_cause, Some(EndCause::ClientClosed));
            assert_eq!(session.ended_at, Some(2_500));
            assert!((session.duration_s - 2.5).abs() < 1e-9);
        }
        other => panic!("unexpected {other:?}"),
    }
    let users = user_changes(&changes);
    assert_eq!(users[0].status, UserStatus::Offline);
    assert_eq!(users[0].session_count, 0);
    assert_eq!(s.online_users(), 0);
    assert!(
        s.end(id, EndCause::ClientClosed, 2_600).is_empty(),
        "ending twice is a no-op"
    );
}

#[test]
fn the_oldest_session_is_the_one_over_the_limit() {
    let mut s = state();
    let first = new_session("alice", None);
    let first_id = first.id;
    s.open(first, 0);
    s.open(new_session("alice", None), 10);
    let alice = UserId::parse("alice").unwrap();
    assert_eq!(s.over_limit(&alice, 2), vec![]);
    s.open(new_session("alice", None), 20);
    assert_eq!(s.over_limit(&alice, 2), vec![first_id]);
    assert_eq!(s.over_limit(&alice, 1).len(), 2);
    assert_eq!(s.over_limit(&alice, 0), vec![], "0 means no limit");
}

#[test]
fn counters_follow_status_and_lifecycle() {
    let mut s = state();
    let n = new_session("alice", None);
    let id = n.id;
    s.open(n, 0);
    s.open(new_session("bob", None), 0);
    assert_eq!(s.counters().by_status.get(&SessionStatus::Active), Some(&2));
    s.refresh(id, 1_000);
    assert_eq!(s.counters().by_status.get(&SessionStatus::Active), Some(&1));
    assert_eq!(s.counters().by_status.get(&SessionStatus::Idle), Some(&1));
    s.end(id, EndCause::Timeout, 1_100);
    assert_eq!(s.counters().by_status.get(&SessionStatus::Idle), Some(&0));
    assert_eq!(s.counters().by_node.get(&NodeId::new("n1")), Some(&1));
}

#[test]
fn http_sessions_expire_after_the_ttl_without_heartbeat() {
    let mut s = state();
    let mut n = new_session("script", None);
    n.transport = Transport::Http;
    let id = n.id;
    s.open(n, 0);
    assert_eq!(s.next_deadline(id), Some(1_000), "idle comes before expiry");
    s.record_heartbeat(id, 4_000);
    assert!(!s.http_expired(id, 8_999));
    assert!(s.http_expired(id, 9_000));
}

#[test]
fn started_counts_and_the_daily_peak_are_maintained() {
    let mut s = state();
    let day = 86_400_000;
    let a = new_session("alice", None);
    let a_id = a.id;
    s.open(a, day + 10);
    s.open(new_session("bob", None), day + 20);
    assert_eq!(
        s.peak_today(day + 30),
        Peak {
            day: 1,
            users: 2,
            at: day + 20
        }
    );
    s.end(a_id, EndCause::ClientClosed, day + 40);
    assert_eq!(
        s.started_by_day(0).get(&1),
        Some(&1),
        "ended sessions leave the live count"
    );
    assert_eq!(s.peak_today(day + 50).users, 2, "the peak stays");
    assert_eq!(
        s.peak_today(2 * day + 5).users,
        1,
        "a new day starts from who is online"
    );
}

#[test]
fn a_day_that_begins_with_users_online_counts_them_in_its_peak() {
    let mut s = state();
    let day = 86_400_000;
    let a = new_session("alice", None);
    let a_id = a.id;
    s.open(a, day - 100);
    s.end(a_id, EndCause::ClientClosed, day + 10);
    assert_eq!(
        s.peak_today(day + 20),
        Peak {
            day: 1,
            users: 1,
            at: day
        },
        "alice was online at midnight"
    );
}

#[test]
fn the_first_peak_of_a_day_is_when_it_was_reached() {
    let mut s = state();
    let day = 86_400_000;
    s.open(new_session("bob", None), day + 500);
    assert_eq!(
        s.peak_today(day + 600),
        Peak {
            day: 1,
            users: 1,
            at: day + 500
        }
    );
}
