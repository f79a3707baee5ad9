//! Owns what nodes say to each other through Redis: deltas with the sender's
//! node id, per-start epoch and sequence number on the shared channel, and
//! requests/answers on each node's inbox. Versioned by the `v` field. With
//! `PRESENCE_CLUSTER_SECRET` each text is sealed on its way out and opened
//! before it is parsed here (`cluster::seal`); the texts themselves do not
//! change.
//!
//! A request is `presence::RemoteRequest` itself (its serde form); this file
//! adds the inbox framing and maps each request onto its answer, so a new
//! request needs no second enum here, only its arms in the matches below
//! and in `redis/requests.rs`, which the compiler points to.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::model::{Millis, NodeId, SessionView};
use crate::presence::{HeartbeatOutcome, RemoteRequest};

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

/// One message on a node's inbox channel. As read, a request is owned and an
/// answer's value is still untyped (only the waiting caller knows its type);
/// as written, the request is borrowed and the value typed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboxMessage<R = Box<RemoteRequest>, V = serde_json::Value> {
    /// Another node asks this one to act on a session it holds.
    Request {
        /// Who asks (the answer goes to its inbox).
        from: NodeId,
        /// Matches the answer to the question.
        request_id: u64,
        /// What to do.
        request: R,
    },
    /// The answer to a request this node sent.
    Answer {
        /// Which request.
        request_id: u64,
        /// The outcome.
        answer: Answer<V>,
    },
}

/// The text of a request `from` sends to another node.
pub fn request_text(from: &NodeId, request_id: u64, request: &RemoteRequest) -> String {
    crate::model::json::to_json(&InboxMessage::<&RemoteRequest, ()>::Request {
        from: from.clone(),
        request_id,
        request,
    })
}

/// The text of the answer to request `request_id`.
pub fn answer_text<V: Serialize>(request_id: u64, answer: Answer<V>) -> String {
    crate::model::json::to_json(&InboxMessage::<(), V>::Answer { request_id, answer })
}

/// The answer to a request: which kind of reply it is, and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer<V = serde_json::Value> {
    /// The reply's name on the wire (see `reply_name`).
    #[serde(rename = "type")]
    pub reply: Cow<'static, str>,
    /// The reply.
    pub value: V,
}

impl<V> Answer<V> {
    /// The answer named `reply` (see `reply_name`) with `value`.
    pub fn new(reply: &'static str, value: V) -> Self {
        Self {
            reply: Cow::Borrowed(reply),
            value,
        }
    }
}

/// What the answer to `request` is called on the wire.
pub fn reply_name(request: &RemoteRequest) -> &'static str {
    match request {
        RemoteRequest::Terminate { .. } => "found",
        RemoteRequest::TerminateUser { .. } => "count",
        RemoteRequest::Heartbeat { .. } => "heartbeat",
        RemoteRequest::Handover { .. } => "handover",
        RemoteRequest::TakeOver { .. } => "taken_over",
    }
}

/// Hands the owner's `answer` to the caller of `request`. An answer that is
/// not this request's reply counts as "not found".
pub fn complete(request: RemoteRequest, answer: Answer) {
    let value = (answer.reply == reply_name(&request)).then_some(answer.value);
    match request {
        RemoteRequest::Terminate { reply, .. } => reply_with(reply, value, false),
        RemoteRequest::TerminateUser { reply, .. } => reply_with(reply, value, 0),
        RemoteRequest::Heartbeat { reply, .. } => {
            reply_with(reply, value, HeartbeatOutcome::NotFound)
        }
        RemoteRequest::Handover { reply, .. } => reply_with(reply, value, None),
        RemoteRequest::TakeOver { reply, .. } => reply_with(reply, value, None),
    }
}

fn reply_with<T: DeserializeOwned>(
    reply: oneshot::Sender<T>,
    value: Option<serde_json::Value>,
    not_found: T,
) {
    let outcome = value.and_then(|value| serde_json::from_value(value).ok());
    if outcome.is_none() {
        tracing::warn!("an answer that does not fit its request counts as not found");
    }
    drop(reply.send(outcome.unwrap_or(not_found)));
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MetaUpdate, SessionId, SessionStatus, UserId};
    use crate::presence::{HeartbeatRequest, TerminateReason};

    /// The texts nodes have always exchanged: mixed versions must still
    /// understand each other, so these never change within wire version 1.
    const TERMINATE: &str = r#"{"kind":"request","from":"a","request_id":9,"request":{"op":"terminate","session_id":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","reason":"admin"}}"#;
    const TERMINATE_USER: &str = r#"{"kind":"request","from":"a","request_id":9,"request":{"op":"terminate_user","user_id":"u1","reason":"revoked"}}"#;
    const HEARTBEAT: &str = r#"{"kind":"request","from":"a","request_id":9,"request":{"op":"heartbeat","beat":{"id":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","user":"u1","active":true,"end":false,"update":{"app":null,"device":null,"page":"/p","meta":null}}}}"#;
    const FOUND: &str =
        r#"{"kind":"answer","request_id":9,"answer":{"type":"found","value":true}}"#;
    const COUNT: &str = r#"{"kind":"answer","request_id":9,"answer":{"type":"count","value":3}}"#;
    const NOT_FOUND: &str =
        r#"{"kind":"answer","request_id":9,"answer":{"type":"heartbeat","value":"not_found"}}"#;
    const ALIVE: &str = r#"{"kind":"answer","request_id":9,"answer":{"type":"heartbeat","value":{"alive":"idle"}}}"#;

    fn session() -> SessionId {
        serde_json::from_str(r#""6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b""#).unwrap()
    }

    fn user() -> UserId {
        UserId::parse("u1").unwrap()
    }

    fn terminate() -> (RemoteRequest, oneshot::Receiver<bool>) {
        let (reply, answer) = oneshot::channel();
        let request = RemoteRequest::Terminate {
            session_id: session(),
            reason: TerminateReason::Admin,
            reply,
        };
        (request, answer)
    }

    fn terminate_user() -> (RemoteRequest, oneshot::Receiver<usize>) {
        let (reply, answer) = oneshot::channel();
        let request = RemoteRequest::TerminateUser {
            user_id: user(),
            reason: TerminateReason::Revoked,
            reply,
        };
        (request, answer)
    }

    fn heartbeat() -> (RemoteRequest, oneshot::Receiver<HeartbeatOutcome>) {
        let (reply, answer) = oneshot::channel();
        let beat = HeartbeatRequest {
            id: session(),
            user: user(),
            active: true,
            end: false,
            update: MetaUpdate {
                page: Some("/p".to_string()),
                ..MetaUpdate::default()
            },
            expires_at: None,
        };
        (RemoteRequest::Heartbeat { beat, reply }, answer)
    }

    fn answer<V>(request: &RemoteRequest, value: V) -> Answer<V> {
        Answer::new(reply_name(request), value)
    }

    fn read_answer(text: &str) -> Answer {
        match serde_json::from_str::<InboxMessage>(text).unwrap() {
            InboxMessage::Answer { request_id, answer } => {
                assert_eq!(request_id, 9);
                answer
            }
            InboxMessage::Request { .. } => panic!("not an answer: {text}"),
        }
    }

    #[test]
    fn envelopes_keep_their_exact_text() {
        for (body, kind) in [
            (Body::Heartbeat, "heartbeat"),
            (Body::Reset, "reset"),
            (Body::Goodbye, "goodbye"),
        ] {
            let envelope = Envelope {
                v: WIRE_VERSION,
                node_id: NodeId::new("a"),
                epoch: 7,
                seq: 3,
                sent_at: 1,
                body,
            };
            let text = serde_json::to_string(&envelope).unwrap();
            assert_eq!(
                text,
                format!(r#"{{"v":1,"node_id":"a","epoch":7,"seq":3,"sent_at":1,"kind":"{kind}"}}"#)
            );
            assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
        }
    }

    /// Found by `every_envelope_reads_back_equal`: a float in a session's
    /// meta came back one unit in the last place off without correctly
    /// rounded parsing.
    #[test]
    fn floats_in_a_replica_cross_the_wire_exactly() {
        let mut session = SessionView::sample("u1", 0);
        let meta = serde_json::json!({"x": [1.0600376083501077e-160]});
        session.meta = meta.as_object().cloned();
        let envelope = Envelope {
            v: WIRE_VERSION,
            node_id: NodeId::new("a"),
            epoch: 1,
            seq: 1,
            sent_at: 0,
            body: Body::Upsert {
                session: Box::new(session),
            },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
    }

    #[test]
    fn requests_are_written_exactly_as_before() {
        let from = NodeId::new("a");
        assert_eq!(request_text(&from, 9, &terminate().0), TERMINATE);
        assert_eq!(request_text(&from, 9, &terminate_user().0), TERMINATE_USER);
        assert_eq!(request_text(&from, 9, &heartbeat().0), HEARTBEAT);
    }

    fn handover(reply: oneshot::Sender<Option<SessionView>>) -> RemoteRequest {
        RemoteRequest::Handover {
            token: "t0k".into(),
            user_id: user(),
            to: NodeId::new("b"),
            reply,
        }
    }

    #[test]
    fn a_handover_is_written_exactly_and_null_means_not_handed_over() {
        const HANDOVER: &str = r#"{"kind":"request","from":"b","request_id":4,"request":{"op":"handover","token":"t0k","user_id":"u1","to":"b"}}"#;
        let request = handover(oneshot::channel().0);
        assert_eq!(request_text(&NodeId::new("b"), 4, &request), HANDOVER);
        let Ok(InboxMessage::Request { request, .. }) =
            serde_json::from_str::<InboxMessage>(HANDOVER)
        else {
            panic!("a request");
        };
        assert_eq!(reply_name(&request), "handover");
        let (reply, mut answer) = oneshot::channel();
        complete(
            handover(reply),
            Answer::new("handover", serde_json::Value::Null),
        );
        assert_eq!(answer.try_recv().ok(), Some(None));
    }

    #[test]
    fn a_take_over_carries_a_batch_and_its_answer_names_the_taker_and_the_taken() {
        let (reply, mut answer) = oneshot::channel();
        let offer = crate::presence::Offer {
            session: crate::model::SessionView {
                session_id: session(),
                user_id: user(),
                name: None,
                org: None,
                node_id: NodeId::new("a"),
                transport: crate::model::Transport::Ws,
                status: SessionStatus::Active,
                manual: None,
                connected_at: 0,
                last_activity: 0,
                page: None,
                ip: None,
                user_agent: None,
                device: crate::model::DeviceInfo::default(),
                app: None,
                meta: None,
                ended_at: None,
                end_cause: None,
                duration_s: 0.0,
                location: None,
                reconnecting: true,
                rooms: Vec::new(),
                email: None,
                team: None,
                traffic: Default::default(),
                rtt_ms: None,
                timeline: None,
            },
            token: "t0k".into(),
            dropped_at: 5,
            cause: crate::model::EndCause::Shutdown,
        };
        let request = RemoteRequest::TakeOver {
            offers: vec![offer.clone(), offer],
            reply,
        };
        let text = request_text(&NodeId::new("a"), 1, &request);
        assert!(text.contains(r#""op":"take_over","offers":[{"#), "{text}");
        assert!(
            text.contains(r#""dropped_at":5,"cause":"shutdown""#),
            "{text}"
        );
        assert_eq!(reply_name(&request), "taken_over");
        let taken = serde_json::json!({"node": "b", "sessions": [session()]});
        complete(request, Answer::new("taken_over", taken));
        let expected = crate::presence::Taken {
            node: NodeId::new("b"),
            sessions: vec![session()],
        };
        assert_eq!(answer.try_recv().ok(), Some(Some(expected)));
    }

    #[test]
    fn requests_read_back_to_the_same_text() {
        for text in [TERMINATE, TERMINATE_USER, HEARTBEAT] {
            let InboxMessage::Request {
                from,
                request_id,
                request,
            } = serde_json::from_str::<InboxMessage>(text).unwrap()
            else {
                panic!("not a request: {text}");
            };
            assert_eq!(request_text(&from, request_id, &request), text);
        }
    }

    #[test]
    fn answers_are_written_exactly_as_before() {
        assert_eq!(answer_text(9, answer(&terminate().0, true)), FOUND);
        assert_eq!(answer_text(9, answer(&terminate_user().0, 3_usize)), COUNT);
        assert_eq!(
            answer_text(9, answer(&heartbeat().0, HeartbeatOutcome::NotFound)),
            NOT_FOUND
        );
        assert_eq!(
            answer_text(
                9,
                answer(&heartbeat().0, HeartbeatOutcome::Alive(SessionStatus::Idle))
            ),
            ALIVE
        );
    }

    #[test]
    fn answers_reach_the_caller_typed() {
        let (request, mut found) = terminate();
        complete(request, read_answer(FOUND));
        assert_eq!(found.try_recv(), Ok(true));

        let (request, mut count) = terminate_user();
        complete(request, read_answer(COUNT));
        assert_eq!(count.try_recv(), Ok(3));

        let (request, mut outcome) = heartbeat();
        complete(request, read_answer(ALIVE));
        assert_eq!(
            outcome.try_recv(),
            Ok(HeartbeatOutcome::Alive(SessionStatus::Idle))
        );
    }

    #[test]
    fn an_answer_of_the_wrong_kind_is_not_found() {
        let (request, mut count) = terminate_user();
        complete(request, read_answer(FOUND));
        assert_eq!(count.try_recv(), Ok(0));

        let (request, mut outcome) = heartbeat();
        complete(request, read_answer(COUNT));
        assert_eq!(outcome.try_recv(), Ok(HeartbeatOutcome::NotFound));

        let (request, mut found) = terminate();
        let garbled = Answer {
            reply: Cow::Borrowed("found"),
            value: serde_json::json!("yes"),
        };
        complete(request, garbled);
        assert_eq!(found.try_recv(), Ok(false));
    }

    #[test]
    fn refused_requests_answer_not_found() {
        let (request, mut found) = terminate();
        request.refuse();
        assert_eq!(found.try_recv(), Ok(false));
        let (request, mut count) = terminate_user();
        request.refuse();
        assert_eq!(count.try_recv(), Ok(0));
        let (request, mut outcome) = heartbeat();
        request.refuse();
        assert_eq!(outcome.try_recv(), Ok(HeartbeatOutcome::NotFound));
    }
}
