//! Owns what a live session reports and what time does to it: activity,
//! manual status, metadata and HTTP heartbeats; re-deriving the status as
//! time passes; and publishing updates, with activity-only updates
//! coalesced to one per `ACTIVITY_COALESCE_MS` per session.

use super::counters::{bump, device_type_of};
use super::{ACTIVITY_COALESCE_MS, PresenceState};
use crate::model::timeline::TimelineKind;
use crate::model::{Change, SessionEvent};
use crate::model::{ManualStatus, MetaUpdate, Millis, SessionId, SessionStatus, Transport};
use crate::presence::derive::derive_status;

impl PresenceState {
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
    pub(super) fn publish_update(&mut self, id: SessionId, now: Millis) -> Vec<Change> {
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
}
