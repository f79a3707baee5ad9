//! Owns one client WebSocket from welcome to close: reads frames, answers
//! pings, forwards what the engine must know, sends WebSocket Pings every
//! heartbeat interval, ends the session after `dead_after` of silence and
//! closes the socket when the engine terminates the session. Room frames
//! (contract v1.1 §8) arrive from the engine through the connection's room
//! queue (`client::rooms`) and are written with their per-room `seq`.
//!
//! One task per connection and no lock shared with other connections: a
//! ping is an atomic store in `SessionLiveness` plus a `pong` frame.
//!
//! Session continuity (§9): the socket opens or resumes its session through
//! the engine, tells it when it drops (a resumable drop, or an end that never
//! is), asks for a new token before `exp` (`client/lifetime.rs`) and closes
//! without a `terminated` frame when a resume takes its session over.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::pin::Pin;

use tokio::time::{Instant, Sleep, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::Instrument;

use super::lifetime::TokenClock;
use super::limits::{BadFrames, MessageRate};
use super::protocol::{ClientMessage, FrameError, ServerMessage, parse_client_message, pong_text};
use super::rooms::{ClientRooms, RoomAccess, next_delivery};
use crate::auth::Authenticator;
use crate::config::ClientLimits;
use crate::http::websocket;
use crate::metrics::{Metrics, OutFrame};
use crate::model::time::now_millis;
use crate::model::{
    CloseCode, EndCause, ManualStatus, Millis, NodeId, SessionId, SessionStatus, UserId,
};
use crate::presence::{NewSession, PresenceHandle, SessionLiveness, TerminateReason};

/// Bytes tungstenite reads per syscall; also the resident buffer of an idle socket.
const READ_BUFFER: usize = 1024;
/// Activity-only reports to the engine are sent at most this often.
const REPORT_EVERY_MS: Millis = 1_000;

mod room_frames;
mod token;
mod writes;

/// The WebSocket stream type the hub drives.
pub type ClientSocket = crate::http::websocket::UpgradedSocket;

/// What every connection shares (one `Arc` for all of them).
#[derive(Debug)]
pub struct ConnectionContext {
    /// The presence engine.
    pub presence: PresenceHandle,
    /// Size, liveness and origin limits.
    pub limits: ClientLimits,
    /// This node.
    pub node_id: NodeId,
    /// Active to idle, for the welcome frame.
    pub idle_after: Duration,
    /// Idle to away, for the welcome frame.
    pub away_after: Duration,
    /// Metrics.
    pub metrics: Metrics,
    /// Checks the tokens of `auth` frames.
    pub auth: Authenticator,
}

impl ConnectionContext {
    /// The tungstenite configuration: small buffers, the message size limit.
    /// The write buffer has no cap of its own: a `room` snapshot of a large
    /// room is one frame of any size (about 150 bytes per member), each
    /// write is a whole `send` (so at most one frame waits in the buffer),
    /// and the write deadline drops a peer that does not take it.
    pub fn websocket_config(&self) -> WebSocketConfig {
        let max = self.limits.max_message_bytes;
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

/// How a connection ended, from the socket's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The session must be ended with this cause; never resumable.
    End(EndCause),
    /// The socket dropped: the session may wait for a resume (§9).
    Drop(EndCause),
    /// The engine already ended the session.
    Terminated,
}

/// Drives an upgraded connection until it closes.
///
/// This future lives as long as the connection, so its size is memory per
/// idle connection: every frame handler (the ping path included) and the
/// engine, timer and room branches run in boxed futures, so the idle state
/// holds only the waits of the `select!`. The price is one allocation per
/// frame, which the rtt benchmark includes.
pub async fn serve_connection(
    io: TokioIo<Upgraded>,
    ctx: Arc<ConnectionContext>,
    session: Box<NewSession>,
    access: Box<RoomAccess>,
    resume: Option<String>,
) {
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ctx.websocket_config())).await;
    ctx.metrics.connections.inc();
    let user = session.user_id.clone();
    let expires_at = session.expires_at;
    let liveness = Arc::new(SessionLiveness::new(now_millis()));
    // Boxed: a resume may take a cross-node round trip, and this future's
    // size is memory per idle connection.
    let connected = Box::pin(ctx.presence.connect(session, liveness.clone(), resume)).await;
    let Ok(connected) = connected else {
        let mut ws = ws;
        Box::pin(websocket::send_close(
            &mut ws,
            CloseCode::GoingAway,
            "shutdown",
        ))
        .await;
        ctx.metrics.connections.dec();
        return;
    };
    let id = connected.session_id;
    let span = tracing::debug_span!("ws", session_id = %id, user_id = %user);
    async move {
        let mut connection =
            Connection::new(ws, ctx.clone(), id, liveness, user, expires_at, access);
        if !connected.resumed {
            ctx.metrics.ops.sessions_started.inc();
        }
        tracing::debug!(resumed = connected.resumed, "session attached");
        let outcome = connection
            .run(&connected.resume_token, connected.resumed)
            .await;
        let gone = match outcome {
            // The peer stopped reading: as silent as a dead one.
            Outcome::End(EndCause::ClientClosed) | Outcome::Drop(EndCause::ClientClosed)
                if connection.write_stalled =>
            {
                Some((EndCause::Timeout, true))
            }
            Outcome::End(cause) => Some((cause, false)),
            Outcome::Drop(cause) => Some((cause, true)),
            Outcome::Terminated => None,
        };
        if let Some((cause, resumable)) = gone {
            let liveness = connection.liveness.clone();
            let at = now_millis();
            let _ = ctx
                .presence
                .dropped(id, liveness, cause, resumable, at)
                .await;
            tracing::debug!(cause = cause.as_str(), resumable, "socket gone");
        }
        Box::pin(connection.drain()).await;
        ctx.metrics.connections.dec();
    }
    .instrument(span)
    .await;
}

struct Connection {
    ws: ClientSocket,
    ctx: Arc<ConnectionContext>,
    id: SessionId,
    liveness: Arc<SessionLiveness>,
    rate: MessageRate,
    bad_frames: BadFrames,
    last_frame: Instant,
    next_ping: Instant,
    timer: Pin<Box<Sleep>>,
    reported_at: Millis,
    page: Option<String>,
    sent_status: (SessionStatus, Option<ManualStatus>),
    user: UserId,
    token: TokenClock,
    access: Box<RoomAccess>,
    rooms: Option<Box<ClientRooms>>,
    /// When the unanswered Ping went out.
    ping_sent_at: Option<Instant>,
    /// A write missed its deadline: the socket ends as `timeout`.
    write_stalled: bool,
}

impl Connection {
    fn new(
        ws: ClientSocket,
        ctx: Arc<ConnectionContext>,
        id: SessionId,
        liveness: Arc<SessionLiveness>,
        user: UserId,
        expires_at: Option<Millis>,
        access: Box<RoomAccess>,
    ) -> Self {
        let now = now_millis();
        let started = Instant::now();
        let next_ping = started + ctx.limits.heartbeat_interval;
        let first_wake = next_ping.min(started + ctx.limits.dead_after);
        Self {
            timer: Box::pin(sleep_until(first_wake)),
            ws,
            id,
            liveness,
            rate: MessageRate::new(now, ctx.limits.message_rate.per_second),
            bad_frames: BadFrames::default(),
            last_frame: started,
            next_ping,
            reported_at: now,
            page: None,
            sent_status: (SessionStatus::Active, None),
            user,
            token: TokenClock::new(expires_at, ctx.limits.token_refresh_window),
            access,
            rooms: None,
            ping_sent_at: None,
            write_stalled: false,
            ctx,
        }
    }

    async fn run(&mut self, resume_token: &str, resumed: bool) -> Outcome {
        if Box::pin(self.send_welcome(resume_token, resumed))
            .await
            .is_err()
        {
            return Outcome::Drop(EndCause::ClientClosed);
        }
        // Inside the refresh window already: ask right after `welcome`.
        if let Some(outcome) = Box::pin(self.ask_for_token_if_due()).await {
            return outcome;
        }
        self.arm_timer();
        loop {
            let step = tokio::select! {
                biased;
                () = self.liveness.changed() => Box::pin(self.on_engine_signal()).await,
                // Boxed: the frame handlers' state would otherwise sit in
                // every idle connection's future (about 1 KiB).
                frame = self.ws.next() => Box::pin(self.on_frame(frame)).await,
                delivery = next_delivery(&mut self.rooms) => {
                    Box::pin(self.on_room_delivery(delivery)).await
                }
                () = self.timer.as_mut() => Box::pin(self.on_timer()).await,
            };
            if let Some(outcome) = step {
                return outcome;
            }
        }
    }

    async fn send_welcome(&mut self, resume_token: &str, resumed: bool) -> Result<(), WsError> {
        let welcome = ServerMessage::Welcome {
            session_id: self.id.to_string(),
            user_id: self.user.as_str(),
            node_id: self.ctx.node_id.as_str(),
            heartbeat_interval_ms: duration_ms(self.ctx.limits.heartbeat_interval),
            idle_after_ms: duration_ms(self.ctx.idle_after),
            away_after_ms: duration_ms(self.ctx.away_after),
            resume_token,
            resumed,
        };
        self.send_text(welcome.to_text(), OutFrame::Welcome).await
    }

    async fn send_text(&mut self, text: String, kind: OutFrame) -> Result<(), WsError> {
        self.ctx.metrics.messages_out.count(kind);
        self.liveness.traffic().count_out(text.len());
        self.write(Message::text(text)).await
    }

    /// The engine changed the status, or terminated the session.
    async fn on_engine_signal(&mut self) -> Option<Outcome> {
        if self.liveness.replaced() {
            self.close(CloseCode::Terminated, "resumed on another socket")
                .await;
            return Some(Outcome::Terminated);
        }
        if let Some(reason) = self.liveness.terminate_reason() {
            self.send_terminated(reason).await;
            return Some(Outcome::Terminated);
        }
        let current = (self.liveness.status(), self.liveness.manual());
        if current != self.sent_status && current.0 != SessionStatus::Ended {
            self.sent_status = current;
            let frame = ServerMessage::Status {
                status: current.0,
                manual: current.1,
            };
            if self
                .send_text(frame.to_text(), OutFrame::Status)
                .await
                .is_err()
            {
                return Some(Outcome::Drop(EndCause::ClientClosed));
            }
        }
        None
    }

    async fn send_terminated(&mut self, reason: TerminateReason) {
        let spread = duration_ms(self.ctx.limits.reconnect_spread);
        let frame = ServerMessage::Terminated {
            reason: reason.as_str(),
            retry_after_ms: (reason == TerminateReason::Shutdown)
                .then(|| rand::random_range(0..=spread)),
        };
        let _ = self.send_text(frame.to_text(), OutFrame::Terminated).await;
        self.close(reason.close_code(), reason.as_str()).await;
    }

    /// The timer fires at the earlier of the next Ping and the liveness
    /// deadline as it stood when armed; frames that arrived since only move
    /// the deadline later, so it is re-armed here rather than per frame.
    async fn on_timer(&mut self) -> Option<Outcome> {
        let now = Instant::now();
        let dead_at = self.last_frame + self.ctx.limits.dead_after;
        if now >= dead_at {
            self.close(CloseCode::Normal, "timeout").await;
            return Some(Outcome::Drop(EndCause::Timeout));
        }
        if now >= self.next_ping {
            self.next_ping = now + self.ctx.limits.heartbeat_interval;
            self.ping_sent_at = Some(now);
            if self.write(Message::Ping(Default::default())).await.is_err() {
                return Some(Outcome::Drop(EndCause::ClientClosed));
            }
        }
        if let Some(outcome) = self.ask_for_token_if_due().await {
            return Some(outcome);
        }
        self.arm_timer();
        None
    }

    /// Arms the timer at the earliest of the next Ping, the liveness
    /// deadline and the token's refresh moment.
    fn arm_timer(&mut self) {
        let dead_at = self.last_frame + self.ctx.limits.dead_after;
        let mut at = dead_at.min(self.next_ping);
        if let Some(ask_at) = self.token.ask_at() {
            at = at.min(ask_at);
        }
        self.timer.as_mut().reset(at);
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Option<Outcome> {
        let message = match frame {
            None => return Some(Outcome::Drop(EndCause::ClientClosed)),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                Box::pin(self.close(CloseCode::TooBig, "message too big")).await;
                return Some(Outcome::End(EndCause::Policy));
            }
            // EOF or a reset without a close frame: a drop like any other
            // (v1.1 §14), resumable.
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                return Some(Outcome::Drop(EndCause::ClientClosed));
            }
            Some(Err(WsError::Protocol(_))) => {
                Box::pin(self.close(CloseCode::ProtocolError, "protocol error")).await;
                return Some(Outcome::End(EndCause::ClientClosed));
            }
            Some(Err(WsError::Utf8(_))) => {
                // The frame cannot be read as text at all (RFC 6455 7.4.1).
                Box::pin(self.close(CloseCode::InvalidPayload, "invalid UTF-8 in a text frame"))
                    .await;
                return Some(Outcome::End(EndCause::Policy));
            }
            Some(Err(_)) => return Some(Outcome::Drop(EndCause::ClientClosed)),
            Some(Ok(message)) => message,
        };
        self.last_frame = Instant::now();
        match message {
            Message::Text(text) => {
                self.liveness.traffic().count_in(text.len());
                self.on_data(Ok(text.as_str())).await
            }
            Message::Binary(data) => {
                self.liveness.traffic().count_in(data.len());
                self.on_data(Err(FrameError::Unsupported)).await
            }
            Message::Pong(_) => {
                // The round trip of the hub's last Ping, once per Ping.
                if let Some(sent) = self.ping_sent_at.take() {
                    self.liveness.traffic().set_rtt(self.last_frame - sent);
                }
                self.flush_or_drop().await
            }
            Message::Ping(_) | Message::Frame(_) => {
                // A Ping is a message like any other for the rate limit, so
                // a Ping flood is closed instead of filling the send queue
                // with Pongs.
                if !self.rate.admit(now_millis()) {
                    Box::pin(self.close(CloseCode::Policy, "message rate exceeded")).await;
                    return Some(Outcome::End(EndCause::Policy));
                }
                self.flush_or_drop().await
            }
            Message::Close(_) => Some(Outcome::Drop(EndCause::ClientClosed)),
        }
    }

    /// Flushes queued control replies; a peer that does not take them
    /// within the write deadline is gone.
    async fn flush_or_drop(&mut self) -> Option<Outcome> {
        if self.flush().await.is_err() {
            return Some(Outcome::Drop(EndCause::ClientClosed));
        }
        None
    }

    /// A data frame: rate-limited, then parsed and applied.
    async fn on_data(&mut self, text: Result<&str, FrameError>) -> Option<Outcome> {
        let now = now_millis();
        if !self.rate.admit(now) {
            Box::pin(self.close(CloseCode::Policy, "message rate exceeded")).await;
            return Some(Outcome::End(EndCause::Policy));
        }
        match text.and_then(parse_client_message) {
            Ok(ClientMessage::Room { action, room }) => {
                Box::pin(self.on_room_message(action, room, now)).await
            }
            Ok(message) => self.apply(message, now).await,
            Err(error) => Box::pin(self.reject_frame(&error, now)).await,
        }
    }

    async fn apply(&mut self, message: ClientMessage<'_>, now: Millis) -> Option<Outcome> {
        match message {
            ClientMessage::Ping { id, page } => {
                self.ctx.metrics.messages_in.ping.inc();
                let pong = pong_text(id, now);
                self.on_activity(page, now).await;
                let _ = self.send_text(pong, OutFrame::Pong).await;
                self.ctx
                    .metrics
                    .ops
                    .ping_latency
                    .observe(self.last_frame.elapsed().as_secs_f64());
            }
            ClientMessage::Status { manual } => {
                self.ctx.metrics.messages_in.status.inc();
                let _ = Box::pin(self.ctx.presence.set_manual(self.id, manual)).await;
            }
            ClientMessage::Hello(update) => {
                self.ctx.metrics.messages_in.hello.inc();
                let _ = Box::pin(self.ctx.presence.apply_meta(self.id, update)).await;
            }
            ClientMessage::Auth { token } => return Box::pin(self.on_auth(&token, now)).await,
            ClientMessage::End => {
                Box::pin(self.close(CloseCode::Normal, "session ended by the client")).await;
                return Some(Outcome::End(EndCause::ClientClosed));
            }
            ClientMessage::Room { .. } => {}
        }
        None
    }

    /// Records activity and tells the engine when an admin could see it.
    async fn on_activity(&mut self, page: Option<String>, now: Millis) {
        self.liveness.touch(now);
        let page_changed = page.is_some() && page != self.page;
        if page_changed || self.liveness.status() != SessionStatus::Active {
            if page_changed {
                self.page.clone_from(&page);
            }
            self.reported_at = now;
            let _ = self.ctx.presence.report_activity(self.id, page).await;
        } else if now - self.reported_at >= REPORT_EVERY_MS {
            self.reported_at = now;
            self.ctx.presence.offer_activity(self.id);
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
