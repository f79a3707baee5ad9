//! Owns the per-connection protocol limits: the message-rate token bucket
//! (50/s, burst 100) and the bad-frame window (more than 20 in 10 s). Pure:
//! time is a parameter. Breaking either closes the socket with 1008.

use crate::model::Millis;

/// Bad frames tolerated within the window.
pub const BAD_FRAMES_ALLOWED: usize = 20;
/// The bad-frame window.
pub const BAD_FRAME_WINDOW_MS: Millis = 10_000;

/// A token bucket counted in thousandths of a message: `per_second`
/// sustained, a burst of twice that.
#[derive(Debug, Clone)]
pub struct MessageRate {
    milli_tokens: u64,
    refilled_at: Millis,
    per_second: u32,
}

impl MessageRate {
    /// A full bucket at `now`.
    pub fn new(now: Millis, per_second: u32) -> Self {
        let mut rate = Self {
            milli_tokens: 0,
            refilled_at: now,
            per_second,
        };
        rate.milli_tokens = rate.capacity();
        rate
    }

    fn capacity(&self) -> u64 {
        u64::from(self.per_second) * 2 * 1000
    }

    /// Takes one message's token; false when the client is over the rate.
    pub fn admit(&mut self, now: Millis) -> bool {
        let elapsed = u64::try_from(now - self.refilled_at).unwrap_or(0);
        let refill = elapsed.saturating_mul(u64::from(self.per_second));
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(refill)
            .min(self.capacity());
        self.refilled_at = self.refilled_at.max(now);
        if self.milli_tokens < 1000 {
            return false;
        }
        self.milli_tokens -= 1000;
        true
    }
}

/// The times of recent bad frames; allocated only once a client errs.
#[derive(Debug, Clone, Default)]
pub struct BadFrames {
    recent: Vec<Millis>,
}

impl BadFrames {
    /// Records a bad frame; false once more than 20 fell within 10 s.
    pub fn admit(&mut self, now: Millis) -> bool {
        self.recent.retain(|at| now - *at < BAD_FRAME_WINDOW_MS);
        self.recent.push(now);
        self.recent.len() <= BAD_FRAMES_ALLOWED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages per second a connection may sustain (contract default).
    const RATE_PER_SECOND: u32 = 50;

    #[test]
    fn a_burst_of_100_passes_and_the_101st_does_not() {
        let mut rate = MessageRate::new(0, RATE_PER_SECOND);
        assert!((0..100).all(|_| rate.admit(0)));
        assert!(!rate.admit(0));
        assert!(rate.admit(20), "a token refills every 20 ms");
    }

    #[test]
    fn thirty_per_second_is_never_refused() {
        let mut rate = MessageRate::new(0, RATE_PER_SECOND);
        for i in 0..3_000 {
            assert!(rate.admit(i * 33), "message {i}");
        }
    }

    #[test]
    fn sixty_per_second_is_refused_after_the_burst() {
        let mut rate = MessageRate::new(0, RATE_PER_SECOND);
        let refused = (0..1_200).filter(|i| !rate.admit(i * 1000 / 60)).count();
        assert!(refused > 0);
    }

    #[test]
    fn the_21st_bad_frame_in_ten_seconds_is_one_too_many() {
        let mut bad = BadFrames::default();
        assert!((0..20).all(|i| bad.admit(i * 100)));
        assert!(!bad.admit(2_100));
        let mut spaced = BadFrames::default();
        assert!(
            (0..100).all(|i| spaced.admit(i * 600)),
            "20 per 12 s is fine"
        );
    }
}
