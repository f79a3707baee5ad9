//! Owns the alerts this node raised and those other nodes of the cluster
//! raised (replicated by `cluster/redis/alerts.rs`), kept in memory for
//! `GET /api/v1/alerts`: the newest `ALERTS_KEPT`, a cleared alert
//! replacing its active version in place. When full, the oldest cleared
//! alert goes first, then the oldest active one. Cloning is shallow; the
//! lock is held for a copy or a filter, never across an await.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::{Alert, AlertRule, Millis, NodeId};

/// Most alerts kept.
pub const ALERTS_KEPT: usize = 10_000;

/// What `GET /api/v1/alerts` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only this rule.
    pub rule: Option<AlertRule>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only active (true) or only cleared (false) alerts.
    pub active: Option<bool>,
    /// Raised at or after.
    pub from: Option<Millis>,
    /// Raised at or before.
    pub to: Option<Millis>,
}

impl AlertQuery {
    fn admits(&self, alert: &Alert) -> bool {
        self.rule.is_none_or(|rule| alert.rule == rule)
            && self
                .user_id
                .as_deref()
                .is_none_or(|user| alert.user_id.as_ref().is_some_and(|u| u.as_str() == user))
            && self.active.is_none_or(|active| alert.is_active() == active)
            && self.from.is_none_or(|from| alert.at >= from)
            && self.to.is_none_or(|to| alert.at <= to)
    }
}

/// The alerts, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AlertStore {
    alerts: Arc<Mutex<VecDeque<Alert>>>,
}

impl AlertStore {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Alert>> {
        // Every change under this lock is one push, replace or remove, so a
        // poisoned lock still holds a consistent list.
        self.alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a raised alert, or the clearing of one already kept.
    pub fn record(&self, alert: Alert) {
        let mut alerts = self.lock();
        if let Some(kept) = alerts.iter_mut().rev().find(|kept| kept.id == alert.id) {
            *kept = alert;
            return;
        }
        if alerts.len() >= ALERTS_KEPT {
            match alerts.iter().position(|kept| !kept.is_active()) {
                Some(oldest_cleared) => {
                    alerts.remove(oldest_cleared);
                }
                None => {
                    alerts.pop_front();
                }
            }
        }
        alerts.push_back(alert);
    }

    /// True when the alert `id` is kept.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().iter().any(|kept| kept.id == id)
    }

    /// Clears every active alert `node` raised, at `at` (the node is gone
    /// and cannot); returns them as cleared.
    pub fn clear_of_node(&self, node: &NodeId, at: Millis) -> Vec<Alert> {
        let mut alerts = self.lock();
        alerts
            .iter_mut()
            .filter(|alert| alert.is_active() && alert.node_id.as_ref() == Some(node))
            .map(|alert| {
                alert.cleared_at = Some(at);
                alert.clone()
            })
            .collect()
    }

    /// The matching alerts newest first: `(total, the page's slice)`.
    pub fn query(&self, query: &AlertQuery, offset: usize, limit: usize) -> (usize, Vec<Alert>) {
        let alerts = self.lock();
        let matching = alerts.iter().rev().filter(|alert| query.admits(alert));
        let total = matching.clone().count();
        let page = matching.skip(offset).take(limit).cloned().collect();
        (total, page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, rule: AlertRule, at: Millis) -> Alert {
        Alert {
            id: id.into(),
            rule,
            at,
            user_id: None,
            ip: Some("192.0.2.1".into()),
            details: serde_json::Map::new(),
            cleared_at: None,
            org: None,
            node_id: None,
        }
    }

    #[test]
    fn clearing_replaces_in_place_and_queries_filter_newest_first() {
        let store = AlertStore::default();
        store.record(alert("a", AlertRule::AuthFailures, 1));
        store.record(alert("b", AlertRule::MultiIp, 2));
        let mut cleared = alert("a", AlertRule::AuthFailures, 1);
        cleared.cleared_at = Some(3);
        store.record(cleared);
        let (total, all) = store.query(&AlertQuery::default(), 0, 10);
        assert_eq!(total, 2);
        assert_eq!(all[0].id, "b");
        assert_eq!(all[1].cleared_at, Some(3));
        let active = AlertQuery {
            active: Some(true),
            ..AlertQuery::default()
        };
        assert_eq!(store.query(&active, 0, 10).0, 1);
        let rule = AlertQuery {
            rule: Some(AlertRule::AuthFailures),
            from: Some(1),
            to: Some(1),
            ..AlertQuery::default()
        };
        assert_eq!(store.query(&rule, 0, 10).1[0].id, "a");
    }
}
