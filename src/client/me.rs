//! Owns the self-service routes (`/api/v1/me/...`, contract v1.1 §9): a
//! user sees its own live sessions and history, ends one of its sessions or
//! every other one. The caller is the client token's `sub` (in dev mode,
//! `?user=`); `X-Presence-Session` names the caller's current session.
//! Sessions are shown as admins see them except `meta`, which is for admins
//! only and always `null` here.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::json;
use warp::Filter;
use warp::http::HeaderMap;
use warp::reply::Reply;

use super::ClientContext;
use super::request_ip;
use crate::admin::query::{Paging, parse_pairs};
use crate::audit::Caller;
use crate::auth::{DevIdentity, Principal, Role};
use crate::http::auth::{query_param, raw_query, token_of};
use crate::http::error::ApiError;
use crate::http::upgrade::PeerAddr;
use crate::model::{AuditAction, AuditTarget, SessionFilter, SessionId, SessionView, UserId};
use crate::presence::TerminateReason;

/// The header that names the caller's own session.
pub const SESSION_HEADER: &str = "x-presence-session";

type Route = warp::filters::BoxedFilter<(warp::reply::Response,)>;

/// A session as its own user sees it.
#[derive(Debug, Serialize)]
struct OwnSession {
    #[serde(flatten)]
    session: SessionView,
    current: bool,
}

#[derive(Debug, Serialize)]
struct OwnHistory {
    sessions: Vec<SessionView>,
    total: usize,
    page: usize,
    page_size: usize,
}

/// What a self-service handler gets from its request.
struct MeRequest {
    query: String,
    headers: HeaderMap,
    /// The route's path input: the session id, or empty.
    input: String,
    /// The client IP as the hub records it.
    ip: String,
}

/// A self-service handler.
type Handler = fn(
    Arc<ClientContext>,
    MeRequest,
) -> BoxFuture<'static, Result<warp::reply::Response, ApiError>>;

/// The four `/api/v1/me` routes.
pub fn routes(hub: &Arc<ClientContext>) -> Route {
    let me = || {
        warp::path("api")
            .and(warp::path("v1"))
            .and(warp::path("me"))
    };
    let no_input = || warp::any().map(String::new);
    let [list, revoke_others, end_one, history] = [
        me_route(
            hub,
            me().and(warp::path!("sessions")).and(no_input()),
            warp::get(),
            |hub, request| Box::pin(async move { list_own(&hub, &request).await }),
        ),
        me_route(
            hub,
            me().and(warp::path!("sessions" / "revoke-others"))
                .and(no_input()),
            warp::post(),
            |hub, request| Box::pin(async move { revoke_others_of(&hub, &request).await }),
        ),
        me_route(
            hub,
            me().and(warp::path!("sessions" / String)),
            warp::delete(),
            |hub, request| Box::pin(async move { end_own(&hub, &request).await }),
        ),
        me_route(
            hub,
            me().and(warp::path!("history")).and(no_input()),
            warp::get(),
            |hub, request| Box::pin(async move { own_history(&hub, &request).await }),
        ),
    ];
    list.or(revoke_others)
        .unify()
        .or(end_one)
        .unify()
        .or(history)
        .unify()
        .boxed()
}

/// One self-service route: path and method, then the handler.
fn me_route(
    hub: &Arc<ClientContext>,
    path: impl Filter<Extract = (String,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    method: impl Filter<Extract = (), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    handler: Handler,
) -> Route {
    let hub = hub.clone();
    path.and(method)
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::any().map(move || hub.clone()))
        .then(
            move |input: String,
                  query: String,
                  headers: HeaderMap,
                  peer: Option<PeerAddr>,
                  hub: Arc<ClientContext>| async move {
                let ip = request_ip(&headers, peer, &hub).to_string();
                let request = MeRequest {
                    query,
                    headers,
                    input,
                    ip,
                };
                answer(handler(hub, request).await)
            },
        )
        .boxed()
}

/// A matched route's answer is final: its errors become responses here.
fn answer(result: Result<warp::reply::Response, ApiError>) -> warp::reply::Response {
    result.unwrap_or_else(|error| error.to_response())
}

/// The user behind a request: a client token, or `?user=` in dev mode.
fn caller_of(hub: &ClientContext, query: &str, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = token_of(headers, query);
    let (user, name, org) = (
        query_param(query, "user"),
        query_param(query, "name"),
        query_param(query, "org"),
    );
    let dev = DevIdentity {
        user: user.as_deref(),
        name: name.as_deref(),
        org: org.as_deref(),
        ..DevIdentity::default()
    };
    Ok(hub.auth.client(token.as_deref(), &dev)?)
}

/// The session `X-Presence-Session` names, if it parses.
fn current_session(headers: &HeaderMap) -> Option<SessionId> {
    headers
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| SessionId::parse(text.trim()))
}

/// Sessions as a user may see them: everything but `meta`.
fn for_owner(mut session: SessionView) -> SessionView {
    session.meta = None;
    session
}

async fn live_sessions_of(
    hub: &ClientContext,
    user: &UserId,
) -> Result<Vec<SessionView>, ApiError> {
    let mut sessions = hub
        .presence
        .live_sessions(SessionFilter {
            user_id: Some(user.as_str().to_string()),
            ..SessionFilter::default()
        })
        .await?;
    sessions.sort_by(|a, b| {
        b.connected_at
            .cmp(&a.connected_at)
            .then(b.session_id.cmp(&a.session_id))
    });
    Ok(sessions)
}

/// `GET /api/v1/me/sessions`.
async fn list_own(
    hub: &ClientContext,
    request: &MeRequest,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, &request.query, &request.headers)?;
    let current = current_session(&request.headers);
    let sessions: Vec<OwnSession> = live_sessions_of(hub, &caller.user_id)
        .await?
        .into_iter()
        .map(|session| OwnSession {
            current: Some(session.session_id) == current,
            session: for_owner(session),
        })
        .collect();
    Ok(warp::reply::json(&json!({ "sessions": sessions })).into_response())
}

/// `DELETE /api/v1/me/sessions/{session_id}`: another user's id is 404.
async fn end_own(
    hub: &ClientContext,
    request: &MeRequest,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, &request.query, &request.headers)?;
    let not_found = || ApiError::NotFound("no such live session of yours".into());
    let id = SessionId::parse(&request.input).ok_or_else(not_found)?;
    let owned = hub
        .presence
        .live_session(id)
        .await?
        .is_some_and(|session| session.user_id == caller.user_id);
    if !owned || !hub.presence.terminate(id, TerminateReason::User).await? {
        return Err(not_found());
    }
    audit_end_by_user(hub, &caller, &request.ip, id);
    Ok(warp::reply::json(&json!({"terminated": true})).into_response())
}

/// `POST /api/v1/me/sessions/revoke-others`: every live session of the
/// caller but the current one, each ended as `DELETE` ends one.
async fn revoke_others_of(
    hub: &ClientContext,
    request: &MeRequest,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, &request.query, &request.headers)?;
    let current = current_session(&request.headers);
    let mut terminated = 0_usize;
    for session in live_sessions_of(hub, &caller.user_id).await? {
        if Some(session.session_id) == current {
            continue;
        }
        if hub
            .presence
            .terminate(session.session_id, TerminateReason::User)
            .await?
        {
            terminated += 1;
            audit_end_by_user(hub, &caller, &request.ip, session.session_id);
        }
    }
    Ok(warp::reply::json(&json!({ "terminated": terminated })).into_response())
}

/// Records `session.end_by_user` and logs it.
fn audit_end_by_user(hub: &ClientContext, caller: &Principal, ip: &str, session: SessionId) {
    tracing::info!(session_id = %session, user_id = %caller.user_id, "session ended by its user");
    let actor = Caller {
        user_id: caller.user_id.to_string(),
        role: match caller.role {
            Role::Admin => "admin",
            Role::Client => "client",
        },
        ip: ip.to_string(),
    };
    let target = AuditTarget {
        user_id: Some(caller.user_id.to_string()),
        session_id: Some(session.to_string()),
    };
    hub.auditor
        .action(AuditAction::SessionEndByUser, &actor, target, None, "ok");
}

/// `GET /api/v1/me/history`: the caller's ended sessions, newest first.
async fn own_history(
    hub: &ClientContext,
    request: &MeRequest,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, &request.query, &request.headers)?;
    let pairs = parse_pairs(&request.query)?;
    let paging = Paging::parse(&pairs)?;
    let filter = SessionFilter {
        user_id: Some(caller.user_id.as_str().to_string()),
        ..SessionFilter::default()
    };
    let page = hub.history.find(filter, paging.end()).await?;
    let sessions = paging
        .slice(page.sessions)
        .into_iter()
        .map(for_owner)
        .collect();
    Ok(warp::reply::json(&OwnHistory {
        sessions,
        total: page.total,
        page: paging.page,
        page_size: paging.page_size,
    })
    .into_response())
}
