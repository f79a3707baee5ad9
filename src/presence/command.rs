//! Owns the requests the presence engine accepts. Every change to the
//! presence map arrives as one of these, so all changes have one order.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::liveness::{SessionLiveness, TerminateReason};
use super::resume::{ConnectStep, Connected};
use super::rooms::WatchHandle;
use super::state::{NewSession, PresenceState, Renewal};
use crate::feed::Subscription;
use crate::model::{AuditEvent, MetaUpdate};
use crate::model::{EndCause, ManualStatus, Millis, RoomName, SessionId, UserId};

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
    /// A client joins, leaves, watches or unwatches a room.
    Room(RoomRequest),
    /// An alert raised or cleared by `alerts/`, published to the admin feed
    /// and the observers in the engine's order.
    Alert(Box<crate::model::Alert>),
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
    /// A new WebSocket, maybe resuming a session (§9).
    Connect {
        /// What to open when nothing is resumed.
        session: Box<NewSession>,
        /// Shared with the new connection.
        liveness: Arc<SessionLiveness>,
        /// The `resume` token the socket gave.
        resume: Option<String>,
        /// Which session the socket drives, or which node to ask first.
        reply: oneshot::Sender<ConnectStep>,
    },
    /// Ask `owner` to hand over the session `token` resumes (§9 in a
    /// cluster).
    RequestHandover {
        /// The node that issued the token.
        owner: crate::model::NodeId,
        /// The token.
        token: String,
        /// Who presents it.
        user: UserId,
        /// The session as its owner handed it over, if it did.
        reply: oneshot::Sender<Option<crate::model::SessionView>>,
    },
    /// Another node asks for one of this node's sessions: its token was
    /// presented there.
    HandOver {
        /// The token.
        token: String,
        /// Who presents it.
        user: UserId,
        /// The node that takes the session.
        to: crate::model::NodeId,
        /// The session as handed over (owned by `to`), if it was.
        reply: oneshot::Sender<Option<crate::model::SessionView>>,
    },
    /// Take over a session another node handed over (or open a new one).
    Adopt {
        /// The handed-over session; None opens `session` instead.
        view: Option<Box<crate::model::SessionView>>,
        /// The new socket's session.
        session: Box<NewSession>,
        /// The new socket's liveness.
        liveness: Arc<SessionLiveness>,
        /// Which session the socket drives.
        reply: oneshot::Sender<Connected>,
    },
    /// A socket is gone.
    Dropped {
        /// Which session.
        id: SessionId,
        /// The connection's liveness: a socket that was taken over changes
        /// nothing.
        liveness: Arc<SessionLiveness>,
        /// Why.
        cause: EndCause,
        /// False for ends that are never resumable (`end`, policy).
        resumable: bool,
        /// When it dropped.
        at: Millis,
    },
    /// A new token for a live session.
    Renew {
        /// Which session.
        id: SessionId,
        /// What the token says.
        renewal: Renewal,
    },
    /// End every local session with cause `shutdown` (in a cluster with a
    /// resume grace: hand the WebSocket ones on to another node instead).
    Shutdown {
        /// Answered when done, with the hand-overs still waiting for a node.
        reply: oneshot::Sender<Vec<PendingMove>>,
    },
    /// Where a batch of sessions this node offered at shutdown went: the
    /// ones `taken` names became the taker's; the rest end `shutdown` here.
    Moved {
        /// The sessions of the batch.
        offered: Vec<SessionId>,
        /// The node that took some of them, and which.
        taken: Option<Taken>,
    },
    /// A node that shuts down hands a batch of its dropped sessions on:
    /// keep them `reconnecting` here for the rest of their grace (§9).
    TakeOverDropped {
        /// The sessions, as their old owner had them.
        offers: Vec<Offer>,
        /// The ones this node took.
        reply: oneshot::Sender<Option<Taken>>,
    },
}

/// A session's room request (contract v1.1 §8), already authorised and
/// counted against the room limit by its connection.
#[derive(Debug)]
pub enum RoomRequest {
    /// Present in the room, and watching it.
    Join {
        /// Which session.
        id: SessionId,
        /// The room.
        room: RoomName,
        /// Where the room's frames go.
        watch: WatchHandle,
    },
    /// No longer present in the room, and not watching it.
    Leave {
        /// Which session.
        id: SessionId,
        /// The room.
        room: RoomName,
    },
    /// Watching the room without being present.
    Watch {
        /// Which session.
        id: SessionId,
        /// The room.
        room: RoomName,
        /// Where the room's frames go.
        watch: WatchHandle,
    },
    /// No longer watching the room.
    Unwatch {
        /// Which session.
        id: SessionId,
        /// The room.
        room: RoomName,
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
// Cross-node requests are rare (admin actions, heartbeats of replicas), so
// the heartbeat variant may stay inline.
#[allow(clippy::large_enum_variant)]
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
    /// Keep a batch of dropped sessions of a node that shuts down (§9).
    /// Sent to any live node: the replicator picks one per batch.
    TakeOver {
        /// The sessions offered.
        offers: Vec<Offer>,
        /// The node that took some of them, and which.
        #[serde(skip, default = "unanswered")]
        reply: oneshot::Sender<Option<Taken>>,
    },
    /// Hand the session a resume token names over to another node (§9).
    Handover {
        /// The resume token the client presented.
        token: String,
        /// Who presented it.
        user_id: UserId,
        /// The node that takes the session over.
        to: crate::model::NodeId,
        /// The session, now owned by `to`, if the owner handed it over.
        #[serde(skip, default = "unanswered")]
        reply: oneshot::Sender<Option<crate::model::SessionView>>,
    },
}

/// A dropped session a node that shuts down offers to another (§9).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    /// The session as its old owner had it.
    pub session: crate::model::SessionView,
    /// The token its tab holds.
    pub token: String,
    /// When its socket dropped.
    pub dropped_at: Millis,
    /// Why.
    pub cause: EndCause,
}

/// The answer to a batch of offers: the node that took sessions, and
/// which (an offer it did not take is not listed).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Taken {
    /// The taker.
    pub node: crate::model::NodeId,
    /// The sessions it keeps.
    pub sessions: Vec<SessionId>,
}

/// A batch of sessions offered to another node at shutdown, and where its
/// answer comes.
#[derive(Debug)]
pub struct PendingMove {
    /// The sessions of the batch.
    pub offered: Vec<SessionId>,
    /// The node that took some of them, if one did.
    pub answer: oneshot::Receiver<Option<Taken>>,
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
    /// The `exp` of the token it was sent with (None in dev mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
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
            RemoteRequest::Handover { reply, .. } => drop(reply.send(None)),
            RemoteRequest::TakeOver { reply, .. } => drop(reply.send(None)),
        }
    }
}
