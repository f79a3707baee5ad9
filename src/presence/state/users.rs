//! Owns the per-user aggregate of the map: which sessions a user has, the
//! summary last published for it, how a user's status is derived from its
//! sessions (the most present session wins), the user's contract view, and
//! the user change a session change causes.

use super::PresenceState;
use super::record::SessionRecord;
use crate::model::{Change, ManualStatus, SessionId, UserId, UserStatus, UserView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UserSummary {
    pub(super) status: UserStatus,
    pub(super) manual: Option<ManualStatus>,
    pub(super) session_count: usize,
}

#[derive(Debug, Clone)]
pub(super) struct UserEntry {
    pub(super) name: Option<String>,
    pub(super) org: Option<String>,
    pub(super) email: Option<String>,
    pub(super) team: Option<String>,
    pub(super) sessions: Vec<SessionId>,
    pub(super) published: Option<UserSummary>,
}

fn offline_view(user: &UserId, entry: &UserEntry) -> UserView {
    UserView {
        user_id: user.clone(),
        name: entry.name.clone(),
        org: entry.org.clone(),
        email: entry.email.clone(),
        team: entry.team.clone(),
        status: UserStatus::Offline,
        manual: None,
        session_count: 0,
        online_since: None,
        last_activity: None,
    }
}

/// The user's status, manual status and count from its sessions: the most
/// present session wins, ties go to the most recent activity.
fn summarise(records: &[&SessionRecord]) -> UserSummary {
    let best = records
        .iter()
        .max_by_key(|record| (record.status.rank(), record.last_activity));
    UserSummary {
        status: UserStatus::from_best(best.map(|record| record.status)),
        manual: best.and_then(|record| record.manual),
        session_count: records.len(),
    }
}

impl PresenceState {
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
            .filter_map(|id| self.sessions.get(id).map(|record| &**record))
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

    /// The contract view of an online user.
    pub fn user_view(&self, user: &UserId) -> Option<UserView> {
        let entry = self.users.get(user)?;
        let records: Vec<&SessionRecord> = entry
            .sessions
            .iter()
            .filter_map(|id| self.sessions.get(id).map(|record| &**record))
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

    /// The user change to publish, if status, count or manual changed.
    pub(super) fn user_change(&mut self, user: &UserId) -> Option<Change> {
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
