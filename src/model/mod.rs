//! Owns the plain data every part of the hub shares: ids, statuses and the
//! contract's `Session` and `User` JSON shapes, the engine's `Change`s, close
//! codes, time and JSON rendering.
//!
//! Serde names here *are* the wire names of `docs/protocol.md`. There is no
//! logic beyond validation and formatting.

pub mod alert;
pub mod audit;
pub mod change;
pub mod close;
pub mod event;
pub mod filter;
pub mod ids;
pub mod json;
pub mod room;
pub mod session;
pub mod status;
pub mod time;
pub mod timeline;
pub mod user;

#[cfg(test)]
pub(crate) mod strategies;

pub use alert::{Alert, AlertRule};
pub use audit::{AuditAction, AuditActor, AuditEvent, AuditTarget};
pub use change::{Applied, Change, SessionEvent};
pub use close::CloseCode;
pub use event::EventType;
pub use filter::{MetaCriterion, MetaScalar, SessionFields, SessionFilter};
pub use ids::{NodeId, SessionId, UserId};
pub use room::{Member, MemberChange, MemberEvent, RoomGrant, RoomName, RoomSummary};
pub use session::{AppInfo, DeviceInfo, Location, MetaUpdate, SessionMeta, SessionView, Traffic};
pub use status::{EndCause, ManualStatus, SessionStatus, Transport, UserStatus};
pub use time::{Day, Millis, day_of, format_rfc3339};
pub use user::{UserDetail, UserView};
