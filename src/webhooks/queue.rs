//! Owns one endpoint's bounded event queue and its delivery counters, shared
//! by the dispatcher (which pushes and never waits) and the endpoint's
//! delivery task (which takes batches).
//!
//! Overflow policy: when `capacity` events wait, the oldest waiting event is
//! dropped to make room, and counted. The batch in flight is never dropped,
//! so order is kept; nor are the first `BATCH_MAX` events read back from
//! the outbox after a restart, which stand for the batch that was in
//! flight then. The lock is held only for a few pointer moves (and,
//! with an outbox, a `try_send` to its writer), never across an await.
//!
//! With an outbox (`persist.rs`) the queue tells it every event that
//! enters and every event that leaves (delivered, given up, dropped),
//! under the lock, so the writer sees them in the order they happened.
//! Except while the queue overflows: every event then enters and is later
//! dropped, which, told one by one, made each event an outbox row written
//! and deleted (most of the hub's extra work with a dead endpoint). An
//! overflowing queue instead replaces its rows with what it holds when the
//! overflow starts, every `OVERFLOW_SNAPSHOT_EVERY` while it lasts, when
//! it ends (the queue has room again) and at shutdown (`flush_outbox`).
//! The cost: a crash (not a SIGTERM) during an overflow loses up to that
//! long of the newest events, and may send again events that were counted
//! as dropped since the last snapshot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use std::time::Duration;

use super::delivery::BATCH_MAX;
use super::events::Event;
use super::persist::OutboxLog;
use crate::model::Millis;
use crate::model::time::serialize_opt_time;

/// One endpoint as `GET /api/v1/webhooks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointStatus {
    /// The endpoint.
    pub url: String,
    /// Events waiting or in flight.
    pub queued: usize,
    /// Events delivered (2xx).
    pub delivered: u64,
    /// Batches given up: attempts used up, or an answer not worth retrying.
    pub failed: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// When a batch was last delivered.
    #[serde(serialize_with = "serialize_opt_time")]
    pub last_success_at: Option<Millis>,
    /// What went wrong last (the latest failed attempt), if anything has.
    pub last_error: Option<String>,
}

/// How often an overflowing queue's rows are rewritten.
pub const OVERFLOW_SNAPSHOT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Waiting {
    event: Arc<Event>,
    queued_at: Instant,
}

#[derive(Debug)]
struct State {
    waiting: VecDeque<Waiting>,
    /// How many of the oldest waiting events were read back from the
    /// outbox (`restore`): up to `BATCH_MAX` of them stand for the batch
    /// that was in flight before the restart, outside the bound.
    restored: usize,
    in_flight: Vec<Arc<Event>>,
    status: EndpointStatus,
    /// While the queue overflows: when its rows were last replaced.
    overflowing_since_snapshot: Option<Instant>,
}

/// One endpoint's queue. Cloning the `Arc` around it is how both sides hold it.
#[derive(Debug)]
pub struct EndpointQueue {
    state: Mutex<State>,
    arrived: Notify,
    capacity: usize,
    outbox: Option<OutboxLog>,
}

impl EndpointQueue {
    /// An empty queue for `url` holding at most `capacity` waiting events.
    pub fn new(url: String, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                restored: 0,
                in_flight: Vec::new(),
                overflowing_since_snapshot: None,
                status: EndpointStatus {
                    url,
                    queued: 0,
                    delivered: 0,
                    failed: 0,
                    dropped: 0,
                    last_success_at: None,
                    last_error: None,
                },
            }),
            arrived: Notify::new(),
            capacity: capacity.max(1),
            outbox: None,
        }
    }

    /// The same queue, kept in the records store's outbox through `log`.
    pub fn kept_in(mut self, log: OutboxLog) -> Self {
        self.outbox = Some(log);
        self
    }

    /// True when what is queued survives a restart (an outbox keeps it).
    pub fn persists(&self) -> bool {
        self.outbox.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue in a
        // state worse than its last push or take, so a poisoned lock is
        // still used.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues an event; returns how many old events were dropped for it.
    pub fn push(&self, event: Arc<Event>, now: Instant) -> u64 {
        self.enqueue(event, now, true)
    }

    /// Queues an event read back from the outbox (kept there already);
    /// returns how many old events were dropped for it.
    pub fn restore(&self, event: Arc<Event>, now: Instant) -> u64 {
        self.enqueue(event, now, false)
    }

    fn enqueue(&self, event: Arc<Event>, now: Instant, new: bool) -> u64 {
        let dropped = {
            let mut state = self.lock();
            let dropped = if new {
                Self::make_room(&mut state, self.capacity)
            } else {
                let overflow = (state.waiting.len() + 1).saturating_sub(self.capacity + BATCH_MAX);
                state.restored = state.restored.saturating_sub(overflow) + 1;
                state.waiting.drain(..overflow).map(|w| w.event).collect()
            };
            let overflow =
                new && (!dropped.is_empty() || state.overflowing_since_snapshot.is_some());
            if let (Some(log), false) = (&self.outbox, overflow) {
                if new {
                    log.queued(&state.status.url, &event);
                }
                log.gone(&state.status.url, &dropped);
            }
            state.waiting.push_back(Waiting {
                event,
                queued_at: now,
            });
            if overflow {
                self.keep_overflowing(&mut state, now);
            }
            let dropped = dropped.len() as u64;
            state.status.dropped += dropped;
            dropped
        };
        self.arrived.notify_one();
        dropped
    }

    /// Keeps the outbox of an overflowing queue by snapshots: one when the
    /// overflow starts, then one every `OVERFLOW_SNAPSHOT_EVERY`, and a
    /// last one when the queue has room again, which ends the overflow.
    fn keep_overflowing(&self, state: &mut State, now: Instant) {
        let Some(log) = &self.outbox else {
            return;
        };
        let has_room = state.waiting.len() < self.capacity;
        let due = state
            .overflowing_since_snapshot
            .is_none_or(|at| now.duration_since(at) >= OVERFLOW_SNAPSHOT_EVERY);
        if has_room || due {
            Self::snapshot(log, state);
            state.overflowing_since_snapshot = (!has_room).then_some(now);
        }
    }

    /// Replaces the queue's outbox rows with what it holds, in flight first.
    fn snapshot(log: &OutboxLog, state: &State) {
        let held = state
            .in_flight
            .iter()
            .chain(state.waiting.iter().map(|w| &w.event));
        log.replaced(&state.status.url, held);
    }

    /// At shutdown: an overflowing queue's rows become exactly what it
    /// holds (the last snapshot may be up to `OVERFLOW_SNAPSHOT_EVERY` old).
    pub fn flush_outbox(&self) {
        let mut state = self.lock();
        if state.overflowing_since_snapshot.is_some()
            && let Some(log) = &self.outbox
        {
            Self::snapshot(log, &state);
            state.overflowing_since_snapshot = None;
        }
    }

    /// Drops the oldest waiting events until one more fits in `capacity`,
    /// never one of the restored events that stand for a batch in flight.
    fn make_room(state: &mut State, capacity: usize) -> Vec<Arc<Event>> {
        let head = state.restored.min(BATCH_MAX).min(state.waiting.len());
        let mut dropped = Vec::new();
        while state.waiting.len() - head >= capacity {
            let Some(waiting) = state.waiting.remove(head) else {
                break;
            };
            if head < state.restored {
                state.restored -= 1;
            }
            dropped.push(waiting.event);
        }
        dropped
    }

    /// How many events wait, and since when the oldest has.
    pub fn peek(&self) -> (usize, Option<Instant>) {
        let state = self.lock();
        (
            state.waiting.len(),
            state.waiting.front().map(|w| w.queued_at),
        )
    }

    /// Waits until an event is pushed (returns at once if one was pushed
    /// since the last wait).
    pub async fn arrival(&self) {
        self.arrived.notified().await;
    }

    /// Takes up to `max` of the oldest events as the batch in flight.
    pub fn take(&self, max: usize) -> Vec<Arc<Event>> {
        let mut state = self.lock();
        let n = state.waiting.len().min(max);
        let batch: Vec<Arc<Event>> = state.waiting.drain(..n).map(|w| w.event).collect();
        state.restored = state.restored.saturating_sub(n);
        state.in_flight.clone_from(&batch);
        batch
    }

    /// The batch in flight was delivered at `at`.
    pub fn record_success(&self, at: Millis) {
        let mut state = self.lock();
        state.status.delivered += state.in_flight.len() as u64;
        state.status.last_success_at = Some(at);
        self.finish(&mut state);
    }

    /// The batch in flight leaves the queue (and the outbox).
    fn finish(&self, state: &mut State) {
        let done = std::mem::take(&mut state.in_flight);
        if state.overflowing_since_snapshot.is_some() {
            self.keep_overflowing(state, Instant::now());
        } else if let Some(log) = &self.outbox {
            log.gone(&state.status.url, &done);
        }
    }

    /// An attempt failed (it may be retried).
    pub fn record_error(&self, error: String) {
        self.lock().status.last_error = Some(error);
    }

    /// The batch in flight is given up.
    pub fn record_failure(&self) {
        let mut state = self.lock();
        state.status.failed += 1;
        self.finish(&mut state);
    }

    /// The endpoint's numbers now.
    pub fn status(&self) -> EndpointStatus {
        let state = self.lock();
        let mut status = state.status.clone();
        status.queued = state.waiting.len() + state.in_flight.len();
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventType;

    fn event(n: i64) -> Arc<Event> {
        Arc::new(Event {
            id: n.to_string(),
            kind: EventType::Alert,
            at: n,
            json: "{}".into(),
        })
    }

    #[test]
    fn a_full_queue_drops_the_oldest_waiting_event() {
        let queue = EndpointQueue::new("http://x".into(), 2);
        let now = Instant::now();
        assert_eq!(queue.push(event(1), now), 0);
        let batch = queue.take(100);
        assert_eq!(batch.len(), 1, "in flight, never dropped");
        queue.push(event(2), now);
        queue.push(event(3), now);
        assert_eq!(queue.push(event(4), now), 1);
        let status = queue.status();
        assert_eq!((status.queued, status.dropped), (3, 1));
        let next: Vec<String> = queue.take(100).iter().map(|e| e.id.clone()).collect();
        assert_eq!(next, ["3", "4"]);
    }

    #[test]
    fn restored_events_standing_for_the_batch_in_flight_are_not_dropped() {
        let queue = EndpointQueue::new("http://x".into(), 2);
        let now = Instant::now();
        for n in 0..3 {
            assert_eq!(queue.restore(event(n), now), 0, "outside the bound");
        }
        queue.push(event(3), now);
        queue.push(event(4), now);
        assert_eq!(queue.push(event(5), now), 1);
        let ids = |batch: Vec<Arc<Event>>| -> Vec<String> {
            batch.iter().map(|e| e.id.clone()).collect()
        };
        assert_eq!(ids(queue.take(2)), ["0", "1"]);
        assert_eq!(
            queue.push(event(6), now),
            1,
            "the third restored one counts now"
        );
        assert_eq!(ids(queue.take(100)), ["2", "5", "6"]);
        assert_eq!(queue.status().dropped, 2);
    }

    #[test]
    fn outcomes_are_counted_per_event_and_per_batch() {
        let queue = EndpointQueue::new("http://x".into(), 10);
        let now = Instant::now();
        for n in 0..3 {
            queue.push(event(n), now);
        }
        queue.take(2);
        queue.record_success(5);
        queue.take(2);
        queue.record_error("boom".into());
        queue.record_failure();
        let status = queue.status();
        assert_eq!(status.delivered, 2);
        assert_eq!(status.failed, 1);
        assert_eq!(status.queued, 0);
        assert_eq!(status.last_success_at, Some(5));
        assert_eq!(status.last_error.as_deref(), Some("boom"));
    }
}
