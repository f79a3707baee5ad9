//! Owns which webhook events the engine's changes make (§11, §14): one
//! event per local session start or end, per alert, and per user going
//! online or offline when the session that caused it is this node's. Each
//! event is rendered to JSON once, with an id that never changes.
//!
//! Pure: no I/O, no clock; `at` comes with the change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::format_rfc3339;
use crate::model::json::to_json;
use crate::model::{Applied, Change, EventType, Millis, NodeId, SessionEvent, SessionId, UserId};

/// One webhook event, rendered: `{"id","type","at","data"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique, stable id (UUIDv4).
    pub id: String,
    /// Its type.
    pub kind: EventType,
    /// When the engine applied the change.
    pub at: Millis,
    /// The JSON text of the whole event.
    pub json: Arc<str>,
}

impl Event {
    fn new(kind: EventType, at: Millis, data: &str) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let json = format!(
            r#"{{"id":"{id}","type":"{kind}","at":"{}","data":{data}}}"#,
            format_rfc3339(at)
        );
        Self {
            id,
            kind,
            at,
            json: json.into(),
        }
    }
}

/// Turns the engine's changes into events, remembering which users are
/// online cluster-wide and which node's session changed last.
#[derive(Debug)]
pub struct EventBuilder {
    node_id: NodeId,
    online: HashSet<UserId>,
    /// The user and locality of the last session change: the engine
    /// publishes a user's change right after the session change that
    /// caused it.
    last_session: Option<(UserId, bool)>,
    /// Per online user, the latest session end seen (`ended_at`, id,
    /// local?). Every node sees the same ends before the user's count
    /// reaches 0, in whatever order, so "the owner of the latest end sends
    /// `user.offline`" picks one node even when two sessions on two nodes
    /// end at once.
    latest_end: HashMap<UserId, (Millis, SessionId, bool)>,
}

impl EventBuilder {
    /// A builder for the node `node_id`.
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            online: HashSet::new(),
            last_session: None,
            latest_end: HashMap::new(),
        }
    }

    /// The events `applied` makes on this node (none, one or more).
    pub fn events_of(&mut self, applied: &Applied) -> Vec<Event> {
        let at = applied.at;
        match &applied.change {
            Change::Session { event, session } => {
                let local = session.node_id == self.node_id;
                self.last_session = Some((session.user_id.clone(), local));
                if *event == SessionEvent::Ended {
                    let end = (session.ended_at.unwrap_or(at), session.session_id, local);
                    let latest = self
                        .latest_end
                        .entry(session.user_id.clone())
                        .or_insert(end);
                    if (end.0, end.1) > (latest.0, latest.1) {
                        *latest = end;
                    }
                }
                let kind = match event {
                    SessionEvent::Started => EventType::SessionStarted,
                    SessionEvent::Ended => EventType::SessionEnded,
                    SessionEvent::Updated => return Vec::new(),
                };
                if local {
                    vec![Event::new(kind, at, &to_json(session))]
                } else {
                    Vec::new()
                }
            }
            Change::User(user) => {
                let online = user.session_count > 0;
                let was_online = if online {
                    !self.online.insert(user.user_id.clone())
                } else {
                    self.online.remove(&user.user_id)
                };
                if online == was_online {
                    return Vec::new();
                }
                let latest_end = self.latest_end.remove(&user.user_id);
                let (kind, here) = if online {
                    (EventType::UserOnline, self.caused_here(&user.user_id))
                } else {
                    let here = latest_end.is_some_and(|(_, _, local)| local);
                    (EventType::UserOffline, here)
                };
                if !here {
                    return Vec::new();
                }
                vec![Event::new(kind, at, &to_json(user))]
            }
            // Another node's alert, replicated for its admin streams: that
            // node sends it.
            Change::Alert(alert) if alert.node_id.as_ref().is_some_and(|n| *n != self.node_id) => {
                Vec::new()
            }
            Change::Alert(alert) => vec![Event::new(EventType::Alert, at, &to_json(alert))],
            Change::Audit(_) => Vec::new(),
        }
    }

    fn caused_here(&self, user: &UserId) -> bool {
        matches!(&self.last_session, Some((last, true)) if last == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserStatus;
    use crate::model::{DeviceInfo, SessionId, SessionStatus, SessionView, Transport, UserView};

    fn session(user: &str, node: &str, event: SessionEvent) -> Applied {
        Applied {
            at: 1_000,
            change: Change::Session {
                event,
                session: SessionView {
                    session_id: SessionId::generate(),
                    user_id: UserId::parse(user).unwrap(),
                    name: None,
                    org: None,
                    node_id: NodeId::new(node),
                    transport: Transport::Ws,
                    status: SessionStatus::Active,
                    manual: None,
                    connected_at: 0,
                    last_activity: 0,
                    page: None,
                    ip: None,
                    user_agent: None,
                    device: DeviceInfo::default(),
                    app: None,
                    meta: None,
                    location: None,
                    ended_at: None,
                    end_cause: None,
                    duration_s: 0.0,
                    reconnecting: false,
                    rooms: Vec::new(),
                    email: None,
                    team: None,
                    traffic: Default::default(),
                    rtt_ms: None,
                    timeline: None,
                },
            },
        }
    }

    fn user(name: &str, count: usize) -> Applied {
        Applied {
            at: 1_000,
            change: Change::User(UserView {
                user_id: UserId::parse(name).unwrap(),
                name: None,
                org: None,
                status: if count > 0 {
                    UserStatus::Active
                } else {
                    UserStatus::Offline
                },
                manual: None,
                session_count: count,
                online_since: None,
                last_activity: None,
                email: None,
                team: None,
            }),
        }
    }

    fn kinds(builder: &mut EventBuilder, applied: &Applied) -> Vec<EventType> {
        builder.events_of(applied).iter().map(|e| e.kind).collect()
    }

    #[test]
    fn a_users_first_and_last_local_session_make_online_and_offline() {
        let mut b = EventBuilder::new(NodeId::new("a"));
        let started = session("u", "a", SessionEvent::Started);
        assert_eq!(kinds(&mut b, &started), [EventType::SessionStarted]);
        assert_eq!(kinds(&mut b, &user("u", 1)), [EventType::UserOnline]);
        assert_eq!(
            kinds(&mut b, &session("u", "a", SessionEvent::Started)).len(),
            1
        );
        assert!(kinds(&mut b, &user("u", 2)).is_empty(), "already online");
        assert!(kinds(&mut b, &session("u", "a", SessionEvent::Updated)).is_empty());
        kinds(&mut b, &session("u", "a", SessionEvent::Ended));
        assert!(kinds(&mut b, &user("u", 1)).is_empty());
        kinds(&mut b, &session("u", "a", SessionEvent::Ended));
        assert_eq!(kinds(&mut b, &user("u", 0)), [EventType::UserOffline]);
    }

    #[test]
    fn other_nodes_sessions_make_no_events_here() {
        let mut b = EventBuilder::new(NodeId::new("a"));
        assert!(kinds(&mut b, &session("u", "b", SessionEvent::Started)).is_empty());
        assert!(
            kinds(&mut b, &user("u", 1)).is_empty(),
            "node b announces it"
        );
        // A local second session does not make the user online again.
        kinds(&mut b, &session("u", "a", SessionEvent::Started));
        assert!(kinds(&mut b, &user("u", 2)).is_empty());
        // The last session to end is local: this node announces offline.
        kinds(&mut b, &ended_at("u", "b", 1_000));
        kinds(&mut b, &user("u", 1));
        kinds(&mut b, &ended_at("u", "a", 2_000));
        assert_eq!(kinds(&mut b, &user("u", 0)), [EventType::UserOffline]);
    }

    #[test]
    fn only_the_raising_node_sends_an_alert() {
        let mut b = EventBuilder::new(NodeId::new("a"));
        let alert = |node: &str| Applied {
            at: 1,
            change: Change::Alert(crate::model::Alert {
                id: "x".into(),
                rule: crate::model::AlertRule::MultiIp,
                at: 1,
                user_id: None,
                ip: None,
                details: serde_json::Map::new(),
                cleared_at: None,
                org: None,
                node_id: Some(NodeId::new(node)),
            }),
        };
        assert_eq!(kinds(&mut b, &alert("a")), [EventType::Alert]);
        assert!(kinds(&mut b, &alert("b")).is_empty(), "node b sends it");
    }

    fn ended_at(user: &str, node: &str, ended: Millis) -> Applied {
        let mut applied = session(user, node, SessionEvent::Ended);
        if let Change::Session { session, .. } = &mut applied.change {
            session.ended_at = Some(ended);
        }
        applied
    }

    #[test]
    fn two_sessions_ending_at_once_on_two_nodes_make_one_offline() {
        let (mut a, mut b) = (
            EventBuilder::new(NodeId::new("a")),
            EventBuilder::new(NodeId::new("b")),
        );
        for builder in [&mut a, &mut b] {
            builder.events_of(&session("u", "a", SessionEvent::Started));
            builder.events_of(&user("u", 1));
            builder.events_of(&session("u", "b", SessionEvent::Started));
            builder.events_of(&user("u", 2));
        }
        let (end_a, end_b) = (ended_at("u", "a", 5_000), ended_at("u", "b", 5_001));
        // Each node sees its own end first.
        a.events_of(&end_a);
        a.events_of(&user("u", 1));
        a.events_of(&end_b);
        let from_a = kinds(&mut a, &user("u", 0));
        b.events_of(&end_b);
        b.events_of(&user("u", 1));
        b.events_of(&end_a);
        let from_b = kinds(&mut b, &user("u", 0));
        assert!(from_a.is_empty(), "b's session ended last");
        assert_eq!(from_b, [EventType::UserOffline]);
    }

    #[test]
    fn events_render_their_id_type_time_and_data() {
        let mut b = EventBuilder::new(NodeId::new("a"));
        let events = b.events_of(&session("u", "a", SessionEvent::Started));
        let value: serde_json::Value = serde_json::from_str(&events[0].json).unwrap();
        assert_eq!(value["id"], events[0].id.as_str());
        assert_eq!(value["type"], "session.started");
        assert_eq!(value["at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(value["data"]["user_id"], "u");
        assert!(value["data"]["location"].is_null());
    }
}
