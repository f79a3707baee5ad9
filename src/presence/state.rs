//! Owns the presence map itself: every live session, the per-user
//! aggregates and the counters stats are read from.
//!
//! Pure: no tokio, no I/O, no clock. Every operation takes `now` and returns
//! the `Change`s an admin must see, in order. Only the engine holds a
//! `&mut PresenceState`.
//!
//! This file holds the map, its constructor and the reads every part uses;
//! the operations are split by concern: sessions entering and leaving
//! (`state/sessions.rs`), what a session reports and what time does to it
//! (`state/activity.rs`), per-user aggregates (`state/users.rs`), counters
//! and today's peak (`state/counters.rs`), ends that come by themselves
//! (`state/lifetime.rs`) and rooms (`state/rooms.rs`).

mod activity;
mod counters;
mod lifetime;
mod record;
mod rooms;
mod sessions;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use counters::{Counters, Peak};
pub use lifetime::Renewal;
pub use record::{NewSession, SessionRecord};
pub use rooms::RoomIndex;
use users::UserEntry;

use super::derive::{Thresholds, next_transition_at};
use super::liveness::TrafficCounters;
use crate::model::{Day, Millis, SessionId, Transport, UserId};

/// Activity-only updates are published at most this often per session.
pub const ACTIVITY_COALESCE_MS: Millis = 1_000;

/// The presence map: live sessions, per-user aggregates, counters.
#[derive(Debug)]
pub struct PresenceState {
    sessions: HashMap<SessionId, Box<SessionRecord>>,
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
        self.sessions.get(&id).map(|record| &**record)
    }

    /// Every live session.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionRecord> {
        self.sessions.values().map(|record| &**record)
    }

    /// The maintained counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
