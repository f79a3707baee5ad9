//! Owns sliding time windows keyed by subject: what happened to each key
//! within the last `length`, expired in time order from one log, so keeping
//! them costs O(1) per entry and nothing ever scans every key. Pure: time
//! is a parameter.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::model::Millis;

/// Entries per key within a sliding window.
#[derive(Debug)]
pub struct Windows<K, T = ()> {
    length: Millis,
    per_key: HashMap<K, VecDeque<(Millis, T)>>,
    /// Every entry's key in the order pushed (times never go back).
    log: VecDeque<(Millis, K)>,
}

impl<K: Clone + Eq + Hash, T> Windows<K, T> {
    /// Windows `length` long.
    pub fn new(length: Millis) -> Self {
        Self {
            length,
            per_key: HashMap::new(),
            log: VecDeque::new(),
        }
    }

    /// Adds an entry at `at`; returns how many the key now holds.
    pub fn push(&mut self, key: K, at: Millis, value: T) -> usize {
        let at = self.log.back().map_or(at, |(last, _)| at.max(*last));
        self.log.push_back((at, key.clone()));
        let entries = self.per_key.entry(key).or_default();
        entries.push_back((at, value));
        entries.len()
    }

    /// How many entries `key` holds.
    pub fn count(&self, key: &K) -> usize {
        self.per_key.get(key).map_or(0, VecDeque::len)
    }

    /// The key's entries, oldest first.
    pub fn entries(&self, key: &K) -> impl DoubleEndedIterator<Item = &(Millis, T)> {
        self.per_key.get(key).into_iter().flatten()
    }

    /// Drops what is older than `length` at `now`; returns each key that
    /// lost entries with the count it has left.
    pub fn expire(&mut self, now: Millis) -> Vec<(K, usize)> {
        let mut changed: Vec<(K, usize)> = Vec::new();
        while let Some((at, _)) = self.log.front() {
            if *at + self.length > now {
                break;
            }
            let Some((_, key)) = self.log.pop_front() else {
                break;
            };
            let left = match self.per_key.get_mut(&key) {
                Some(entries) => {
                    entries.pop_front();
                    entries.len()
                }
                None => 0,
            };
            if left == 0 {
                self.per_key.remove(&key);
            }
            match changed.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = left,
                None => changed.push((key, left)),
            }
        }
        changed
    }

    /// When the oldest entry leaves the window.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.log.front().map(|(at, _)| at + self.length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_the_window_in_time_order() {
        let mut windows: Windows<&str> = Windows::new(60_000);
        assert_eq!(windows.push("a", 0, ()), 1);
        assert_eq!(windows.push("b", 10_000, ()), 1);
        assert_eq!(windows.push("a", 20_000, ()), 2);
        assert_eq!(windows.next_expiry(), Some(60_000));
        assert!(windows.expire(59_999).is_empty());
        assert_eq!(windows.expire(60_000), [("a", 1)]);
        assert_eq!(windows.expire(80_000), [("b", 0), ("a", 0)]);
        assert_eq!(windows.count(&"a"), 0);
        assert_eq!(windows.next_expiry(), None);
    }
}
