//! Owns the engine's side of rooms (v1.1 §8): join, leave and watch
//! requests, starting watches after the step's changes, and publishing each
//! room's batched diff when it is due.

use super::*;

impl Engine {
    pub(super) fn apply_room(&mut self, request: RoomRequest, now: Millis) {
        match request {
            RoomRequest::Join { id, room, watch } => {
                let changes = self.state.join_room(id, room.clone(), now);
                self.commit(id, changes);
                self.new_watches.push((id, room, watch));
            }
            RoomRequest::Watch { id, room, watch } => self.new_watches.push((id, room, watch)),
            RoomRequest::Leave { id, room } => {
                self.room_feed.unwatch(id, &room);
                let changes = self.state.leave_room(id, &room, now);
                self.commit(id, changes);
            }
            RoomRequest::Unwatch { id, room } => self.room_feed.unwatch(id, &room),
        }
    }

    /// Starts the watches asked for in this step. The room's pending batch
    /// goes out first, so the snapshot (which lists a joiner) and the
    /// `presence` frames that follow it describe one sequence of states.
    pub(super) fn start_watches(&mut self, now: Millis) {
        for (id, room, handle) in std::mem::take(&mut self.new_watches) {
            if self.state.session(id).is_none() {
                continue;
            }
            if self.state.rooms().is_dirty(&room) {
                self.publish_room(&room, now);
            }
            let members = self.state.rooms().published_members(&room);
            self.room_feed.watch(id, &room, handle, &members, now);
        }
    }

    /// When the next room batch or watcher resync is due.
    pub(super) fn next_room_batch(&self) -> Option<Millis> {
        [self.state.rooms().next_due(), self.room_feed.next_resync()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends every room batch that is due, and retries resync snapshots.
    pub(super) fn publish_due_rooms(&mut self, now: Millis) {
        for room in self.state.rooms_mut().take_due(now) {
            self.publish_room(&room, now);
        }
        for room in self.room_feed.take_resyncs(now) {
            self.publish_room(&room, now);
        }
    }

    /// Publishes `room`'s changes since its last batch to its watchers.
    pub(super) fn publish_room(&mut self, room: &RoomName, now: Millis) {
        let changes = self.state.rooms_mut().take_changes(room);
        let state = &self.state;
        self.room_feed.deliver(
            room,
            &changes,
            || state.rooms().published_members(room),
            now,
        );
    }
}
