//! Owns the session filter of the sessions list, export and history: which
//! sessions a query wants. Live records and stored views are both matched
//! through `SessionFields`, so the presence map filters before it builds
//! any view.

use serde_json::{Map, Value};

use super::{Millis, SessionId, SessionView};

/// The fields a `SessionFilter` looks at.
pub trait SessionFields {
    /// The session id.
    fn session_id(&self) -> SessionId;
    /// The owner.
    fn user_id(&self) -> &str;
    /// Display name.
    fn name(&self) -> Option<&str>;
    /// Organisation.
    fn org(&self) -> Option<&str>;
    /// Node holding it.
    fn node_id(&self) -> &str;
    /// Client IP.
    fn ip(&self) -> Option<&str>;
    /// The `email` identity claim.
    fn email(&self) -> Option<&str>;
    /// The `team` identity claim.
    fn team(&self) -> Option<&str>;
    /// Application attributes (`meta`).
    fn meta(&self) -> Option<&Map<String, Value>>;
    /// When it started.
    fn connected_at(&self) -> Millis;
    /// When it ended; `None` while it is live.
    fn ended_at(&self) -> Option<Millis> {
        None
    }
}

/// Which sessions a query wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Owner.
    pub user_id: Option<String>,
    /// Organisation.
    pub org: Option<String>,
    /// Node that held it.
    pub node_id: Option<String>,
    /// The `email` claim, exactly.
    pub email: Option<String>,
    /// The `team` claim, exactly.
    pub team: Option<String>,
    /// Case-insensitive substring of user_id, name, ip, session_id, email
    /// or team (already lowercased).
    pub q: Option<String>,
    /// `connected_at >= from`.
    pub from: Option<Millis>,
    /// `connected_at < to`.
    pub to: Option<Millis>,
    /// Live, or connected or ended at or after this time: the sessions
    /// that can overlap a range starting here (the analytics' bound; a
    /// session whose recorded end is before its start still counts from
    /// its start).
    pub active_since: Option<Millis>,
    /// `meta.<key>=<value>` criteria, all of which must hold.
    pub meta: Vec<MetaCriterion>,
}

/// One `meta.<key>=<value>` criterion (v1.1 §10): `meta` has `key`, and its
/// value is the string `value` exactly, or, when `value` reads as a JSON
/// number, `true` or `false`, that JSON value (numbers compare by value:
/// `3` matches `3.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaCriterion {
    /// The key (see `MetaCriterion::valid_key`).
    pub key: String,
    /// The value as given in the query.
    pub value: String,
}

/// What a `meta.` value may also stand for besides the string itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetaScalar {
    /// A JSON number.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl MetaCriterion {
    /// Keys are 1 to 128 bytes of ASCII letters, digits, `_`, `-` and `.`
    /// (a `.` is part of the key: meta is matched one level deep).
    pub fn valid_key(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    }

    /// The JSON number or boolean `value` reads as, if any.
    pub fn scalar(&self) -> Option<MetaScalar> {
        match serde_json::from_str::<Value>(&self.value).ok()? {
            Value::Bool(b) => Some(MetaScalar::Bool(b)),
            Value::Number(n) => n.as_f64().map(MetaScalar::Number),
            _ => None,
        }
    }

    /// True when `meta` satisfies the criterion.
    pub fn matches(&self, meta: Option<&Map<String, Value>>) -> bool {
        let Some(have) = meta.and_then(|m| m.get(&self.key)) else {
            return false;
        };
        match (have, self.scalar()) {
            (Value::String(text), _) => *text == self.value,
            (Value::Number(n), Some(MetaScalar::Number(want))) => n.as_f64() == Some(want),
            (Value::Bool(b), Some(MetaScalar::Bool(want))) => *b == want,
            _ => false,
        }
    }
}

impl SessionFilter {
    /// True when `session` matches every given criterion.
    pub fn matches(&self, session: &impl SessionFields) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        eq(&self.user_id, Some(session.user_id()))
            && eq(&self.org, session.org())
            && eq(&self.node_id, Some(session.node_id()))
            && eq(&self.email, session.email())
            && eq(&self.team, session.team())
            && self.from.is_none_or(|from| session.connected_at() >= from)
            && self.to.is_none_or(|to| session.connected_at() < to)
            && self.active_since.is_none_or(|since| {
                session.connected_at() >= since
                    || session.ended_at().is_none_or(|ended| ended >= since)
            })
            && self.q.as_deref().is_none_or(|q| matches_text(session, q))
            && self.meta.iter().all(|c| c.matches(session.meta()))
    }
}

fn matches_text(session: &impl SessionFields, q: &str) -> bool {
    let contains = |text: &str| text.to_lowercase().contains(q);
    contains(session.user_id())
        || session.name().is_some_and(contains)
        || session.ip().is_some_and(contains)
        || contains(&session.session_id().to_string())
        || session.email().is_some_and(contains)
        || session.team().is_some_and(contains)
}

impl SessionFields for SessionView {
    fn session_id(&self) -> SessionId {
        self.session_id
    }
    fn user_id(&self) -> &str {
        self.user_id.as_str()
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }
    fn node_id(&self) -> &str {
        self.node_id.as_str()
    }
    fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }
    fn meta(&self) -> Option<&Map<String, Value>> {
        self.meta.as_ref()
    }
    fn connected_at(&self) -> Millis {
        self.connected_at
    }
    fn ended_at(&self) -> Option<Millis> {
        self.ended_at
    }
}

impl<T: SessionFields> SessionFields for &T {
    fn session_id(&self) -> SessionId {
        (*self).session_id()
    }
    fn user_id(&self) -> &str {
        (*self).user_id()
    }
    fn name(&self) -> Option<&str> {
        (*self).name()
    }
    fn org(&self) -> Option<&str> {
        (*self).org()
    }
    fn node_id(&self) -> &str {
        (*self).node_id()
    }
    fn ip(&self) -> Option<&str> {
        (*self).ip()
    }
    fn email(&self) -> Option<&str> {
        (*self).email()
    }
    fn team(&self) -> Option<&str> {
        (*self).team()
    }
    fn meta(&self) -> Option<&Map<String, Value>> {
        (*self).meta()
    }
    fn connected_at(&self) -> Millis {
        (*self).connected_at()
    }
    fn ended_at(&self) -> Option<Millis> {
        (*self).ended_at()
    }
}
