//! Owns the presence map itself: every live session, the per-user
//! aggregates and the counters stats are read from.
//!
//! Pure: no tokio, no I/O, no clock. Every operation takes `now` and returns
//! the `Change`s an admin must see, in order. Only the engine holds a
//! `&mut PresenceState`.

mod counters;
mod lifetime;
mod record;
mod rooms;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use counters::{Counters, Peak};
use counters::{bump, device_type_of};
pub use lifetime::Renewal;
pub use record::{NewSession, SessionRecord};
pub use rooms::RoomIndex;
use users::{UserEntry, UserSummary, offline_view, summarise};

use super::derive::{Thresholds, derive_status, next_transition_at};
use super::liveness::TrafficCounters;
use crate::model::time::day_of;
use crate::model::timeline::{Timeline, TimelineKind};
use crate::model::{Change, SessionEvent};
use crate::model::{
    Day, EndCause, ManualStatus, MetaUpdate, Millis, NodeId, SessionId, SessionStatus, SessionView,
    Transport, UserId, UserView,
};

/// Activity-only updates are published at most this often per session.
pub const ACTIVITY_COALESCE_MS: Millis = 1_000;

/// The presence map: live sessions, per-user aggregates, counters.
#[derive(Debug)]
pub struct PresenceState {
    sessions: HashMap<SessionId, SessionRecord>,
    users: HashMap<UserId, UserEntry>,
    counters: Counters,
    started_live: BTreeMap<Day, u64>,
    peak: Peak,
    thresholds: Thresholds,
    http_ttl: Millis,
    /// How long a dropped session waits for a resume (0: it ends at once).
    resume_grace: Millis,
    /// Longest session life (0: no limit).
    max_age: Millis,
    rooms: RoomIndex,
    timeline_limit: usize,
}

impl PresenceState {
    /// An empty map with the given thresholds.
    pub fn new(thresholds: Thresholds, http_ttl: Millis) -> Self {
        Self {
            sessions: HashMap::new(),
            users: HashMap::new(),
            counters: Counters::default(),
            started_live: BTreeMap::new(),
            peak: Peak::default(),
            thresholds,
            http_ttl,
            resume_grace: 0,
            max_age: 0,
            rooms: RoomIndex::default(),
            timeline_limit: crate::model::timeline::DEFAULT_TIMELINE_LIMIT,
        }
    }

    /// Keeps at most `limit` timeline entries per session
    /// (`PRESENCE_TIMELINE_LIMIT`).
    pub fn with_timeline_limit(mut self, limit: usize) -> Self {
        self.timeline_limit = limit;
        self
    }

    /// Appends a timeline entry to a live session (rooms, resume and any
    /// other feature record their changes through this).
    pub fn record_timeline(
        &mut self,
        id: SessionId,
        kind: TimelineKind,
        from: Option<String>,
        to: Option<String>,
        now: Millis,
    ) {
        if let Some(record) = self.sessions.get_mut(&id) {
            record.note(kind, from, to, now);
        }
    }

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

    /// Shares the connection's traffic counters with a session's record.
    pub fn attach_traffic(&mut self, id: SessionId, traffic: Arc<TrafficCounters>) {
        if let Some(record) = self.sessions.get_mut(&id) {
            record.traffic = traffic;
        }
    }

    /// Counts one HTTP heartbeat exchange of a session.
    pub fn count_http(&mut self, id: SessionId, bytes_in: usize, bytes_out: usize) {
        if let Some(record) = self.sessions.get(&id) {
            record.traffic.count_in(bytes_in);
            record.traffic.count_out(bytes_out);
        }
    }

    /// Adds a session to the map, its user and the counters.
    fn insert(&mut self, record: SessionRecord, now: Millis) -> Vec<Change> {
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
            sessions: Vec::new(),
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
        self.sessions.insert(id, record);
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
        self.sessions.insert(id, record);
        let mut changes = vec![Change::Session {
            event: SessionEvent::Updated,
            session: view,
        }];
        changes.extend(self.user_change(&user_id));
        changes
    }

    /// A replica whose owner ended it (the view carries cause and time).
    pub fn end_replica(&mut self, view: &SessionView) -> Vec<Change> {
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

    /// The live sessions another node holds.
    pub fn sessions_of_node(&self, node: &NodeId) -> Vec<SessionId> {
        self.sessions
            .values()
            .filter(|s| s.node_id == *node)
            .map(|s| s.id)
            .collect()
    }

    /// The oldest sessions of `user` beyond `limit` (0 = none), oldest first.
    pub fn over_limit(&self, user: &UserId, limit: usize) -> Vec<SessionId> {
        let Some(entry) = self.users.get(user) else {
            return Vec::new();
        };
        if limit == 0 || entry.sessions.len() <= limit {
            return Vec::new();
        }
        let mut sessions: Vec<&SessionRecord> = entry
            .sessions
            .iter()
            .filter_map(|id| self.sessions.get(id))
            .collect();
        // Stable: equal times keep insertion order, so the newest stays.
        sessions.sort_by_key(|record| record.connected_at);
        let excess = sessions.len() - limit;
        sessions
            .iter()
            .take(excess)
            .map(|record| record.id)
            .collect()
    }

    /// Takes in activity the engine read from the session's liveness, without
    /// publishing anything yet.
    pub fn observe_activity(&mut self, id: SessionId, at: Millis) {
        if let Some(record) = self.sessions.get_mut(&id) {
            record.last_activity = record.last_activity.max(at);
        }
    }

    /// Activity reported by a client (`ping`, or an active heartbeat).
    pub fn record_activity(
        &mut self,
        id: SessionId,
        at: Millis,
        page: Option<String>,
        now: Millis,
    ) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        record.last_activity = record.last_activity.max(at);
        let page_changed = page.is_some() && page != record.meta.page;
        if page_changed {
            let from = std::mem::replace(&mut record.meta.page, page);
            let to = record.meta.page.clone();
            record.note(TimelineKind::Page, from, to, now);
        }
        let status_changed = self.rederive(id, now);
        if status_changed || page_changed {
            return self.publish_update(id, now);
        }
        self.publish_activity_if_due(id, now)
    }

    /// Sets or clears the manual status.
    pub fn set_manual(
        &mut self,
        id: SessionId,
        manual: Option<ManualStatus>,
        now: Millis,
    ) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if record.manual == manual {
            return Vec::new();
        }
        let name = |m: Option<ManualStatus>| {
            serde_json::to_value(m?)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        };
        record.note(TimelineKind::Manual, name(record.manual), name(manual), now);
        record.manual = manual;
        self.rederive(id, now);
        self.publish_update(id, now)
    }

    /// Applies `hello` metadata (or heartbeat metadata).
    pub fn apply_meta(&mut self, id: SessionId, update: MetaUpdate, now: Millis) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        let before = record.meta.clone();
        let old_device_type = device_type_of(record);
        record.meta.merge(update);
        if record.meta == before {
            return Vec::new();
        }
        if record.meta.page != before.page {
            let to = record.meta.page.clone();
            record.note(TimelineKind::Page, before.page, to, now);
        }
        let new_device_type = device_type_of(record);
        if new_device_type != old_device_type {
            bump(&mut self.counters.by_device_type, old_device_type, -1);
            bump(&mut self.counters.by_device_type, new_device_type, 1);
        }
        self.publish_update(id, now)
    }

    /// An HTTP heartbeat kept the session alive at `now`.
    pub fn record_heartbeat(&mut self, id: SessionId, now: Millis) {
        if let Some(record) = self.sessions.get_mut(&id) {
            record.last_heartbeat = now;
        }
    }

    /// True when an HTTP session has had no heartbeat for the TTL.
    pub fn http_expired(&self, id: SessionId, now: Millis) -> bool {
        self.sessions.get(&id).is_some_and(|record| {
            record.transport == Transport::Http
                && now >= record.last_heartbeat.saturating_add(self.http_ttl)
        })
    }

    /// Brings a session up to date with time passing: status transitions and
    /// the trailing edge of coalesced activity.
    pub fn refresh(&mut self, id: SessionId, now: Millis) -> Vec<Change> {
        if self.rederive(id, now) {
            return self.publish_update(id, now);
        }
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if record.activity_check_at.is_some_and(|at| at <= now) {
            record.activity_check_at = None;
        }
        // Activity seen only through liveness (a report the engine never
        // got) is published here, within the coalescing rule.
        self.publish_activity_if_due(id, now)
    }

    /// Ends a session with `cause`; nothing when it is not live.
    pub fn end(&mut self, id: SessionId, cause: EndCause, now: Millis) -> Vec<Change> {
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
        Some(record)
    }

    /// When the session next needs the engine's attention.
    pub fn next_deadline(&self, id: SessionId) -> Option<Millis> {
        let record = self.sessions.get(&id)?;
        let transition = next_transition_at(record.last_activity, record.status, self.thresholds);
        let expiry = (record.transport == Transport::Http)
            .then(|| record.last_heartbeat.saturating_add(self.http_ttl));
        [transition, record.activity_check_at, expiry]
            .into_iter()
            .flatten()
            .chain(self.lifetime_deadline(record))
            .min()
    }

    /// One live session.
    pub fn session(&self, id: SessionId) -> Option<&SessionRecord> {
        self.sessions.get(&id)
    }

    /// Every live session.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionRecord> {
        self.sessions.values()
    }

    /// The live sessions of one user.
    pub fn sessions_of(&self, user: &UserId) -> Vec<SessionId> {
        self.users
            .get(user)
            .map(|entry| entry.sessions.clone())
            .unwrap_or_default()
    }

    /// Every online user.
    pub fn user_ids(&self) -> impl Iterator<Item = &UserId> {
        self.users.keys()
    }

    /// Number of online users.
    pub fn online_users(&self) -> usize {
        self.users.len()
    }

    /// The maintained counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Live sessions by the UTC day they started, for days `>= since`.
    pub fn started_by_day(&self, since: Day) -> BTreeMap<Day, u64> {
        self.started_live
            .range(since..)
            .map(|(d, n)| (*d, *n))
            .collect()
    }

    /// Takes in a peak recorded before this process started (the records
    /// store keeps the day's peak across restarts); a lower one is ignored.
    pub fn seed_peak(&mut self, peak: Peak, now: Millis) {
        let today = self.peak_today(now);
        if peak.day == today.day && peak.users > today.users {
            self.peak = peak;
        }
    }

    /// Today's peak of online users (a new day starts from the current count).
    pub fn peak_today(&self, now: Millis) -> Peak {
        if self.peak.day == day_of(now) {
            self.peak
        } else {
            // No change yet today: whoever is online has been since midnight.
            let day = day_of(now);
            Peak {
                day,
                users: self.users.len(),
                at: day * 86_400_000,
            }
        }
    }

    fn track_peak(&mut self, now: Millis) {
        let today = self.peak_today(now);
        let online = self.users.len();
        self.peak = if online > today.users {
            Peak {
                day: today.day,
                users: online,
                at: now,
            }
        } else {
            today
        };
    }

    /// The contract view of an online user.
    pub fn user_view(&self, user: &UserId) -> Option<UserView> {
        let entry = self.users.get(user)?;
        let records: Vec<&SessionRecord> = entry
            .sessions
            .iter()
            .filter_map(|id| self.sessions.get(id))
            .collect();
        let summary = summarise(&records);
        Some(UserView {
            user_id: user.clone(),
            name: entry.name.clone(),
            org: entry.org.clone(),
            email: entry.email.clone(),
            team: entry.team.clone(),
            status: summary.status,
            manual: summary.manual,
            session_count: summary.session_count,
            online_since: records.iter().map(|r| r.connected_at).min(),
            last_activity: records.iter().map(|r| r.last_activity).max(),
        })
    }

    /// Re-derives the status of a session at `now`; true when it changed.
    fn rederive(&mut self, id: SessionId, now: Millis) -> bool {
        let Some(record) = self.sessions.get_mut(&id) else {
            return false;
        };
        let status = derive_status(record.last_activity, record.manual, now, self.thresholds);
        if status == record.status {
            return false;
        }
        self.counters.move_status(record.status, status);
        record.note(
            TimelineKind::Status,
            Some(record.status.as_str().to_string()),
            Some(status.as_str().to_string()),
            now,
        );
        record.status = status;
        true
    }

    fn publish_activity_if_due(&mut self, id: SessionId, now: Millis) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if record.last_activity <= record.published_activity {
            return Vec::new();
        }
        if now - record.published_at >= ACTIVITY_COALESCE_MS {
            return self.publish_update(id, now);
        }
        record
            .activity_check_at
            .get_or_insert(record.published_at + ACTIVITY_COALESCE_MS);
        Vec::new()
    }

    /// Publishes the session as it is now, plus the user change it causes.
    fn publish_update(&mut self, id: SessionId, now: Millis) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        record.published_activity = record.last_activity;
        record.published_at = now;
        // Pings on an active session may go unreported for up to a second;
        // look once more then, so the latest value is always delivered.
        record.activity_check_at = (record.status == SessionStatus::Active
            && record.transport == Transport::Ws)
            .then_some(now + ACTIVITY_COALESCE_MS);
        let user_id = record.user_id.clone();
        let mut changes = vec![Change::Session {
            event: SessionEvent::Updated,
            session: record.view(now),
        }];
        changes.extend(self.user_change(&user_id));
        changes
    }

    /// The user change to publish, if status, count or manual changed.
    fn user_change(&mut self, user: &UserId) -> Option<Change> {
        let entry = self.users.get(user)?;
        if entry.sessions.is_empty() {
            let entry = self.users.remove(user)?;
            return Some(Change::User(offline_view(user, &entry)));
        }
        let view = self.user_view(user)?;
        let summary = UserSummary {
            status: view.status,
            manual: view.manual,
            session_count: view.session_count,
        };
        let entry = self.users.get_mut(user)?;
        if entry.published == Some(summary) {
            return None;
        }
        entry.published = Some(summary);
        Some(Change::User(view))
    }
}

#[cfg(test)]
mod tests;
