//! Owns the engine's only output: what changed, in the order it was applied.

use crate::model::{Alert, AuditEvent, Millis, SessionView, UserView};

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A new session.
    Started,
    /// Status, manual status, metadata or activity changed.
    Updated,
    /// The session ended (the view carries `ended_at` and `end_cause`).
    Ended,
}

impl SessionEvent {
    /// The contract name of the event.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEvent::Started => "started",
            SessionEvent::Updated => "updated",
            SessionEvent::Ended => "ended",
        }
    }
}

/// One change an admin can see. Changes live only from the engine step that
/// makes them to the feed, so the size difference is not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A session started, changed or ended.
    Session {
        /// Which lifecycle step.
        event: SessionEvent,
        /// The session as it is after the change.
        session: SessionView,
    },
    /// A user's status, session count or manual status changed.
    User(UserView),
    /// An entry of the audit trail was recorded on this node.
    Audit(AuditEvent),
    /// An alert was raised or cleared on this node (`alerts/`).
    Alert(Alert),
}

/// A change with the time the engine applied it, as handed to the engine's
/// observers (alerts, webhooks).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// When the engine applied the change.
    pub at: Millis,
    /// The change.
    pub change: Change,
}
