//! Owns a client connection's side of rooms (contract v1.1 §8): which rooms
//! it joined and watches, the checks made before the engine hears of a
//! request (authorisation, `PRESENCE_MAX_ROOMS_PER_SESSION`), and the
//! per-(socket, room) `seq` of the frames it writes.
//!
//! The engine pushes `RoomDelivery`s into this connection's one bounded
//! queue (`PRESENCE_ROOM_QUEUE`; overflow: resync, see `presence::rooms`).
//! A delivery whose epoch is no longer the watch's is dropped here: it was
//! queued before the watch fell behind (or was renewed), and a fresh `room`
//! snapshot follows it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::protocol::{FrameError, RoomAction};
use crate::metrics::OutFrame;
use crate::model::RoomGrant;
use crate::model::{RoomName, SessionId};
use crate::presence::{RoomDelivery, RoomFrame, RoomRequest, WatchHandle};

/// Which rooms a connection may join or watch: its principal's org and
/// `rooms` claim (everything in dev mode).
#[derive(Debug, Clone)]
pub struct RoomAccess {
    /// The principal's organisation.
    pub org: Option<String>,
    /// The principal's grant.
    pub grant: RoomGrant,
}

impl RoomAccess {
    /// True when this connection may join or watch `room`.
    pub fn allows(&self, room: &RoomName) -> bool {
        self.grant.allows(self.org.as_deref(), room)
    }
}

#[derive(Debug)]
struct Watch {
    seq: u64,
    epoch: Arc<AtomicU64>,
}

/// The rooms of one connection; created on its first room message.
#[derive(Debug)]
pub struct ClientRooms {
    queue: mpsc::Sender<RoomDelivery>,
    deliveries: mpsc::Receiver<RoomDelivery>,
    watches: HashMap<RoomName, Watch>,
    joined: HashSet<RoomName>,
}

impl ClientRooms {
    /// A connection's rooms with a queue of `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        let (queue, deliveries) = mpsc::channel(capacity.max(1));
        Self {
            queue,
            deliveries,
            watches: HashMap::new(),
            joined: HashSet::new(),
        }
    }

    /// Checks a client's room message and turns it into the engine request.
    pub fn request(
        &mut self,
        id: SessionId,
        action: RoomAction,
        room: RoomName,
        access: &RoomAccess,
        limit: usize,
    ) -> Result<RoomRequest, FrameError> {
        match action {
            RoomAction::Join | RoomAction::Watch => {
                if !access.allows(&room) {
                    return Err(FrameError::Forbidden(room));
                }
                if !room.is_org() && !self.holds(&room) && self.explicit_rooms() >= limit {
                    return Err(FrameError::RoomLimit { room, limit });
                }
                let watch = self.start_watch(&room);
                // An org room's members are there by their org: joining one
                // only watches it.
                if action == RoomAction::Join && !room.is_org() {
                    self.joined.insert(room.clone());
                    Ok(RoomRequest::Join { id, room, watch })
                } else {
                    Ok(RoomRequest::Watch { id, room, watch })
                }
            }
            RoomAction::Leave => {
                self.watches.remove(&room);
                self.joined.remove(&room);
                Ok(RoomRequest::Leave { id, room })
            }
            RoomAction::Unwatch => {
                self.watches.remove(&room);
                Ok(RoomRequest::Unwatch { id, room })
            }
        }
    }

    /// Forgets the rooms `access` no longer allows; the unwatch requests
    /// for the engine (which leaves joined rooms with the token renewal).
    pub fn drop_disallowed(&mut self, id: SessionId, access: &RoomAccess) -> Vec<RoomRequest> {
        self.joined.retain(|room| access.allows(room));
        let gone: Vec<RoomName> = self
            .watches
            .keys()
            .filter(|room| !access.allows(room))
            .cloned()
            .collect();
        for room in &gone {
            self.watches.remove(room);
        }
        gone.into_iter()
            .map(|room| RoomRequest::Unwatch { id, room })
            .collect()
    }

    /// True when the connection joined or watches `room`.
    fn holds(&self, room: &RoomName) -> bool {
        self.joined.contains(room) || self.watches.contains_key(room)
    }

    /// Explicit rooms joined or watched (what the room limit counts).
    fn explicit_rooms(&self) -> usize {
        let watched_only = self
            .watches
            .keys()
            .filter(|room| !room.is_org() && !self.joined.contains(*room))
            .count();
        self.joined.len() + watched_only
    }

    /// A new watch of `room` (replacing an older one, whose queued frames
    /// are then stale).
    fn start_watch(&mut self, room: &RoomName) -> WatchHandle {
        let epoch = Arc::new(AtomicU64::new(0));
        self.watches.insert(
            room.clone(),
            Watch {
                seq: 0,
                epoch: epoch.clone(),
            },
        );
        WatchHandle {
            queue: self.queue.clone(),
            epoch,
        }
    }

    /// The next delivery from the engine.
    pub async fn next_delivery(&mut self) -> Option<RoomDelivery> {
        self.deliveries.recv().await
    }

    /// The text to write for a delivery, with this watch's `seq`; `None`
    /// when the delivery is stale or the room is no longer watched.
    pub fn render(&mut self, delivery: &RoomDelivery) -> Option<(String, OutFrame)> {
        let watch = self.watches.get_mut(&delivery.room)?;
        if watch.epoch.load(Ordering::Acquire) != delivery.epoch {
            return None;
        }
        match &*delivery.frame {
            RoomFrame::Snapshot(_) => {
                watch.seq = 0;
                Some((delivery.frame.to_text(0), OutFrame::Room))
            }
            RoomFrame::Presence { .. } => {
                watch.seq += 1;
                Some((delivery.frame.to_text(watch.seq), OutFrame::Presence))
            }
        }
    }
}

/// The next delivery of a connection's rooms; pending forever while the
/// connection has none.
pub async fn next_delivery(rooms: &mut Option<Box<ClientRooms>>) -> RoomDelivery {
    if let Some(rooms) = rooms
        && let Some(delivery) = rooms.next_delivery().await
    {
        return delivery;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(grant: RoomGrant) -> RoomAccess {
        RoomAccess {
            org: Some("acme".into()),
            grant,
        }
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    #[test]
    fn the_limit_counts_explicit_rooms_joined_or_watched() {
        let mut rooms = ClientRooms::new(4);
        let id = SessionId::generate();
        let any = access(RoomGrant::Any);
        assert!(
            rooms
                .request(id, RoomAction::Join, room("a"), &any, 2)
                .is_ok()
        );
        assert!(
            rooms
                .request(id, RoomAction::Watch, room("b"), &any, 2)
                .is_ok()
        );
        assert!(
            rooms
                .request(id, RoomAction::Join, room("a"), &any, 2)
                .is_ok(),
            "again"
        );
        assert!(
            rooms
                .request(id, RoomAction::Watch, room("org:acme"), &any, 2)
                .is_ok()
        );
        let refused = rooms.request(id, RoomAction::Join, room("c"), &any, 2);
        assert_eq!(refused.unwrap_err().code(), "room_limit");
        assert!(
            rooms
                .request(id, RoomAction::Unwatch, room("b"), &any, 2)
                .is_ok()
        );
        assert!(
            rooms
                .request(id, RoomAction::Join, room("c"), &any, 2)
                .is_ok()
        );
    }

    #[test]
    fn a_room_outside_the_grant_is_forbidden() {
        let mut rooms = ClientRooms::new(4);
        let id = SessionId::generate();
        let listed = access(RoomGrant::Listed(vec!["doc:*".into()]));
        assert!(
            rooms
                .request(id, RoomAction::Join, room("doc:1"), &listed, 16)
                .is_ok()
        );
        assert!(
            rooms
                .request(id, RoomAction::Join, room("org:acme"), &listed, 16)
                .is_ok()
        );
        let refused = rooms.request(id, RoomAction::Watch, room("org:x"), &listed, 16);
        assert_eq!(refused.unwrap_err().code(), "forbidden");
    }

    #[test]
    fn stale_deliveries_are_dropped_and_seq_counts_per_watch() {
        let mut rooms = ClientRooms::new(4);
        let id = SessionId::generate();
        let any = access(RoomGrant::Any);
        let Ok(RoomRequest::Join { watch, .. }) =
            rooms.request(id, RoomAction::Join, room("a"), &any, 16)
        else {
            panic!("join")
        };
        watch.epoch.store(5, Ordering::Release);
        let frame = Arc::new(RoomFrame::presence(&room("a"), &[]));
        let delivery = |epoch| RoomDelivery {
            room: room("a"),
            epoch,
            frame: frame.clone(),
        };
        assert!(rooms.render(&delivery(4)).is_none(), "stale");
        let (text, _) = rooms.render(&delivery(5)).unwrap();
        assert!(text.contains(r#""seq":1"#), "{text}");
        let (text, _) = rooms.render(&delivery(5)).unwrap();
        assert!(text.contains(r#""seq":2"#), "{text}");
    }
}
