//! Owns the WebSocket close codes the hub sends, by name, so no module
//! writes a bare number (`docs/protocol.md` lists what each one means).

/// A close code the hub sends on `/ws` or `/admin/ws`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: a normal close (dead-after timeout, the client's `end`).
    Normal,
    /// 1001: the hub is shutting down.
    GoingAway,
    /// 1002: the client broke the WebSocket protocol.
    ProtocolError,
    /// 1007: a text frame was not UTF-8.
    InvalidPayload,
    /// 1008: the client broke a policy (rate, bad frames).
    Policy,
    /// 1009: a message over the size limit.
    TooBig,
    /// 4001: the session's token expired.
    TokenExpired,
    /// 4003: the session was terminated (admin, revoke, the user, max age).
    Terminated,
    /// 4008: the user opened one session too many.
    SessionLimit,
    /// 4009: an admin stream fell behind.
    Lagging,
}

impl CloseCode {
    /// The number on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::TokenExpired => 4001,
            CloseCode::Terminated => 4003,
            CloseCode::SessionLimit => 4008,
            CloseCode::Lagging => 4009,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn codes_are_the_contract_numbers() {
        assert_eq!(CloseCode::Normal.as_u16(), 1000);
        assert_eq!(CloseCode::GoingAway.as_u16(), 1001);
        assert_eq!(CloseCode::Terminated.as_u16(), 4003);
        assert_eq!(CloseCode::Lagging.as_u16(), 4009);
    }
}
