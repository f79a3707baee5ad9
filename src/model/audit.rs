//! Owns the contract's `AuditEvent` JSON object (v1.1 §10): who did what to
//! whom, when, on which node, with what result.

use serde::{Deserialize, Serialize};

use super::time::{Millis, deserialize_time, serialize_time};

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuditAction {
    /// `DELETE /api/v1/sessions/{id}`.
    #[serde(rename = "session.terminate")]
    SessionTerminate,
    /// `DELETE /api/v1/users/{id}/sessions`.
    #[serde(rename = "user.revoke")]
    UserRevoke,
    /// A `/api/v1/me/...` route ended a session.
    #[serde(rename = "session.end_by_user")]
    SessionEndByUser,
    /// An export was downloaded.
    #[serde(rename = "sessions.export")]
    SessionsExport,
    /// A 401 on any route.
    #[serde(rename = "auth.failed")]
    AuthFailed,
    /// A 403 on any route.
    #[serde(rename = "auth.denied")]
    AuthDenied,
    /// Webhook events were dropped.
    #[serde(rename = "webhook.dropped")]
    WebhookDropped,
}

impl AuditAction {
    /// Every action, in the contract's order.
    pub const ALL: [AuditAction; 7] = [
        AuditAction::SessionTerminate,
        AuditAction::UserRevoke,
        AuditAction::SessionEndByUser,
        AuditAction::SessionsExport,
        AuditAction::AuthFailed,
        AuditAction::AuthDenied,
        AuditAction::WebhookDropped,
    ];

    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SessionTerminate => "session.terminate",
            AuditAction::UserRevoke => "user.revoke",
            AuditAction::SessionEndByUser => "session.end_by_user",
            AuditAction::SessionsExport => "sessions.export",
            AuditAction::AuthFailed => "auth.failed",
            AuditAction::AuthDenied => "auth.denied",
            AuditAction::WebhookDropped => "webhook.dropped",
        }
    }

    /// The action a contract name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActor {
    /// The actor's user id (null for a failed authentication).
    pub user_id: Option<String>,
    /// `admin` or `client` (null for a failed authentication).
    pub role: Option<String>,
    /// The client IP as the hub records it.
    pub ip: Option<String>,
}

/// What was acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditTarget {
    /// The user acted on.
    pub user_id: Option<String>,
    /// The session acted on.
    pub session_id: Option<String>,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id (UUIDv4).
    pub id: String,
    /// When it happened.
    #[serde(
        serialize_with = "serialize_time",
        deserialize_with = "deserialize_time"
    )]
    pub at: Millis,
    /// What happened.
    pub action: AuditAction,
    /// Who did it; null when nobody is known.
    pub actor: Option<AuditActor>,
    /// What it was done to.
    pub target: AuditTarget,
    /// Why, or for folded failures `folded:<n>`; an export's query.
    pub reason: Option<String>,
    /// The node that recorded it.
    pub node_id: String,
    /// `ok`, or the error code returned.
    pub result: String,
}
