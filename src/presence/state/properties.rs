//! Property tests of the presence map: random sequences of what the engine
//! does to it (sessions opening on several tabs of several users, pings,
//! manual statuses, metadata, HTTP heartbeats, drops and resumes, new
//! tokens, room joins and leaves, ends, replicas of another node, and time
//! passing across the idle, away, grace and expiry thresholds, with due
//! deadlines fired the way the engine fires them), with and without a
//! resume grace and a maximum session age. After every step the
//! map is checked against a recount over its sessions: each user's status
//! is the best of its sessions and is what was last published for it,
//! counters, online users, started-by-day counts, today's peak and room
//! summaries match, every live session's last published view shows what an
//! admin would see now, no deadline is missed or stuck, and every session
//! that leaves the map is announced `Ended` exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::model::time::day_of;
use crate::model::{
    Change, DeviceInfo, EndCause, Location, ManualStatus, MemberEvent, MetaUpdate, NodeId,
    RoomGrant, RoomName, SessionEvent, SessionMeta, SessionStatus, SessionView, Traffic,
    UserStatus, UserView,
};
use crate::presence::derive::derive_status;

const T: Thresholds = Thresholds {
    idle_after: 1_000,
    away_after: 3_000,
};
const HTTP_TTL: Millis = 5_000;
/// Half a minute before a UTC midnight, so some runs cross into a new day.
const START: Millis = 20_000 * 86_400_000 - 30_000;

const USERS: [&str; 3] = ["ann", "bob", "cyd"];
const ORGS: [&str; 2] = ["acme", "globex"];
const ROOMS: [&str; 4] = ["doc:1", "doc:2", "team/x", "org:acme"];
const PAGES: [&str; 3] = ["/a", "/b", "/c"];
const DEVICES: [&str; 3] = ["desktop", "mobile", "bot"];
const REPLICA_SLOTS: usize = 4;

fn local_node() -> NodeId {
    NodeId::new("n1")
}

fn user(index: usize) -> UserId {
    UserId::parse(USERS[index % USERS.len()]).unwrap()
}

fn room(index: usize) -> RoomName {
    RoomName::parse(ROOMS[index % ROOMS.len()]).unwrap()
}

/// Ids in order, so a failing run replays exactly.
fn session_id(n: usize) -> SessionId {
    SessionId::parse(&format!("00000000-0000-4000-8000-{n:012x}")).unwrap()
}

fn every_room() -> Vec<RoomName> {
    let orgs = ORGS.iter().filter_map(|org| RoomName::of_org(org));
    (0..ROOMS.len()).map(room).chain(orgs).collect()
}

/// Which of the sessions opened so far an operation is about (modulo
/// their number).
type Slot = u16;

/// One thing the engine may do to the map.
#[derive(Debug, Clone)]
enum Op {
    Open {
        user: usize,
        org: Option<usize>,
        http: bool,
        expires_in: Option<Millis>,
    },
    Ping {
        slot: Slot,
        page: Option<usize>,
    },
    /// Activity seen only through the connection's liveness.
    Observe {
        slot: Slot,
    },
    Manual {
        slot: Slot,
        manual: Option<ManualStatus>,
    },
    Hello {
        slot: Slot,
        device: Option<usize>,
        page: Option<usize>,
    },
    Heartbeat {
        slot: Slot,
        active: bool,
    },
    Drop {
        slot: Slot,
        cause: EndCause,
    },
    Resume {
        slot: Slot,
        org: Option<usize>,
        page: Option<usize>,
    },
    Renew {
        slot: Slot,
        org: Option<usize>,
        only_docs: bool,
        expires_in: Option<Millis>,
    },
    Join {
        slot: Slot,
        room: usize,
    },
    Leave {
        slot: Slot,
        room: usize,
    },
    End {
        slot: Slot,
        cause: EndCause,
    },
    Replica {
        slot: usize,
        status: SessionStatus,
        manual: Option<ManualStatus>,
        org: Option<usize>,
        rooms: Vec<usize>,
        country: Option<usize>,
    },
    ReplicaEnd {
        slot: usize,
    },
    Advance {
        by: Millis,
    },
}

fn manual() -> impl Strategy<Value = Option<ManualStatus>> {
    prop_oneof![
        Just(None),
        Just(Some(ManualStatus::Busy)),
        Just(Some(ManualStatus::Away))
    ]
}

fn cause() -> impl Strategy<Value = EndCause> {
    prop_oneof![
        Just(EndCause::ClientClosed),
        Just(EndCause::Timeout),
        Just(EndCause::Terminated),
        Just(EndCause::Policy),
    ]
}

fn live_status() -> impl Strategy<Value = SessionStatus> {
    prop_oneof![
        Just(SessionStatus::Active),
        Just(SessionStatus::Idle),
        Just(SessionStatus::Away),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let org = || proptest::option::of(0..ORGS.len());
    let page = || proptest::option::of(0..PAGES.len());
    let expiry = || proptest::option::weighted(0.3, 0..20_000_i64);
    prop_oneof![
        4 => (0..USERS.len(), org(), any::<bool>(), expiry()).prop_map(
            |(user, org, http, expires_in)| Op::Open { user, org, http, expires_in }
        ),
        4 => (any::<Slot>(), page()).prop_map(|(slot, page)| Op::Ping { slot, page }),
        1 => any::<Slot>().prop_map(|slot| Op::Observe { slot }),
        2 => (any::<Slot>(), manual()).prop_map(|(slot, manual)| Op::Manual { slot, manual }),
        1 => (any::<Slot>(), proptest::option::of(0..DEVICES.len()), page())
            .prop_map(|(slot, device, page)| Op::Hello { slot, device, page }),
        2 => (any::<Slot>(), any::<bool>())
            .prop_map(|(slot, active)| Op::Heartbeat { slot, active }),
        2 => (any::<Slot>(), cause()).prop_map(|(slot, cause)| Op::Drop { slot, cause }),
        2 => (any::<Slot>(), org(), page())
            .prop_map(|(slot, org, page)| Op::Resume { slot, org, page }),
        1 => (any::<Slot>(), org(), any::<bool>(), expiry()).prop_map(
            |(slot, org, only_docs, expires_in)| Op::Renew { slot, org, only_docs, expires_in }
        ),
        3 => (any::<Slot>(), 0..ROOMS.len()).prop_map(|(slot, room)| Op::Join { slot, room }),
        2 => (any::<Slot>(), 0..ROOMS.len()).prop_map(|(slot, room)| Op::Leave { slot, room }),
        2 => (any::<Slot>(), cause()).prop_map(|(slot, cause)| Op::End { slot, cause }),
        2 => (
            0..REPLICA_SLOTS,
            live_status(),
            manual(),
            org(),
            proptest::collection::vec(0..ROOMS.len(), 0..3),
            proptest::option::of(0..2_usize),
        )
            .prop_map(|(slot, status, manual, org, rooms, country)| Op::Replica {
                slot,
                status,
                manual,
                org,
                rooms,
                country,
            }),
        1 => (0..REPLICA_SLOTS).prop_map(|slot| Op::ReplicaEnd { slot }),
        5 => prop_oneof![0..200_i64, 500..1_500_i64, 1_000..6_000_i64, 5_000..30_000_i64]
            .prop_map(|by| Op::Advance { by }),
    ]
}

/// The map under test, what it published, and the facts to check it by.
struct Run {
    state: PresenceState,
    now: Millis,
    /// Every local session ever opened, live or not.
    local: Vec<SessionId>,
    replicas: Vec<(SessionId, UserId)>,
    /// Activity each connection saw last (its liveness), which the engine
    /// reads when the session's deadline fires.
    liveness: HashMap<SessionId, Millis>,
    /// Sessions that took part, and how often each was announced ended.
    ended: HashMap<SessionId, usize>,
    sessions_published: HashMap<SessionId, SessionView>,
    users_published: HashMap<UserId, UserView>,
    /// Room members as the published batches say.
    members: BTreeSet<(RoomName, UserId)>,
    /// Today's day and the most users online at once during it.
    peak: (i64, usize),
    /// Users online after the last change.
    online: usize,
}

impl Run {
    /// A map with this resume grace and maximum age (0 disables each).
    fn new(grace: Millis, max_age: Millis) -> Self {
        let state = PresenceState::new(T, HTTP_TTL).with_lifetimes(grace, max_age);
        let replicas = (0..REPLICA_SLOTS)
            .map(|slot| (session_id(1_000 + slot), user(slot)))
            .collect();
        Self {
            state,
            now: START,
            local: Vec::new(),
            replicas,
            liveness: HashMap::new(),
            ended: HashMap::new(),
            sessions_published: HashMap::new(),
            users_published: HashMap::new(),
            members: BTreeSet::new(),
            peak: (day_of(START), 0),
            online: 0,
        }
    }

    fn pick(&self, slot: Slot) -> Option<SessionId> {
        (!self.local.is_empty()).then(|| self.local[usize::from(slot) % self.local.len()])
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        let changes = match op {
            Op::Open {
                user: index,
                org,
                http,
                expires_in,
            } => {
                let id = session_id(self.local.len());
                self.local.push(id);
                self.ended.insert(id, 0);
                let new = NewSession {
                    id,
                    user_id: user(index),
                    name: Some(USERS[index].to_uppercase()),
                    org: org.map(|o| ORGS[o].to_string()),
                    email: None,
                    team: None,
                    node_id: local_node(),
                    transport: if http { Transport::Http } else { Transport::Ws },
                    meta: SessionMeta::default(),
                    expires_at: expires_in.map(|ms| now + ms),
                    rooms: RoomGrant::Any,
                };
                self.state.open(new, now)
            }
            Op::Ping { slot, page } => {
                self.see_activity(slot);
                self.with(slot, |s, id| {
                    s.record_activity(id, now, page.map(|p| PAGES[p].to_string()), now)
                })
            }
            Op::Observe { slot } => {
                self.see_activity(slot);
                Vec::new()
            }
            Op::Manual { slot, manual } => self.with(slot, |s, id| s.set_manual(id, manual, now)),
            Op::Hello { slot, device, page } => self.with(slot, |s, id| {
                let update = MetaUpdate {
                    device: device.map(|d| DeviceInfo {
                        device_type: Some(DEVICES[d].to_string()),
                        ..DeviceInfo::default()
                    }),
                    page: page.map(|p| PAGES[p].to_string()),
                    ..MetaUpdate::default()
                };
                s.apply_meta(id, update, now)
            }),
            Op::Heartbeat { slot, active } => {
                self.with(slot, |s, id| heartbeat(s, id, active, now))
            }
            Op::Drop { slot, cause } => {
                if let Some(id) = self.pick(slot) {
                    self.liveness.remove(&id);
                }
                // Without a grace the engine ends a dropped session at once.
                self.with(slot, |s, id| match s.resume_grace() {
                    0 => s.end(id, cause, now),
                    _ => s.mark_dropped(id, cause, now, now),
                })
            }
            Op::Resume { slot, org, page } => self.with(slot, |s, id| {
                if !s.is_dropped(id) {
                    return Vec::new();
                }
                let renewal = renewal(s, id, org, false, None);
                s.take_over(id, renewal, page.map(|p| PAGES[p].to_string()), now)
            }),
            Op::Renew {
                slot,
                org,
                only_docs,
                expires_in,
            } => self.with(slot, |s, id| {
                let renewal = renewal(s, id, org, only_docs, expires_in.map(|ms| now + ms));
                s.renew(id, renewal, now)
            }),
            Op::Join { slot, room: r } => self.with(slot, |s, id| s.join_room(id, room(r), now)),
            Op::Leave { slot, room: r } => self.with(slot, |s, id| s.leave_room(id, &room(r), now)),
            Op::End { slot, cause } => self.with(slot, |s, id| s.end(id, cause, now)),
            Op::Replica {
                slot,
                status,
                manual,
                org,
                rooms,
                country,
            } => self.replica(slot, status, manual, org, &rooms, country),
            Op::ReplicaEnd { slot } => {
                let (id, _) = self.replicas[slot].clone();
                match self.state.session(id) {
                    Some(record) => {
                        let view = record.ended_view(EndCause::ClientClosed, now);
                        self.state.end_replica(&view, now)
                    }
                    None => Vec::new(),
                }
            }
            Op::Advance { by } => {
                self.advance_to(now + by);
                Vec::new()
            }
        };
        self.note_online(&changes, now);
        self.take(changes);
        self.check();
    }

    /// The connection of a live, connected session saw activity now.
    fn see_activity(&mut self, slot: Slot) {
        if let Some(id) = self.pick(slot)
            && self.state.session(id).is_some()
            && !self.state.is_dropped(id)
        {
            self.liveness.insert(id, self.now);
        }
    }

    fn with(
        &mut self,
        slot: Slot,
        act: impl FnOnce(&mut PresenceState, SessionId) -> Vec<Change>,
    ) -> Vec<Change> {
        match self.pick(slot) {
            Some(id) => act(&mut self.state, id),
            None => Vec::new(),
        }
    }

    /// A replica of another node's session, as its owner publishes it; an
    /// ended replica does not come back.
    fn replica(
        &mut self,
        slot: usize,
        status: SessionStatus,
        manual: Option<ManualStatus>,
        org: Option<usize>,
        rooms: &[usize],
        country: Option<usize>,
    ) -> Vec<Change> {
        let (id, owner) = self.replicas[slot].clone();
        if self.ended.get(&id).is_some_and(|n| *n > 0) {
            return Vec::new();
        }
        self.ended.entry(id).or_insert(0);
        let connected_at = self
            .state
            .session(id)
            .map_or(self.now, SessionRecord::connected_at);
        let mut view = SessionView::sample(owner.as_str(), connected_at);
        view.session_id = id;
        view.node_id = NodeId::new("n2");
        view.status = status;
        view.manual = manual;
        view.last_activity = self.now;
        view.org = org.map(|o| ORGS[o].to_string());
        view.rooms = rooms.iter().map(|r| room(*r)).collect();
        view.rooms.dedup();
        view.location = country.map(|c| Location {
            country: Some(["DE", "FR"][c].to_string()),
            ..Location::default()
        });
        self.state.upsert_replica(view, self.now)
    }

    /// Time passes to `target`: every local deadline on the way fires at
    /// its time, as the engine's schedule fires it, then due room batches
    /// go out.
    fn advance_to(&mut self, target: Millis) {
        for _ in 0..10_000 {
            let due = self
                .local_live()
                .filter_map(|id| self.state.next_deadline(id).map(|at| (at, id)))
                .filter(|(at, _)| *at <= target)
                .min();
            let Some((at, id)) = due else {
                self.now = target;
                self.publish_rooms(target);
                return;
            };
            self.now = at.max(self.now);
            let observed = self.liveness.get(&id).copied();
            let (changes, changed_at) = fire(&mut self.state, id, observed, self.now);
            self.note_online(&changes, changed_at);
            self.take(changes);
            let next = self.state.next_deadline(id);
            assert!(
                next.is_none_or(|next| next > self.now),
                "a fired deadline must move on: {next:?} at {}",
                self.now
            );
        }
        panic!("deadlines never settle before {target}");
    }

    fn local_live(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.local
            .iter()
            .copied()
            .filter(|id| self.state.session(*id).is_some())
    }

    /// The room batches due at `now`, checked against the members they
    /// announce.
    fn publish_rooms(&mut self, now: Millis) {
        for room in self.state.rooms_mut().take_due(now) {
            self.publish_room(&room);
        }
    }

    fn publish_room(&mut self, room: &RoomName) {
        for change in self.state.rooms_mut().take_changes(room) {
            let key = (room.clone(), change.member.user_id.clone());
            let was_member = self.members.contains(&key);
            match change.event {
                MemberEvent::Join => assert!(!was_member, "joined twice: {key:?}"),
                MemberEvent::Update | MemberEvent::Leave => {
                    assert!(was_member, "{:?} of a non-member: {key:?}", change.event);
                }
            }
            if change.event == MemberEvent::Leave {
                self.members.remove(&key);
            } else {
                self.members.insert(key);
            }
        }
        let index = self.state.rooms();
        assert_eq!(
            index.published_members(room),
            index.current_members(room),
            "after its batch, {room} shows its members as they are"
        );
    }

    /// Takes in published changes as the engine's flush does.
    fn take(&mut self, changes: Vec<Change>) {
        for change in changes {
            self.state.track_rooms(&change, self.now);
            match change {
                Change::Session { event, session } => {
                    let id = session.session_id;
                    let ended = self.ended.entry(id).or_insert(0);
                    assert_eq!(*ended, 0, "{event:?} after the end of {id}");
                    if event == SessionEvent::Ended {
                        assert_eq!(session.status, SessionStatus::Ended);
                        *ended += 1;
                        self.sessions_published.remove(&id);
                    } else {
                        self.sessions_published.insert(id, session);
                    }
                }
                Change::User(view) => {
                    self.users_published.insert(view.user_id.clone(), view);
                }
                Change::Audit(_) | Change::Alert(_) => {}
            }
        }
    }

    fn check(&self) {
        self.check_users();
        self.check_counters();
        self.check_sessions();
        self.check_rooms();
        self.check_peak();
    }

    fn check_users(&self) {
        let mut by_user: BTreeMap<UserId, Vec<&SessionRecord>> = BTreeMap::new();
        for record in self.state.sessions() {
            by_user
                .entry(record.user_id().clone())
                .or_default()
                .push(record);
        }
        let online: BTreeSet<&UserId> = self.state.user_ids().collect();
        assert_eq!(online, by_user.keys().collect(), "online users");
        assert_eq!(self.state.online_users(), by_user.len());
        for (user, records) in &by_user {
            let mut ids: Vec<SessionId> = records.iter().map(|r| r.id()).collect();
            let mut listed = self.state.sessions_of(user);
            ids.sort();
            listed.sort();
            assert_eq!(listed, ids, "sessions of {user}");
            let view = self.state.user_view(user).unwrap();
            let key = |r: &&SessionRecord| (r.status().rank(), r.last_activity());
            let best = records.iter().map(key).max();
            let best_manuals: Vec<_> = records
                .iter()
                .filter(|r| Some(key(r)) == best)
                .map(|r| r.manual())
                .collect();
            let best_status = records.iter().max_by_key(|r| key(r)).map(|r| r.status());
            assert_eq!(view.status, UserStatus::from_best(best_status), "{user}");
            assert!(best_manuals.contains(&view.manual), "manual of {user}");
            assert_eq!(view.session_count, records.len());
            // Activity alone may change which session is best (ties go to
            // the latest); it is published within the coalescing window.
            let settled = records
                .iter()
                .all(|r| r.last_activity <= r.published_activity);
            let published = &self.users_published[user];
            assert_eq!(
                (published.status, published.session_count),
                (view.status, view.session_count),
                "last published user {user}"
            );
            if settled {
                assert_eq!(published.manual, view.manual, "last published {user}");
            }
        }
        for (user, published) in &self.users_published {
            if !by_user.contains_key(user) {
                assert_eq!(published.status, UserStatus::Offline, "{user} went offline");
                assert_eq!(published.session_count, 0);
            }
        }
    }

    fn check_counters(&self) {
        let mut expected = Counters::default();
        let mut started: BTreeMap<i64, u64> = BTreeMap::new();
        for record in self.state.sessions() {
            expected.add(record, 1);
            *started.entry(day_of(record.connected_at())).or_insert(0) += 1;
        }
        assert_eq!(
            without_zeros(self.state.counters()),
            without_zeros(&expected),
            "counters against a recount"
        );
        assert_eq!(self.state.started_by_day(0), started, "started by day");
    }

    fn check_sessions(&self) {
        let live: HashSet<SessionId> = self.state.sessions().map(|r| r.id()).collect();
        for (id, ended) in &self.ended {
            let expected = usize::from(!live.contains(id));
            assert_eq!(*ended, expected, "Ended events of {id}");
        }
        assert_eq!(
            self.sessions_published
                .keys()
                .copied()
                .collect::<HashSet<_>>(),
            live,
            "every live session was published, no ended one is left"
        );
        for record in self.state.sessions() {
            let now = record.view(self.now);
            let published = &self.sessions_published[&record.id()];
            assert_eq!(
                visible(published),
                visible(&now),
                "last published view of {}",
                record.id()
            );
            if *record.node_id() == local_node() {
                let derived = derive_status(record.last_activity(), record.manual(), self.now, T);
                assert_eq!(record.status(), derived, "no deadline missed");
            }
        }
    }

    fn check_rooms(&self) {
        let mut expected: BTreeMap<RoomName, (BTreeSet<UserId>, usize)> = BTreeMap::new();
        for record in self.state.sessions() {
            let org = record.org().and_then(RoomName::of_org);
            let explicit = record.rooms().iter().filter(|r| !r.is_org()).cloned();
            let rooms: BTreeSet<RoomName> = org.into_iter().chain(explicit).collect();
            for room in rooms {
                let entry = expected.entry(room).or_default();
                entry.0.insert(record.user_id().clone());
                entry.1 += 1;
            }
        }
        let expected: BTreeMap<RoomName, (usize, usize)> = expected
            .into_iter()
            .map(|(room, (users, sessions))| (room, (users.len(), sessions)))
            .collect();
        let summaries: BTreeMap<RoomName, (usize, usize)> = self
            .state
            .rooms()
            .summaries()
            .into_iter()
            .map(|s| (s.room, (s.members, s.sessions)))
            .collect();
        assert_eq!(summaries, expected, "room summaries against a recount");
    }

    /// Follows the most users online at once in a day, after `changes`
    /// the map was told of as happening `at`: the first start or end of a
    /// day begins it with as many as were online before. (A session whose
    /// grace ran out ends when its socket dropped, so one that dropped
    /// before midnight was not online at midnight.)
    fn note_online(&mut self, changes: &[Change], at: Millis) {
        let starts_or_ends = changes.iter().any(|change| {
            matches!(
                change,
                Change::Session {
                    event: SessionEvent::Started | SessionEvent::Ended,
                    ..
                }
            )
        });
        if !starts_or_ends {
            return;
        }
        if day_of(at) > self.peak.0 {
            self.peak = (day_of(at), self.online);
        }
        self.online = self.state.online_users();
        self.peak.1 = self.peak.1.max(self.online);
    }

    /// Today's peak: the most users online at once since the day's first
    /// start or end, or (none yet) those online now.
    fn check_peak(&self) {
        let today = day_of(self.now);
        let users = if self.peak.0 == today {
            self.peak.1
        } else {
            self.state.online_users()
        };
        let peak = self.state.peak_today(self.now);
        assert_eq!((peak.day, peak.users), (today, users), "today's peak");
    }

    /// The end of the run: coalesced activity and every room's batch go
    /// out.
    fn finish(&mut self) {
        self.apply(Op::Advance {
            by: ACTIVITY_COALESCE_MS,
        });
        assert!(
            self.state
                .sessions()
                .filter(|r| *r.node_id() == local_node())
                .all(|r| r.last_activity <= r.published_activity),
            "activity is published within {ACTIVITY_COALESCE_MS} ms"
        );
        for room in every_room() {
            self.publish_room(&room);
        }
        let current: BTreeSet<(RoomName, UserId)> = every_room()
            .into_iter()
            .flat_map(|room| {
                self.state
                    .rooms()
                    .current_members(&room)
                    .into_iter()
                    .map(move |m| (room.clone(), m.user_id))
            })
            .collect();
        assert_eq!(self.members, current, "members announced are the members");
    }
}

/// What the engine's timer does for a session whose deadline came, and
/// when the map is told it happened.
fn fire(
    state: &mut PresenceState,
    id: SessionId,
    observed: Option<Millis>,
    now: Millis,
) -> (Vec<Change>, Millis) {
    if let Some(at) = observed {
        state.observe_activity(id, at);
    }
    if let Some((cause, ended_at)) = state.lifetime_end(id, now) {
        return (state.end(id, cause, ended_at), ended_at);
    }
    if state.http_expired(id, now) {
        return (state.end(id, EndCause::Timeout, now), now);
    }
    (state.refresh(id, now), now)
}

/// What the engine does with an HTTP heartbeat of a session it holds.
fn heartbeat(state: &mut PresenceState, id: SessionId, active: bool, now: Millis) -> Vec<Change> {
    let http = state
        .session(id)
        .is_some_and(|s| s.transport() == Transport::Http);
    if !http || state.http_expired(id, now) {
        return Vec::new();
    }
    state.record_heartbeat(id, now);
    if active {
        state.record_activity(id, now, None, now)
    } else {
        state.refresh(id, now)
    }
}

fn renewal(
    state: &PresenceState,
    id: SessionId,
    org: Option<usize>,
    only_docs: bool,
    expires_at: Option<Millis>,
) -> Renewal {
    Renewal {
        name: state.session(id).and_then(|s| s.name.clone()),
        org: org.map(|o| ORGS[o].to_string()),
        expires_at,
        rooms: if only_docs {
            RoomGrant::Listed(vec!["doc:*".to_string()])
        } else {
            RoomGrant::Any
        },
    }
}

/// A session view without what moves without being published at once:
/// activity (coalesced), duration and traffic.
fn visible(view: &SessionView) -> SessionView {
    SessionView {
        last_activity: 0,
        duration_s: 0.0,
        traffic: Traffic::default(),
        rtt_ms: None,
        ..view.clone()
    }
}

fn without_zeros(counters: &Counters) -> Vec<String> {
    fn kept<K: std::fmt::Debug>(map: &HashMap<K, usize>) -> BTreeSet<String> {
        map.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k:?}={n}"))
            .collect()
    }
    [
        kept(&counters.by_status),
        kept(&counters.by_device_type),
        kept(&counters.by_node),
        kept(&counters.by_transport),
        kept(&counters.by_country),
        kept(&counters.by_org),
    ]
    .into_iter()
    .map(|set| set.into_iter().collect::<Vec<_>>().join(","))
    .collect()
}

proptest! {
    #![proptest_config(crate::model::strategies::bounded(256))]

    #[test]
    fn the_map_agrees_with_a_recount_after_every_step(
        grace in prop_oneof![Just(0), Just(2_000_i64)],
        max_age in prop_oneof![Just(0), Just(40_000_i64)],
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut run = Run::new(grace, max_age);
        for op in ops {
            run.apply(op);
        }
        run.finish();
    }
}
