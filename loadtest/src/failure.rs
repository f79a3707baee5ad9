//! Owns the kinds of error a simulated client can meet, and their report keys.
//!
//! Each kind is a variant; its `key()` is the name used in the report's
//! `errors` object. It does not count anything (see `stats`).

use std::io;

use tokio_tungstenite::tungstenite;

/// Something that went wrong for one simulated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The hub refused the TCP connection.
    ConnectRefused,
    /// TCP connect, handshake or welcome took longer than the connect timeout.
    ConnectTimeout,
    /// The connection was reset.
    ConnectionReset,
    /// The load generator ran out of file descriptors.
    FdLimit,
    /// No free source port/address (add `--source-addrs`).
    SourceExhausted,
    /// Any other I/O error.
    Io,
    /// The upgrade was answered with this HTTP status.
    HandshakeStatus(u16),
    /// The WebSocket handshake failed otherwise.
    Handshake,
    /// The first frame was not `welcome`.
    NoWelcome,
    /// The hub closed the socket unexpectedly, with this close code (0: none).
    Closed(u16),
    /// The hub answered a frame with `{"type":"error","code":..}`.
    HubError(String),
    /// The hub sent `terminated` with this reason.
    Terminated(String),
    /// A ping got no pong in time.
    PongTimeout,
    /// A status change never showed up on an admin stream.
    PropagationMissing,
    /// An admin stream skipped a sequence number.
    AdminSeqGap,
    /// An admin stream did not start with a snapshot.
    AdminNoSnapshot,
    /// An HTTP heartbeat got this status.
    HeartbeatStatus(u16),
    /// An HTTP heartbeat failed at the transport level.
    HeartbeatIo,
    /// The room check's `GET /api/v1/rooms/{room}` got this status.
    RoomCheckStatus(u16),
    /// The room check's request failed or its answer was unreadable.
    RoomCheckIo,
    /// A webhook request whose X-Presence-Signature does not verify.
    WebhookBadSignature,
    /// A webhook request whose body is not a batch of events.
    WebhookBadBody,
    /// `GET /api/v1/webhooks` got this status, or failed (0).
    WebhookStatus(u16),
    /// The dead endpoint accepted a connection (something listens there).
    WebhookDeadListening,
}

impl Failure {
    /// The name of this kind in the report's `errors` object.
    pub fn key(&self) -> String {
        match self {
            Self::ConnectRefused => "connect_refused".into(),
            Self::ConnectTimeout => "connect_timeout".into(),
            Self::ConnectionReset => "connection_reset".into(),
            Self::FdLimit => "fd_limit".into(),
            Self::SourceExhausted => "source_exhausted".into(),
            Self::Io => "io".into(),
            Self::HandshakeStatus(code) => format!("handshake_http_{code}"),
            Self::Handshake => "handshake".into(),
            Self::NoWelcome => "no_welcome".into(),
            Self::Closed(code) => format!("closed_{code}"),
            Self::HubError(code) => format!("hub_error_{code}"),
            Self::Terminated(reason) => format!("terminated_{reason}"),
            Self::PongTimeout => "pong_timeout".into(),
            Self::PropagationMissing => "propagation_missing".into(),
            Self::AdminSeqGap => "admin_seq_gap".into(),
            Self::AdminNoSnapshot => "admin_no_snapshot".into(),
            Self::HeartbeatStatus(code) => format!("heartbeat_http_{code}"),
            Self::HeartbeatIo => "heartbeat_io".into(),
            Self::RoomCheckStatus(code) => format!("room_check_http_{code}"),
            Self::RoomCheckIo => "room_check_io".into(),
            Self::WebhookBadSignature => "webhook_bad_signature".into(),
            Self::WebhookBadBody => "webhook_bad_body".into(),
            Self::WebhookStatus(code) => format!("webhook_status_http_{code}"),
            Self::WebhookDeadListening => "webhook_dead_endpoint_listening".into(),
        }
    }

    /// Classifies an I/O error from connect or read/write.
    pub fn from_io(err: &io::Error) -> Self {
        const EMFILE: i32 = 24;
        const ENFILE: i32 = 23;
        if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) {
            return Self::FdLimit;
        }
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Self::ConnectRefused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Self::ConnectionReset,
            io::ErrorKind::TimedOut => Self::ConnectTimeout,
            io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable => Self::SourceExhausted,
            _ => Self::Io,
        }
    }

    /// Classifies a WebSocket error.
    pub fn from_ws(err: &tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::Io(io) => Self::from_io(io),
            tungstenite::Error::Http(resp) => Self::HandshakeStatus(resp.status().as_u16()),
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                Self::Closed(0)
            }
            tungstenite::Error::Protocol(_) => Self::ConnectionReset,
            _ => Self::Handshake,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_kind_and_its_detail() {
        assert_eq!(Failure::HandshakeStatus(401).key(), "handshake_http_401");
        assert_eq!(Failure::Closed(1008).key(), "closed_1008");
        assert_eq!(
            Failure::from_io(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            Failure::ConnectRefused
        );
        assert_eq!(
            Failure::from_io(&io::Error::from_raw_os_error(24)),
            Failure::FdLimit
        );
    }
}
