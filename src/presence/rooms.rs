//! Owns the room fan-out (contract v1.1 §8): who watches which room, and
//! delivering each room's batch of member changes to them. A batch is
//! rendered once per room (`RoomFrame`) and the same `Arc` goes to every
//! watcher's bounded queue; the socket splices in its own `seq`.
//!
//! Overflow policy: a watcher whose queue is full is not closed and the
//! engine never waits for it. It is marked for a resync: its `epoch` moves
//! on (the socket then drops whatever it still holds for that room, since
//! those deliveries carry the old epoch), and as soon as its queue has room
//! again it gets a fresh `room` snapshot, after which the socket numbers
//! `presence` frames from 1 again.
//!
//! It does not compute membership (`state::rooms` does) and does not write
//! to sockets (`client::rooms` does).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::model::json::to_json;
use crate::model::{Member, MemberChange, Millis, RoomName, SessionId};

/// How soon a watcher waiting for a resync snapshot is tried again.
pub const RESYNC_RETRY_MS: Millis = 50;

/// One frame for one room, rendered once for every watcher.
#[derive(Debug)]
pub enum RoomFrame {
    /// `{"type":"room",...,"seq":0,"members":[..]}`, complete.
    Snapshot(String),
    /// `{"type":"presence",...}` without its per-watcher `seq`.
    Presence {
        /// Everything before the `seq` value.
        head: String,
        /// Everything after it.
        tail: String,
    },
}

#[derive(Serialize)]
struct SnapshotFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a RoomName,
    seq: u64,
    members: &'a [Member],
}

impl RoomFrame {
    /// The `room` frame (seq 0) listing `members`.
    pub fn snapshot(room: &RoomName, members: &[Member]) -> Self {
        RoomFrame::Snapshot(to_json(&SnapshotFrame {
            kind: "room",
            room,
            seq: 0,
            members,
        }))
    }

    /// A `presence` frame carrying `changes`.
    pub fn presence(room: &RoomName, changes: &[MemberChange]) -> Self {
        RoomFrame::Presence {
            head: format!(r#"{{"type":"presence","room":{},"seq":"#, to_json(room)),
            tail: format!(r#","changes":{}}}"#, to_json(&changes)),
        }
    }

    /// The frame's JSON text with the watcher's `seq` (snapshots: always 0).
    pub fn to_text(&self, seq: u64) -> String {
        match self {
            RoomFrame::Snapshot(text) => text.clone(),
            RoomFrame::Presence { head, tail } => {
                let mut text = String::with_capacity(head.len() + tail.len() + 20);
                text.push_str(head);
                text.push_str(&seq.to_string());
                text.push_str(tail);
                text
            }
        }
    }
}

/// What a watcher's queue carries: one frame for one of its rooms.
#[derive(Debug)]
pub struct RoomDelivery {
    /// The room.
    pub room: RoomName,
    /// The watch this was sent for; stale when it differs from the watch's
    /// current epoch.
    pub epoch: u64,
    /// The shared frame.
    pub frame: Arc<RoomFrame>,
}

/// The socket's side of a watch, handed to the engine with `watch`/`join`.
#[derive(Debug, Clone)]
pub struct WatchHandle {
    /// The socket's bounded room queue.
    pub queue: mpsc::Sender<RoomDelivery>,
    /// The watch's current epoch, written by the engine.
    pub epoch: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Watcher {
    session: SessionId,
    handle: WatchHandle,
    epoch: u64,
    needs_snapshot: bool,
}

/// Every watcher of every room.
#[derive(Debug, Default)]
pub struct RoomFeed {
    rooms: HashMap<RoomName, Vec<Watcher>>,
    by_session: HashMap<SessionId, HashSet<RoomName>>,
    resync: HashSet<RoomName>,
    resync_at: Option<Millis>,
    next_epoch: u64,
}

impl RoomFeed {
    /// Registers (or renews) `session`'s watch of `room`; the watch starts
    /// with the snapshot `members`.
    pub fn watch(
        &mut self,
        session: SessionId,
        room: &RoomName,
        handle: WatchHandle,
        members: &[Member],
        now: Millis,
    ) {
        self.unwatch(session, room);
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        handle.epoch.store(epoch, Ordering::Release);
        let mut watcher = Watcher {
            session,
            handle,
            epoch,
            needs_snapshot: true,
        };
        let snapshot = Arc::new(RoomFrame::snapshot(room, members));
        if !try_snapshot(room, &mut watcher, &snapshot) {
            self.schedule_resync(room, now);
        }
        self.rooms.entry(room.clone()).or_default().push(watcher);
        self.by_session
            .entry(session)
            .or_default()
            .insert(room.clone());
    }

    /// Ends `session`'s watch of `room`.
    pub fn unwatch(&mut self, session: SessionId, room: &RoomName) {
        if let Some(watchers) = self.rooms.get_mut(room) {
            watchers.retain(|w| w.session != session);
            if watchers.is_empty() {
                self.rooms.remove(room);
            }
        }
        if let Some(rooms) = self.by_session.get_mut(&session) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.by_session.remove(&session);
            }
        }
    }

    /// Ends every watch of a session that is over.
    pub fn forget_session(&mut self, session: SessionId) {
        for room in self.by_session.remove(&session).unwrap_or_default() {
            if let Some(watchers) = self.rooms.get_mut(&room) {
                watchers.retain(|w| w.session != session);
                if watchers.is_empty() {
                    self.rooms.remove(&room);
                }
            }
        }
    }

    /// Sends one batch of `room` to its watchers, never waiting. Watchers
    /// waiting for a resync get the snapshot `members` (rendered only if
    /// one of them needs it) instead.
    pub fn deliver(
        &mut self,
        room: &RoomName,
        changes: &[MemberChange],
        members: impl FnOnce() -> Vec<Member>,
        now: Millis,
    ) {
        let Some(watchers) = self.rooms.get_mut(room) else {
            return;
        };
        let frame = (!changes.is_empty()).then(|| Arc::new(RoomFrame::presence(room, changes)));
        let mut members = Some(members);
        let mut snapshot: Option<Arc<RoomFrame>> = None;
        let mut behind = false;
        let next_epoch = &mut self.next_epoch;
        watchers.retain_mut(|watcher| {
            if watcher.handle.queue.is_closed() {
                return false;
            }
            if watcher.needs_snapshot {
                if watcher.handle.queue.capacity() == 0 {
                    // Still full: try again later, without rendering.
                    behind = true;
                    return true;
                }
                let frame = snapshot.get_or_insert_with(|| {
                    let members = members.take().map(|build| build()).unwrap_or_default();
                    Arc::new(RoomFrame::snapshot(room, &members))
                });
                behind |= !try_snapshot(room, watcher, frame);
            } else if let Some(frame) = &frame {
                behind |= !try_frame(room, watcher, frame, next_epoch);
            }
            true
        });
        if behind {
            tracing::debug!(room = %room, "room watcher fell behind; resync scheduled");
            self.schedule_resync(room, now);
        }
    }

    fn schedule_resync(&mut self, room: &RoomName, now: Millis) {
        self.resync.insert(room.clone());
        self.resync_at.get_or_insert(now + RESYNC_RETRY_MS);
    }

    /// When watchers waiting for a resync should be tried again.
    pub fn next_resync(&self) -> Option<Millis> {
        self.resync_at
    }

    /// The rooms with watchers waiting for a snapshot, once their retry is
    /// due; `deliver` with no changes sends them their snapshots.
    pub fn take_resyncs(&mut self, now: Millis) -> Vec<RoomName> {
        if self.resync_at.is_none_or(|at| at > now) {
            return Vec::new();
        }
        self.resync_at = None;
        self.resync.drain().collect()
    }
}

/// A watcher's queue was full: what it holds for this room is stale now.
fn fall_behind(watcher: &mut Watcher, next_epoch: &mut u64) {
    *next_epoch += 1;
    watcher.epoch = *next_epoch;
    watcher.handle.epoch.store(watcher.epoch, Ordering::Release);
    watcher.needs_snapshot = true;
}

/// Queues a `presence` frame; false when the watcher's queue was full and
/// it now waits for a resync.
fn try_frame(
    room: &RoomName,
    watcher: &mut Watcher,
    frame: &Arc<RoomFrame>,
    next_epoch: &mut u64,
) -> bool {
    let delivery = RoomDelivery {
        room: room.clone(),
        epoch: watcher.epoch,
        frame: frame.clone(),
    };
    match watcher.handle.queue.try_send(delivery) {
        Err(mpsc::error::TrySendError::Full(_)) => {
            fall_behind(watcher, next_epoch);
            false
        }
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
    }
}

/// Queues a snapshot for a watcher waiting for one; false when its queue is
/// still full.
fn try_snapshot(room: &RoomName, watcher: &mut Watcher, frame: &Arc<RoomFrame>) -> bool {
    let delivery = RoomDelivery {
        room: room.clone(),
        epoch: watcher.epoch,
        frame: frame.clone(),
    };
    match watcher.handle.queue.try_send(delivery) {
        Ok(()) => {
            watcher.needs_snapshot = false;
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => false,
        Err(mpsc::error::TrySendError::Closed(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MemberEvent, UserId, UserStatus};

    fn member(user: &str) -> Member {
        Member {
            user_id: UserId::parse(user).unwrap(),
            name: None,
            status: UserStatus::Active,
            manual: None,
            session_count: 1,
            page: None,
            joined_at: 0,
        }
    }

    fn join(user: &str) -> Vec<MemberChange> {
        vec![MemberChange {
            event: MemberEvent::Join,
            member: member(user),
        }]
    }

    fn handle(capacity: usize) -> (WatchHandle, mpsc::Receiver<RoomDelivery>) {
        let (queue, receiver) = mpsc::channel(capacity);
        let epoch = Arc::new(AtomicU64::new(0));
        (WatchHandle { queue, epoch }, receiver)
    }

    #[test]
    fn a_watch_starts_with_a_snapshot_then_shared_frames() {
        let room = RoomName::parse("doc:1").unwrap();
        let mut feed = RoomFeed::default();
        let (a, mut a_rx) = handle(8);
        let (b, mut b_rx) = handle(8);
        feed.watch(SessionId::generate(), &room, a, &[member("x")], 0);
        feed.watch(SessionId::generate(), &room, b, &[], 0);
        feed.deliver(&room, &join("y"), Vec::new, 0);
        let snapshot = a_rx.try_recv().unwrap();
        let value: serde_json::Value = serde_json::from_str(&snapshot.frame.to_text(0)).unwrap();
        assert_eq!(value["type"], "room");
        assert_eq!(value["seq"], 0);
        assert_eq!(value["members"][0]["user_id"], "x");
        let first = a_rx.try_recv().unwrap();
        let _ = b_rx.try_recv().unwrap();
        let second = b_rx.try_recv().unwrap();
        assert!(Arc::ptr_eq(&first.frame, &second.frame), "rendered once");
        let value: serde_json::Value = serde_json::from_str(&first.frame.to_text(3)).unwrap();
        assert_eq!(value["seq"], 3);
        assert_eq!(value["changes"][0]["event"], "join");
    }

    #[test]
    fn a_full_queue_moves_the_epoch_and_resyncs_later() {
        let room = RoomName::parse("doc:1").unwrap();
        let mut feed = RoomFeed::default();
        let (slow, mut rx) = handle(2);
        let epoch = slow.epoch.clone();
        feed.watch(SessionId::generate(), &room, slow, &[], 0);
        let first_epoch = epoch.load(Ordering::Acquire);
        feed.deliver(&room, &join("a"), Vec::new, 0);
        feed.deliver(&room, &join("b"), Vec::new, 0);
        let moved = epoch.load(Ordering::Acquire);
        assert_ne!(moved, first_epoch, "queued frames are now stale");
        assert!(feed.take_resyncs(10).is_empty(), "not yet due");
        let rooms = feed.take_resyncs(RESYNC_RETRY_MS);
        assert_eq!(rooms, vec![room.clone()]);
        let mut rendered = false;
        feed.deliver(
            &room,
            &[],
            || {
                rendered = true;
                Vec::new()
            },
            RESYNC_RETRY_MS,
        );
        assert!(!rendered, "no snapshot is rendered while the queue is full");
        assert_eq!(feed.next_resync(), Some(2 * RESYNC_RETRY_MS));
        assert_eq!(feed.take_resyncs(2 * RESYNC_RETRY_MS), vec![room.clone()]);
        while rx.try_recv().is_ok() {}
        feed.deliver(&room, &[], || vec![member("a"), member("b")], 60);
        let fresh = rx.try_recv().unwrap();
        assert_eq!(fresh.epoch, moved);
        assert!(matches!(*fresh.frame, RoomFrame::Snapshot(_)));
    }
}
