//! Owns a connection's writes: each bounded by the write deadline
//! (`PRESENCE_WRITE_TIMEOUT`, remembered when missed), `error` frames for
//! bad frames with the bad-frame limit, and the close handshake.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Connection, Outcome};
use crate::client::protocol::{FrameError, ServerMessage};
use crate::http::websocket;
use crate::metrics::OutFrame;
use crate::model::{CloseCode, EndCause, Millis, RoomName};

impl Connection {
    /// Sends one message within the write deadline.
    pub(super) async fn write(&mut self, message: Message) -> Result<(), WsError> {
        let deadline = self.ctx.limits.write_timeout;
        let result = websocket::write_within(deadline, self.ws.send(message)).await;
        self.note_write(result)
    }

    /// Flushes what tungstenite queued (Pong replies) within the deadline.
    pub(super) async fn flush(&mut self) -> Result<(), WsError> {
        let deadline = self.ctx.limits.write_timeout;
        let result = websocket::write_within(deadline, self.ws.flush()).await;
        self.note_write(result)
    }

    /// Remembers a write that missed its deadline: the peer stopped reading.
    pub(super) fn note_write(&mut self, result: Result<(), WsError>) -> Result<(), WsError> {
        if let Err(error) = &result
            && websocket::is_write_timeout(error)
        {
            self.write_stalled = true;
        }
        result
    }

    pub(super) async fn reject_frame(
        &mut self,
        error: &FrameError,
        now: Millis,
    ) -> Option<Outcome> {
        tracing::debug!(code = error.code(), "bad frame");
        self.ctx.metrics.messages_in.bad.inc();
        self.ctx
            .metrics
            .bad_frames
            .with_label_values(&[error.code()])
            .inc();
        if !self.bad_frames.admit(now) {
            self.close(CloseCode::Policy, "too many bad frames").await;
            return Some(Outcome::End(EndCause::Policy));
        }
        let message = error.to_string();
        let frame = ServerMessage::Error {
            code: error.code(),
            room: error.room().map(RoomName::as_str),
            message: &message,
        };
        if self
            .send_text(frame.to_text(), OutFrame::Error)
            .await
            .is_err()
        {
            return Some(Outcome::Drop(EndCause::ClientClosed));
        }
        None
    }

    /// Sends a close frame; `drain` later waits for the client's reply.
    pub(super) async fn close(&mut self, code: CloseCode, reason: &'static str) {
        websocket::send_close(&mut self.ws, code, reason).await;
    }

    /// Finishes the close handshake (bounded), after the session was ended.
    pub(super) async fn drain(&mut self) {
        websocket::drain(&mut self.ws).await;
    }
}
