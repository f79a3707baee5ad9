//! Owns what nodes say to each other through Redis: deltas with the sender's
//! node id, per-start epoch and sequence number on the shared channel, and
//! requests/answers on each node's inbox. Versioned by the `v` field.

use serde::{Deserialize, Serialize};

use crate::model::{Millis, NodeId, SessionId, SessionView, UserId};
use crate::presence::{HeartbeatOutcome, HeartbeatRequest, TerminateReason};

/// The wire version this build speaks.
pub const WIRE_VERSION: u32 = 1;

/// One message on the shared delta channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Wire version.
    pub v: u32,
    /// The sender.
    pub node_id: NodeId,
    /// The sender's epoch: new at every start and every reconnect to Redis.
    pub epoch: u64,
    /// Position in the sender's stream within the epoch (deltas count up by
    /// one; heartbeats repeat the last delta's number).
    pub seq: u64,
    /// When it was sent (for the replication lag metric).
    pub sent_at: Millis,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// What an envelope says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A session started or changed.
    Upsert {
        /// The session as it is now.
        session: Box<SessionView>,
    },
    /// A session ended.
    End {
        /// The ended session.
        session: Box<SessionView>,
    },
    /// The node is alive; `seq` is its latest delta.
    Heartbeat,
    /// A new epoch begins: the node's full state is in its Redis hash.
    Reset,
    /// The node is shutting down cleanly.
    Goodbye,
}

/// One message on a node's inbox channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboxMessage {
    /// Another node asks this one to act on a session it holds.
    Request {
        /// Who asks (the answer goes to its inbox).
        from: NodeId,
        /// Matches the answer to the question.
        request_id: u64,
        /// What to do.
        request: Box<Request>,
    },
    /// The answer to a request this node sent.
    Answer {
        /// Which request.
        request_id: u64,
        /// The outcome.
        answer: Answer,
    },
}

/// A cross-node request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Terminate one session.
    Terminate {
        /// Which.
        session_id: SessionId,
        /// Why.
        reason: TerminateReason,
    },
    /// Terminate every session of a user held by the receiver.
    TerminateUser {
        /// Whose.
        user_id: UserId,
        /// Why.
        reason: TerminateReason,
    },
    /// Apply an HTTP heartbeat.
    Heartbeat {
        /// The heartbeat.
        beat: HeartbeatRequest,
    },
}

/// The answer to a `Request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Answer {
    /// Whether the session was found (terminate).
    Found(bool),
    /// How many sessions were ended (terminate user).
    Count(usize),
    /// The heartbeat's outcome.
    Heartbeat(HeartbeatOutcome),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_name_their_kind() {
        let envelope = Envelope {
            v: WIRE_VERSION,
            node_id: NodeId::new("a"),
            epoch: 7,
            seq: 3,
            sent_at: 1,
            body: Body::Heartbeat,
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(text.contains(r#""kind":"heartbeat""#), "{text}");
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
    }

    #[test]
    fn requests_and_answers_round_trip() {
        let message = InboxMessage::Request {
            from: NodeId::new("a"),
            request_id: 9,
            request: Box::new(Request::Terminate {
                session_id: SessionId::generate(),
                reason: TerminateReason::Admin,
            }),
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            serde_json::from_str::<InboxMessage>(&text).unwrap(),
            message
        );
        let answer = InboxMessage::Answer {
            request_id: 9,
            answer: Answer::Heartbeat(HeartbeatOutcome::NotFound),
        };
        let text = serde_json::to_string(&answer).unwrap();
        assert_eq!(serde_json::from_str::<InboxMessage>(&text).unwrap(), answer);
    }
}
