//! Owns `/api/v1/rooms` (contract v1.1 §8): the list of rooms with their
//! sizes (most members first; admin only), and one room's members, which a
//! client token that may watch the room can read too (server-side
//! rendering of "who is here"). Room names in the path are percent-encoded
//! (`/` as `%2F`).

use serde::Serialize;
use warp::Filter;
use warp::http::HeaderMap;
use warp::reply::Reply;

use std::sync::Arc;

use super::AdminContext;
use super::query::{Paging, parse_pairs, text};
use crate::auth::{AuthError, DevIdentity};
use crate::http::auth::{peer_key, raw_query, token_of};
use crate::http::error::ApiError;
use crate::http::upgrade::PeerAddr;
use crate::model::{Member, RoomName, RoomSummary};

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<RoomSummary>,
    total: usize,
    page: usize,
    page_size: usize,
}

#[derive(Serialize)]
struct RoomDetail {
    room: RoomName,
    members: Vec<Member>,
}

/// `GET /api/v1/rooms`: most members first, then by name; `q` is a
/// case-insensitive substring of the name.
pub async fn list_rooms(
    hub: &AdminContext,
    query: &str,
) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let q = text(&pairs, "q").map(|q| q.to_lowercase());
    let paging = Paging::parse(&pairs)?;
    let mut rooms = hub.presence.rooms().await?;
    if let Some(q) = &q {
        rooms.retain(|room| room.room.as_str().to_lowercase().contains(q.as_str()));
    }
    rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.room.cmp(&b.room)));
    let total = rooms.len();
    Ok(warp::reply::json(&RoomList {
        rooms: paging.slice(rooms),
        total,
        page: paging.page,
        page_size: paging.page_size,
    })
    .into_response())
}

/// `GET /api/v1/rooms/{room}`: 404 when the room is empty or the name is
/// not a room name.
pub async fn get_room(
    hub: &AdminContext,
    room: RoomName,
) -> Result<warp::reply::Response, ApiError> {
    let members = hub.presence.room_members(room.clone()).await?;
    if members.is_empty() {
        return Err(no_such_room());
    }
    Ok(warp::reply::json(&RoomDetail { room, members }).into_response())
}

fn no_such_room() -> ApiError {
    ApiError::NotFound("no such room".into())
}

/// Who may read one room: an admin, or a client whose token may watch it
/// (401 without a valid token, 403 when the token does not allow the room),
/// under the admin API's rate limit.
fn check_reader(
    hub: &AdminContext,
    headers: &HeaderMap,
    query: &str,
    peer: Option<PeerAddr>,
    room: &RoomName,
) -> Result<(), ApiError> {
    let token = token_of(headers, query);
    let key = match &token {
        Some(token) if !hub.gate.auth.is_dev_mode() => token.clone(),
        _ => peer_key(peer),
    };
    match hub.gate.auth.admin(token.as_deref()) {
        Ok(_) => {}
        Err(AuthError::NotAdmin) => {
            let client = hub
                .gate
                .auth
                .client(token.as_deref(), &DevIdentity::default())?;
            if !client.may_enter(room) {
                return Err(ApiError::Forbidden(format!(
                    "this token does not allow room {room}"
                )));
            }
        }
        Err(error) => return Err(error.into()),
    }
    hub.gate.limiter.check(&key)
}

/// The `GET /api/v1/rooms/{room}` route.
pub fn room_route(hub: Arc<AdminContext>) -> super::Route {
    warp::path!("api" / "v1" / "rooms" / ..)
        .and(super::segment())
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(warp::ext::optional::<PeerAddr>())
        .and(super::with_hub(hub))
        .and_then(
            |name: String,
             headers: HeaderMap,
             query: String,
             peer: Option<PeerAddr>,
             hub: Arc<AdminContext>| async move {
                super::reply(read_room(&hub, &name, &headers, &query, peer).await)
            },
        )
        .boxed()
}

async fn read_room(
    hub: &AdminContext,
    name: &str,
    headers: &HeaderMap,
    query: &str,
    peer: Option<PeerAddr>,
) -> Result<warp::reply::Response, ApiError> {
    let Ok(room) = RoomName::parse(name) else {
        // Authenticate first, so an unknown name tells an anonymous caller
        // no more than a known one.
        let placeholder = RoomName::parse("-").map_err(|_| ApiError::Internal)?;
        return match check_reader(hub, headers, query, peer, &placeholder) {
            Ok(()) | Err(ApiError::Forbidden(_)) => Err(no_such_room()),
            Err(error) => Err(error),
        };
    };
    check_reader(hub, headers, query, peer, &room)?;
    get_room(hub, room).await
}
