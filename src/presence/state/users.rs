//! Owns the per-user aggregate of the map: which sessions a user has, the
//! summary last published for it, and how a user's status is derived from
//! its sessions (the most present session wins).

use super::record::SessionRecord;
use crate::model::{ManualStatus, SessionId, UserId, UserStatus, UserView};

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

pub(super) fn offline_view(user: &UserId, entry: &UserEntry) -> UserView {
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
pub(super) fn summarise(records: &[&SessionRecord]) -> UserSummary {
    let best = records
        .iter()
        .max_by_key(|record| (record.status.rank(), record.last_activity));
    UserSummary {
        status: UserStatus::from_best(best.map(|record| record.status)),
        manual: best.and_then(|record| record.manual),
        session_count: records.len(),
    }
}
