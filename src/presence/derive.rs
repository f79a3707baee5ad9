//! Owns status derivation: which status a session has at a given time, and
//! when it will next change by itself. Pure: time is a parameter.

use crate::model::time::millis_of;
use crate::model::{ManualStatus, Millis, SessionStatus};

/// The two activity thresholds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Active to idle.
    pub idle_after: Millis,
    /// Idle to away.
    pub away_after: Millis,
}

impl Thresholds {
    /// Builds thresholds from durations.
    pub fn new(idle_after: std::time::Duration, away_after: std::time::Duration) -> Self {
        Self {
            idle_after: millis_of(idle_after),
            away_after: millis_of(away_after),
        }
    }
}

/// The status a live session has at `now`.
pub fn derive_status(
    last_activity: Millis,
    manual: Option<ManualStatus>,
    now: Millis,
    thresholds: Thresholds,
) -> SessionStatus {
    if manual == Some(ManualStatus::Away) {
        return SessionStatus::Away;
    }
    let quiet_for = now.saturating_sub(last_activity);
    if quiet_for < thresholds.idle_after {
        SessionStatus::Active
    } else if quiet_for < thresholds.away_after {
        SessionStatus::Idle
    } else {
        SessionStatus::Away
    }
}

/// When the derived status will next change without new activity, given
/// the status it has now; `None` once away (or held away by hand).
pub fn next_transition_at(
    last_activity: Millis,
    status: SessionStatus,
    thresholds: Thresholds,
) -> Option<Millis> {
    match status {
        SessionStatus::Active => Some(last_activity.saturating_add(thresholds.idle_after)),
        SessionStatus::Idle => Some(last_activity.saturating_add(thresholds.away_after)),
        SessionStatus::Away | SessionStatus::Ended => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        idle_after: 1_000,
        away_after: 3_000,
    };

    #[test]
    fn status_follows_time_since_activity() {
        assert_eq!(derive_status(0, None, 999, T), SessionStatus::Active);
        assert_eq!(derive_status(0, None, 1_000, T), SessionStatus::Idle);
        assert_eq!(derive_status(0, None, 2_999, T), SessionStatus::Idle);
        assert_eq!(derive_status(0, None, 3_000, T), SessionStatus::Away);
    }

    #[test]
    fn manual_away_forces_away_and_busy_does_not() {
        assert_eq!(
            derive_status(0, Some(ManualStatus::Away), 10, T),
            SessionStatus::Away
        );
        assert_eq!(
            derive_status(0, Some(ManualStatus::Busy), 10, T),
            SessionStatus::Active
        );
    }

    #[test]
    fn next_transition_is_the_next_threshold_ahead() {
        assert_eq!(next_transition_at(0, SessionStatus::Active, T), Some(1_000));
        assert_eq!(next_transition_at(0, SessionStatus::Idle, T), Some(3_000));
        assert_eq!(next_transition_at(0, SessionStatus::Away, T), None);
    }

    #[test]
    fn a_wall_clock_step_moves_no_deadline() {
        // The system clock says 10:00:00 when the hub starts ...
        let start = std::time::Instant::now();
        let clock = crate::model::time::HubClock::starting_at(1_700_000_000_000, start);
        let last_activity = clock.at(start);
        let thresholds = Thresholds::new(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(300),
        );
        let idle_at = next_transition_at(
            last_activity,
            crate::model::SessionStatus::Active,
            thresholds,
        );
        // ... then NTP steps it back an hour, or a VM resumes a day later:
        // neither is read again, so 59 s later the session is still active
        // and 60 s later it is idle, exactly as without the step.
        let before = clock.at(start + std::time::Duration::from_secs(59));
        let after = clock.at(start + std::time::Duration::from_secs(60));
        assert!(idle_at.is_some_and(|at| before < at && at <= after));
        assert_eq!(after - last_activity, 60_000);
        assert_eq!(
            derive_status(last_activity, None, before, thresholds),
            crate::model::SessionStatus::Active
        );
        assert_eq!(
            derive_status(last_activity, None, after, thresholds),
            crate::model::SessionStatus::Idle
        );
    }
}
