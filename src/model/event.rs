//! Owns the names of the webhook event types (§11): which presence events
//! an endpoint may receive.

use std::fmt;

/// One type of webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A user got its first live session in the cluster.
    UserOnline,
    /// A user's last live session ended.
    UserOffline,
    /// A session started.
    SessionStarted,
    /// A session ended.
    SessionEnded,
    /// An alert was raised or cleared.
    Alert,
}

impl EventType {
    /// Every type, the default of `PRESENCE_WEBHOOK_EVENTS`.
    pub const ALL: [EventType; 5] = [
        EventType::UserOnline,
        EventType::UserOffline,
        EventType::SessionStarted,
        EventType::SessionEnded,
        EventType::Alert,
    ];

    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserOnline => "user.online",
            EventType::UserOffline => "user.offline",
            EventType::SessionStarted => "session.started",
            EventType::SessionEnded => "session.ended",
            EventType::Alert => "alert",
        }
    }

    /// The type of a contract name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
