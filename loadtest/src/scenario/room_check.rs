//! Owns the end-of-run check of the `rooms` scenario: every watcher's
//! members must equal what the hub answers on `GET /api/v1/rooms/{room}`
//! (on `--admin-url`, else `--url`).
//!
//! A room that differs is fetched and compared once more a second later, so
//! only a difference that stays counts (`room_mismatches`, one per watcher).
//! A 429 is waited out as its `Retry-After` says, within a bound.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::room_view::{RoomDetail, View};
use super::rooms::{self, ROOM_MISMATCHES, Shared};
use crate::failure::Failure;
use crate::worker::Ctx;

/// Bound on one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before a differing room is compared again.
const RECHECK_AFTER: Duration = Duration::from_secs(1);
/// Requests per room when the hub keeps answering 429.
const ATTEMPTS: u32 = 10;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Compares every joined view of this worker with the hub's rooms.
pub async fn verify(ctx: &Ctx, shared: &Shared) {
    let Ok(http) = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() else {
        ctx.stats.fail(&Failure::RoomCheckIo);
        return;
    };
    let by_room = watchers_by_room(ctx, shared);
    let mut suspects = Vec::new();
    for (room, locals) in &by_room {
        if mismatched(ctx, shared, &http, *room, locals).await > 0 {
            suspects.push(*room);
        }
    }
    if suspects.is_empty()
        || !ctx
            .sleep_until(tokio::time::Instant::now() + RECHECK_AFTER)
            .await
    {
        return;
    }
    for room in suspects {
        let locals = by_room.get(&room).map_or(&[][..], Vec::as_slice);
        let n = mismatched(ctx, shared, &http, room, locals).await;
        ctx.stats.count(ROOM_MISMATCHES, n);
    }
}

/// This worker's members that joined, by room.
fn watchers_by_room(ctx: &Ctx, shared: &Shared) -> BTreeMap<u64, Vec<u64>> {
    let mut by_room: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for local in 0..ctx.plan.clients {
        if shared.view(local).is_some_and(|v| v.joined()) {
            let room = (ctx.plan.first_client + local) % shared.shape.rooms;
            by_room.entry(room).or_default().push(local);
        }
    }
    by_room
}

/// How many of `locals` see other members than the hub (0 when the hub
/// could not be asked: that is counted as an error instead).
async fn mismatched(
    ctx: &Ctx,
    shared: &Shared,
    http: &reqwest::Client,
    room: u64,
    locals: &[u64],
) -> u64 {
    let Some(hub) = fetch(ctx, shared, http, room).await else {
        return 0;
    };
    locals
        .iter()
        .filter(|local| shared.view(**local).is_some_and(|v| !v.same_members(&hub)))
        .count() as u64
}

/// The hub's members of `room` as a view; `None` after counting a failure.
async fn fetch(ctx: &Ctx, shared: &Shared, http: &reqwest::Client, room: u64) -> Option<View> {
    let name = rooms::room_name(&ctx.plan, room);
    let url = ctx
        .plan
        .target
        .admin
        .http_url(&format!("/api/v1/rooms/{}", percent_encode(&name)), "");
    let bearer = ctx.admin_token().ok().flatten();
    let mut view = View::new(rooms::layout(&ctx.plan, shared.shape, room));
    for _ in 0..ATTEMPTS {
        let mut request = http.get(&url);
        if let Some(token) = &bearer {
            request = request.bearer_auth(token);
        }
        let Ok(response) = request.send().await else {
            ctx.stats.fail(&Failure::RoomCheckIo);
            return None;
        };
        match response.status().as_u16() {
            200 => {
                let body = response.bytes().await.ok()?;
                let Ok(detail) = serde_json::from_slice::<RoomDetail<'_>>(&body) else {
                    ctx.stats.fail(&Failure::RoomCheckIo);
                    return None;
                };
                view.load(&detail.members);
                return Some(view);
            }
            404 => return Some(view),
            429 => tokio::time::sleep(retry_after(&response)).await,
            status => {
                ctx.stats.fail(&Failure::RoomCheckStatus(status));
                return None;
            }
        }
    }
    ctx.stats.fail(&Failure::RoomCheckStatus(429));
    None
}

/// The `Retry-After` of a 429, bounded.
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_millis(200), Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

/// Percent-encodes a path segment (`/` as `%2F`), keeping unreserved bytes.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_encoded_as_one_segment() {
        assert_eq!(percent_encode("lt1/room-0"), "lt1%2Froom-0");
        assert_eq!(percent_encode("org:a@b"), "org%3Aa%40b");
    }
}
