//! Owns everything facing presence clients: the `GET /ws` upgrade (origin,
//! auth, handshake, session metadata) and the per-connection task.

pub mod heartbeat;
pub mod limits;
pub mod me;
pub mod protocol;
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
use crate::auth::{Authenticator, DevIdentity};
use crate::device::parse_user_agent;
use crate::history::HistoryStore;
use crate::http::auth::{raw_query, token_of};
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::http::origin::check_origin;
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
    check_origin(headers, hub.connections.limits.allowed_origins.as_deref())?;
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
    });
    let ctx = hub.connections.clone();
    switch_protocols(slot, &accept_key, &hub.sockets, move |io| {
        socket::serve_connection(io, ctx, session)
    })
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
    session_meta_from(
        request_ip(headers, peer, hub),
        user_agent,
        params.app(),
        params.page(),
    )
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
    }
}

/// The client address of a request, honouring trusted proxies.
pub fn request_ip(headers: &HeaderMap, peer: Option<PeerAddr>, hub: &ClientContext) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_ip(peer_ip, forwarded, &hub.connections.limits.trusted_proxies)
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
