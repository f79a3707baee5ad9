//! Owns the WebSocket mechanics that client and admin sockets share: the
//! stream type driven over an upgraded HTTP connection, writes bounded by a
//! deadline (`PRESENCE_WRITE_TIMEOUT`), and the bounded close handshake
//! (send a close frame, wait a little for the peer's reply).

use std::time::Duration;

use futures_util::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::model::CloseCode;

/// The WebSocket stream type the hub drives after an upgrade.
pub type UpgradedSocket = WebSocketStream<TokioIo<Upgraded>>;

/// How long each step of a close (sending the frame, waiting for the
/// peer's reply) may take before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Runs one write (send, feed or flush) with a deadline: a peer that stops
/// reading makes it fail with a timed-out I/O error instead of holding the
/// socket, its buffers and the task forever (like nginx's `send_timeout`).
pub async fn write_within(
    deadline: Duration,
    write: impl Future<Output = Result<(), WsError>>,
) -> Result<(), WsError> {
    tokio::time::timeout(deadline, write)
        .await
        .unwrap_or_else(|_| Err(WsError::Io(std::io::ErrorKind::TimedOut.into())))
}

/// True for the error of a write that missed its deadline.
pub fn is_write_timeout(error: &WsError) -> bool {
    matches!(error, WsError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// Sends a close frame, giving up after `CLOSE_GRACE`.
pub async fn send_close(ws: &mut UpgradedSocket, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code: code.as_u16().into(),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(Some(frame))).await;
}

/// Reads (and discards) until the peer's close reply or `CLOSE_GRACE`.
pub async fn drain(ws: &mut UpgradedSocket) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// The whole close handshake: `send_close`, then `drain`.
pub async fn close(ws: &mut UpgradedSocket, code: CloseCode, reason: &'static str) {
    send_close(ws, code, reason).await;
    drain(ws).await;
}
