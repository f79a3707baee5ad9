//! Owns the requests the presence engine accepts. Every change to the
//! presence map arrives as one of these, so all changes have one order.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::liveness::{SessionLiveness, TerminateReason};
use super::state::{MetaUpdate, NewSession, PresenceState};
use crate::feed::Subscription;
use crate::model::{EndCause, ManualStatus, Millis, SessionId, UserId};

/// A read-only look at the map, run inside the engine.
pub type Inspection = Box<dyn FnOnce(&PresenceState, Millis) + Send>;

/// The answer to an HTTP heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub enum HeartbeatOutcome {
    /// The session is live (created or refreshed).
    Alive(crate::model::SessionStatus),
    /// The session was ended on request.
    Ended,
    /// No such live session for this user.
    NotFound,
}

/// One request to the engine.
pub enum Command {
    /// A new session, active now.
    Open {
        /// What to open.
        session: NewSession,
        /// Shared with the connection (None for HTTP sessions).
        liveness: Option<Arc<SessionLiveness>>,
    },
    /// The client reported activity (the time is in its liveness).
    Activity {
        /// Which session.
        id: SessionId,
        /// The page, when the ping named one.
        page: Option<String>,
    },
    /// Set or clear the manual status.
    SetManual {
        /// Which session.
        id: SessionId,
        /// The new manual status.
        manual: Option<ManualStatus>,
    },
    /// `hello` metadata.
    Meta {
        /// Which session.
        id: SessionId,
        /// What the client said.
        update: MetaUpdate,
    },
    /// The connection is over.
    End {
        /// Which session.
        id: SessionId,
        /// Why.
        cause: EndCause,
    },
    /// An HTTP heartbeat for an existing session.
    Heartbeat {
        /// Which session.
        id: SessionId,
        /// Who sends it (must own the session).
        user: UserId,
        /// Marks activity.
        active: bool,
        /// Ends the session.
        end: bool,
        /// Metadata sent with it.
        update: MetaUpdate,
        /// Where the outcome goes.
        reply: oneshot::Sender<HeartbeatOutcome>,
    },
    /// End a session and close its connection.
    Terminate {
        /// Which session.
        id: SessionId,
        /// Why.
        reason: TerminateReason,
        /// Whether it was found.
        reply: oneshot::Sender<bool>,
    },
    /// End every session of a user.
    TerminateUser {
        /// Whose sessions.
        user: UserId,
        /// Why.
        reason: TerminateReason,
        /// How many were ended.
        reply: oneshot::Sender<usize>,
    },
    /// A new admin stream: snapshot plus subscription in one step.
    Subscribe {
        /// Organisation filter.
        org: Option<String>,
        /// Where the subscription goes.
        reply: oneshot::Sender<Subscription>,
    },
    /// Run a read-only function over the map.
    Inspect(Inspection),
    /// End every local session with cause `shutdown`.
    Shutdown {
        /// Answered when done.
        reply: oneshot::Sender<()>,
    },
}
