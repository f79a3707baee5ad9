//! Owns the resume tokens of live WebSocket sessions (contract v1.1 §9):
//! one opaque token per session, 192 random bits (48 hex digits) followed by
//! the session's id, so any node of the cluster can find the session's
//! current owner; never the session id alone, and never shown anywhere but
//! the session's own `welcome`. Only the random part proves anything. A
//! token resumes once: taking a session over issues a new one and the old
//! one is gone.
//!
//! Only the engine holds this table; it forgets a session's token when the
//! session ends, so an ended session's token is simply unknown. It keeps
//! only the 24 random bytes per session: the id is the token's tail.

use std::collections::HashMap;

use crate::model::{NodeId, SessionId};

/// Bytes of a token's random part.
const RANDOM_BYTES: usize = 24;
/// Hex digits of a token's random part.
const RANDOM_HEX: usize = 2 * RANDOM_BYTES;

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

/// The random part of each live session's token. The session id is the
/// token's tail, so one small entry per session is the whole table.
#[derive(Debug, Default)]
pub struct ResumeTokens {
    by_session: HashMap<SessionId, [u8; RANDOM_BYTES]>,
}

impl ResumeTokens {
    /// A fresh token for `id`; the session's previous token stops working.
    pub fn issue(&mut self, id: SessionId) -> String {
        let random: [u8; RANDOM_BYTES] = rand::random();
        self.by_session.insert(id, random);
        token(&random, id)
    }

    /// Makes `token` resume `id` here: a session taken over from a node
    /// that shut down keeps the token its tab holds. A token not in form,
    /// or naming another session, leaves `id` with no token.
    pub fn register(&mut self, id: SessionId, token: &str) {
        match parse(token) {
            Some((random, named)) if named == id => {
                self.by_session.insert(id, random);
            }
            _ => self.forget(id),
        }
    }

    /// The token that resumes `id`, if any.
    pub fn token_of(&self, id: SessionId) -> Option<String> {
        self.by_session.get(&id).map(|random| token(random, id))
    }

    /// The session a token would resume, without using it up.
    pub fn peek(&self, token: &str) -> Option<SessionId> {
        let (random, id) = parse(token)?;
        let kept = self.by_session.get(&id)?;
        // Every byte is compared, so the time taken says nothing of how
        // much of a guess was right.
        let differing = kept
            .iter()
            .zip(random)
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
        (differing == 0).then_some(id)
    }

    /// Drops the session's token (the session ended).
    pub fn forget(&mut self, id: SessionId) {
        self.by_session.remove(&id);
    }
}

/// The random part as lowercase hex digits, then the session id.
fn token(random: &[u8; RANDOM_BYTES], id: SessionId) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(RANDOM_HEX + 36);
    text.push_str(&hex::encode(random));
    let _ = write!(text, "{id}");
    text
}

/// A token's random part and the session it names, if it is exactly in
/// the form `token` writes (lowercase hex, the id as it prints).
fn parse(token: &str) -> Option<([u8; RANDOM_BYTES], SessionId)> {
    let id = session_of(token)?;
    let (hex_part, id_part) = token.split_at_checked(RANDOM_HEX)?;
    if id_part != id.to_string() || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut random = [0_u8; RANDOM_BYTES];
    hex::decode_to_slice(hex_part, &mut random).ok()?;
    Some((random, id))
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
        tokens.register(id, &forged);
        assert_eq!(tokens.token_of(id), Some(forged.clone()));
        assert_eq!(tokens.peek(&forged), Some(id));
        let issued = tokens.issue(id);
        assert_eq!(
            tokens.peek(&issued.to_uppercase()),
            None,
            "upper case is not the token issued"
        );
        tokens.register(id, &forged);
        tokens.register(id, &format!("{}{}", "0".repeat(48), SessionId::generate()));
        assert_eq!(tokens.token_of(id), None, "a token naming another session");
    }
}
