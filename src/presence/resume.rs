//! Owns the resume tokens of live WebSocket sessions (contract v1.1 §9):
//! one opaque token per session, 192 random bits, never the session id, and
//! never shown anywhere but the session's own `welcome`. A token resumes
//! once: taking a session over issues a new one and the old one is gone.
//!
//! Only the engine holds this table; it forgets a session's token when the
//! session ends, so an ended session's token is simply unknown.

use std::collections::HashMap;

use crate::model::SessionId;

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
        self.forget(id);
        let token = generate();
        self.by_token.insert(token.clone(), id);
        self.by_session.insert(id, token.clone());
        token
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

/// 24 random bytes as 48 lowercase hex digits.
fn generate() -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 24] = rand::random();
    let mut text = String::with_capacity(48);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
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
        assert_eq!(first.len(), 48);
        assert_ne!(first, id.to_string());
        assert_eq!(tokens.peek(&first), Some(id));
        let second = tokens.issue(id);
        assert_ne!(first, second);
        assert_eq!(tokens.peek(&first), None, "a used token no longer works");
        assert_eq!(tokens.peek(&second), Some(id));
        tokens.forget(id);
        assert_eq!(tokens.peek(&second), None);
        assert_eq!(tokens.peek("not a token"), None);
    }
}
