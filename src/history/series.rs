//! Owns the online series kept beside the records: what one point is (a
//! bucket start, the online users and the live sessions of the cluster at
//! that moment), how long points are kept (`SERIES_RETENTION_MS`, 24 h),
//! how many at most (`MAX_SERIES_POINTS`, one per 10 s for 24 h), and the
//! bounded buffer `MemoryHistory` keeps them in. Sampling is
//! `crate::series`'s; the stores keep what it hands them, one point per
//! bucket (a second write to a bucket replaces the first).

use std::collections::BTreeMap;

use crate::model::Millis;

/// How long points are kept.
pub const SERIES_RETENTION_MS: Millis = 24 * 3_600_000;

/// The most points a store keeps: one per 10 s for 24 h.
pub const MAX_SERIES_POINTS: usize = 8_640;

/// The online users and live sessions at the start of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPoint {
    /// The bucket's start, Unix milliseconds (a multiple of the interval).
    pub at: Millis,
    /// Online users.
    pub users: u64,
    /// Live sessions (active, idle and away).
    pub sessions: u64,
}

/// The start of the bucket of `interval_ms` that `now` falls in.
pub fn bucket_of(now: Millis, interval_ms: Millis) -> Millis {
    let interval = interval_ms.max(1);
    now.div_euclid(interval) * interval
}

/// Points by bucket, at most `MAX_SERIES_POINTS` (the oldest go first).
#[derive(Debug, Default)]
pub struct SeriesBuffer {
    points: BTreeMap<Millis, (u64, u64)>,
}

impl SeriesBuffer {
    /// Keeps `point`, replacing one of the same bucket.
    pub fn save(&mut self, point: SeriesPoint) {
        self.points.insert(point.at, (point.users, point.sessions));
        while self.points.len() > MAX_SERIES_POINTS {
            self.points.pop_first();
        }
    }

    /// The points with `from <= at <= to`, oldest first.
    pub fn range(&self, from: Millis, to: Millis) -> Vec<SeriesPoint> {
        if from > to {
            return Vec::new();
        }
        self.points
            .range(from..=to)
            .map(|(at, (users, sessions))| SeriesPoint {
                at: *at,
                users: *users,
                sessions: *sessions,
            })
            .collect()
    }

    /// Drops the points before `before`; returns how many.
    pub fn prune(&mut self, before: Millis) -> usize {
        let kept = self.points.split_off(&before);
        let pruned = self.points.len();
        self.points = kept;
        pruned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: Millis) -> SeriesPoint {
        SeriesPoint {
            at,
            users: 1,
            sessions: 2,
        }
    }

    #[test]
    fn buckets_start_at_multiples_of_the_interval() {
        assert_eq!(bucket_of(12_345, 10_000), 10_000);
        assert_eq!(bucket_of(20_000, 10_000), 20_000);
        assert_eq!(bucket_of(5, 0), 5, "a zero interval is one millisecond");
    }

    #[test]
    fn the_buffer_is_bounded_and_keeps_the_newest() {
        let mut buffer = SeriesBuffer::default();
        for i in 0..(MAX_SERIES_POINTS as Millis + 10) {
            buffer.save(point(i * 10));
        }
        let all = buffer.range(0, Millis::MAX);
        assert_eq!(all.len(), MAX_SERIES_POINTS);
        assert_eq!(all[0].at, 100);
    }

    #[test]
    fn prune_drops_only_older_points() {
        let mut buffer = SeriesBuffer::default();
        for at in [10, 20, 30] {
            buffer.save(point(at));
        }
        assert_eq!(buffer.prune(20), 1);
        assert_eq!(buffer.range(0, 100).len(), 2);
        assert!(buffer.range(30, 20).is_empty());
    }
}
