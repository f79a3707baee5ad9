//! Owns the session filter of the sessions list, export and history: which
//! sessions a query wants. Live records and stored views are both matched
//! through `SessionFields`, so the presence map filters before it builds
//! any view.

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
    /// When it started.
    fn connected_at(&self) -> Millis;
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
            && self.q.as_deref().is_none_or(|q| matches_text(session, q))
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
    fn connected_at(&self) -> Millis {
        self.connected_at
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
    fn connected_at(&self) -> Millis {
        (*self).connected_at()
    }
}
