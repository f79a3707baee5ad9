//! Owns the counts the map keeps up to date on every change (sessions by
//! status, device type, node, transport and org; live sessions by start
//! day; today's peak, and a peak from before a restart taken in), so stats
//! and metrics never scan the sessions.

use std::collections::{BTreeMap, HashMap};

use super::PresenceState;
use super::record::SessionRecord;
use crate::model::time::day_of;
use crate::model::{Day, Millis, NodeId, SessionStatus, Transport};

/// Live counts kept up to date on every change, so stats never scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Live sessions per status (active, idle, away).
    pub by_status: HashMap<SessionStatus, usize>,
    /// Live sessions per device type.
    pub by_device_type: HashMap<String, usize>,
    /// Live sessions per node.
    pub by_node: HashMap<NodeId, usize>,
    /// Live sessions per transport.
    pub by_transport: HashMap<Transport, usize>,
    /// Live sessions per country (ISO code) of their location; sessions
    /// without one are not counted here.
    pub by_country: HashMap<String, usize>,
    /// Live sessions per organisation (sessions without one are not
    /// counted here).
    pub by_org: HashMap<String, usize>,
}

impl Counters {
    pub(super) fn add(&mut self, record: &SessionRecord, delta: isize) {
        bump(&mut self.by_status, record.status, delta);
        bump(&mut self.by_device_type, device_type_of(record), delta);
        bump(&mut self.by_node, record.node_id.clone(), delta);
        bump(&mut self.by_transport, record.transport, delta);
        if let Some(country) = record
            .meta
            .location
            .as_ref()
            .and_then(|l| l.country.clone())
        {
            bump(&mut self.by_country, country, delta);
        }
        if let Some(org) = &record.org {
            bump(&mut self.by_org, org.clone(), delta);
        }
    }

    pub(super) fn move_status(&mut self, from: SessionStatus, to: SessionStatus) {
        bump(&mut self.by_status, from, -1);
        bump(&mut self.by_status, to, 1);
    }

    pub(super) fn move_org(&mut self, from: Option<String>, to: Option<&String>) {
        if from.as_ref() == to {
            return;
        }
        if let Some(from) = from {
            bump(&mut self.by_org, from, -1);
        }
        if let Some(to) = to {
            bump(&mut self.by_org, to.clone(), 1);
        }
    }
}

pub(super) fn device_type_of(record: &SessionRecord) -> String {
    record
        .meta
        .device
        .device_type
        .clone()
        .unwrap_or_else(|| "unknown".to_string())
}

pub(super) fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K, delta: isize) {
    let count = map.entry(key).or_insert(0);
    *count = count.saturating_add_signed(delta);
}

/// The most users online at once during one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peak {
    /// The day.
    pub day: Day,
    /// Online users at the peak.
    pub users: usize,
    /// When the peak was first reached.
    pub at: Millis,
}

impl PresenceState {
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

    /// Starts a new day's peak from whoever is online, before a change of
    /// who is online: they have been online since midnight.
    pub(super) fn roll_peak_day(&mut self, now: Millis) {
        if day_of(now) > self.peak.day {
            self.peak = self.peak_today(now);
        }
    }

    pub(super) fn track_peak(&mut self, now: Millis) {
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
}
