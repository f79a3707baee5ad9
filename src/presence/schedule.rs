//! Owns the deadline queue: each session's next moment of interest (a status
//! transition, a coalesced activity flush, an HTTP expiry), ordered by time.
//!
//! The engine sleeps until the earliest deadline instead of rescanning every
//! session on a tick, so the cost grows with transitions, not sessions.

use std::collections::{BTreeSet, HashMap};

use crate::model::{Millis, SessionId};

/// One deadline per session, earliest first.
#[derive(Debug, Default)]
pub struct Schedule {
    queue: BTreeSet<(Millis, SessionId)>,
    by_session: HashMap<SessionId, Millis>,
}

impl Schedule {
    /// Sets (or clears, with `None`) the deadline of a session.
    pub fn set(&mut self, id: SessionId, at: Option<Millis>) {
        if let Some(old) = self.by_session.remove(&id) {
            self.queue.remove(&(old, id));
        }
        if let Some(at) = at {
            self.queue.insert((at, id));
            self.by_session.insert(id, at);
        }
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Millis> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns every session whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Millis) -> Vec<SessionId> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            self.by_session.remove(&id);
            due.push(id);
        }
        due
    }

    /// How many sessions have a deadline.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_session.len()
    }

    /// True when no deadline is set.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_sessions_come_out_in_deadline_order() {
        let (a, b, c) = (
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        let mut schedule = Schedule::default();
        schedule.set(a, Some(300));
        schedule.set(b, Some(100));
        schedule.set(c, Some(200));
        assert_eq!(schedule.next(), Some(100));
        assert_eq!(schedule.pop_due(250), vec![b, c]);
        assert_eq!(schedule.next(), Some(300));
        assert_eq!(schedule.len(), 1);
    }

    #[test]
    fn setting_again_replaces_the_old_deadline() {
        let a = SessionId::generate();
        let mut schedule = Schedule::default();
        schedule.set(a, Some(100));
        schedule.set(a, Some(500));
        assert!(schedule.pop_due(200).is_empty());
        schedule.set(a, None);
        assert!(schedule.is_empty());
        assert_eq!(schedule.next(), None);
    }
}
