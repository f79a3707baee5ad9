//! Owns the description of one session: what the client told us
//! (`SessionMeta`) and the contract's `Session` JSON (`SessionView`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{NodeId, SessionId, UserId};
use super::room::RoomName;
use super::status::{EndCause, ManualStatus, SessionStatus, Transport};
use super::time::{
    Millis, deserialize_opt_time, deserialize_time, serialize_opt_time, serialize_time,
};

/// Device facts, parsed from the User-Agent or given by the client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Operating system, e.g. "Windows", "iOS".
    pub platform: Option<String>,
    /// One of desktop, mobile, tablet, bot, unknown.
    pub device_type: Option<String>,
    /// Browser name, e.g. "Chrome".
    pub browser: Option<String>,
}

/// The application a session runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    /// Application name.
    pub name: Option<String>,
    /// Application version.
    pub version: Option<String>,
}

/// Where a session's IP is, from the GeoIP database (§12).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// City, English name.
    pub city: Option<String>,
    /// IANA time zone, e.g. "Europe/Berlin".
    pub timezone: Option<String>,
    /// Latitude in degrees.
    pub lat: Option<f64>,
    /// Longitude in degrees.
    pub lon: Option<f64>,
}

/// Everything the hub records about where a session comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionMeta {
    /// Peer IP (after trusted-proxy resolution).
    pub ip: Option<String>,
    /// The raw User-Agent header.
    pub user_agent: Option<String>,
    /// Device facts.
    pub device: DeviceInfo,
    /// The application, when the client said.
    pub app: Option<AppInfo>,
    /// The page the client is on.
    pub page: Option<String>,
    /// Application attributes from `hello.meta`, shown to admins as is.
    pub meta: Option<Map<String, Value>>,
    /// Where the IP is (None without a GeoIP database or entry).
    pub location: Option<Location>,
}

/// The contract's `Session` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    /// Session id.
    pub session_id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Display name of the user.
    pub name: Option<String>,
    /// Organisation of the user.
    pub org: Option<String>,
    /// The user's `email` identity claim (v1.1 §9).
    #[serde(default)]
    pub email: Option<String>,
    /// The user's `team` identity claim (v1.1 §9).
    #[serde(default)]
    pub team: Option<String>,
    /// Node holding the session.
    pub node_id: NodeId,
    /// ws or http.
    pub transport: Transport,
    /// Derived status, or ended.
    pub status: SessionStatus,
    /// Manual status.
    pub manual: Option<ManualStatus>,
    /// When the session started.
    #[serde(
        serialize_with = "serialize_time",
        deserialize_with = "deserialize_time"
    )]
    pub connected_at: Millis,
    /// Last activity (ping, or HTTP heartbeat with active=true).
    #[serde(
        serialize_with = "serialize_time",
        deserialize_with = "deserialize_time"
    )]
    pub last_activity: Millis,
    /// Current page.
    pub page: Option<String>,
    /// Explicit rooms the session joined (contract v1.1 §8), in join order;
    /// absent in records written before rooms existed.
    #[serde(default)]
    pub rooms: Vec<RoomName>,
    /// Peer IP.
    pub ip: Option<String>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// Device facts.
    pub device: DeviceInfo,
    /// Application.
    pub app: Option<AppInfo>,
    /// Application attributes.
    pub meta: Option<Map<String, Value>>,
    /// Where the IP is; always serialised, null when unknown.
    #[serde(default)]
    pub location: Option<Location>,
    /// When the session ended.
    #[serde(
        serialize_with = "serialize_opt_time",
        deserialize_with = "deserialize_opt_time"
    )]
    pub ended_at: Option<Millis>,
    /// Why it ended.
    pub end_cause: Option<EndCause>,
    /// Seconds since `connected_at` (live) or the total (ended).
    pub duration_s: f64,
    /// The socket dropped and the session waits for a resume (§9).
    #[serde(default)]
    pub reconnecting: bool,
    /// Messages and bytes in each direction (v1.1 §10).
    #[serde(default)]
    pub traffic: Traffic,
    /// Round trip of the hub's last answered WebSocket Ping, in
    /// milliseconds; null before the first (and for HTTP sessions).
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// The timeline an ended session is recorded with (not part of the
    /// Session JSON: the timeline route serves it; the SQL stores keep it
    /// in their `timeline` column, the memory store with the record).
    #[serde(skip)]
    pub timeline: Option<super::timeline::Timeline>,
}

/// What went through a session (v1.1 §10): WebSocket data messages and
/// their payload bytes, or HTTP heartbeat requests/answers and their body
/// bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Messages from the client.
    pub msgs_in: u64,
    /// Messages to the client.
    pub msgs_out: u64,
    /// Payload bytes from the client.
    pub bytes_in: u64,
    /// Payload bytes to the client.
    pub bytes_out: u64,
}

/// Seconds between two points in time, to the millisecond.
pub fn duration_seconds(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

/// Metadata a client sends with `hello` (or an HTTP heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaUpdate {
    /// Replaces the application.
    pub app: Option<AppInfo>,
    /// Device fields that override the parsed ones.
    pub device: Option<DeviceInfo>,
    /// Replaces the page.
    pub page: Option<String>,
    /// Replaces the application attributes.
    pub meta: Option<Map<String, Value>>,
}

impl SessionMeta {
    /// Applies what a client said about itself; absent fields keep their value.
    pub fn merge(&mut self, update: MetaUpdate) {
        if let Some(app) = update.app {
            self.app = Some(app);
        }
        if let Some(device) = update.device {
            if device.platform.is_some() {
                self.device.platform = device.platform;
            }
            if device.device_type.is_some() {
                self.device.device_type = device.device_type;
            }
            if device.browser.is_some() {
                self.device.browser = device.browser;
            }
        }
        if update.page.is_some() {
            self.page = update.page;
        }
        if update.meta.is_some() {
            self.meta = update.meta;
        }
    }
}

#[cfg(test)]
impl SessionView {
    /// An active WebSocket session of `user` on node `n1`, started (and
    /// last active) at `at`, every other field empty: the base that test
    /// fixtures change with struct update syntax, so a new Session field is
    /// added in one place.
    pub(crate) fn sample(user: &str, at: Millis) -> Self {
        Self {
            session_id: SessionId::generate(),
            user_id: UserId::parse(user).unwrap(),
            name: None,
            org: None,
            email: None,
            team: None,
            node_id: NodeId::new("n1"),
            transport: Transport::Ws,
            status: SessionStatus::Active,
            manual: None,
            connected_at: at,
            last_activity: at,
            page: None,
            ip: None,
            user_agent: None,
            device: DeviceInfo::default(),
            app: None,
            meta: None,
            location: None,
            ended_at: None,
            end_cause: None,
            duration_s: 0.0,
            reconnecting: false,
            rooms: Vec::new(),
            traffic: Traffic::default(),
            rtt_ms: None,
            timeline: None,
        }
    }
}
