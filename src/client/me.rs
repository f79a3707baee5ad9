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
use crate::admin::query::{Paging, parse_pairs};
use crate::auth::{DevIdentity, Principal};
use crate::http::auth::{query_param, raw_query, token_of};
use crate::http::error::ApiError;
use crate::model::{SessionFilter, SessionId, SessionView, UserId};
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

/// A self-service handler: the hub, the raw query, the headers and the
/// route's path input (the session id, or empty).
type Handler = fn(
    Arc<ClientContext>,
    String,
    HeaderMap,
    String,
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
            |hub, query, headers, _| {
                Box::pin(async move { list_own(&hub, &query, &headers).await })
            },
        ),
        me_route(
            hub,
            me().and(warp::path!("sessions" / "revoke-others"))
                .and(no_input()),
            warp::post(),
            |hub, query, headers, _| {
                Box::pin(async move { revoke_others_of(&hub, &query, &headers).await })
            },
        ),
        me_route(
            hub,
            me().and(warp::path!("sessions" / String)),
            warp::delete(),
            |hub, query, headers, id| {
                Box::pin(async move { end_own(&hub, &query, &headers, &id).await })
            },
        ),
        me_route(
            hub,
            me().and(warp::path!("history")).and(no_input()),
            warp::get(),
            |hub, query, headers, _| {
                Box::pin(async move { own_history(&hub, &query, &headers).await })
            },
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
        .and(warp::any().map(move || hub.clone()))
        .then(
            move |input: String, query: String, headers: HeaderMap, hub: Arc<ClientContext>| async move {
                answer(handler(hub, query, headers, input).await)
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
    query: &str,
    headers: &HeaderMap,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, query, headers)?;
    let current = current_session(headers);
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
    query: &str,
    headers: &HeaderMap,
    session_id: &str,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, query, headers)?;
    let not_found = || ApiError::NotFound("no such live session of yours".into());
    let id = SessionId::parse(session_id).ok_or_else(not_found)?;
    let owned = hub
        .presence
        .live_session(id)
        .await?
        .is_some_and(|session| session.user_id == caller.user_id);
    if !owned || !hub.presence.terminate(id, TerminateReason::User).await? {
        return Err(not_found());
    }
    tracing::info!(session_id = %id, user_id = %caller.user_id, "session ended by its user");
    Ok(warp::reply::json(&json!({"terminated": true})).into_response())
}

/// `POST /api/v1/me/sessions/revoke-others`: every live session of the
/// caller but the current one, each ended as `DELETE` ends one.
async fn revoke_others_of(
    hub: &ClientContext,
    query: &str,
    headers: &HeaderMap,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, query, headers)?;
    let current = current_session(headers);
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
        }
    }
    tracing::info!(user_id = %caller.user_id, terminated, "other sessions ended by their user");
    Ok(warp::reply::json(&json!({ "terminated": terminated })).into_response())
}

/// `GET /api/v1/me/history`: the caller's ended sessions, newest first.
async fn own_history(
    hub: &ClientContext,
    query: &str,
    headers: &HeaderMap,
) -> Result<warp::reply::Response, ApiError> {
    let caller = caller_of(hub, query, headers)?;
    let pairs = parse_pairs(query)?;
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
