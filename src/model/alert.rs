//! Owns the contract's `Alert` JSON object (§12) and the names of the alert
//! rules. Which condition raises which alert is decided in `alerts/`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{NodeId, UserId};
use super::time::{
    Millis, deserialize_opt_time, deserialize_time, serialize_opt_time, serialize_time,
};

/// The six alert rules of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// One user has live sessions from many distinct IPs.
    MultiIp,
    /// One user starts many sessions within 60 s.
    SessionFlood,
    /// One user's sessions end and start again many times within 60 s.
    ReconnectLoop,
    /// A session is live longer than the threshold.
    LongSession,
    /// Many `auth.failed` from one IP within 60 s.
    AuthFailures,
    /// Two sessions of one user start too far apart, too fast.
    ImpossibleTravel,
}

impl AlertRule {
    /// Every rule, in the contract's order.
    pub const ALL: [AlertRule; 6] = [
        AlertRule::MultiIp,
        AlertRule::SessionFlood,
        AlertRule::ReconnectLoop,
        AlertRule::LongSession,
        AlertRule::AuthFailures,
        AlertRule::ImpossibleTravel,
    ];

    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::MultiIp => "multi_ip",
            AlertRule::SessionFlood => "session_flood",
            AlertRule::ReconnectLoop => "reconnect_loop",
            AlertRule::LongSession => "long_session",
            AlertRule::AuthFailures => "auth_failures",
            AlertRule::ImpossibleTravel => "impossible_travel",
        }
    }

    /// The rule of a contract name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == name)
    }
}

/// The contract's `Alert` object. Raised once per (rule, subject); a cleared
/// alert keeps its id and carries `cleared_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id (UUIDv4).
    pub id: String,
    /// Which rule.
    pub rule: AlertRule,
    /// When it was raised.
    #[serde(
        serialize_with = "serialize_time",
        deserialize_with = "deserialize_time"
    )]
    pub at: Millis,
    /// The user concerned (null for `auth_failures`).
    pub user_id: Option<UserId>,
    /// The IP concerned, when one is.
    pub ip: Option<String>,
    /// Rule-specific facts.
    pub details: Map<String, Value>,
    /// When the condition stopped holding.
    #[serde(
        serialize_with = "serialize_opt_time",
        deserialize_with = "deserialize_opt_time"
    )]
    pub cleared_at: Option<Millis>,
    /// The user's organisation, for org-filtered admin streams; not on the wire.
    #[serde(skip)]
    pub org: Option<String>,
    /// The node that raised it (it alone clears it and sends it to
    /// webhooks); not on the wire.
    #[serde(skip)]
    pub node_id: Option<NodeId>,
}

impl Alert {
    /// True while the condition holds.
    pub fn is_active(&self) -> bool {
        self.cleared_at.is_none()
    }
}
