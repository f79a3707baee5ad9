//! Owns the named read queries of the presence map. Each runs inside the
//! engine (so it sees one consistent state), filters before it builds any
//! view, and returns plain model values: nothing outside `presence/` ever
//! sees the map itself.

use std::collections::BTreeMap;

use super::state::{Counters, Peak};
use super::{EngineStopped, PresenceHandle};
use crate::model::{
    Day, Member, NodeId, RoomName, RoomSummary, SessionFilter, SessionId, SessionView, UserDetail,
    UserId, UserView, day_of,
};

/// The live counts the metrics gauges show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCounts {
    /// Sessions by status, device type, node and transport.
    pub counters: Counters,
    /// Online users.
    pub online_users: usize,
}

/// The room gauges of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCounts {
    /// Rooms with at least one member (implicit `org:` rooms included).
    pub rooms: usize,
    /// Members summed over every room.
    pub members: usize,
    /// Room memberships of sessions, summed over every room.
    pub sessions: usize,
}

/// What `GET /api/v1/stats` reads from the live map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStats {
    /// Sessions by status, device type, node and transport.
    pub counters: Counters,
    /// Online users.
    pub online_users: usize,
    /// Today's peak of online users.
    pub peak: Peak,
    /// Live sessions by the UTC day they started, for the last 30 days.
    pub started_by_day: BTreeMap<Day, u64>,
    /// Today (UTC).
    pub today: Day,
}

impl PresenceHandle {
    /// The maintained counters and the number of online users.
    pub async fn live_counts(&self) -> Result<LiveCounts, EngineStopped> {
        self.inspect(|state, _| LiveCounts {
            counters: state.counters().clone(),
            online_users: state.online_users(),
        })
        .await
    }

    /// Everything the stats route needs from the live map, in one read.
    pub async fn live_stats(&self) -> Result<LiveStats, EngineStopped> {
        self.inspect(|state, now| {
            let today = day_of(now);
            LiveStats {
                counters: state.counters().clone(),
                online_users: state.online_users(),
                peak: state.peak_today(now),
                started_by_day: state.started_by_day(today - 29),
                today,
            }
        })
        .await
    }

    /// Every live session matching `filter`, in no particular order.
    pub async fn live_sessions(
        &self,
        filter: SessionFilter,
    ) -> Result<Vec<SessionView>, EngineStopped> {
        self.inspect(move |state, now| {
            state
                .sessions()
                .filter(|record| filter.matches(*record))
                .map(|record| record.view(now))
                .collect()
        })
        .await
    }

    /// The timeline of a live session.
    pub async fn live_timeline(
        &self,
        id: SessionId,
    ) -> Result<Option<crate::model::timeline::Timeline>, EngineStopped> {
        self.inspect(move |state, _| state.session(id).map(|record| record.timeline().clone()))
            .await
    }

    /// One live session.
    pub async fn live_session(&self, id: SessionId) -> Result<Option<SessionView>, EngineStopped> {
        self.inspect(move |state, now| state.session(id).map(|record| record.view(now)))
            .await
    }

    /// An online user with its live sessions; `None` when it is offline.
    pub async fn user_detail(&self, user: UserId) -> Result<Option<UserDetail>, EngineStopped> {
        self.inspect(move |state, now| {
            let view = state.user_view(&user)?;
            let mut sessions: Vec<SessionView> = state
                .sessions_of(&user)
                .into_iter()
                .filter_map(|id| state.session(id).map(|record| record.view(now)))
                .collect();
            sessions.sort_by_key(|session| std::cmp::Reverse(session.connected_at));
            Some(UserDetail {
                user: view,
                sessions,
            })
        })
        .await
    }

    /// Every online user that `keep` admits.
    pub async fn online_users_where(
        &self,
        keep: impl Fn(&UserView) -> bool + Send + 'static,
    ) -> Result<Vec<UserView>, EngineStopped> {
        self.inspect(move |state, _| {
            state
                .user_ids()
                .filter_map(|id| state.user_view(id))
                .filter(|user| keep(user))
                .collect()
        })
        .await
    }

    /// The ids of the live sessions `node` holds.
    pub async fn sessions_of_node(&self, node: NodeId) -> Result<Vec<SessionId>, EngineStopped> {
        self.inspect(move |state, _| state.sessions_of_node(&node))
            .await
    }

    /// The live sessions `node` holds, as views.
    pub async fn session_views_of_node(
        &self,
        node: NodeId,
    ) -> Result<Vec<SessionView>, EngineStopped> {
        self.inspect(move |state, now| {
            state
                .sessions()
                .filter(|record| *record.node_id() == node)
                .map(|record| record.view(now))
                .collect()
        })
        .await
    }

    /// Every node other than `local` that holds a live session, sorted.
    pub async fn nodes_other_than(&self, local: NodeId) -> Result<Vec<NodeId>, EngineStopped> {
        self.inspect(move |state, _| {
            let mut nodes: Vec<NodeId> = state
                .sessions()
                .map(|record| record.node_id().clone())
                .filter(|node| *node != local)
                .collect();
            nodes.sort();
            nodes.dedup();
            nodes
        })
        .await
    }

    /// Every room with at least one member, with its sizes, in no order.
    pub async fn rooms(&self) -> Result<Vec<RoomSummary>, EngineStopped> {
        self.inspect(|state, _| state.rooms().summaries()).await
    }

    /// The members of a room as they are now (empty when nobody is in it),
    /// oldest member first.
    pub async fn room_members(&self, room: RoomName) -> Result<Vec<Member>, EngineStopped> {
        self.inspect(move |state, _| state.rooms().current_members(&room))
            .await
    }

    /// How many rooms, members and room sessions there are.
    pub async fn room_counts(&self) -> Result<RoomCounts, EngineStopped> {
        self.inspect(|state, _| {
            let summaries = state.rooms().summaries();
            RoomCounts {
                rooms: summaries.len(),
                members: summaries.iter().map(|s| s.members).sum(),
                sessions: summaries.iter().map(|s| s.sessions).sum(),
            }
        })
        .await
    }
}
