//! Owns one WebSocket connection to the hub: dialing, framing and closing.
//!
//! Dial = bind a source address, TCP connect, upgrade with small buffers, and
//! read the first frame (`welcome` for clients, `snapshot` for admins). What a
//! client does once connected belongs to the scenarios.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::failure::Failure;
use crate::target::Endpoint;

/// A client's WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Buffers for a simulated client: small, like the hub's own sockets.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

/// Buffers for an admin subscriber: a snapshot can be many megabytes.
pub fn admin_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(512 << 20))
        .max_frame_size(Some(512 << 20))
}

/// Buffers for a room member: a `room` snapshot lists every member, so a
/// 5,000-member room is a frame of about a megabyte.
pub fn room_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
}

/// How to open one connection.
#[derive(Debug)]
pub struct Dial<'a> {
    /// The hub node.
    pub endpoint: &'a Endpoint,
    /// Path (`/ws`, `/admin/ws`).
    pub path: &'static str,
    /// Query string without `?`.
    pub query: String,
    /// Source address to bind before connecting.
    pub source: Option<SocketAddr>,
    /// JWT for the `Authorization` header.
    pub bearer: Option<String>,
    /// Buffer sizes and limits.
    pub config: WebSocketConfig,
    /// The `type` the first frame must have.
    pub first_frame: &'static str,
    /// Bound on connect + upgrade + first frame.
    pub timeout: Duration,
}

/// Opens a connection and checks its first frame.
pub async fn dial(dial: Dial<'_>) -> Result<Ws, Failure> {
    dial_first(dial).await.map(|(ws, _)| ws)
}

/// Opens a connection, checks its first frame and returns it.
pub async fn dial_first(dial: Dial<'_>) -> Result<(Ws, OwnedFrame), Failure> {
    let timeout = dial.timeout;
    tokio::time::timeout(timeout, dial_unbounded(dial))
        .await
        .unwrap_or(Err(Failure::ConnectTimeout))
}

/// [`dial_first`] without the time bound.
async fn dial_unbounded(dial: Dial<'_>) -> Result<(Ws, OwnedFrame), Failure> {
    let stream = connect_tcp(dial.endpoint.addr, dial.source).await?;
    let url = dial.endpoint.ws_url(dial.path, &dial.query);
    let mut request = url.into_client_request().map_err(|_| Failure::Handshake)?;
    if let Some(token) = &dial.bearer {
        let value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Failure::Handshake)?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(dial.config))
            .await
            .map_err(|e| Failure::from_ws(&e))?;
    match next_frame(&mut ws).await {
        Incoming::Frame(frame) if frame.kind == dial.first_frame => Ok((ws, frame)),
        Incoming::Failed(failure) => Err(failure),
        Incoming::Closed(code) => Err(Failure::Closed(code)),
        _ => Err(Failure::NoWelcome),
    }
}

/// Binds `source` (if any) and connects to `addr` with Nagle off.
async fn connect_tcp(addr: SocketAddr, source: Option<SocketAddr>) -> Result<TcpStream, Failure> {
    let io = |e: std::io::Error| Failure::from_io(&e);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4().map_err(io)?
    } else {
        TcpSocket::new_v6().map_err(io)?
    };
    if let Some(source) = source {
        socket.bind(source).map_err(io)?;
    }
    let stream = socket.connect(addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    Ok(stream)
}

/// The fields of a server frame the harness looks at.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    /// `type`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `id` of a pong.
    #[serde(default)]
    pub id: Option<u64>,
    /// `code` of an error.
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    /// `reason` of a terminated frame.
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
    /// `resume_token` of a welcome.
    #[serde(default)]
    pub resume_token: Option<String>,
    /// `resumed` of a welcome.
    #[serde(default)]
    pub resumed: Option<bool>,
    /// `retry_after_ms` of a `terminated` frame with reason `shutdown`.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

/// What reading the socket produced, owned so it can outlive the buffer.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame.
    Frame(OwnedFrame),
    /// A control or otherwise uninteresting frame.
    Other,
    /// The hub closed the socket with this code (0: no close frame).
    Closed(u16),
    /// Reading failed.
    Failed(Failure),
}

/// The fields of [`Frame`], owned.
#[derive(Debug)]
pub struct OwnedFrame {
    /// `type`.
    pub kind: String,
    /// `id` of a pong.
    pub id: Option<u64>,
    /// `code` of an error, `reason` of a terminated frame.
    pub detail: Option<String>,
    /// `resume_token` of a welcome.
    pub resume_token: Option<String>,
    /// `resumed` of a welcome.
    pub resumed: Option<bool>,
    /// `retry_after_ms` of a shutdown `terminated` frame.
    pub retry_after_ms: Option<u64>,
}

/// Reads the next message and classifies it.
pub async fn next_frame(ws: &mut Ws) -> Incoming {
    match ws.next().await {
        None => Incoming::Closed(0),
        Some(Err(e)) => match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                Incoming::Closed(0)
            }
            other => Incoming::Failed(Failure::from_ws(&other)),
        },
        Some(Ok(Message::Text(text))) => parse_frame(text.as_str()),
        Some(Ok(Message::Close(frame))) => {
            Incoming::Closed(frame.map_or(1005, |f| u16::from(f.code)))
        }
        Some(Ok(_)) => Incoming::Other,
    }
}

/// Parses a text frame; unparseable text counts as uninteresting.
pub fn parse_frame(text: &str) -> Incoming {
    match serde_json::from_str::<Frame<'_>>(text) {
        Ok(frame) => Incoming::Frame(OwnedFrame {
            kind: frame.kind.into_owned(),
            id: frame.id,
            detail: frame.code.or(frame.reason).map(Cow::into_owned),
            resume_token: frame.resume_token,
            resumed: frame.resumed,
            retry_after_ms: frame.retry_after_ms,
        }),
        Err(_) => Incoming::Other,
    }
}

/// Sends one text frame.
pub async fn send(ws: &mut Ws, text: String) -> Result<(), Failure> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| Failure::from_ws(&e))
}

/// Closes normally (1000) and waits briefly for the hub's close frame.
pub async fn close(mut ws: Ws) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// `{"type":"ping","id":N}`.
pub fn ping(id: u64) -> String {
    format!(r#"{{"type":"ping","id":{id}}}"#)
}

/// `{"type":"ping","id":N,"page":P}`.
pub fn ping_page(id: u64, page: &str) -> String {
    serde_json::json!({"type": "ping", "id": id, "page": page}).to_string()
}

/// `{"type":"join","room":R}`.
pub fn join(room: &str) -> String {
    serde_json::json!({"type": "join", "room": room}).to_string()
}

/// `{"type":"status","manual":"busy"}` or `... null`.
pub fn manual_status(busy: bool) -> String {
    if busy {
        r#"{"type":"status","manual":"busy"}"#.to_owned()
    } else {
        r#"{"type":"status","manual":null}"#.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pong_frame_keeps_its_id() {
        let incoming = parse_frame(r#"{"type":"pong","id":7,"ts":"2024-01-01T00:00:00.000Z"}"#);
        assert!(
            matches!(&incoming, Incoming::Frame(f) if f.kind == "pong" && f.id == Some(7)),
            "{incoming:?}"
        );
    }

    #[test]
    fn error_frame_keeps_its_code() {
        let incoming = parse_frame(r#"{"type":"error","code":"bad_message","message":"x"}"#);
        assert!(
            matches!(&incoming, Incoming::Frame(f) if f.detail.as_deref() == Some("bad_message")),
            "{incoming:?}"
        );
    }
}
