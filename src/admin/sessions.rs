//! Owns `/api/v1/sessions`: the list (live, ended or all, newest first, with
//! filters and pages), one session live or from history, and terminating a
//! session wherever it is held.

use serde::Serialize;
use serde_json::json;
use warp::reply::Reply;

use super::query::{Paging, SessionScope, parse_pairs, session_filter};
use super::{AdminContext, audit_outcome};
use crate::audit::Caller;
use crate::history::SessionFilter;
use crate::http::error::ApiError;
use crate::model::{AuditAction, AuditTarget};
use crate::model::{SessionId, SessionView};
use crate::presence::TerminateReason;

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
    total: usize,
    page: usize,
    page_size: usize,
}

/// Newest `connected_at` first; ties broken by id so pages are stable.
pub fn newest_first(a: &SessionView, b: &SessionView) -> std::cmp::Ordering {
    b.connected_at
        .cmp(&a.connected_at)
        .then(b.session_id.cmp(&a.session_id))
}

/// Every live session matching `filter`, newest first.
pub async fn live_sessions(
    hub: &AdminContext,
    filter: SessionFilter,
) -> Result<Vec<SessionView>, ApiError> {
    let mut sessions = hub.presence.live_sessions(filter).await?;
    sessions.sort_by(newest_first);
    Ok(sessions)
}

/// `GET /api/v1/sessions`.
pub async fn list_sessions(
    hub: &AdminContext,
    query: &str,
) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let scope = SessionScope::parse(&pairs)?;
    let filter = session_filter(&pairs)?;
    let paging = Paging::parse(&pairs)?;
    let (mut sessions, mut total) = (Vec::new(), 0);
    if scope != SessionScope::Ended {
        let live = live_sessions(hub, filter.clone()).await?;
        total += live.len();
        sessions.extend(live.into_iter().take(paging.end()));
    }
    if scope != SessionScope::Live {
        let ended = hub.history.find(filter, paging.end()).await?;
        total += ended.total;
        sessions.extend(ended.sessions);
    }
    sessions.sort_by(newest_first);
    Ok(warp::reply::json(&SessionList {
        sessions: paging.slice(sessions),
        total,
        page: paging.page,
        page_size: paging.page_size,
    })
    .into_response())
}

/// `GET /api/v1/sessions/{session_id}`: live, else from history, else 404.
pub async fn get_session(
    hub: &AdminContext,
    session_id: &str,
) -> Result<warp::reply::Response, ApiError> {
    let id =
        SessionId::parse(session_id).ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    let live = hub.presence.live_session(id).await?;
    let session = match live {
        Some(session) => Some(session),
        None => hub.history.get(id).await?,
    };
    let session = session.ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    Ok(warp::reply::json(&session).into_response())
}

/// `GET /api/v1/sessions/{session_id}/timeline`: the live session's
/// timeline, else the one recorded with the ended session, else 404.
pub async fn get_timeline(
    hub: &AdminContext,
    session_id: &str,
) -> Result<warp::reply::Response, ApiError> {
    let id =
        SessionId::parse(session_id).ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    let timeline = match hub.presence.live_timeline(id).await? {
        Some(timeline) => Some(timeline),
        None => hub.history.timeline(id).await?,
    };
    let timeline = timeline.ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    Ok(warp::reply::json(&serde_json::json!({
        "session_id": id,
        "truncated": timeline.truncated,
        "entries": timeline.entries,
    }))
    .into_response())
}

/// `DELETE /api/v1/sessions/{session_id}`: the client sees `terminated`
/// (reason `admin`) and close 4003.
pub async fn terminate_session(
    hub: &AdminContext,
    session_id: &str,
    caller: &Caller,
) -> Result<warp::reply::Response, ApiError> {
    let not_live = || ApiError::NotFound("no such live session".into());
    let outcome = match SessionId::parse(session_id) {
        None => Err(not_live()),
        Some(id) => match hub.presence.terminate(id, TerminateReason::Admin).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_live()),
            Err(stopped) => Err(ApiError::from(stopped)),
        },
    };
    let target = AuditTarget {
        user_id: None,
        session_id: Some(session_id.to_string()),
    };
    audit_outcome(
        hub,
        AuditAction::SessionTerminate,
        caller,
        target,
        None,
        &outcome,
    );
    outcome?;
    tracing::info!(session_id, admin = %caller.user_id, "session terminated");
    Ok(warp::reply::json(&json!({"terminated": true})).into_response())
}
