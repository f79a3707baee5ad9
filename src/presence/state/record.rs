//! Owns one live session as the map keeps it (`SessionRecord`), what it
//! takes to open one (`NewSession`), and its contract view.

use std::sync::Arc;

use crate::model::session::duration_seconds;
use crate::model::timeline::{Timeline, TimelineEntry, TimelineKind};
use crate::model::{
    EndCause, ManualStatus, Millis, NodeId, RoomGrant, RoomName, SessionId, SessionMeta,
    SessionStatus, SessionView, Transport, UserId,
};
use crate::presence::liveness::TrafficCounters;

/// Everything needed to open a session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Fresh session id.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// Organisation.
    pub org: Option<String>,
    /// The `email` identity claim.
    pub email: Option<String>,
    /// The `team` identity claim.
    pub team: Option<String>,
    /// Node holding it.
    pub node_id: NodeId,
    /// ws or http.
    pub transport: Transport,
    /// Where it comes from.
    pub meta: SessionMeta,
    /// The token's `exp` (Unix ms): the session ends `token_expired` then.
    pub expires_at: Option<Millis>,
    /// The explicit rooms the token lets it join (its `rooms` claim).
    pub rooms: RoomGrant,
}

/// One live session in the map.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub(super) id: SessionId,
    pub(super) user_id: UserId,
    pub(super) name: Option<String>,
    pub(super) org: Option<String>,
    pub(super) email: Option<String>,
    pub(super) team: Option<String>,
    pub(super) node_id: NodeId,
    pub(super) transport: Transport,
    pub(super) connected_at: Millis,
    pub(super) last_activity: Millis,
    pub(super) last_heartbeat: Millis,
    pub(super) manual: Option<ManualStatus>,
    pub(super) status: SessionStatus,
    pub(super) meta: SessionMeta,
    pub(super) published_activity: Millis,
    pub(super) published_at: Millis,
    pub(super) activity_check_at: Option<Millis>,
    /// The token's `exp`, renewed by `auth` or a heartbeat.
    pub(super) expires_at: Option<Millis>,
    /// When and why the socket dropped, while the session waits for a resume.
    pub(super) dropped: Option<(Millis, EndCause)>,
    /// Explicit rooms joined, in join order.
    pub(super) rooms: Vec<RoomName>,
    /// Counted by the connection (shared with its liveness), by the engine
    /// for HTTP sessions, or copied from a replica's view.
    pub(super) traffic: Arc<TrafficCounters>,
    /// What changed in the session, bounded (v1.1 §10).
    pub(super) timeline: Timeline,
}

impl SessionRecord {
    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The owner.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The node holding the session.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// ws or http.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Current status.
    pub fn status(&self) -> SessionStatus {
        self.status
    }

    /// Current manual status.
    pub fn manual(&self) -> Option<ManualStatus> {
        self.manual
    }

    /// Organisation.
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }

    /// Explicit rooms joined.
    pub fn rooms(&self) -> &[RoomName] {
        &self.rooms
    }

    /// When the session started.
    pub fn connected_at(&self) -> Millis {
        self.connected_at
    }

    /// Its timeline so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Appends a timeline entry.
    pub(super) fn note(
        &mut self,
        kind: TimelineKind,
        from: Option<String>,
        to: Option<String>,
        at: Millis,
    ) {
        self.timeline.push(TimelineEntry { at, kind, from, to });
    }

    /// The contract view of the session at `now`.
    pub fn view(&self, now: Millis) -> SessionView {
        SessionView {
            session_id: self.id,
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            org: self.org.clone(),
            email: self.email.clone(),
            team: self.team.clone(),
            node_id: self.node_id.clone(),
            transport: self.transport,
            status: self.status,
            manual: self.manual,
            connected_at: self.connected_at,
            last_activity: self.last_activity,
            page: self.meta.page.clone(),
            rooms: self.rooms.clone(),
            ip: self.meta.ip.clone(),
            user_agent: self.meta.user_agent.clone(),
            device: self.meta.device.clone(),
            app: self.meta.app.clone(),
            meta: self.meta.meta.clone(),
            location: self.meta.location.clone(),
            ended_at: None,
            end_cause: None,
            duration_s: duration_seconds(self.connected_at, now),
            reconnecting: self.dropped.is_some(),
            traffic: self.traffic.traffic(),
            rtt_ms: self.traffic.rtt_ms(),
            timeline: None,
        }
    }

    /// A replica record from the view its owner published.
    pub(super) fn from_view(view: SessionView) -> Self {
        let traffic = Arc::new(TrafficCounters::from_snapshot(view.traffic, view.rtt_ms));
        Self {
            traffic,
            timeline: Timeline::default(),
            id: view.session_id,
            user_id: view.user_id,
            name: view.name,
            org: view.org,
            email: view.email,
            team: view.team,
            node_id: view.node_id,
            transport: view.transport,
            connected_at: view.connected_at,
            last_activity: view.last_activity,
            last_heartbeat: view.last_activity,
            manual: view.manual,
            status: view.status,
            meta: SessionMeta {
                ip: view.ip,
                user_agent: view.user_agent,
                device: view.device,
                app: view.app,
                page: view.page,
                meta: view.meta,
                location: view.location,
            },
            published_activity: view.last_activity,
            published_at: view.last_activity,
            activity_check_at: None,
            expires_at: None,
            dropped: view
                .reconnecting
                .then_some((view.last_activity, EndCause::ClientClosed)),
            rooms: view.rooms,
        }
    }

    /// True when an admin would see no difference between the two.
    pub(super) fn same_as(&self, other: &SessionRecord) -> bool {
        self.status == other.status
            && self.manual == other.manual
            && self.last_activity == other.last_activity
            && self.meta == other.meta
            && self.name == other.name
            && self.org == other.org
            && self.node_id == other.node_id
            && self.dropped.is_some() == other.dropped.is_some()
            && self.rooms == other.rooms
            && self.email == other.email
            && self.team == other.team
    }

    pub(super) fn ended_view(&self, cause: EndCause, now: Millis) -> SessionView {
        let mut view = self.view(now);
        view.status = SessionStatus::Ended;
        view.ended_at = Some(now);
        view.end_cause = Some(cause);
        view.reconnecting = false;
        view.timeline = Some(self.timeline.clone());
        view
    }
}

impl crate::model::SessionFields for SessionRecord {
    fn session_id(&self) -> SessionId {
        self.id
    }
    fn user_id(&self) -> &str {
        self.user_id.as_str()
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }
    fn node_id(&self) -> &str {
        self.node_id.as_str()
    }
    fn ip(&self) -> Option<&str> {
        self.meta.ip.as_deref()
    }
    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }
    fn meta(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.meta.meta.as_ref()
    }
    fn connected_at(&self) -> Millis {
        self.connected_at
    }
}
