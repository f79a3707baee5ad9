//! Property tests of the cluster wire: every envelope (each body, with a
//! session view of random fields where it carries one) serialises and
//! deserialises to the same value, and any text read as an envelope or an
//! inbox message is taken or refused, never a panic.

use proptest::prelude::*;

use super::{Body, Envelope, InboxMessage};
use crate::model::NodeId;
use crate::model::strategies::{json_value, session_view, text};

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        session_view().prop_map(|session| Body::Upsert {
            session: Box::new(session)
        }),
        session_view().prop_map(|session| Body::End {
            session: Box::new(session)
        }),
        Just(Body::Heartbeat),
        Just(Body::Reset),
        Just(Body::Goodbye),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u32>(),
        text(),
        any::<u64>(),
        any::<u64>(),
        any::<i64>(),
        body(),
    )
        .prop_map(|(v, node, epoch, seq, sent_at, body)| Envelope {
            v,
            node_id: NodeId::new(&node),
            epoch,
            seq,
            sent_at,
            body,
        })
}

proptest! {
    #![proptest_config(crate::model::strategies::bounded(256))]

    #[test]
    fn every_envelope_reads_back_equal(envelope in envelope()) {
        let text = serde_json::to_string(&envelope).unwrap();
        let read: Envelope = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(read, envelope, "{}", text);
    }

    #[test]
    fn any_text_is_taken_or_refused(text in prop_oneof![
        "(?s).{0,200}".boxed(),
        json_value().prop_map(|v| v.to_string()).boxed(),
    ]) {
        let _ = serde_json::from_str::<Envelope>(&text);
        let _ = serde_json::from_str::<InboxMessage>(&text);
    }
}
