//! Owns a connection's room traffic (contract v1.1 §8): room messages
//! checked and forwarded to the engine, the frames the engine queued for
//! this connection written with their per-room `seq`, and the rooms a new
//! token no longer allows.

use super::{Connection, Outcome};
use crate::client::protocol::RoomAction;
use crate::client::rooms::ClientRooms;
use crate::model::{EndCause, Millis, RoomName};
use crate::presence::RoomDelivery;

impl Connection {
    /// `join`, `leave`, `watch` or `unwatch`: checked here, applied by the
    /// engine. A refused room is a bad frame (v1.1 §14).
    pub(super) async fn on_room_message(
        &mut self,
        action: RoomAction,
        room: RoomName,
        now: Millis,
    ) -> Option<Outcome> {
        self.ctx.metrics.messages_in.room.inc();
        let limits = &self.ctx.limits;
        let rooms = self
            .rooms
            .get_or_insert_with(|| Box::new(ClientRooms::new(limits.room_queue)));
        match rooms.request(
            self.id,
            action,
            room,
            &self.access,
            limits.max_rooms_per_session,
        ) {
            Ok(request) => {
                let _ = self.ctx.presence.room(request).await;
                None
            }
            Err(error) => self.reject_frame(&error, now).await,
        }
    }

    /// After a new token: stops watching the rooms it no longer allows (the
    /// engine left the joined ones with the renewal).
    pub(super) async fn leave_disallowed_rooms(&mut self) {
        let Some(rooms) = self.rooms.as_mut() else {
            return;
        };
        for request in rooms.drop_disallowed(self.id, &self.access) {
            let _ = self.ctx.presence.room(request).await;
        }
    }

    /// A frame the engine queued for one of this connection's rooms.
    pub(super) async fn on_room_delivery(&mut self, delivery: RoomDelivery) -> Option<Outcome> {
        let (text, kind) = self.rooms.as_mut()?.render(&delivery)?;
        drop(delivery);
        if self.send_text(text, kind).await.is_err() {
            return Some(Outcome::End(EndCause::ClientClosed));
        }
        None
    }
}
