//! Owns a socket's view of its token's lifetime (contract v1.1 §9): when to
//! send `auth_required` (`PRESENCE_TOKEN_REFRESH_WINDOW` before `exp`), once
//! per token. The end at `exp` itself is an engine deadline, so a session
//! ends `token_expired` whether or not its socket is there.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::Millis;
use crate::model::time::now_millis;

/// When this socket asks for a new token, and for which `exp`.
#[derive(Debug)]
pub struct TokenClock {
    expires_at: Option<Millis>,
    window: Duration,
    ask_at: Option<Instant>,
}

impl TokenClock {
    /// A token expiring at `expires_at` (None in dev mode: never asked).
    pub fn new(expires_at: Option<Millis>, window: Duration) -> Self {
        let mut clock = Self {
            expires_at: None,
            window,
            ask_at: None,
        };
        clock.renew(expires_at);
        clock
    }

    /// A new token was accepted.
    pub fn renew(&mut self, expires_at: Option<Millis>) {
        self.expires_at = expires_at;
        self.ask_at = expires_at.map(|exp| {
            let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
            let wait = exp.saturating_sub(window).saturating_sub(now_millis());
            Instant::now() + Duration::from_millis(u64::try_from(wait).unwrap_or(0))
        });
    }

    /// When `auth_required` is due, until it was sent.
    pub fn ask_at(&self) -> Option<Instant> {
        self.ask_at
    }

    /// The `exp` to announce when `auth_required` is due at `now` (once).
    pub fn take_due(&mut self, now: Instant) -> Option<Millis> {
        if self.ask_at.is_some_and(|at| at <= now) {
            self.ask_at = None;
            return self.expires_at;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_inside_its_window_is_due_at_once_and_only_once() {
        let exp = now_millis() + 10_000;
        let mut clock = TokenClock::new(Some(exp), Duration::from_secs(30));
        assert_eq!(clock.take_due(Instant::now()), Some(exp));
        assert_eq!(clock.take_due(Instant::now()), None);
    }

    #[test]
    fn a_fresh_token_is_asked_for_later_and_dev_mode_never() {
        let exp = now_millis() + 600_000;
        let mut clock = TokenClock::new(Some(exp), Duration::from_secs(30));
        assert_eq!(clock.take_due(Instant::now()), None);
        assert!(clock.ask_at().is_some());
        let mut dev = TokenClock::new(None, Duration::from_secs(30));
        assert_eq!(dev.ask_at(), None);
        assert_eq!(
            dev.take_due(Instant::now() + Duration::from_secs(3600)),
            None
        );
    }
}
