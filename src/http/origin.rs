//! Owns which browser pages may open WebSockets (`/ws` and `/admin/ws`),
//! by their `Origin`, and which `Host` names a dev-mode hub answers to.
//!
//! - `PRESENCE_ALLOWED_ORIGINS` set: only the listed origins (403 for
//!   others).
//! - Dev mode without a list: only loopback origins
//!   (`http(s)://127.0.0.1[:port]`, any `127.x.y.z`, `localhost`,
//!   `*.localhost`, `[::1]`), because a dev hub's admin stream is open to
//!   whoever reaches it. With `PRESENCE_INSECURE_DEV` an origin equal to the
//!   request's own `Host` (the panel served by this hub) passes too.
//! - JWT mode without a list: any origin (contract v1 section 2); the token
//!   is the check.
//!
//! A request without `Origin` is not from a browser page and always passes;
//! `Origin: null` (sandboxed frames, `file:` pages) passes only a list that
//! names `null`.
//!
//! In dev mode, unless `PRESENCE_INSECURE_DEV` is on, a request whose
//! `Host` is not a loopback name or address is refused on every route: a
//! page on `attacker.example` that rebinds its name to 127.0.0.1 (DNS
//! rebinding) still sends `Host: attacker.example`.

use std::net::IpAddr;

use warp::http::HeaderMap;

use super::error::ApiError;

/// Which `Origin`s may open a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Any origin (JWT mode without `PRESENCE_ALLOWED_ORIGINS`).
    Any,
    /// Only these (normalised: lowercase, no trailing `/`); `*` allows any.
    Listed(Vec<String>),
    /// Dev mode without a list: loopback origins, plus the request's own
    /// host when `same_host` (`PRESENCE_INSECURE_DEV`).
    Loopback {
        /// An origin equal to the request's `Host` passes too.
        same_host: bool,
    },
}

impl OriginPolicy {
    /// The policy for a configuration.
    pub fn new(allowed: Option<Vec<String>>, dev_mode: bool, insecure_dev: bool) -> Self {
        match allowed {
            Some(list) => OriginPolicy::Listed(list),
            None if dev_mode => OriginPolicy::Loopback {
                same_host: insecure_dev,
            },
            None => OriginPolicy::Any,
        }
    }
}

/// 403 when `Origin` is set and the policy does not allow it.
pub fn check_origin(headers: &HeaderMap, policy: &OriginPolicy) -> Result<(), ApiError> {
    let Some(origin) = headers.get(warp::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let allowed = match policy {
        OriginPolicy::Any => true,
        OriginPolicy::Listed(list) => list
            .iter()
            .any(|candidate| *candidate == origin || candidate == "*"),
        OriginPolicy::Loopback { same_host } => {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            authority.is_some_and(|authority| {
                is_loopback_authority(authority)
                    || (*same_host && host_of(headers).is_some_and(|h| h == authority))
            })
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin {origin:?} is not allowed"
        )))
    }
}

/// 403 when a dev-mode request names a `Host` that is not loopback. A
/// request without `Host` (HTTP/1.0, not a browser) passes.
pub fn check_loopback_host(headers: &HeaderMap) -> Result<(), ApiError> {
    match host_of(headers) {
        Some(host) if !is_loopback_authority(&host) => Err(ApiError::Forbidden(format!(
            "host {host:?} is not a loopback name; a dev-mode hub answers only to 127.0.0.1, localhost and [::1] (set PRESENCE_JWT_SECRET, PRESENCE_JWT_PUBLIC_KEY or PRESENCE_JWKS_URL, or PRESENCE_INSECURE_DEV=1)"
        ))),
        _ => Ok(()),
    }
}

fn host_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(warp::http::header::HOST)
        .map(|host| host.to_str().unwrap_or("?").trim().to_ascii_lowercase())
}

/// `host[:port]` naming this machine: a loopback address, `localhost` or
/// a name under `.localhost` (RFC 6761: never sent to DNS).
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || is_port(port) => v6,
            _ => return false,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return false,
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .unwrap_or(text)
        .parse::<u16>()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("origin", origin.parse().unwrap());
        headers
    }

    #[test]
    fn listed_origins_pass_and_others_get_403() {
        let allowed = OriginPolicy::Listed(vec!["https://app.example".to_string()]);
        assert!(
            check_origin(&HeaderMap::new(), &allowed).is_ok(),
            "no Origin: not a browser"
        );
        assert!(check_origin(&with_origin("https://APP.example"), &allowed).is_ok());
        let evil = with_origin("https://evil.example");
        assert_eq!(check_origin(&evil, &allowed).unwrap_err().status(), 403);
        assert!(check_origin(&evil, &OriginPolicy::Any).is_ok(), "no list");
    }

    #[test]
    fn dev_mode_allows_only_loopback_origins() {
        let dev = OriginPolicy::Loopback { same_host: false };
        for good in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1",
            "https://127.1.2.3:9",
            "http://localhost:3000",
            "http://app.localhost",
            "http://[::1]:8080",
        ] {
            assert!(check_origin(&with_origin(good), &dev).is_ok(), "{good}");
        }
        for bad in [
            "null",
            "https://evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:80",
            "file://",
            "chrome-extension://abc",
            "http://[::2]:80",
            "http://127.0.0.1:99999",
        ] {
            assert!(check_origin(&with_origin(bad), &dev).is_err(), "{bad}");
        }
    }

    #[test]
    fn insecure_dev_also_allows_the_hubs_own_host() {
        let mut headers = with_origin("http://192.168.1.5:8080");
        headers.insert("host", "192.168.1.5:8080".parse().unwrap());
        assert!(check_origin(&headers, &OriginPolicy::Loopback { same_host: true }).is_ok());
        assert!(check_origin(&headers, &OriginPolicy::Loopback { same_host: false }).is_err());
    }

    #[test]
    fn only_loopback_hosts_pass_the_dev_host_check() {
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("host", value.parse().unwrap());
            check_loopback_host(&headers).is_ok()
        };
        assert!(host("127.0.0.1:8080"));
        assert!(host("localhost"));
        assert!(host("LOCALHOST:1"));
        assert!(host("[::1]:8080"));
        assert!(!host("attacker.example"));
        assert!(!host("attacker.example:8080"));
        assert!(!host("10.0.0.1:8080"));
        assert!(check_loopback_host(&HeaderMap::new()).is_ok());
    }
}
