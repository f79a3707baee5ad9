//! Owns the status vocabulary: session status, user status, manual status,
//! transport and end causes, each serialised with its contract name.

use serde::{Deserialize, Serialize};

/// A session's derived status (or `ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Activity within `idle_after`.
    Active,
    /// No activity for `idle_after`.
    Idle,
    /// No activity for `away_after`, or manual `away`.
    Away,
    /// The session is over.
    Ended,
}

impl SessionStatus {
    /// How present this status is: higher is more present.
    pub fn rank(self) -> u8 {
        match self {
            SessionStatus::Active => 3,
            SessionStatus::Idle => 2,
            SessionStatus::Away => 1,
            SessionStatus::Ended => 0,
        }
    }

    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Idle => "idle",
            SessionStatus::Away => "away",
            SessionStatus::Ended => "ended",
        }
    }

    /// A compact code for atomics shared with connection tasks.
    pub fn to_code(self) -> u8 {
        self.rank()
    }

    /// The inverse of [`SessionStatus::to_code`].
    pub fn from_code(code: u8) -> Self {
        match code {
            3 => SessionStatus::Active,
            2 => SessionStatus::Idle,
            1 => SessionStatus::Away,
            _ => SessionStatus::Ended,
        }
    }
}

/// A user's status: the most present of its sessions, or `offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// At least one session is active.
    Active,
    /// The best session is idle.
    Idle,
    /// The best session is away.
    Away,
    /// No live session.
    Offline,
}

impl UserStatus {
    /// The user status that a best session status gives.
    pub fn from_best(status: Option<SessionStatus>) -> Self {
        match status {
            Some(SessionStatus::Active) => UserStatus::Active,
            Some(SessionStatus::Idle) => UserStatus::Idle,
            Some(SessionStatus::Away) => UserStatus::Away,
            Some(SessionStatus::Ended) | None => UserStatus::Offline,
        }
    }

    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Idle => "idle",
            UserStatus::Away => "away",
            UserStatus::Offline => "offline",
        }
    }
}

/// A status the client sets by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualStatus {
    /// Shown beside the derived status, which it leaves as it is.
    Busy,
    /// Forces the session's status to `away` until cleared.
    Away,
}

impl ManualStatus {
    /// A compact code for atomics (0 is "none").
    pub fn to_code(manual: Option<ManualStatus>) -> u8 {
        match manual {
            None => 0,
            Some(ManualStatus::Busy) => 1,
            Some(ManualStatus::Away) => 2,
        }
    }

    /// The inverse of [`ManualStatus::to_code`].
    pub fn from_code(code: u8) -> Option<ManualStatus> {
        match code {
            1 => Some(ManualStatus::Busy),
            2 => Some(ManualStatus::Away),
            _ => None,
        }
    }
}

/// How a session keeps itself alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A WebSocket on `/ws`.
    Ws,
    /// HTTP heartbeats on `/api/v1/heartbeat`.
    Http,
}

impl Transport {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Http => "http",
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// The client closed the socket or ended its HTTP session.
    ClientClosed,
    /// No frame (WebSocket) or heartbeat (HTTP) for too long.
    Timeout,
    /// An admin deleted the session.
    Terminated,
    /// An admin deleted all of the user's sessions.
    Revoked,
    /// The user opened one session more than the limit.
    SessionLimit,
    /// The node holding the session was lost.
    NodeLost,
    /// The node holding the session shut down.
    Shutdown,
    /// The client broke a protocol limit (rate, bad frames, size).
    Policy,
    /// The session reached `PRESENCE_MAX_SESSION_AGE`.
    MaxAge,
    /// The session's token expired without a new one.
    TokenExpired,
}

impl EndCause {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::ClientClosed => "client_closed",
            EndCause::Timeout => "timeout",
            EndCause::Terminated => "terminated",
            EndCause::Revoked => "revoked",
            EndCause::SessionLimit => "session_limit",
            EndCause::NodeLost => "node_lost",
            EndCause::Shutdown => "shutdown",
            EndCause::Policy => "policy",
            EndCause::MaxAge => "max_age",
            EndCause::TokenExpired => "token_expired",
        }
    }
}
