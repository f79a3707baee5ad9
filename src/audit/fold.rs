//! Owns the folding of authentication failures (v1.1 §10, §14): per (IP,
//! action) a one-second window opens with the first failure, which is
//! recorded at once; the rest of the window become one event with reason
//! `folded:<n>`, written when the window closes. Pure: time is a parameter.

use std::collections::HashMap;

use crate::model::{AuditAction, AuditEvent, Millis};

/// How long a folding window stays open.
pub const WINDOW_MS: Millis = 1_000;

#[derive(Debug)]
struct Window {
    closes_at: Millis,
    folded: u64,
    last: AuditEvent,
}

/// Open windows by (IP, action).
#[derive(Debug, Default)]
pub struct Folding {
    windows: HashMap<(String, AuditAction), Window>,
}

impl Folding {
    /// Takes one failure: `Some` when it opens a window (record it now),
    /// `None` when it is folded into the open one.
    pub fn offer(&mut self, event: AuditEvent, now: Millis) -> Option<AuditEvent> {
        let key = (ip_of(&event), event.action);
        if let Some(window) = self.windows.get_mut(&key)
            && now < window.closes_at
        {
            window.folded += 1;
            window.last = event;
            return None;
        }
        self.windows.insert(
            key,
            Window {
                closes_at: now + WINDOW_MS,
                folded: 0,
                last: event.clone(),
            },
        );
        Some(event)
    }

    /// Closes every window due at `now`; returns the folded events to write
    /// (one per window that folded anything), stamped `now`.
    pub fn close_due(&mut self, now: Millis) -> Vec<AuditEvent> {
        let due: Vec<(String, AuditAction)> = self
            .windows
            .iter()
            .filter(|(_, window)| window.closes_at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        let mut folded = Vec::new();
        for key in due {
            if let Some(window) = self.windows.remove(&key)
                && window.folded > 0
            {
                let mut event = window.last;
                event.id = uuid::Uuid::new_v4().to_string();
                event.at = now;
                event.reason = Some(format!("folded:{}", window.folded));
                folded.push(event);
            }
        }
        folded.sort_by_key(|event| event.at);
        folded
    }

    /// When the next window closes.
    pub fn next_close(&self) -> Option<Millis> {
        self.windows.values().map(|window| window.closes_at).min()
    }

    /// Every open window, closed now (shutdown): the folded events.
    pub fn close_all(&mut self, now: Millis) -> Vec<AuditEvent> {
        self.close_due(Millis::MAX)
            .into_iter()
            .map(|mut event| {
                event.at = now;
                event
            })
            .collect()
    }
}

fn ip_of(event: &AuditEvent) -> String {
    event
        .actor
        .as_ref()
        .and_then(|actor| actor.ip.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuditActor, AuditTarget};

    fn failure(ip: &str, at: Millis) -> AuditEvent {
        AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at,
            action: AuditAction::AuthFailed,
            actor: Some(AuditActor {
                user_id: None,
                role: None,
                ip: Some(ip.into()),
            }),
            target: AuditTarget::default(),
            reason: None,
            node_id: "n".into(),
            result: "unauthorized".into(),
        }
    }

    #[test]
    fn the_first_failure_is_recorded_at_once_and_the_rest_fold_into_one() {
        let mut folding = Folding::default();
        let first = folding.offer(failure("1.2.3.4", 0), 0);
        assert!(first.is_some_and(|e| e.reason.is_none()));
        for at in [100, 200, 999] {
            assert!(folding.offer(failure("1.2.3.4", at), at).is_none());
        }
        assert_eq!(folding.next_close(), Some(1_000));
        assert!(folding.close_due(999).is_empty());
        let folded = folding.close_due(1_000);
        assert_eq!(folded.len(), 1);
        assert_eq!(folded[0].reason.as_deref(), Some("folded:3"));
        assert_eq!(folding.next_close(), None);
    }

    #[test]
    fn windows_are_per_ip_and_action_and_a_lone_failure_folds_nothing() {
        let mut folding = Folding::default();
        assert!(folding.offer(failure("1.1.1.1", 0), 0).is_some());
        assert!(folding.offer(failure("2.2.2.2", 10), 10).is_some());
        let mut denied = failure("1.1.1.1", 20);
        denied.action = AuditAction::AuthDenied;
        assert!(folding.offer(denied, 20).is_some());
        assert!(folding.close_due(5_000).is_empty());
        assert!(
            folding.offer(failure("1.1.1.1", 5_000), 5_000).is_some(),
            "a new window"
        );
    }
}
