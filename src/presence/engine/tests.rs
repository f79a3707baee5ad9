//! Engine behaviour that needs the command loop itself (a real engine task
//! driven through its handle), beside the pure state tests.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Engine, Outboxes};
use crate::model::time::now_millis;
use crate::model::{EndCause, NodeId, SessionView, Transport};
use crate::presence::{PresenceHandle, ReplicaUpdate};

/// A running single engine with a resume grace and no outboxes.
fn engine() -> (PresenceHandle, NodeId, CancellationToken) {
    let mut config = crate::config::Config::defaults();
    config.resume_grace = Duration::from_secs(10);
    let settings = config.validate().expect("valid defaults");
    let node = settings.presence.node_id.clone();
    let outboxes = Outboxes {
        ended: None,
        local_changes: None,
        republish: Arc::new(AtomicBool::new(false)),
        remote: None,
        observers: Vec::new(),
        observer_drops: Arc::default(),
    };
    let (presence, commands) = PresenceHandle::channel();
    let stop = CancellationToken::new();
    tokio::spawn(Engine::new(settings.presence, outboxes).run(commands, stop.clone()));
    (presence, node, stop)
}

#[tokio::test]
async fn a_session_taken_over_stays_local_when_its_old_owners_last_delta_arrives_late() {
    let (presence, here, stop) = engine();
    let now = now_millis();
    let mut offered = SessionView::sample("alice", now);
    offered.transport = Transport::Ws;
    offered.node_id = NodeId::new("leaving");
    offered.reconnecting = true;
    let id = offered.session_id;

    let offer = crate::presence::Offer {
        session: offered.clone(),
        token: "resume-token".into(),
        dropped_at: now,
        cause: EndCause::Shutdown,
    };
    let taken = presence.take_over_dropped(vec![offer]).await.unwrap();
    let expected = crate::presence::Taken {
        node: here.clone(),
        sessions: vec![id],
    };
    assert_eq!(taken, Some(expected));
    // The leaving node's delta about the session, overtaken by its offer.
    presence
        .apply_replica(ReplicaUpdate::Upsert(Box::new(offered.clone())))
        .await
        .unwrap();
    let session = presence.live_session(id).await.unwrap().unwrap();
    assert_eq!(session.node_id, here, "still this node's");
    // Nor does a late end from the old owner end it here.
    presence
        .apply_replica(ReplicaUpdate::End(Box::new(offered)))
        .await
        .unwrap();
    assert!(presence.live_session(id).await.unwrap().is_some());
    stop.cancel();
}
