//! Owns the requests the presence engine accepts. Every change to the
//! presence map arrives as one of these, so all changes have one order.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::liveness::{SessionLiveness, TerminateReason};
use super::state::{NewSession, PresenceState};
use crate::feed::Subscription;
use crate::model::{AuditEvent, MetaUpdate};
use crate::model::{EndCause, ManualStatus, Millis, SessionId, UserId};

/// A read-only look at the map, run inside the engine.
pub type Inspection = Box<dyn FnOnce(&PresenceState, Millis) + Send>;

/// The answer to an HTTP heartbeat.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
        /// What to open (boxed: commands stay small on the hot path).
        session: Box<NewSession>,
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
    /// One HTTP heartbeat exchange (request and answer body bytes).
    HttpTraffic {
        /// Which session.
        id: SessionId,
        /// Request body bytes.
        bytes_in: usize,
        /// Answer body bytes.
        bytes_out: usize,
    },
    /// Today's peak as the records store kept it.
    SeedPeak(super::state::Peak),
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
        update: Box<MetaUpdate>,
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
        /// The heartbeat.
        beat: Box<HeartbeatRequest>,
        /// Where the outcome goes.
        reply: oneshot::Sender<HeartbeatOutcome>,
    },
    /// What another node published.
    Replica(ReplicaUpdate),
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
    /// Put an audit event on the admin streams, numbered with the rest.
    Audit(Box<AuditEvent>),
    /// End every local session with cause `shutdown`.
    Shutdown {
        /// Answered when done.
        reply: oneshot::Sender<()>,
    },
}

/// What the engine learns from other nodes (through the replicator).
#[derive(Debug)]
pub enum ReplicaUpdate {
    /// A session another node started or changed.
    Upsert(Box<crate::model::SessionView>),
    /// A session another node ended.
    End(Box<crate::model::SessionView>),
    /// A node's whole state after a resync: every session it holds, and the
    /// end records of replicas that vanished meanwhile.
    ReplaceNode {
        /// The node.
        node: crate::model::NodeId,
        /// Its live sessions.
        sessions: Vec<crate::model::SessionView>,
        /// Ended views (from history) of replicas it no longer holds.
        ended: Vec<crate::model::SessionView>,
    },
    /// A node left cleanly or was lost; `cause` ends what it still held.
    NodeGone {
        /// The node.
        node: crate::model::NodeId,
        /// `node_lost`, or `shutdown` after a goodbye.
        cause: EndCause,
    },
}

/// A request the engine cannot serve itself: the session lives on another
/// node. The replicator carries it there and brings the answer back.
#[derive(Debug)]
pub struct RemoteCommand {
    /// The node that holds the session(s).
    pub node: crate::model::NodeId,
    /// What to ask it.
    pub request: RemoteRequest,
}

/// What one node asks another, each with the caller's typed reply channel.
///
/// The serde form, without the reply, is the request as it travels between
/// nodes (`cluster/wire.rs` pins the exact JSON), so a new cross-node
/// request is one new variant here.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RemoteRequest {
    /// Terminate one session.
    Terminate {
        /// Which session.
        session_id: SessionId,
        /// Why.
        reason: TerminateReason,
        /// Whether the owner found it.
        #[serde(skip, default = "unanswered")]
        reply: oneshot::Sender<bool>,
    },
    /// Terminate every session of a user held by the receiver.
    TerminateUser {
        /// Whose sessions.
        user_id: UserId,
        /// Why.
        reason: TerminateReason,
        /// How many the node ended.
        #[serde(skip, default = "unanswered")]
        reply: oneshot::Sender<usize>,
    },
    /// Apply an HTTP heartbeat.
    Heartbeat {
        /// The heartbeat.
        beat: HeartbeatRequest,
        /// The owner's answer.
        #[serde(skip, default = "unanswered")]
        reply: oneshot::Sender<HeartbeatOutcome>,
    },
}

/// The reply channel of a request read from the wire: nobody waits on it,
/// because the owner answers by message.
fn unanswered<T>() -> oneshot::Sender<T> {
    oneshot::channel().0
}

/// An HTTP heartbeat as one value, so it can travel between nodes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeartbeatRequest {
    /// Which session.
    pub id: SessionId,
    /// Who sends it.
    pub user: UserId,
    /// Marks activity.
    pub active: bool,
    /// Ends the session.
    pub end: bool,
    /// Metadata sent with it.
    pub update: MetaUpdate,
}

impl RemoteCommand {
    /// Answers the caller as if the session was not found: the request
    /// could not be carried to its node (queue full, Redis unreachable).
    pub fn refuse(self) {
        self.request.refuse();
    }
}

impl RemoteRequest {
    /// Answers the caller as if the session was not found.
    pub fn refuse(self) {
        match self {
            RemoteRequest::Terminate { reply, .. } => drop(reply.send(false)),
            RemoteRequest::TerminateUser { reply, .. } => drop(reply.send(0)),
            RemoteRequest::Heartbeat { reply, .. } => drop(reply.send(HeartbeatOutcome::NotFound)),
        }
    }
}
