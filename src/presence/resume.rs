//! Owns the resume tokens of live WebSocket sessions (contract v1.1 §9):
//! one opaque token per session, 192 random bits followed by the issuing
//! node's id in hex (so another node of the cluster knows whom to ask),
//! never the session id, and never shown anywhere but the session's own
//! `welcome`. A token resumes once: taking a session over issues a new one
//! and the old one is gone.
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
    },
}

/// The node that issued `token`, if it is one of ours in form.
pub fn issuer_of(token: &str) -> Option<NodeId> {
    let hex = token.get(RANDOM_HEX..)?;
    if token.len() <= RANDOM_HEX || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok().map(|id| NodeId::new(&id))
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
    /// A fresh token for `id`, issued by `node`; the session's previous
    /// token stops working.
    pub fn issue(&mut self, id: SessionId, node: &NodeId) -> String {
        self.forget(id);
        let token = generate(node);
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

/// 24 random bytes, then the node id's bytes, as lowercase hex digits.
fn generate(node: &NodeId) -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 24] = rand::random();
    let mut text = String::with_capacity(RANDOM_HEX + 2 * node.as_str().len());
    for byte in bytes.iter().chain(node.as_str().as_bytes()) {
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
        let node = NodeId::new("node-a");
        let first = tokens.issue(id, &node);
        assert_eq!(first.len(), 48 + 12);
        assert_ne!(first, id.to_string());
        assert_eq!(tokens.peek(&first), Some(id));
        assert_eq!(issuer_of(&first), Some(node.clone()));
        let second = tokens.issue(id, &node);
        assert_ne!(first, second);
        assert_eq!(tokens.peek(&first), None, "a used token no longer works");
        assert_eq!(tokens.peek(&second), Some(id));
        tokens.forget(id);
        assert_eq!(tokens.peek(&second), None);
        assert_eq!(tokens.peek("not a token"), None);
        assert_eq!(issuer_of("short"), None);
        assert_eq!(issuer_of(&"0".repeat(49)), None);
        assert_eq!(issuer_of(&format!("{}zz", "0".repeat(48))), None);
    }
}
