//! Owns the WebSocket mechanics that client and admin sockets share: the
//! stream type driven over an upgraded HTTP connection, and the bounded
//! close handshake (send a close frame, wait a little for the peer's reply).

use std::time::Duration;

use futures_util::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::model::CloseCode;

/// The WebSocket stream type the hub drives after an upgrade.
pub type UpgradedSocket = WebSocketStream<TokioIo<Upgraded>>;

/// How long each step of a close (sending the frame, waiting for the
/// peer's reply) may take before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

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
