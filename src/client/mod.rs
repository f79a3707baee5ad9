//! Owns everything facing presence clients: the `GET /ws` upgrade (origin,
//! auth, handshake, session metadata) and the per-connection task.

pub mod creation;
pub mod heartbeat;
pub mod lifetime;
pub mod limits;
pub mod me;
pub mod protocol;
pub mod rooms;
pub mod socket;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use warp::Filter;
use warp::http::HeaderMap;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::Auditor;
use crate::auth::Principal;
use crate::auth::{Authenticator, DevIdentity};
use crate::device::parse_user_agent;
use crate::history::HistoryStore;
use crate::http::admission::Admission;
use crate::http::auth::{bearer_token, query_param, raw_query, rest_auth_error, token_of};
use crate::http::client_ip;
use crate::http::error::ApiError;
use crate::http::origin::{OriginPolicy, check_origin};
use crate::http::query::check_utf8;
use crate::http::upgrade::{PeerAddr, UpgradeSlot, check_handshake, switch_protocols};
use crate::model::{AppInfo, SessionId, SessionMeta, Transport};
use crate::presence::{NewSession, PresenceHandle};
use socket::ConnectionContext;

/// Longest query value kept for descriptive fields (name, org, page, app).
const MAX_FIELD_BYTES: usize = 512;

/// Query parameters of `/ws`.
#[derive(Debug, Default, Deserialize)]
struct ClientQuery {
    user: Option<String>,
    name: Option<String>,
    org: Option<String>,
    email: Option<String>,
    team: Option<String>,
    app: Option<String>,
    app_version: Option<String>,
    page: Option<String>,
    /// A resume token from an earlier `welcome` (§9).
    resume: Option<String>,
}

/// What the client routes (`/ws`, HTTP heartbeats) use.
pub struct ClientContext {
    /// The presence engine.
    pub presence: PresenceHandle,
    /// Token checks.
    pub auth: Authenticator,
    /// Shared by every client connection.
    pub connections: Arc<ConnectionContext>,
    /// HTTP-heartbeat session expiry, told to heartbeat clients.
    pub http_session_ttl: Duration,
    /// Ended sessions, for `/api/v1/me/history`.
    pub history: Arc<dyn HistoryStore>,
    /// The audit trail (sessions ended by their user).
    pub auditor: Auditor,
    /// Every WebSocket task, for shutdown.
    pub sockets: TaskTracker,
    /// Fires when shutdown begins: upgrades are refused.
    pub closing: CancellationToken,
    /// Open-socket limits (contract v1.1 section 13).
    pub admission: Admission,
    /// New sessions per user and per IP.
    pub creation: creation::CreationRates,
    /// Which `Origin`s may open `/ws`.
    pub origins: OriginPolicy,
    /// Where session IPs are (`location`).
    pub geoip: crate::geo::GeoIp,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext").finish_non_exhaustive()
    }
}

/// `GET /ws`, `POST /api/v1/heartbeat` and the `/api/v1/me` routes.
pub fn routes(
    hub: Arc<ClientContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let me = me::routes(&hub);
    ws_route(hub.clone())
        .or(heartbeat::routes(hub))
        .unify()
        .or(me)
        .unify()
}

fn ws_route(
    hub: Arc<ClientContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("ws")
        .and(warp::get())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<UpgradeSlot>())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::any().map(move || hub.clone()))
        .and_then(upgrade_client)
}

async fn upgrade_client(
    query: String,
    headers: HeaderMap,
    slot: Option<UpgradeSlot>,
    peer: Option<PeerAddr>,
    hub: Arc<ClientContext>,
) -> Result<warp::reply::Response, warp::Rejection> {
    accept_client(&query, &headers, slot, peer, &hub).map_err(warp::reject::custom)
}

fn accept_client(
    query: &str,
    headers: &HeaderMap,
    slot: Option<UpgradeSlot>,
    peer: Option<PeerAddr>,
    hub: &ClientContext,
) -> Result<warp::reply::Response, ApiError> {
    if hub.closing.is_cancelled() {
        return Err(ApiError::Unavailable("the hub is shutting down".into()));
    }
    check_origin(headers, &hub.origins)?;
    check_utf8(query)?;
    let params: ClientQuery = serde_urlencoded::from_str(query)
        .map_err(|err| ApiError::BadRequest(format!("invalid query string: {err}")))?;
    let token = token_of(headers, query);
    let principal = hub.auth.client(
        token.as_deref(),
        &DevIdentity {
            user: params.user.as_deref(),
            name: params.name.as_deref(),
            org: params.org.as_deref(),
            email: params.email.as_deref(),
            team: params.team.as_deref(),
        },
    )?;
    let accept_key = check_handshake(headers)?;
    hub.creation
        .admit(principal.user_id.as_str(), request_ip(headers, peer, hub))?;
    let access = Box::new(rooms::RoomAccess {
        org: principal.org.clone().map(clip),
        grant: principal.rooms.clone(),
    });
    let session = Box::new(NewSession {
        id: SessionId::generate(),
        user_id: principal.user_id,
        name: principal.name.map(clip),
        org: principal.org.map(clip),
        email: principal.email.map(clip),
        team: principal.team.map(clip),
        node_id: hub.connections.node_id.clone(),
        transport: Transport::Ws,
        meta: session_meta(headers, peer, &params, hub),
        expires_at: principal.expires_at,
        rooms: principal.rooms,
    });
    let permit = hub.admission.admit_socket(headers, peer)?;
    let ctx = hub.connections.clone();
    let resume = params.resume;
    switch_protocols(slot, &accept_key, &hub.sockets, permit, move |io| {
        socket::serve_connection(io, ctx, session, access, resume)
    })
}

/// The client behind a REST request: its Bearer token (never `?token=`,
/// which is for WebSocket upgrades), or `?user=` in dev mode.
pub(crate) fn rest_principal(
    auth: &Authenticator,
    query: &str,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    crate::http::query::check_utf8(query)?;
    let token = bearer_token(headers);
    let (user, name, org) = (
        query_param(query, "user"),
        query_param(query, "name"),
        query_param(query, "org"),
    );
    let (email, team) = (query_param(query, "email"), query_param(query, "team"));
    let dev = DevIdentity {
        user: user.as_deref(),
        name: name.as_deref(),
        org: org.as_deref(),
        email: email.as_deref(),
        team: team.as_deref(),
    };
    auth.client(token.as_deref(), &dev)
        .map_err(|err| rest_auth_error(err, query))
}

/// What the hub records about where a WebSocket session comes from.
fn session_meta(
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    params: &ClientQuery,
    hub: &ClientContext,
) -> SessionMeta {
    let user_agent = headers
        .get(warp::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ip = request_ip(headers, peer, hub);
    let mut meta = session_meta_from(ip, user_agent, params.app(), params.page());
    meta.location = hub.geoip.locate(ip);
    meta
}

/// Session metadata from its parts; the User-Agent is parsed for device facts.
pub fn session_meta_from(
    ip: IpAddr,
    user_agent: Option<String>,
    app: Option<AppInfo>,
    page: Option<String>,
) -> SessionMeta {
    let user_agent = user_agent.map(clip);
    SessionMeta {
        ip: Some(ip.to_string()),
        device: parse_user_agent(user_agent.as_deref()),
        user_agent,
        app,
        page,
        meta: None,
        location: None,
    }
}

/// The client address of a request, honouring trusted proxies.
pub fn request_ip(headers: &HeaderMap, peer: Option<PeerAddr>, hub: &ClientContext) -> IpAddr {
    client_ip::request_ip(headers, peer, &hub.connections.limits.trusted_proxies)
}

impl ClientQuery {
    fn page(&self) -> Option<String> {
        self.page.clone().map(clip)
    }

    fn app(&self) -> Option<AppInfo> {
        if self.app.is_none() && self.app_version.is_none() {
            return None;
        }
        Some(AppInfo {
            name: self.app.clone().map(clip),
            version: self.app_version.clone().map(clip),
        })
    }
}

/// Cuts a descriptive string to `MAX_FIELD_BYTES` at a character boundary.
pub(crate) fn clip(mut text: String) -> String {
    if text.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_respects_characters() {
        let long = "é".repeat(400);
        let clipped = clip(long);
        assert!(clipped.len() <= MAX_FIELD_BYTES);
        assert!(clipped.chars().all(|c| c == 'é'));
    }
}
