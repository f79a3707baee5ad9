//! Owns a session's timeline (contract v1.1 §10): what changed and when
//! (`TimelineEntry`), bounded to `PRESENCE_TIMELINE_LIMIT` entries with the
//! oldest dropped first (`Timeline`), as the timeline route returns it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::time::{Millis, deserialize_time, serialize_time};

/// Entries kept per session unless configured otherwise.
pub const DEFAULT_TIMELINE_LIMIT: usize = 200;

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// The derived status changed (`from`/`to` the statuses).
    Status,
    /// The manual status was set or cleared (null when cleared).
    Manual,
    /// The page changed.
    Page,
    /// The session joined a room (`to` the room, `from` null).
    RoomJoin,
    /// The session left a room (`from` the room, `to` null).
    RoomLeave,
    /// The socket dropped and the session waits for a resume (both null).
    Reconnecting,
    /// A new socket resumed the session (both null).
    Resumed,
}

/// One change in a session's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When it happened.
    #[serde(
        serialize_with = "serialize_time",
        deserialize_with = "deserialize_time"
    )]
    pub at: Millis,
    /// What changed.
    pub kind: TimelineKind,
    /// The value before (null when there was none).
    pub from: Option<String>,
    /// The value after (null when there is none).
    pub to: Option<String>,
}

/// A session's entries, oldest first, at most `limit` of them. Two
/// timelines are equal when their entries and `truncated` are (the limit is
/// configuration, not content).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    /// True once an entry was dropped to stay within the limit.
    pub truncated: bool,
    /// The entries kept, oldest first.
    pub entries: VecDeque<TimelineEntry>,
    #[serde(skip, default = "default_limit")]
    limit: usize,
}

impl PartialEq for Timeline {
    fn eq(&self, other: &Self) -> bool {
        self.truncated == other.truncated && self.entries == other.entries
    }
}

impl Eq for Timeline {}

fn default_limit() -> usize {
    DEFAULT_TIMELINE_LIMIT
}

impl Default for Timeline {
    fn default() -> Self {
        Self::with_limit(DEFAULT_TIMELINE_LIMIT)
    }
}

impl Timeline {
    /// An empty timeline keeping at most `limit` entries (0 keeps none).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            truncated: false,
            entries: VecDeque::new(),
            limit,
        }
    }

    /// Appends an entry, dropping the oldest beyond the limit.
    pub fn push(&mut self, entry: TimelineEntry) {
        self.entries.push_back(entry);
        while self.entries.len() > self.limit {
            self.entries.pop_front();
            self.truncated = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: Millis) -> TimelineEntry {
        TimelineEntry {
            at,
            kind: TimelineKind::Page,
            from: None,
            to: Some(format!("/p{at}")),
        }
    }

    #[test]
    fn the_oldest_entries_go_first_and_truncated_says_so() {
        let mut timeline = Timeline::with_limit(2);
        timeline.push(entry(1));
        timeline.push(entry(2));
        assert!(!timeline.truncated);
        timeline.push(entry(3));
        assert!(timeline.truncated);
        let ats: Vec<Millis> = timeline.entries.iter().map(|e| e.at).collect();
        assert_eq!(ats, vec![2, 3]);
        let json = serde_json::to_value(&timeline).unwrap();
        assert_eq!(json["entries"][0]["kind"], "page");
        assert_eq!(json["entries"][0]["from"], serde_json::Value::Null);
        let room = serde_json::to_value(TimelineKind::RoomJoin).unwrap();
        assert_eq!(room, "room_join");
    }
}
