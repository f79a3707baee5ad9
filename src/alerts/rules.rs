//! Owns the alert rules (§12): which conditions hold, raised once per
//! (rule, subject) and cleared when they stop, from the engine's changes
//! alone. Every session start and end is an O(1) step (plus the user's own
//! sessions); time-driven checks sleep until the next window expiry or
//! long-session deadline. Nothing scans every session.
//!
//! Cluster rule (§14): every node sees every session (replicas included),
//! but only the node owning the session that completes a condition raises
//! the alert, and only the node that raised an alert clears it.
//!
//! Pure: time is a parameter.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::travel::{Start, TRAVEL_WINDOW, impossible_travel};
use super::window::Windows;
use crate::config::AlertConfig;
use crate::model::time::millis_of;
use crate::model::{
    Alert, AlertRule, Applied, Change, Millis, NodeId, SessionEvent, SessionId, SessionView,
    UserId, format_rfc3339,
};

/// The windows of `session_flood`, `reconnect_loop` and `auth_failures`.
pub const WINDOW: Millis = 60_000;

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A user (`multi_ip`, `session_flood`, `reconnect_loop`, `impossible_travel`).
    User(UserId),
    /// A session (`long_session`).
    Session(SessionId),
    /// A client IP (`auth_failures`).
    Ip(String),
}

/// What the rules remember of a live session.
#[derive(Debug, Clone)]
struct Live {
    user_id: UserId,
    org: Option<String>,
    ip: Option<String>,
    local: bool,
    connected_at: Millis,
}

/// The rules' state.
#[derive(Debug)]
pub struct Evaluator {
    config: AlertConfig,
    node_id: NodeId,
    sessions: HashMap<SessionId, Live>,
    /// Each user's live sessions (most users have one: a list, not a set).
    users: HashMap<UserId, Vec<SessionId>>,
    starts: Windows<UserId>,
    ends: Windows<UserId>,
    reconnects: Windows<UserId>,
    failures: Windows<String>,
    travels: Windows<UserId, Start>,
    /// The two sessions of each raised `impossible_travel`.
    travel_pairs: HashMap<UserId, [SessionId; 2]>,
    /// Local sessions by the time they become long.
    long_at: BTreeSet<(Millis, SessionId)>,
    active: HashMap<(AlertRule, Subject), Alert>,
}

impl Evaluator {
    /// Rules with `config`'s thresholds, for the node `node_id`.
    pub fn new(config: AlertConfig, node_id: NodeId) -> Self {
        Self {
            config,
            node_id,
            sessions: HashMap::new(),
            users: HashMap::new(),
            starts: Windows::new(WINDOW),
            ends: Windows::new(WINDOW),
            reconnects: Windows::new(WINDOW),
            failures: Windows::new(WINDOW),
            travels: Windows::new(TRAVEL_WINDOW),
            travel_pairs: HashMap::new(),
            long_at: BTreeSet::new(),
            active: HashMap::new(),
        }
    }

    /// The alerts a change raises or clears.
    pub fn observe(&mut self, applied: &Applied) -> Vec<Alert> {
        let mut out = self.expire(applied.at);
        if let Change::Session { event, session } = &applied.change {
            match event {
                SessionEvent::Started => self.started(session, applied.at, &mut out),
                SessionEvent::Ended => self.ended(session, applied.at, &mut out),
                SessionEvent::Updated => {}
            }
        }
        out
    }

    /// A 401 this node answered `ip` at `now`.
    pub fn auth_failure(&mut self, ip: String, now: Millis) -> Vec<Alert> {
        let mut out = self.expire(now);
        let count = self.failures.push(ip.clone(), now, ());
        if count >= self.config.auth_failures_min {
            let details = window_details(count);
            let alert = new_alert(
                AlertRule::AuthFailures,
                now,
                None,
                Some(ip.clone()),
                details,
            );
            self.raise(Subject::Ip(ip), alert, &mut out);
        }
        out
    }

    /// When a time-driven check is next due.
    pub fn next_deadline(&self) -> Option<Millis> {
        [
            self.starts.next_expiry(),
            self.ends.next_expiry(),
            self.reconnects.next_expiry(),
            self.failures.next_expiry(),
            self.travels.next_expiry(),
            self.long_at.first().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the checks due at `now`.
    pub fn fire_due(&mut self, now: Millis) -> Vec<Alert> {
        let mut out = self.expire(now);
        while let Some(&(at, id)) = self.long_at.first() {
            if at > now {
                break;
            }
            self.long_at.remove(&(at, id));
            self.raise_long_session(id, now, &mut out);
        }
        out
    }

    /// Windows that moved past entries, and the alerts that stop holding.
    fn expire(&mut self, now: Millis) -> Vec<Alert> {
        let mut out = Vec::new();
        self.ends.expire(now);
        self.travels.expire(now);
        for (user, left) in self.starts.expire(now) {
            if left < self.config.session_flood_min {
                self.clear(AlertRule::SessionFlood, &Subject::User(user), now, &mut out);
            }
        }
        for (user, left) in self.reconnects.expire(now) {
            if left < self.config.reconnect_loop_min {
                self.clear(
                    AlertRule::ReconnectLoop,
                    &Subject::User(user),
                    now,
                    &mut out,
                );
            }
        }
        for (ip, left) in self.failures.expire(now) {
            if left < self.config.auth_failures_min {
                self.clear(AlertRule::AuthFailures, &Subject::Ip(ip), now, &mut out);
            }
        }
        out
    }

    fn started(&mut self, session: &SessionView, at: Millis, out: &mut Vec<Alert>) {
        let id = session.session_id;
        let user = session.user_id.clone();
        let live = Live {
            user_id: user.clone(),
            org: session.org.clone(),
            ip: session.ip.clone(),
            local: session.node_id == self.node_id,
            connected_at: session.connected_at,
        };
        if live.local {
            let long_at = session.connected_at + millis_of(self.config.long_session_after);
            self.long_at.insert((long_at, id));
        }
        self.sessions.insert(id, live.clone());
        let ids = self
            .users
            .entry(user.clone())
            .or_insert_with(|| Vec::with_capacity(1));
        if !ids.contains(&id) {
            ids.push(id);
        }
        self.check_multi_ip(&user, id, at, out);
        let starts = self.starts.push(user.clone(), at, ());
        if starts >= self.config.session_flood_min && live.local {
            let alert = user_alert(AlertRule::SessionFlood, &live, at, window_details(starts));
            self.raise(Subject::User(user.clone()), alert, out);
        }
        if self.ends.count(&user) > 0 {
            let loops = self.reconnects.push(user.clone(), at, ());
            if loops >= self.config.reconnect_loop_min && live.local {
                let alert = user_alert(AlertRule::ReconnectLoop, &live, at, window_details(loops));
                self.raise(Subject::User(user.clone()), alert, out);
            }
        }
        self.check_travel(session, &live, at, out);
    }

    fn ended(&mut self, session: &SessionView, at: Millis, out: &mut Vec<Alert>) {
        let id = session.session_id;
        let Some(live) = self.sessions.remove(&id) else {
            return;
        };
        let user = live.user_id.clone();
        if let Some(ids) = self.users.get_mut(&user) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.users.remove(&user);
            }
        }
        if live.local {
            let long_at = live.connected_at + millis_of(self.config.long_session_after);
            self.long_at.remove(&(long_at, id));
        }
        self.clear(AlertRule::LongSession, &Subject::Session(id), at, out);
        if self.distinct_ips(&user).len() < self.config.multi_ip_min {
            self.clear(AlertRule::MultiIp, &Subject::User(user.clone()), at, out);
        }
        if self
            .travel_pairs
            .get(&user)
            .is_some_and(|pair| pair.contains(&id))
        {
            self.travel_pairs.remove(&user);
            self.clear(
                AlertRule::ImpossibleTravel,
                &Subject::User(user.clone()),
                at,
                out,
            );
        }
        self.ends.push(user, at, ());
    }

    fn distinct_ips(&self, user: &UserId) -> BTreeSet<String> {
        self.users
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.sessions.get(id)?.ip.clone())
            .collect()
    }

    fn check_multi_ip(&mut self, user: &UserId, id: SessionId, at: Millis, out: &mut Vec<Alert>) {
        let ips = self.distinct_ips(user);
        let Some(live) = self.sessions.get(&id).filter(|live| live.local).cloned() else {
            return;
        };
        if ips.len() < self.config.multi_ip_min {
            return;
        }
        let mut details = Map::new();
        details.insert("ips".into(), json!(ips));
        details.insert("count".into(), json!(ips.len()));
        details.insert("session_id".into(), json!(id));
        let alert = user_alert(AlertRule::MultiIp, &live, at, details);
        self.raise(Subject::User(user.clone()), alert, out);
    }

    fn check_travel(
        &mut self,
        session: &SessionView,
        live: &Live,
        at: Millis,
        out: &mut Vec<Alert>,
    ) {
        let Some(location) = session.location.clone() else {
            return;
        };
        let start = Start {
            session_id: session.session_id,
            at,
            ip: session.ip.clone(),
            location,
        };
        let found = self
            .travels
            .entries(&live.user_id)
            .rev()
            .find_map(|(_, earlier)| {
                Some((earlier.session_id, impossible_travel(earlier, &start)?))
            });
        self.travels.push(live.user_id.clone(), at, start);
        let Some((earlier, details)) = found.filter(|_| live.local) else {
            return;
        };
        let subject = Subject::User(live.user_id.clone());
        if self
            .active
            .contains_key(&(AlertRule::ImpossibleTravel, subject.clone()))
        {
            return;
        }
        self.travel_pairs
            .insert(live.user_id.clone(), [earlier, session.session_id]);
        let alert = user_alert(AlertRule::ImpossibleTravel, live, at, details);
        self.raise(subject, alert, out);
    }

    fn raise_long_session(&mut self, id: SessionId, now: Millis, out: &mut Vec<Alert>) {
        let Some(live) = self.sessions.get(&id).cloned() else {
            return;
        };
        let mut details = Map::new();
        details.insert("session_id".into(), json!(id));
        details.insert(
            "connected_at".into(),
            json!(format_rfc3339(live.connected_at)),
        );
        details.insert(
            "threshold_s".into(),
            json!(self.config.long_session_after.as_secs()),
        );
        let alert = user_alert(AlertRule::LongSession, &live, now, details);
        self.raise(Subject::Session(id), alert, out);
    }

    /// Raises `alert` unless one is active for its rule and subject.
    fn raise(&mut self, subject: Subject, mut alert: Alert, out: &mut Vec<Alert>) {
        let key = (alert.rule, subject);
        if self.active.contains_key(&key) {
            return;
        }
        alert.node_id = Some(self.node_id.clone());
        self.active.insert(key, alert.clone());
        out.push(alert);
    }

    /// Clears the active alert of `rule` about `subject`, if this node raised one.
    fn clear(&mut self, rule: AlertRule, subject: &Subject, at: Millis, out: &mut Vec<Alert>) {
        if let Some(mut alert) = self.active.remove(&(rule, subject.clone())) {
            alert.cleared_at = Some(at);
            out.push(alert);
        }
    }
}

fn window_details(count: usize) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("count".into(), json!(count));
    details.insert("window_s".into(), json!(WINDOW / 1000));
    details
}

fn new_alert(
    rule: AlertRule,
    at: Millis,
    user_id: Option<UserId>,
    ip: Option<String>,
    details: Map<String, Value>,
) -> Alert {
    Alert {
        id: uuid::Uuid::new_v4().to_string(),
        rule,
        at,
        user_id,
        ip,
        details,
        cleared_at: None,
        org: None,
        node_id: None,
    }
}

/// An alert about the user of `live`.
fn user_alert(rule: AlertRule, live: &Live, at: Millis, details: Map<String, Value>) -> Alert {
    let mut alert = new_alert(
        rule,
        at,
        Some(live.user_id.clone()),
        live.ip.clone(),
        details,
    );
    alert.org.clone_from(&live.org);
    alert
}

#[cfg(test)]
mod tests;
