//! Owns the contract's `User` JSON object.

use serde::{Deserialize, Serialize};

use super::ids::UserId;
use super::status::{ManualStatus, UserStatus};
use super::time::{Millis, deserialize_opt_time, serialize_opt_time};

/// The contract's `User` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    /// User id.
    pub user_id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// Organisation.
    pub org: Option<String>,
    /// The `email` identity claim (v1.1 §9).
    #[serde(default)]
    pub email: Option<String>,
    /// The `team` identity claim (v1.1 §9).
    #[serde(default)]
    pub team: Option<String>,
    /// Best session status, or offline.
    pub status: UserStatus,
    /// Manual status of the most present session.
    pub manual: Option<ManualStatus>,
    /// Live sessions.
    pub session_count: usize,
    /// Earliest `connected_at` of the live sessions.
    #[serde(
        serialize_with = "serialize_opt_time",
        deserialize_with = "deserialize_opt_time"
    )]
    pub online_since: Option<Millis>,
    /// Latest activity over the live sessions (or the last known one).
    #[serde(
        serialize_with = "serialize_opt_time",
        deserialize_with = "deserialize_opt_time"
    )]
    pub last_activity: Option<Millis>,
}

/// An online user and its live sessions, newest first
/// (`GET /api/v1/users/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserDetail {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// Its live sessions, newest `connected_at` first.
    pub sessions: Vec<super::SessionView>,
}
