//! Owns HTTP presence (`POST /api/v1/heartbeat`) for clients that cannot
//! keep a socket: the first call opens a session, later calls refresh it
//! (and mark activity with `active: true`), `ended: true` ends it. A session
//! id answers only to the user who created it; anyone else gets 404, as
//! does an ended or expired id. The body must be `application/json` and
//! arrive within `PRESENCE_HANDSHAKE_TIMEOUT` (`http::body`).

use std::sync::Arc;

use serde_json::{Map, Value, json};
use warp::Filter;
use warp::http::HeaderMap;

use super::ClientContext;
use super::protocol::{FrameError, optional_string, parse_app, parse_device, parse_meta};
use super::{clip, request_ip, session_meta_from};
use crate::auth::Principal;
use crate::http::auth::raw_query;
use crate::http::body::json_body;
use crate::http::error::ApiError;
use crate::http::upgrade::PeerAddr;
use crate::model::MetaUpdate;
use crate::model::{SessionId, SessionStatus, Transport};
use crate::presence::{HeartbeatOutcome, HeartbeatRequest, NewSession};

/// A parsed heartbeat body.
#[derive(Debug, Default, PartialEq)]
struct Heartbeat {
    session_id: Option<SessionId>,
    active: bool,
    ended: bool,
    update: MetaUpdate,
}

/// `POST /api/v1/heartbeat`.
pub fn routes(
    hub: Arc<ClientContext>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "v1" / "heartbeat")
        .and(warp::post())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        // The limit of a WebSocket message: the same fields, the same cap.
        .and(json_body(
            u64::try_from(hub.connections.limits.max_message_bytes).unwrap_or(u64::MAX),
            hub.admission.handshake_timeout(),
        ))
        .and(warp::any().map(move || hub.clone()))
        .and_then(
            |query: String,
             headers: HeaderMap,
             peer: Option<PeerAddr>,
             body: bytes::Bytes,
             hub: Arc<ClientContext>| async move {
                Ok::<_, warp::Rejection>(
                    heartbeat(&query, &headers, peer, &body, &hub)
                        .await
                        .unwrap_or_else(|error| error.to_response()),
                )
            },
        )
}

async fn heartbeat(
    query: &str,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    body: &[u8],
    hub: &ClientContext,
) -> Result<warp::reply::Response, ApiError> {
    let principal = authenticate(query, headers, hub)?;
    let beat = parse_heartbeat(body)?;
    let ttl_ms = u64::try_from(hub.http_session_ttl.as_millis()).unwrap_or(u64::MAX);
    let (session_id, status) = match beat.session_id {
        None if beat.ended => {
            return Err(ApiError::bad_parameter(
                "session_id",
                "is required to end a session",
            ));
        }
        None => open_session(principal, beat.update, headers, peer, hub).await?,
        Some(id) => {
            let expires_at = principal.expires_at;
            let outcome = hub
                .presence
                .heartbeat(HeartbeatRequest {
                    id,
                    user: principal.user_id,
                    active: beat.active,
                    end: beat.ended,
                    update: beat.update,
                    expires_at,
                })
                .await?;
            match outcome {
                HeartbeatOutcome::Alive(status) => (id, status),
                HeartbeatOutcome::Ended => (id, SessionStatus::Ended),
                HeartbeatOutcome::NotFound => {
                    return Err(ApiError::NotFound(
                        "no live session with that id for this user; start a new one".into(),
                    ));
                }
            }
        }
    };
    let ttl_ms = if status == SessionStatus::Ended {
        0
    } else {
        ttl_ms
    };
    let answer = json!({"session_id": session_id, "status": status, "ttl_ms": ttl_ms}).to_string();
    if status != SessionStatus::Ended {
        hub.presence
            .count_http_traffic(session_id, body.len(), answer.len())
            .await?;
    }
    let mut response = warp::reply::Response::new(answer.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn authenticate(
    query: &str,
    headers: &HeaderMap,
    hub: &ClientContext,
) -> Result<Principal, ApiError> {
    super::rest_principal(&hub.auth, query, headers)
}

async fn open_session(
    principal: Principal,
    update: MetaUpdate,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    hub: &ClientContext,
) -> Result<(SessionId, SessionStatus), ApiError> {
    let user_agent = headers
        .get(warp::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ip = request_ip(headers, peer, hub);
    hub.creation.admit(principal.user_id.as_str(), ip)?;
    let mut meta = session_meta_from(ip, user_agent, None, None);
    meta.location = hub.geoip.locate(ip);
    meta.merge(update);
    let session = NewSession {
        id: SessionId::generate(),
        user_id: principal.user_id,
        name: principal.name.map(clip),
        org: principal.org.map(clip),
        email: principal.email.map(clip),
        team: principal.team.map(clip),
        node_id: hub.connections.node_id.clone(),
        transport: Transport::Http,
        meta,
        expires_at: principal.expires_at,
        rooms: principal.rooms,
    };
    let id = session.id;
    hub.presence.open(Box::new(session), None).await?;
    hub.connections.metrics.ops.sessions_started.inc();
    Ok((id, SessionStatus::Active))
}

fn parse_heartbeat(body: &[u8]) -> Result<Heartbeat, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("body must be a JSON object: {err}")))?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    let session_id = match map.remove("session_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            SessionId::parse(&text)
                .ok_or_else(|| ApiError::bad_parameter("session_id", "not a session id"))?,
        ),
        Some(_) => return Err(ApiError::bad_parameter("session_id", "must be a string")),
    };
    Ok(Heartbeat {
        session_id,
        active: flag(&mut map, "active")?,
        ended: flag(&mut map, "ended")?,
        update: MetaUpdate {
            app: parse_app(map.remove("app")).map_err(|e| field_error("app", &e))?,
            device: parse_device(map.remove("device")).map_err(|e| field_error("device", &e))?,
            page: optional_string(map.remove("page"), "page")
                .map_err(|e| field_error("page", &e))?,
            meta: parse_meta(map.remove("meta")).map_err(|e| field_error("meta", &e))?,
        },
    })
}

fn flag(map: &mut Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(value),
        Some(_) => Err(ApiError::bad_parameter(name, "must be true or false")),
    }
}

fn field_error(name: &str, error: &FrameError) -> ApiError {
    ApiError::bad_parameter(name, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_heartbeat_has_no_session_id() {
        let beat = parse_heartbeat(br#"{"active":true,"page":"/x"}"#).unwrap();
        assert_eq!(beat.session_id, None);
        assert!(beat.active);
        assert_eq!(beat.update.page.as_deref(), Some("/x"));
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let err = parse_heartbeat(br#"{"active":"yes"}"#).unwrap_err();
        assert!(err.to_string().contains("active"), "{err}");
        let err = parse_heartbeat(br#"{"session_id":"nope"}"#).unwrap_err();
        assert!(err.to_string().contains("session_id"), "{err}");
        assert_eq!(parse_heartbeat(b"[1]").unwrap_err().status(), 400);
        assert_eq!(parse_heartbeat(b"not json").unwrap_err().status(), 400);
    }
}
