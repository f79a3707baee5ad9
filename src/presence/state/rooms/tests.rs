use super::*;

fn view(user: &str, org: Option<&str>, rooms: &[&str]) -> SessionView {
    SessionView {
        name: Some(format!("{user} name")),
        org: org.map(str::to_string),
        page: Some("/doc".into()),
        rooms: rooms.iter().map(|r| RoomName::parse(r).unwrap()).collect(),
        ip: Some("10.0.0.1".into()),
        ..SessionView::sample(user, 100)
    }
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

#[test]
fn a_joined_session_makes_its_user_a_member_after_the_batch() {
    let mut index = RoomIndex::default();
    index.observe(&view("alice", Some("acme"), &["doc:1"]), 1_000);
    assert_eq!(index.next_due(), Some(1_000 + SMALL_ROOM_WINDOW_MS));
    assert!(index.take_due(1_010).is_empty());
    let mut due = index.take_due(1_025);
    due.sort();
    assert_eq!(due, vec![room("doc:1"), room("org:acme")]);
    let changes = index.take_changes(&room("doc:1"));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].event, MemberEvent::Join);
    assert_eq!(changes[0].member.page.as_deref(), Some("/doc"));
    assert_eq!(changes[0].member.joined_at, 1_000);
    let org = index.take_changes(&room("org:acme"));
    assert_eq!(org[0].member.page, None, "org rooms share no page");
    assert_eq!(org[0].member.joined_at, 100, "org rooms: since connected");
}

#[test]
fn activity_alone_changes_nothing_members_see() {
    let mut index = RoomIndex::default();
    let mut alice = view("alice", None, &["doc:1"]);
    index.observe(&alice, 1_000);
    index.take_changes(&room("doc:1"));
    alice.last_activity = 5_000;
    index.observe(&alice, 5_000);
    assert!(index.take_changes(&room("doc:1")).is_empty());
    alice.status = SessionStatus::Idle;
    index.observe(&alice, 6_000);
    let changes = index.take_changes(&room("doc:1"));
    assert_eq!(changes[0].event, MemberEvent::Update);
    assert_eq!(changes[0].member.status, UserStatus::Idle);
}

#[test]
fn the_best_session_in_the_room_gives_status_manual_and_page() {
    let mut index = RoomIndex::default();
    let mut away = view("alice", None, &["doc:1"]);
    away.status = SessionStatus::Away;
    away.manual = Some(ManualStatus::Away);
    away.page = Some("/old".into());
    let mut active = view("alice", None, &["doc:1"]);
    active.manual = Some(ManualStatus::Busy);
    let elsewhere = view("alice", None, &["doc:2"]);
    index.observe(&away, 1_000);
    index.observe(&active, 2_000);
    index.observe(&elsewhere, 3_000);
    let changes = index.take_changes(&room("doc:1"));
    assert_eq!(changes.len(), 1, "one change per user");
    let member = &changes[0].member;
    assert_eq!(member.status, UserStatus::Active);
    assert_eq!(member.manual, Some(ManualStatus::Busy));
    assert_eq!(member.session_count, 2, "only sessions in this room");
    assert_eq!(member.joined_at, 1_000);
}

#[test]
fn leaving_sends_the_member_as_last_seen() {
    let mut index = RoomIndex::default();
    let mut alice = view("alice", None, &["doc:1"]);
    index.observe(&alice, 1_000);
    index.take_changes(&room("doc:1"));
    alice.rooms.clear();
    index.observe(&alice, 2_000);
    let changes = index.take_changes(&room("doc:1"));
    assert_eq!(changes[0].event, MemberEvent::Leave);
    assert_eq!(changes[0].member.page.as_deref(), Some("/doc"));
    assert!(index.summaries().is_empty(), "an empty room is gone");
}

#[test]
fn a_second_session_is_an_update_and_its_end_another() {
    let mut index = RoomIndex::default();
    let first = view("alice", None, &["doc:1"]);
    let second = view("alice", None, &["doc:1"]);
    index.observe(&first, 1_000);
    index.take_changes(&room("doc:1"));
    index.observe(&second, 2_000);
    let changes = index.take_changes(&room("doc:1"));
    assert_eq!(changes[0].event, MemberEvent::Update);
    assert_eq!(changes[0].member.session_count, 2);
    index.forget(first.session_id, 3_000);
    let changes = index.take_changes(&room("doc:1"));
    assert_eq!(changes[0].member.session_count, 1);
    assert_eq!(changes[0].member.joined_at, 2_000);
    let summary = index.summaries();
    assert_eq!((summary[0].members, summary[0].sessions), (1, 1));
}

#[test]
fn explicit_org_names_in_a_view_are_ignored() {
    let mut index = RoomIndex::default();
    index.observe(&view("alice", Some("acme"), &["org:other"]), 1_000);
    let names: Vec<String> = index
        .summaries()
        .iter()
        .map(|s| s.room.to_string())
        .collect();
    assert_eq!(names, vec!["org:acme".to_string()]);
}
