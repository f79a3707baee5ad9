//! Owns the admin stream's first frame: every live session and online user
//! (matching an optional org filter), rendered from the presence map.

use serde::Serialize;

use super::state::PresenceState;
use crate::model::json::to_json;
use crate::model::{Millis, NodeId, SessionView, UserView, format_rfc3339};

#[derive(Serialize)]
struct Snapshot<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    at: String,
    node_id: &'a NodeId,
    users: Vec<UserView>,
    sessions: Vec<SessionView>,
}

/// The snapshot frame's JSON text, `seq` 0.
pub fn render_snapshot(
    state: &PresenceState,
    node_id: &NodeId,
    org: Option<&str>,
    now: Millis,
) -> String {
    let matches = |candidate: Option<&str>| org.is_none() || org == candidate;
    let sessions: Vec<SessionView> = state
        .sessions()
        .filter(|s| matches(s.org()))
        .map(|s| s.view(now))
        .collect();
    let users: Vec<UserView> = state
        .user_ids()
        .filter_map(|id| state.user_view(id))
        .filter(|u| matches(u.org.as_deref()))
        .collect();
    to_json(&Snapshot {
        kind: "snapshot",
        seq: 0,
        at: format_rfc3339(now),
        node_id,
        users,
        sessions,
    })
}
