//! Owns `Spans`: what the analytics keep of each session, a few numbers,
//! its user and its durations group, with users and group keys interned.
//! Sessions are added one at a time as the records store returns them, so
//! a 30-day range costs about 40 bytes per session, not a whole
//! `SessionView` each.

use std::collections::HashMap;

use super::GroupBy;
use crate::model::{Millis, SessionView};

/// One session as the analytics see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Span {
    /// Index into `Spans::users`' interned ids.
    pub user: u32,
    /// Index into `Spans::keys`.
    pub key: u32,
    pub connected_at: Millis,
    pub ended_at: Option<Millis>,
    pub duration_s: f64,
}

/// The sessions of one analytics request.
#[derive(Debug)]
pub struct Spans {
    group_by: GroupBy,
    users: HashMap<String, u32>,
    keys: Vec<Option<String>>,
    key_index: HashMap<Option<String>, u32>,
    spans: Vec<Span>,
}

impl Spans {
    /// No sessions yet; durations will be grouped by `group_by`.
    pub fn new(group_by: GroupBy) -> Self {
        Self {
            group_by,
            users: HashMap::new(),
            keys: Vec::new(),
            key_index: HashMap::new(),
            spans: Vec::new(),
        }
    }

    /// `sessions`, durations grouped by `group_by`.
    pub fn of<'a>(sessions: impl IntoIterator<Item = &'a SessionView>, group_by: GroupBy) -> Self {
        let mut spans = Self::new(group_by);
        for session in sessions {
            spans.add(session);
        }
        spans
    }

    /// Keeps what the analytics need of `session`.
    pub fn add(&mut self, session: &SessionView) {
        let user = self.intern_user(session.user_id.as_str());
        let key = self.intern_key(group_key(session, self.group_by));
        self.spans.push(Span {
            user,
            key,
            connected_at: session.connected_at,
            ended_at: session.ended_at,
            duration_s: session.duration_s,
        });
    }

    fn intern_user(&mut self, user: &str) -> u32 {
        if let Some(&index) = self.users.get(user) {
            return index;
        }
        let index = u32::try_from(self.users.len()).unwrap_or(u32::MAX);
        self.users.insert(user.to_string(), index);
        index
    }

    fn intern_key(&mut self, key: Option<String>) -> u32 {
        if let Some(&index) = self.key_index.get(&key) {
            return index;
        }
        let index = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.push(key.clone());
        self.key_index.insert(key, index);
        index
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Span> {
        self.spans.iter()
    }

    pub(super) fn user_count(&self) -> usize {
        self.users.len()
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn key(&self, index: usize) -> Option<String> {
        self.keys.get(index).cloned().flatten()
    }

    pub(super) fn group_by(&self) -> GroupBy {
        self.group_by
    }
}

fn group_key(session: &SessionView, group_by: GroupBy) -> Option<String> {
    match group_by {
        GroupBy::None => None,
        GroupBy::DeviceType => session.device.device_type.clone(),
        GroupBy::Org => session.org.clone(),
        GroupBy::App => session.app.as_ref().and_then(|app| app.name.clone()),
        GroupBy::EndCause => session.end_cause.map(|cause| cause.as_str().to_string()),
    }
}
