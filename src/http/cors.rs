//! Owns CORS for the routes a page on another origin may use: the client
//! file (`/presence-client.js`), `POST /api/v1/heartbeat` and
//! `/api/v1/me/*`, for the origins of `PRESENCE_CORS_ORIGINS`. Unset, no
//! CORS header is ever sent and `OPTIONS` is not answered. An origin not on
//! the list gets no CORS header, so the browser refuses the response. Pure:
//! the route tree calls it.

use warp::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use warp::http::{Method, StatusCode};

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE_S: &str = "600";

/// The CORS origins (`None`: CORS is off).
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    origins: Option<Vec<String>>,
}

impl CorsPolicy {
    /// A policy for these normalised origins (lowercase, no trailing `/`;
    /// `*` allows any).
    pub fn new(origins: Option<Vec<String>>) -> Self {
        Self { origins }
    }

    /// True when CORS is configured.
    pub fn is_enabled(&self) -> bool {
        self.origins.is_some()
    }

    /// True for the paths CORS applies to.
    pub fn covers(path: &str) -> bool {
        path == "/presence-client.js"
            || path == "/ws"
            || path == "/api/v1/heartbeat"
            || path == "/api/v1/me"
            || path.starts_with("/api/v1/me/")
    }

    /// The request's `Origin` when it is on the list.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origins = self.origins.as_ref()?;
        let origin = headers.get(ORIGIN)?;
        let text = origin
            .to_str()
            .ok()?
            .trim_end_matches('/')
            .to_ascii_lowercase();
        origins
            .iter()
            .any(|allowed| allowed == "*" || *allowed == text)
            .then(|| origin.clone())
    }

    /// The answer to a preflight (`OPTIONS` on a covered path), or `None`
    /// when the request is not one this policy answers.
    pub fn preflight(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<warp::reply::Response> {
        if !self.is_enabled() || method != Method::OPTIONS || !Self::covers(path) {
            return None;
        }
        let mut response = warp::reply::Response::new(Default::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(headers) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
            );
            out.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_S));
        }
        Some(response)
    }

    /// Adds the CORS headers to the answer of a covered request.
    pub fn decorate(&self, path: &str, headers: &HeaderMap, response: &mut warp::reply::Response) {
        if !self.is_enabled() || !Self::covers(path) {
            return;
        }
        let out = response.headers_mut();
        out.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(headers) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            ORIGIN,
            HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("x")),
        );
        headers
    }

    #[test]
    fn only_listed_origins_on_covered_paths_get_headers() {
        let policy = CorsPolicy::new(Some(vec!["https://app.example".into()]));
        let mut response = warp::reply::Response::new(Default::default());
        policy.decorate(
            "/api/v1/me/sessions",
            &with_origin("https://APP.example"),
            &mut response,
        );
        assert!(response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let mut response = warp::reply::Response::new(Default::default());
        policy.decorate(
            "/api/v1/me/sessions",
            &with_origin("https://evil.example"),
            &mut response,
        );
        assert!(!response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let mut response = warp::reply::Response::new(Default::default());
        policy.decorate(
            "/api/v1/users",
            &with_origin("https://app.example"),
            &mut response,
        );
        assert!(response.headers().is_empty());
        let off = CorsPolicy::new(None);
        assert!(
            off.preflight(
                &Method::OPTIONS,
                "/api/v1/heartbeat",
                &with_origin("https://app.example")
            )
            .is_none()
        );
    }
}
