//! Owns room membership (contract v1.1 §8), computed from the sessions of
//! the map: every session is in `org:<its org>`, plus the explicit rooms it
//! joined. Members are users; each room keeps the members it last published,
//! and the users whose member may have changed since (the dirty set).
//!
//! Pure: no tokio, no clock. It learns about sessions from the same session
//! views the admin feed sees (`observe`, `forget`), so local sessions and
//! replicas of other nodes are treated alike, and it says which rooms are
//! due for a batch (`take_due`). It does not know who watches a room: that
//! is `presence::rooms` (the fan-out).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::timeline::TimelineKind;
use crate::model::{Change, SessionEvent};
use crate::model::{
    ManualStatus, Member, MemberChange, MemberEvent, Millis, RoomName, RoomSummary, SessionId,
    SessionStatus, SessionView, UserId, UserStatus,
};

/// Changes of a room with fewer members than this are batched for
/// `SMALL_ROOM_WINDOW_MS`, larger rooms for `LARGE_ROOM_WINDOW_MS`.
pub const LARGE_ROOM_MEMBERS: usize = 1_000;
/// Batch window of a small room.
pub const SMALL_ROOM_WINDOW_MS: Millis = 25;
/// Batch window of a large room (the contract allows up to 100 ms).
pub const LARGE_ROOM_WINDOW_MS: Millis = 100;

/// What a room needs to know about one session.
#[derive(Debug, Clone)]
struct Presence {
    user: UserId,
    name: Option<String>,
    status: SessionStatus,
    manual: Option<ManualStatus>,
    page: Option<String>,
    last_activity: Millis,
    /// Every room the session is in, and when it entered each.
    rooms: Entered,
}

/// The rooms of one session and when it entered each: a session is in
/// one or a few rooms, so a small list, not a map.
#[derive(Debug, Clone, Default)]
struct Entered(Vec<(RoomName, Millis)>);

impl Entered {
    fn insert(&mut self, room: RoomName, at: Millis) {
        self.0.push((room, at));
    }

    /// Removes `room`, saying when it was entered.
    fn take(&mut self, room: &RoomName) -> Option<Millis> {
        let index = self.0.iter().position(|(r, _)| r == room)?;
        Some(self.0.swap_remove(index).1)
    }

    fn entered(&self, room: &RoomName) -> Option<Millis> {
        self.0.iter().find(|(r, _)| r == room).map(|(_, at)| *at)
    }

    fn rooms(&self) -> impl Iterator<Item = &RoomName> {
        self.0.iter().map(|(room, _)| room)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Default)]
struct Room {
    /// The room's sessions by user.
    users: HashMap<UserId, Vec<SessionId>>,
    /// What watchers were last told.
    published: HashMap<UserId, Member>,
    /// Users whose member may differ from `published`.
    dirty: HashSet<UserId>,
    /// When the pending batch is due.
    due_at: Option<Millis>,
    sessions: usize,
}

/// Every room and its members.
#[derive(Debug, Default)]
pub struct RoomIndex {
    sessions: HashMap<SessionId, Presence>,
    rooms: HashMap<RoomName, Room>,
    due: BTreeSet<(Millis, RoomName)>,
}

impl RoomIndex {
    /// Takes in a session as it is now (started or updated).
    pub fn observe(&mut self, view: &SessionView, now: Millis) {
        let id = view.session_id;
        let mut old = self.sessions.remove(&id);
        let wanted = rooms_of(view);
        let mut kept = Entered(Vec::with_capacity(wanted.len()));
        for room in wanted {
            let entered = match old.as_mut().and_then(|old| old.rooms.take(&room)) {
                Some(at) => at,
                None => {
                    self.enter(&room, &view.user_id, id);
                    if room.is_org() {
                        view.connected_at.min(now)
                    } else {
                        now
                    }
                }
            };
            self.mark(&room, &view.user_id, now);
            kept.insert(room, entered);
        }
        // What is left of the old rooms is what the session left.
        if let Some(old) = &old {
            for room in old.rooms.rooms() {
                self.exit(room, &old.user, id);
                self.mark(room, &old.user, now);
            }
        }
        if kept.is_empty() {
            // In no room at all: nothing to remember.
            return;
        }
        self.sessions.insert(
            id,
            Presence {
                user: view.user_id.clone(),
                name: view.name.clone(),
                status: view.status,
                manual: view.manual,
                page: view.page.clone(),
                last_activity: view.last_activity,
                rooms: kept,
            },
        );
    }

    /// A session ended: it leaves every room.
    pub fn forget(&mut self, id: SessionId, now: Millis) {
        let Some(old) = self.sessions.remove(&id) else {
            return;
        };
        for room in old.rooms.rooms() {
            self.exit(room, &old.user, id);
            self.mark(room, &old.user, now);
        }
    }

    fn enter(&mut self, room: &RoomName, user: &UserId, id: SessionId) {
        let entry = self.rooms.entry(room.clone()).or_default();
        entry
            .users
            .entry(user.clone())
            .or_insert_with(|| Vec::with_capacity(1))
            .push(id);
        entry.sessions += 1;
    }

    fn exit(&mut self, room: &RoomName, user: &UserId, id: SessionId) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(sessions) = entry.users.get_mut(user) {
            let before = sessions.len();
            sessions.retain(|other| *other != id);
            entry.sessions -= before - sessions.len();
            if sessions.is_empty() {
                entry.users.remove(user);
            }
        }
    }

    /// Notes that `user`'s member in `room` may have changed.
    fn mark(&mut self, room: &RoomName, user: &UserId, now: Millis) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        entry.dirty.insert(user.clone());
        if entry.due_at.is_none() {
            let window = if entry.published.len() >= LARGE_ROOM_MEMBERS {
                LARGE_ROOM_WINDOW_MS
            } else {
                SMALL_ROOM_WINDOW_MS
            };
            entry.due_at = Some(now + window);
            self.due.insert((now + window, room.clone()));
        }
    }

    /// When the earliest pending batch is due.
    pub fn next_due(&self) -> Option<Millis> {
        self.due.first().map(|(at, _)| *at)
    }

    /// The rooms whose batch is due at `now`.
    pub fn take_due(&mut self, now: Millis) -> Vec<RoomName> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.due.first() {
            if *at > now {
                break;
            }
            if let Some((_, room)) = self.due.pop_first() {
                due.push(room);
            }
        }
        due
    }

    /// True when `room` has changes not yet published.
    pub fn is_dirty(&self, room: &RoomName) -> bool {
        self.rooms.get(room).is_some_and(|r| !r.dirty.is_empty())
    }

    /// Publishes what changed in `room` since its last batch: at most one
    /// change per user, in user order. A room with no member left is dropped.
    pub fn take_changes(&mut self, room: &RoomName) -> Vec<MemberChange> {
        let sessions = &self.sessions;
        let Some(entry) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        if let Some(at) = entry.due_at.take() {
            self.due.remove(&(at, room.clone()));
        }
        let mut users: Vec<UserId> = entry.dirty.drain().collect();
        users.sort();
        let mut changes = Vec::new();
        for user in users {
            let current = member_of(sessions, room, entry, &user);
            changes.extend(publish_member(&mut entry.published, user, current));
        }
        if entry.users.is_empty() && entry.published.is_empty() {
            self.rooms.remove(room);
        }
        changes
    }

    /// The members watchers were last told about, oldest member first.
    pub fn published_members(&self, room: &RoomName) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .rooms
            .get(room)
            .map(|entry| entry.published.values().cloned().collect())
            .unwrap_or_default();
        sort_members(&mut members);
        members
    }

    /// The members of `room` as they are now, oldest member first.
    pub fn current_members(&self, room: &RoomName) -> Vec<Member> {
        let Some(entry) = self.rooms.get(room) else {
            return Vec::new();
        };
        let mut members: Vec<Member> = entry
            .users
            .keys()
            .filter_map(|user| member_of(&self.sessions, room, entry, user))
            .collect();
        sort_members(&mut members);
        members
    }

    /// Every room with at least one member.
    pub fn summaries(&self) -> Vec<RoomSummary> {
        self.rooms
            .iter()
            .filter(|(_, entry)| !entry.users.is_empty())
            .map(|(room, entry)| RoomSummary {
                room: room.clone(),
                members: entry.users.len(),
                sessions: entry.sessions,
            })
            .collect()
    }
}

/// The rooms a session view is in: its org room and its explicit rooms.
fn rooms_of(view: &SessionView) -> Vec<RoomName> {
    let mut rooms: Vec<RoomName> = Vec::with_capacity(1 + view.rooms.len());
    rooms.extend(view.org.as_deref().and_then(RoomName::of_org));
    for room in view.rooms.iter().filter(|room| !room.is_org()) {
        if !rooms.contains(room) {
            rooms.push(room.clone());
        }
    }
    rooms
}

/// Records `user`'s member as it is now and says what watchers must be
/// told: join, update (only for a visible difference) or leave.
fn publish_member(
    published: &mut HashMap<UserId, Member>,
    user: UserId,
    current: Option<Member>,
) -> Option<MemberChange> {
    let (event, member) = match (published.get(&user), current) {
        (None, Some(member)) => (MemberEvent::Join, member),
        (Some(old), Some(member)) if old.differs_visibly(&member) => (MemberEvent::Update, member),
        (Some(_), Some(member)) => {
            // Only joined_at or activity moved: kept, not sent.
            published.insert(user, member);
            return None;
        }
        (Some(_), None) => {
            let old = published.remove(&user)?;
            return Some(MemberChange {
                event: MemberEvent::Leave,
                member: old,
            });
        }
        (None, None) => return None,
    };
    published.insert(user, member.clone());
    Some(MemberChange { event, member })
}

fn sort_members(members: &mut [Member]) {
    members.sort_by(|a, b| (a.joined_at, &a.user_id).cmp(&(b.joined_at, &b.user_id)));
}

/// The member `user` is in `room` now, from its sessions there: the best
/// status; manual, page and name of the most present session (ties: most
/// recent activity); page null in `org:` rooms; joined_at the earliest entry.
fn member_of(
    sessions: &HashMap<SessionId, Presence>,
    room: &RoomName,
    entry: &Room,
    user: &UserId,
) -> Option<Member> {
    let ids = entry.users.get(user)?;
    let present: Vec<&Presence> = ids.iter().filter_map(|id| sessions.get(id)).collect();
    let best = present
        .iter()
        .max_by_key(|p| (p.status.rank(), p.last_activity))?;
    let joined_at = present.iter().filter_map(|p| p.rooms.entered(room)).min()?;
    Some(Member {
        user_id: user.clone(),
        name: best
            .name
            .clone()
            .or_else(|| present.iter().find_map(|p| p.name.clone())),
        status: UserStatus::from_best(Some(best.status)),
        manual: best.manual,
        session_count: present.len(),
        page: if room.is_org() {
            None
        } else {
            best.page.clone()
        },
        joined_at,
    })
}

#[cfg(test)]
mod tests;

impl super::PresenceState {
    /// The session joins an explicit room; nothing when it already did.
    pub fn join_room(&mut self, id: SessionId, room: RoomName, now: Millis) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if room.is_org() || record.rooms.contains(&room) {
            return Vec::new();
        }
        record.note(TimelineKind::RoomJoin, None, Some(room.to_string()), now);
        record.rooms.push(room);
        self.publish_update(id, now)
    }

    /// The session leaves an explicit room; nothing when it was not in it.
    pub fn leave_room(&mut self, id: SessionId, room: &RoomName, now: Millis) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        let before = record.rooms.len();
        record.rooms.retain(|other| other != room);
        if record.rooms.len() == before {
            return Vec::new();
        }
        record.note(TimelineKind::RoomLeave, Some(room.to_string()), None, now);
        self.publish_update(id, now)
    }

    /// Brings room membership up to date with a session change (local or
    /// replica), as the admin feed sees it.
    pub fn track_rooms(&mut self, change: &Change, now: Millis) {
        if let Change::Session { event, session } = change {
            match event {
                SessionEvent::Ended => self.rooms.forget(session.session_id, now),
                SessionEvent::Started | SessionEvent::Updated => self.rooms.observe(session, now),
            }
        }
    }

    /// Room membership.
    pub fn rooms(&self) -> &RoomIndex {
        &self.rooms
    }

    /// Room membership, for the engine's batches.
    pub fn rooms_mut(&mut self) -> &mut RoomIndex {
        &mut self.rooms
    }
}
