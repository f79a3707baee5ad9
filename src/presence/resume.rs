//! Owns the resume tokens of live WebSocket sessions (contract v1.1 §9):
//! one opaque token per session, 192 random bits (48 hex digits) followed by
//! the session's id, so any node of the cluster can find the session's
//! current owner; never the session id alone, and never shown anywhere but
//! the session's own `welcome`. Only the random part proves anything. A
//! token resumes once: taking a session over issues a new one and the old
//! one is gone.
//!
//! Only the engine holds this table; it forgets a session's token when the
//! session ends, so an ended session's token is simply unknown.

use std::collections::HashMap;

use crate::model::{NodeId, SessionId};

/// Hex digits of a token's random part.
const RANDOM_HEX: usize = 48;

/// What a new socket's resume token leads to, as the engine first sees it.
#[derive(Debug)]
pub enum ConnectStep {
    /// The socket is attached (resumed or new).
    Done(Connected),
    /// The token was issued by another node: ask it to hand the session
    /// over, then adopt it here.
    Elsewhere {
        /// The node that issued the token.
        owner: NodeId,
        /// The token.
        token: String,
        /// The new socket's session, to open if the owner says no.
        session: Box<super::state::NewSession>,
        /// The new socket's liveness.
        liveness: std::sync::Arc<super::liveness::SessionLiveness>,
        /// The session is `reconnecting` here: its owner may be handing it
        /// on to another node (a shutdown), so a "no" may be followed by
        /// its arrival.
        in_transit: bool,
    },
}

/// The session `token` names, if it is one of ours in form (whether the
/// token is valid only its session's owner can tell).
pub fn session_of(token: &str) -> Option<SessionId> {
    SessionId::parse(token.get(RANDOM_HEX..)?)
}

/// What the engine answers a new socket: which session it drives, whether
/// it resumed one, and the token that resumes it next time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The session the socket now drives.
    pub session_id: SessionId,
    /// True when the socket took over a live session.
    pub resumed: bool,
    /// The session's new resume token.
    pub resume_token: String,
}

/// Resume token to session, and back.
#[derive(Debug, Default)]
pub struct ResumeTokens {
    by_token: HashMap<String, SessionId>,
    by_session: HashMap<SessionId, String>,
}

impl ResumeTokens {
    /// A fresh token for `id`; the session's previous token stops working.
    pub fn issue(&mut self, id: SessionId) -> String {
        let token = generate(id);
        self.register(id, token.clone());
        token
    }

    /// Makes `token` resume `id` here: a session taken over from a node
    /// that shut down keeps the token its tab holds.
    pub fn register(&mut self, id: SessionId, token: String) {
        self.forget(id);
        self.by_token.insert(token.clone(), id);
        self.by_session.insert(id, token);
    }

    /// The token that resumes `id`, if any.
    pub fn token_of(&self, id: SessionId) -> Option<&str> {
        self.by_session.get(&id).map(String::as_str)
    }

    /// The session a token would resume, without using it up.
    pub fn peek(&self, token: &str) -> Option<SessionId> {
        self.by_token.get(token).copied()
    }

    /// Drops the session's token (the session ended).
    pub fn forget(&mut self, id: SessionId) {
        if let Some(token) = self.by_session.remove(&id) {
            self.by_token.remove(&token);
        }
    }
}

/// 24 random bytes as lowercase hex digits, then the session id.
fn generate(id: SessionId) -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 24] = rand::random();
    let mut text = String::with_capacity(RANDOM_HEX + 36);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    let _ = write!(text, "{id}");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_session_until_a_new_one_is_issued() {
        let mut tokens = ResumeTokens::default();
        let id = SessionId::generate();
        let first = tokens.issue(id);
        assert_eq!(first.len(), 48 + 36);
        assert_ne!(first, id.to_string());
        assert_eq!(tokens.peek(&first), Some(id));
        assert_eq!(session_of(&first), Some(id));
        let second = tokens.issue(id);
        assert_ne!(first, second);
        assert_eq!(tokens.peek(&first), None, "a used token no longer works");
        assert_eq!(tokens.peek(&second), Some(id));
        tokens.forget(id);
        assert_eq!(tokens.peek(&second), None);
        assert_eq!(tokens.peek("not a token"), None);
        assert_eq!(session_of("short"), None);
        assert_eq!(session_of(&"0".repeat(49)), None);
        let forged = format!("{}{id}", "0".repeat(48));
        assert_eq!(tokens.peek(&forged), None, "the random part proves it");
        tokens.register(id, forged.clone());
        assert_eq!(tokens.token_of(id), Some(forged.as_str()));
    }
}
