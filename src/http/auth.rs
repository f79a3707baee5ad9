//! Owns authentication at the HTTP edge: where a token is found, the admin
//! filters (401/403 before any handler or upgrade runs) and the admin API's
//! per-token rate limit (a `rate::KeyedRateLimiter`).
//!
//! WebSocket upgrades (`/ws`, `/admin/ws`) take `Authorization: Bearer` or,
//! because a browser's `WebSocket` cannot set headers, `?token=`. REST
//! routes take only the header: a token in a URL ends up in access logs,
//! proxies and browser history.

use std::net::IpAddr;

use warp::Filter;
use warp::http::HeaderMap;

use super::error::ApiError;
use super::rate::KeyedRateLimiter;
use super::upgrade::PeerAddr;
use crate::auth::{AuthError, Authenticator, Principal};

/// The token of a WebSocket upgrade: `Authorization: Bearer`, else `?token=`.
pub fn token_of(headers: &HeaderMap, query: &str) -> Option<String> {
    bearer_token(headers).or_else(|| query_param(query, "token"))
}

/// The token of a REST request: `Authorization: Bearer` only.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(warp::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        })
}

/// A REST route's auth failure; a missing token next to a `?token=` says
/// where the token belongs.
pub fn rest_auth_error(error: AuthError, query: &str) -> ApiError {
    if error == AuthError::Missing && query_param(query, "token").is_some() {
        return ApiError::Unauthorized(
            "missing token: REST routes take it as Authorization: Bearer; ?token= is only for WebSocket upgrades".into(),
        );
    }
    ApiError::from(error)
}

/// One parameter of a raw query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded_pairs(query)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
}

/// The raw query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// What the admin filter needs.
#[derive(Clone, Debug)]
pub struct AdminGate {
    /// Token checks.
    pub auth: Authenticator,
    /// Per-token rate limit.
    pub limiter: KeyedRateLimiter,
}

fn peer_ip(peer: Option<PeerAddr>) -> IpAddr {
    peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip())
}

/// The rate-limit key of a request without a usable token: its peer IP.
pub fn peer_key(peer: Option<PeerAddr>) -> String {
    peer_ip(peer).to_string()
}

/// An admin principal on a WebSocket upgrade (Bearer or `?token=`),
/// checked before the handler runs (401/403).
pub fn admin(
    gate: AdminGate,
) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned().and(raw_query()).and_then(
        move |headers: HeaderMap, query: String| {
            let gate = gate.clone();
            async move {
                let token = token_of(&headers, &query);
                gate.auth
                    .admin(token.as_deref())
                    .map_err(|err| warp::reject::custom(ApiError::from(err)))
            }
        },
    )
}

/// An admin principal on a REST route (Bearer only), checked before the
/// handler runs (401/403).
fn admin_rest(
    gate: AdminGate,
) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned().and(raw_query()).and_then(
        move |headers: HeaderMap, query: String| {
            let gate = gate.clone();
            async move {
                let token = bearer_token(&headers);
                gate.auth
                    .admin(token.as_deref())
                    .map_err(|err| warp::reject::custom(rest_auth_error(err, &query)))
            }
        },
    )
}

/// An admin principal on a rate-limited `/api/v1` route.
pub fn admin_api(
    gate: AdminGate,
) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    let limiter = gate.limiter.clone();
    let dev_mode = gate.auth.is_dev_mode();
    warp::header::headers_cloned()
        .and(warp::ext::optional::<PeerAddr>())
        .and(admin_rest(gate))
        .and_then(
            move |headers: HeaderMap, peer: Option<PeerAddr>, principal: Principal| {
                let limiter = limiter.clone();
                async move {
                    let key = match bearer_token(&headers) {
                        Some(token) if !dev_mode => token,
                        _ => peer_ip(peer).to_string(),
                    };
                    limiter.check(&key).map_err(warp::reject::custom)?;
                    Ok::<_, warp::Rejection>(principal)
                }
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_beats_the_query_token() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(token_of(&headers, "token=xyz").as_deref(), Some("abc"));
        assert_eq!(
            token_of(&HeaderMap::new(), "a=1&token=xyz").as_deref(),
            Some("xyz")
        );
        assert_eq!(token_of(&HeaderMap::new(), ""), None);
    }
}
