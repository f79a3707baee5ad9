//! Owns the client wire protocol: parsing `ClientMessage`s (borrowing from
//! the frame where it can) and rendering server frames.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::device::DEVICE_TYPES;
use crate::model::MetaUpdate;
use crate::model::time::push_rfc3339;
use crate::model::{AppInfo, DeviceInfo, ManualStatus, Millis, RoomName, SessionStatus};

/// Most keys in `hello.meta`.
pub const MAX_META_KEYS: usize = 16;
/// Largest serialised `hello.meta`, in bytes.
pub const MAX_META_BYTES: usize = 1024;

/// What is wrong with a frame; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, missing fields or wrong field types.
    #[error("{0}")]
    BadMessage(String),
    /// A `type` the hub does not know.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A binary frame.
    #[error("binary frames are not supported; send JSON text")]
    Unsupported,
    /// An `auth` frame whose token is invalid or for another user (§9).
    #[error("{0}")]
    AuthForbidden(String),
    /// The token does not allow this room.
    #[error("this token does not allow room {0}")]
    Forbidden(RoomName),
    /// One explicit room more than `PRESENCE_MAX_ROOMS_PER_SESSION`.
    #[error("a session may join or watch at most {limit} rooms besides its org room")]
    RoomLimit {
        /// The room refused.
        room: RoomName,
        /// The limit.
        limit: usize,
    },
}

impl FrameError {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::BadMessage(_) => "bad_message",
            FrameError::UnknownType(_) => "unknown_type",
            FrameError::Unsupported => "unsupported",
            FrameError::Forbidden(_) => "forbidden",
            FrameError::AuthForbidden(_) => "forbidden",
            FrameError::RoomLimit { .. } => "room_limit",
        }
    }

    /// The room an error is about (`forbidden`, `room_limit`).
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            FrameError::Forbidden(room) | FrameError::RoomLimit { room, .. } => Some(room),
            _ => None,
        }
    }
}

/// A parsed client message.
#[derive(Debug, PartialEq)]
pub enum ClientMessage<'a> {
    /// Activity; `id` is echoed as given (raw JSON number or string).
    Ping {
        /// The raw JSON id.
        id: Option<&'a str>,
        /// The page, when given.
        page: Option<String>,
    },
    /// Set or clear the manual status.
    Status {
        /// The new manual status.
        manual: Option<ManualStatus>,
    },
    /// Metadata.
    Hello(MetaUpdate),
    /// A new token for the session (§9).
    Auth {
        /// The JWT.
        token: String,
    },
    /// The client ends its session for good (§9): never resumable.
    End,
    /// `join`, `leave`, `watch` or `unwatch` a room.
    Room {
        /// Which of the four.
        action: RoomAction,
        /// The room, in the grammar.
        room: RoomName,
    },
}

/// What a client asks about a room (contract v1.1 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAction {
    /// Be present in the room, and watch it.
    Join,
    /// No longer be present, and stop watching.
    Leave,
    /// Receive the room's presence without being present.
    Watch,
    /// Stop receiving the room's presence.
    Unwatch,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    page: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    manual: Option<Value>,
    #[serde(default)]
    app: Option<Value>,
    #[serde(default)]
    device: Option<Value>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default)]
    token: Option<Value>,
    room: Option<Value>,
}

/// Keeps `null` apart from "absent": an explicit `null` becomes `Some(Null)`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn bad(reason: impl Into<String>) -> FrameError {
    FrameError::BadMessage(reason.into())
}

/// A frame that does not parse, said for people rather than in the JSON
/// parser's terms, with the column where it went wrong.
fn unreadable(err: &serde_json::Error) -> FrameError {
    let what = match err.classify() {
        serde_json::error::Category::Data => {
            "is JSON but not a message object (or its \"type\" is not a string)"
        }
        _ => "is not valid JSON",
    };
    bad(format!(
        "the message {what} (column {}); send an object such as {{\"type\":\"ping\"}}",
        err.column()
    ))
}

/// Parses one text frame.
pub fn parse_client_message(text: &str) -> Result<ClientMessage<'_>, FrameError> {
    let raw: RawMessage<'_> = serde_json::from_str(text).map_err(|err| unreadable(&err))?;
    let kind = raw
        .kind
        .as_deref()
        .ok_or_else(|| bad("missing field \"type\""))?;
    match kind {
        "ping" => Ok(ClientMessage::Ping {
            id: parse_ping_id(raw.id)?,
            page: optional_string(raw.page, "page")?,
        }),
        "status" => Ok(ClientMessage::Status {
            manual: parse_manual(raw.manual)?,
        }),
        "hello" => Ok(ClientMessage::Hello(MetaUpdate {
            app: parse_app(raw.app)?,
            device: parse_device(raw.device)?,
            page: optional_string(raw.page, "page")?,
            meta: parse_meta(raw.meta)?,
        })),
        "auth" => Ok(ClientMessage::Auth {
            token: optional_string(raw.token, "token")?
                .ok_or_else(|| bad("auth needs \"token\": a JWT"))?,
        }),
        "end" => Ok(ClientMessage::End),
        "join" => room_message(RoomAction::Join, raw.room),
        "leave" => room_message(RoomAction::Leave, raw.room),
        "watch" => room_message(RoomAction::Watch, raw.room),
        "unwatch" => room_message(RoomAction::Unwatch, raw.room),
        other => Err(FrameError::UnknownType(other.chars().take(64).collect())),
    }
}

fn room_message(
    action: RoomAction,
    room: Option<Value>,
) -> Result<ClientMessage<'static>, FrameError> {
    let Some(Value::String(name)) = room else {
        return Err(bad("\"room\" must be a string"));
    };
    let room = RoomName::parse(&name).map_err(|err| bad(err.to_string()))?;
    Ok(ClientMessage::Room { action, room })
}

fn parse_ping_id(id: Option<&RawValue>) -> Result<Option<&str>, FrameError> {
    let Some(id) = id else { return Ok(None) };
    let text = id.get();
    match text.as_bytes().first() {
        Some(b'"' | b'-' | b'0'..=b'9') => Ok(Some(text)),
        Some(b'n') => Ok(None),
        _ => Err(bad("\"id\" must be a number or a string")),
    }
}

pub(crate) fn optional_string(
    value: Option<Value>,
    field: &str,
) -> Result<Option<String>, FrameError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(bad(format!("\"{field}\" must be a string"))),
    }
}

fn parse_manual(value: Option<Value>) -> Result<Option<ManualStatus>, FrameError> {
    match value {
        None => Err(bad("status needs \"manual\": \"busy\", \"away\" or null")),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text == "busy" => Ok(Some(ManualStatus::Busy)),
        Some(Value::String(text)) if text == "away" => Ok(Some(ManualStatus::Away)),
        Some(_) => Err(bad("\"manual\" must be \"busy\", \"away\" or null")),
    }
}

fn object(value: Option<Value>, field: &str) -> Result<Option<Map<String, Value>>, FrameError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(bad(format!("\"{field}\" must be an object"))),
    }
}

fn string_field(
    map: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, FrameError> {
    optional_string(map.remove(key), &format!("{field}.{key}"))
}

pub(crate) fn parse_app(value: Option<Value>) -> Result<Option<AppInfo>, FrameError> {
    let Some(mut map) = object(value, "app")? else {
        return Ok(None);
    };
    Ok(Some(AppInfo {
        name: string_field(&mut map, "name", "app")?,
        version: string_field(&mut map, "version", "app")?,
    }))
}

pub(crate) fn parse_device(value: Option<Value>) -> Result<Option<DeviceInfo>, FrameError> {
    let Some(mut map) = object(value, "device")? else {
        return Ok(None);
    };
    let device_type = string_field(&mut map, "device_type", "device")?;
    if let Some(kind) = &device_type
        && !DEVICE_TYPES.contains(&kind.as_str())
    {
        return Err(bad(
            "\"device.device_type\" must be desktop, mobile, tablet, bot or unknown",
        ));
    }
    Ok(Some(DeviceInfo {
        platform: string_field(&mut map, "platform", "device")?,
        device_type,
        browser: string_field(&mut map, "browser", "device")?,
    }))
}

pub(crate) fn parse_meta(value: Option<Value>) -> Result<Option<Map<String, Value>>, FrameError> {
    let Some(map) = object(value, "meta")? else {
        return Ok(None);
    };
    if map.len() > MAX_META_KEYS {
        return Err(bad(format!(
            "\"meta\" may have at most {MAX_META_KEYS} keys"
        )));
    }
    let size = serde_json::to_string(&map)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_META_BYTES {
        return Err(bad(format!(
            "\"meta\" may be at most {MAX_META_BYTES} bytes serialised"
        )));
    }
    Ok(Some(map))
}

/// Frames the hub sends to a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// First frame after the upgrade.
    Welcome {
        /// The new session.
        session_id: String,
        /// The user.
        user_id: &'a str,
        /// This node.
        node_id: &'a str,
        /// WebSocket Ping period.
        heartbeat_interval_ms: u64,
        /// Active to idle.
        idle_after_ms: u64,
        /// Idle to away.
        away_after_ms: u64,
        /// Resumes this session once, from a new socket (§9).
        resume_token: &'a str,
        /// True when this socket took over an existing session.
        resumed: bool,
    },
    /// The token expires at `expires_at`: send a new one with `auth`.
    AuthRequired {
        /// The token's `exp`, RFC 3339 with milliseconds.
        expires_at: String,
    },
    /// The new token was accepted; the session lives until `expires_at`.
    AuthOk {
        /// The new token's `exp`, RFC 3339 with milliseconds.
        expires_at: String,
    },
    /// The session's status or manual status changed.
    Status {
        /// Derived (or forced) status.
        status: SessionStatus,
        /// Manual status.
        manual: Option<ManualStatus>,
    },
    /// A bad frame.
    Error {
        /// Contract error code.
        code: &'a str,
        /// The room, for `forbidden` and `room_limit`.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        /// Human-readable detail.
        message: &'a str,
    },
    /// The last frame before the hub closes the socket.
    Terminated {
        /// admin, revoked, session_limit, shutdown, user, max_age or
        /// token_expired.
        reason: &'a str,
        /// On shutdown: how long to wait before reconnecting (jittered).
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerMessage<'_> {
    /// The frame's JSON text.
    pub fn to_text(&self) -> String {
        crate::model::json::to_json(self)
    }
}

/// The `pong` frame: `id` echoed verbatim when given, `ts` in RFC 3339.
pub fn pong_text(id: Option<&str>, now: Millis) -> String {
    let mut text = String::with_capacity(64 + id.map_or(0, str::len));
    text.push_str(r#"{"type":"pong","#);
    if let Some(id) = id {
        text.push_str(r#""id":"#);
        text.push_str(id);
        text.push(',');
    }
    text.push_str(r#""ts":""#);
    push_rfc3339(&mut text, now);
    text.push_str(r#""}"#);
    text
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
