//! Owns how sessions enter and leave the map: opening a local session,
//! taking in and ending the replicas other nodes publish, and ending a
//! session with a cause. Each keeps the user's entry, the counters, the
//! started-by-day counts and today's peak in step, and returns the
//! `Change`s to publish.

use std::sync::Arc;

use super::users::UserEntry;
use super::{NewSession, PresenceState, SessionRecord};
use crate::model::time::day_of;
use crate::model::timeline::Timeline;
use crate::model::{Change, SessionEvent};
use crate::model::{EndCause, Millis, NodeId, SessionId, SessionStatus, SessionView};

impl PresenceState {
    /// Opens a session that is active at `now`.
    pub fn open(&mut self, new: NewSession, now: Millis) -> Vec<Change> {
        let record = SessionRecord {
            id: new.id,
            user_id: new.user_id,
            name: new.name,
            org: new.org,
            email: new.email,
            team: new.team,
            node_id: new.node_id,
            transport: new.transport,
            connected_at: now,
            last_activity: now,
            last_heartbeat: now,
            manual: None,
            status: SessionStatus::Active,
            meta: new.meta,
            published_activity: now,
            published_at: now,
            activity_check_at: None,
            expires_at: new.expires_at,
            dropped: None,
            rooms: Vec::new(),
            traffic: Arc::default(),
            timeline: Timeline::with_limit(self.timeline_limit),
        };
        self.insert(record, now)
    }

    /// Adds a session to the map, its user and the counters.
    fn insert(&mut self, record: SessionRecord, now: Millis) -> Vec<Change> {
        self.roll_peak_day(now);
        self.counters.add(&record, 1);
        *self
            .started_live
            .entry(day_of(record.connected_at))
            .or_insert(0) += 1;
        let view = record.view(now);
        let (id, user_id) = (record.id, record.user_id.clone());
        let user = self.users.entry(user_id.clone()).or_insert(UserEntry {
            name: None,
            org: None,
            email: None,
            team: None,
            sessions: Vec::with_capacity(1),
            published: None,
        });
        user.sessions.push(id);
        if record.name.is_some() {
            user.name.clone_from(&record.name);
        }
        if record.org.is_some() {
            user.org.clone_from(&record.org);
        }
        if record.email.is_some() {
            user.email.clone_from(&record.email);
        }
        if record.team.is_some() {
            user.team.clone_from(&record.team);
        }
        self.sessions.insert(id, Box::new(record));
        let mut changes = vec![Change::Session {
            event: SessionEvent::Started,
            session: view,
        }];
        changes.extend(self.user_change(&user_id));
        self.track_peak(now);
        changes
    }

    /// A session another node holds, as that node published it.
    pub fn upsert_replica(&mut self, view: SessionView, now: Millis) -> Vec<Change> {
        let record = SessionRecord::from_view(view);
        let Some(old) = self.sessions.get(&record.id) else {
            return self.insert(record, now);
        };
        if old.same_as(&record) {
            return Vec::new();
        }
        self.counters.add(old, -1);
        self.counters.add(&record, 1);
        let (id, user_id) = (record.id, record.user_id.clone());
        let view = record.view(now);
        self.sessions.insert(id, Box::new(record));
        let mut changes = vec![Change::Session {
            event: SessionEvent::Updated,
            session: view,
        }];
        changes.extend(self.user_change(&user_id));
        changes
    }

    /// A replica whose owner ended it (the view carries cause and time),
    /// taken in at `now`.
    pub fn end_replica(&mut self, view: &SessionView, now: Millis) -> Vec<Change> {
        self.roll_peak_day(now);
        let Some(record) = self.remove(view.session_id) else {
            return Vec::new();
        };
        let mut ended = view.clone();
        ended.status = SessionStatus::Ended;
        let mut changes = vec![Change::Session {
            event: SessionEvent::Ended,
            session: ended,
        }];
        changes.extend(self.user_change(&record.user_id));
        changes
    }

    /// Ends a session with `cause`; nothing when it is not live.
    pub fn end(&mut self, id: SessionId, cause: EndCause, now: Millis) -> Vec<Change> {
        self.roll_peak_day(now);
        let Some(record) = self.remove(id) else {
            return Vec::new();
        };
        let mut changes = vec![Change::Session {
            event: SessionEvent::Ended,
            session: record.ended_view(cause, now),
        }];
        changes.extend(self.user_change(&record.user_id));
        changes
    }

    /// Takes a session out of the map, its user and the counters.
    fn remove(&mut self, id: SessionId) -> Option<SessionRecord> {
        let record = self.sessions.remove(&id)?;
        self.counters.add(&record, -1);
        let day = day_of(record.connected_at);
        if let Some(count) = self.started_live.get_mut(&day) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.started_live.remove(&day);
            }
        }
        if let Some(user) = self.users.get_mut(&record.user_id) {
            user.sessions.retain(|other| *other != id);
        }
        Some(*record)
    }

    /// The live sessions another node holds.
    pub fn sessions_of_node(&self, node: &NodeId) -> Vec<SessionId> {
        self.sessions
            .values()
            .filter(|s| s.node_id == *node)
            .map(|s| s.id)
            .collect()
    }
}
