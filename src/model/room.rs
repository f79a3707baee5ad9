//! Owns the names and shapes of rooms (contract v1.1 §8): `RoomName`
//! (1..=128 bytes of `[A-Za-z0-9_.:/@-]`, validated where it is built), the
//! implicit `org:<org>` rooms, which rooms a principal may enter (`RoomGrant`),
//! and the `Member` object members see.
//!
//! No logic beyond validation: who is in which room is computed by the
//! presence engine (`presence::state::rooms`).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::UserId;
use super::status::{ManualStatus, UserStatus};
use super::time::{Millis, deserialize_time, serialize_time};

/// The longest room name, in bytes.
pub const MAX_ROOM_BYTES: usize = 128;

/// The prefix of the implicit organisation rooms.
pub const ORG_PREFIX: &str = "org:";

/// A room's name. Cheap to clone: deliveries to watchers carry it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(Arc<str>);

/// The explicit rooms a principal may join or watch (contract v1.1 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomGrant {
    /// Dev mode: every room, `org:` rooms of any organisation included.
    Any,
    /// The token's `rooms` claim: exact names, and prefixes ending in `*`.
    Listed(Vec<String>),
}

impl RoomGrant {
    /// True when a principal of organisation `org` with this grant may join
    /// or watch `room` (see `auth::Principal::may_enter`).
    pub fn allows(&self, org: Option<&str>, room: &RoomName) -> bool {
        let entries = match self {
            RoomGrant::Any => return true,
            RoomGrant::Listed(entries) => entries,
        };
        if room.is_org() {
            return org.and_then(RoomName::of_org).as_ref() == Some(room);
        }
        entries.iter().any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => room.as_str().starts_with(prefix),
            None => entry == room.as_str(),
        })
    }
}

/// Why a room name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a room name is 1 to 128 bytes of A-Z a-z 0-9 _ . : / @ -")]
pub struct InvalidRoomName;

impl RoomName {
    /// Validates the grammar: 1..=128 bytes of `[A-Za-z0-9_.:/@-]`.
    pub fn parse(text: &str) -> Result<Self, InvalidRoomName> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_.:/@-".contains(&b);
        if text.is_empty() || text.len() > MAX_ROOM_BYTES || !text.bytes().all(allowed) {
            return Err(InvalidRoomName);
        }
        Ok(Self(Arc::from(text)))
    }

    /// The implicit room of an organisation, when the name fits the grammar.
    pub fn of_org(org: &str) -> Option<Self> {
        Self::parse(&format!("{ORG_PREFIX}{org}")).ok()
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared text, for frames that carry the name.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// True for an implicit `org:` room.
    pub fn is_org(&self) -> bool {
        self.0.starts_with(ORG_PREFIX)
    }
}

impl TryFrom<String> for RoomName {
    type Error = InvalidRoomName;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<RoomName> for String {
    fn from(room: RoomName) -> Self {
        room.0.to_string()
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A member of a room as other members see it: a user, never a session, and
/// exactly these seven fields (no IP, User-Agent, device, meta or ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// The best status of the user's sessions in the room.
    pub status: UserStatus,
    /// Manual status of the most present session in the room.
    pub manual: Option<ManualStatus>,
    /// The user's sessions in the room.
    pub session_count: usize,
    /// Page of the most present session (null in `org:` rooms).
    pub page: Option<String>,
    /// When the user's first session still in the room entered it.
    #[serde(
        serialize_with = "serialize_time",
        deserialize_with = "deserialize_time"
    )]
    pub joined_at: Millis,
}

impl Member {
    /// True when a member would see a difference (`update` rule of §8):
    /// status, manual, session count, page or name.
    pub fn differs_visibly(&self, other: &Member) -> bool {
        self.status != other.status
            || self.manual != other.manual
            || self.session_count != other.session_count
            || self.page != other.page
            || self.name != other.name
    }
}

/// What happened to a member, as a `presence` frame's `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberEvent {
    /// The user entered the room.
    Join,
    /// A visible field changed.
    Update,
    /// The user's last session left the room.
    Leave,
}

/// One entry of a `presence` frame's `changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    /// join, update or leave.
    pub event: MemberEvent,
    /// The member after the change (for `leave`, as last seen).
    pub member: Member,
}

/// One room in the admin list: its name and sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room.
    pub room: RoomName,
    /// Users in it.
    pub members: usize,
    /// Sessions in it.
    pub sessions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar() {
        for good in ["a", "doc:42", "team/eng@acme", "x_y.z-1", &"r".repeat(128)] {
            assert!(RoomName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "caf\u{e9}", "a#b", "a?b", &"r".repeat(129), "a*"] {
            assert!(RoomName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn org_rooms_are_recognised() {
        let room = RoomName::of_org("acme").unwrap();
        assert_eq!(room.as_str(), "org:acme");
        assert!(room.is_org());
        assert!(!RoomName::parse("doc:1").unwrap().is_org());
        assert!(RoomName::of_org("has space").is_none());
    }

    #[test]
    fn a_member_has_exactly_seven_fields() {
        let member = Member {
            user_id: UserId::parse("u").unwrap(),
            name: None,
            status: UserStatus::Active,
            manual: None,
            session_count: 1,
            page: None,
            joined_at: 0,
        };
        let value = serde_json::to_value(&member).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 7, "{keys:?}");
        assert_eq!(value["joined_at"], "1970-01-01T00:00:00.000Z");
    }
}
