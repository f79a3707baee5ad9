//! Owns `/api/v1/users`: list with filters and pages, one user with live
//! sessions (or offline from history), and revoking every session of a user.

use serde::Serialize;
use serde_json::json;
use warp::reply::Reply;

use super::query::{Paging, UserStatusFilter, parse_pairs, text};
use super::{AdminContext, audit_outcome};
use crate::audit::Caller;
use crate::http::error::ApiError;
use crate::model::{AuditAction, AuditTarget};
use crate::model::{UserDetail, UserId, UserStatus, UserView};
use crate::presence::TerminateReason;
use crate::revocation::Revoked;

#[derive(Serialize)]
struct UserList {
    users: Vec<UserView>,
    total: usize,
    page: usize,
    page_size: usize,
}

/// `GET /api/v1/users`: sorted by user id.
pub async fn list_users(
    hub: &AdminContext,
    query: &str,
) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let status = UserStatusFilter::parse(&pairs)?;
    let org = text(&pairs, "org");
    let (email, team) = (text(&pairs, "email"), text(&pairs, "team"));
    let q = text(&pairs, "q").map(|q| q.to_lowercase());
    let paging = Paging::parse(&pairs)?;
    let mut users = hub
        .presence
        .online_users_where(move |user| {
            status.is_none_or(|s| s.admits(user.status))
                && (org.is_none() || user.org == org)
                && (email.is_none() || user.email == email)
                && (team.is_none() || user.team == team)
                && q.as_deref().is_none_or(|q| user_matches(user, q))
        })
        .await?;
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let total = users.len();
    Ok(warp::reply::json(&UserList {
        users: paging.slice(users),
        total,
        page: paging.page,
        page_size: paging.page_size,
    })
    .into_response())
}

fn user_matches(user: &UserView, q: &str) -> bool {
    user.user_id.as_str().to_lowercase().contains(q)
        || user
            .name
            .as_deref()
            .is_some_and(|n| n.to_lowercase().contains(q))
        || [&user.email, &user.team]
            .into_iter()
            .any(|v| v.as_deref().is_some_and(|v| v.to_lowercase().contains(q)))
}

/// `GET /api/v1/users/{user_id}`.
pub async fn get_user(
    hub: &AdminContext,
    user_id: &str,
) -> Result<warp::reply::Response, ApiError> {
    let user = UserId::parse(user_id).map_err(|_| ApiError::NotFound("no such user".into()))?;
    let live = hub.presence.user_detail(user.clone()).await?;
    if let Some(detail) = live {
        return Ok(warp::reply::json(&detail).into_response());
    }
    let last = hub.history.last_of_user(user.clone()).await?;
    let last = last.ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    let offline = UserView {
        user_id: user,
        name: last.name,
        org: last.org,
        email: last.email,
        team: last.team,
        status: UserStatus::Offline,
        manual: None,
        session_count: 0,
        online_since: None,
        last_activity: Some(last.last_activity),
    };
    Ok(warp::reply::json(&UserDetail {
        user: offline,
        sessions: Vec::new(),
    })
    .into_response())
}

/// `DELETE /api/v1/users/{user_id}/sessions`: cause `revoked`.
pub async fn revoke_user(
    hub: &AdminContext,
    user_id: &str,
    caller: &Caller,
) -> Result<warp::reply::Response, ApiError> {
    let outcome = match UserId::parse(user_id) {
        Ok(user) => {
            // Denied first, so the user's tokens cannot open a session
            // while the live ones are being ended.
            let deny = hub
                .gate
                .auth
                .revocations()
                .revoke(&user, chrono::Utc::now().timestamp());
            tracing::info!(
                user_id,
                revoked_at = deny.revoked_at,
                denied_until = deny.until,
                "tokens denied"
            );
            let kept = Revoked {
                user_id: user.clone(),
                deny,
            };
            if let Err(err) = hub.history.save_revoked(kept).await {
                // Still denied here (and on the other nodes); only a restart
                // of a single node would forget it.
                tracing::warn!(user_id, error = %err, "revocation not kept in the records store");
            }
            hub.presence
                .terminate_user(user, TerminateReason::Revoked)
                .await
                .map_err(ApiError::from)
        }
        Err(_) => Ok(0),
    };
    let target = AuditTarget {
        user_id: Some(user_id.to_string()),
        session_id: None,
    };
    audit_outcome(hub, AuditAction::UserRevoke, caller, target, None, &outcome);
    let terminated = outcome?;
    tracing::info!(user_id, terminated, admin = %caller.user_id, "user revoked");
    Ok(warp::reply::json(&json!({"terminated": terminated})).into_response())
}
