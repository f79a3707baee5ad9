//! Owns when a JWKS fetch may run (`RefreshSchedule`): periodically, on
//! request with a minimum gap, and with backoff after failures. Pure: time
//! is a parameter; the fetching is `jwks`'.

use std::time::Duration;

use tokio::time::Instant;

/// First wait before retrying a failed fetch; it doubles per failure, up
/// to the minimum gap.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait computed, so that no interval overflows the clock.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// When the next fetch may run: `interval` after a success; sooner,
/// but never within `min_gap` of the last fetch, when a token asked; after
/// a failure, 1 s, 2 s, 4 s ... up to `min_gap`. Pure: time is a parameter.
#[derive(Debug, Clone)]
pub struct RefreshSchedule {
    interval: Duration,
    min_gap: Duration,
    last: Option<Instant>,
    failures: u32,
    requested: bool,
}

impl RefreshSchedule {
    /// Nothing fetched yet: due at once.
    pub fn new(interval: Duration, min_gap: Duration) -> Self {
        Self {
            interval,
            min_gap,
            last: None,
            failures: 0,
            requested: false,
        }
    }

    /// A token named an unknown `kid`.
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// A fetch started `at` has ended, well or not.
    pub fn fetched(&mut self, at: Instant, ok: bool) {
        self.last = Some(at);
        self.requested = false;
        self.failures = if ok {
            0
        } else {
            self.failures.saturating_add(1)
        };
    }

    /// The earliest time the next fetch may start (`now` when overdue).
    pub fn due_at(&self, now: Instant) -> Instant {
        let Some(last) = self.last else {
            return now;
        };
        let wait = if self.failures > 0 {
            let doublings = (self.failures - 1).min(16);
            (FIRST_RETRY * 2u32.pow(doublings)).min(self.min_gap)
        } else if self.requested {
            self.min_gap
        } else {
            self.interval
        };
        // At most a year, so that no interval overflows the clock.
        let wait = wait.min(self.interval).min(LONGEST_WAIT);
        last.checked_add(wait).unwrap_or(now).max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_waits_the_interval_and_a_request_the_min_gap() {
        let (interval, gap) = (Duration::from_secs(300), Duration::from_secs(30));
        let start = Instant::now();
        let mut schedule = RefreshSchedule::new(interval, gap);
        assert_eq!(schedule.due_at(start), start, "first fetch at once");
        schedule.fetched(start, true);
        assert_eq!(schedule.due_at(start), start + interval);
        schedule.request();
        assert_eq!(schedule.due_at(start), start + gap, "never within 30 s");
        let later = start + Duration::from_secs(100);
        assert_eq!(schedule.due_at(later), later, "overdue: now");
        schedule.fetched(later, true);
        assert_eq!(schedule.due_at(later), later + interval, "request served");
    }

    #[test]
    fn failures_back_off_up_to_the_min_gap() {
        let (interval, gap) = (Duration::from_secs(300), Duration::from_secs(30));
        let start = Instant::now();
        let mut schedule = RefreshSchedule::new(interval, gap);
        let waits: Vec<u64> = (0..8)
            .map(|_| {
                schedule.fetched(start, false);
                (schedule.due_at(start) - start).as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        schedule.fetched(start, true);
        assert_eq!(schedule.due_at(start), start + interval);
    }

    #[test]
    fn no_wait_exceeds_the_interval() {
        let start = Instant::now();
        let mut schedule = RefreshSchedule::new(Duration::from_secs(10), Duration::from_secs(30));
        schedule.fetched(start, true);
        schedule.request();
        assert_eq!(schedule.due_at(start), start + Duration::from_secs(10));
    }

    #[test]
    fn an_enormous_interval_does_not_overflow_the_clock() {
        let start = Instant::now();
        let mut schedule = RefreshSchedule::new(Duration::MAX, Duration::MAX);
        schedule.fetched(start, true);
        assert_eq!(schedule.due_at(start), start + LONGEST_WAIT);
    }
}
