//! Owns the JSON error every HTTP route returns, `{"error":{"code","message"}}`,
//! and the mapping of every warp rejection onto it. `Internal` is the only
//! 500; its details stay in the log.

use std::convert::Infallible;

use warp::http::StatusCode;
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

use crate::auth::AuthError;

/// Everything an HTTP route can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A parameter that does not parse or is out of range.
    #[error("invalid parameter {name:?}: {reason}")]
    BadParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A malformed request that is not about one parameter.
    #[error("{0}")]
    BadRequest(String),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right role, or a refused origin.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// The route exists with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body did not arrive within the deadline.
    #[error("the request body did not arrive within {}", humantime::format_duration(*after))]
    RequestTimeout {
        /// The deadline.
        after: std::time::Duration,
    },
    /// A JSON route got a body that is not declared `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// The body is over the limit.
    #[error(
        "request body too large (the limit is PRESENCE_MAX_MESSAGE_BYTES, 4096 bytes by default)"
    )]
    PayloadTooLarge,
    /// Over the rate limit; retry after this many seconds.
    #[error("rate limit exceeded")]
    RateLimited {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The hub is shutting down or cannot serve this now.
    #[error("{0}")]
    Unavailable(String),
    /// Admission control refused a connection (503 with `Retry-After`).
    #[error("{0}")]
    Overloaded(Overload),
    /// A fault in the hub.
    #[error("internal error")]
    Internal,
}

impl warp::reject::Reject for ApiError {}

/// Why admission control (contract v1.1 section 13) refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overload {
    /// `PRESENCE_MAX_CONNECTIONS` WebSockets are open on this node.
    #[error("this node holds its limit of {limit} WebSocket connections; retry later")]
    Connections {
        /// The limit.
        limit: usize,
    },
    /// `PRESENCE_MAX_CONNECTIONS_PER_IP` WebSockets are open from this IP.
    #[error(
        "this client IP holds its limit of {limit} WebSocket connections; close one or retry later"
    )]
    ConnectionsPerIp {
        /// The limit.
        limit: usize,
    },
    /// The process is near its file-descriptor limit.
    #[error("the hub is near its file-descriptor limit; retry later")]
    FileDescriptors,
}

impl Overload {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Overload::Connections { .. } => "connection_limit",
            Overload::ConnectionsPerIp { .. } => "ip_connection_limit",
            Overload::FileDescriptors => "fd_limit",
        }
    }
}

impl ApiError {
    /// A bad parameter, named.
    pub fn bad_parameter(name: &str, reason: impl Into<String>) -> Self {
        ApiError::BadParameter {
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadParameter { .. } => "bad_parameter",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Overloaded(overload) => overload.code(),
            ApiError::Internal => "internal",
        }
    }

    /// The JSON response.
    pub fn to_response(&self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        let retry_after_s = match self {
            ApiError::RateLimited { retry_after_s } => Some(*retry_after_s),
            ApiError::Overloaded(_) => Some(super::admission::RETRY_AFTER_S),
            _ => None,
        };
        if matches!(self, ApiError::RequestTimeout { .. }) {
            // The rest of the body is never read: the connection cannot be reused.
            response.headers_mut().insert(
                warp::http::header::CONNECTION,
                warp::http::HeaderValue::from_static("close"),
            );
        }
        // Never `Retry-After: 0`: a client told 0 retries at once, in a loop.
        if let Some(seconds) = retry_after_s {
            response
                .headers_mut()
                .insert("retry-after", warp::http::HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::NotAdmin => ApiError::Forbidden(error.to_string()),
            AuthError::BadDevUser => ApiError::bad_parameter("user", "must be 1 to 128 bytes"),
            AuthError::Missing | AuthError::Invalid | AuthError::Expired | AuthError::Revoked => {
                ApiError::Unauthorized(error.to_string())
            }
        }
    }
}

impl From<crate::history::HistoryError> for ApiError {
    /// The history store is down (Redis unreachable): a passing condition,
    /// answered 503 so clients retry, not a 500.
    fn from(error: crate::history::HistoryError) -> Self {
        tracing::warn!(error = %error, "history unavailable");
        ApiError::Unavailable("session history is unavailable right now; retry shortly".into())
    }
}

impl From<crate::presence::EngineStopped> for ApiError {
    fn from(_: crate::presence::EngineStopped) -> Self {
        ApiError::Unavailable("the hub is shutting down".into())
    }
}

impl warp::Reply for ApiError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// Maps every rejection to the JSON error; the one `recover` of the hub.
pub async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(api_error_of(&rejection).to_response())
}

fn api_error_of(rejection: &Rejection) -> ApiError {
    if let Some(error) = rejection.find::<ApiError>() {
        if *error == ApiError::Internal {
            tracing::error!("internal error answered with 500");
        }
        return error.clone();
    }
    if rejection.is_not_found() {
        return ApiError::NotFound("no such route".into());
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::MethodNotAllowed;
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::PayloadTooLarge;
    }
    if let Some(error) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        return ApiError::BadRequest(format!("invalid JSON body: {error}"));
    }
    if let Some(error) = rejection.find::<warp::reject::InvalidQuery>() {
        return ApiError::BadRequest(error.to_string());
    }
    if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        return ApiError::UnsupportedMediaType;
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return ApiError::BadRequest("a Content-Length header is required".into());
    }
    if let Some(error) = rejection.find::<warp::reject::InvalidHeader>() {
        return ApiError::BadRequest(error.to_string());
    }
    if let Some(error) = rejection.find::<warp::reject::MissingHeader>() {
        return ApiError::BadRequest(error.to_string());
    }
    tracing::debug!(?rejection, "unmapped rejection");
    ApiError::BadRequest("bad request".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        assert_eq!(ApiError::bad_parameter("page", "x").status(), 400);
        assert_eq!(ApiError::from(AuthError::Expired).status(), 401);
        assert_eq!(ApiError::from(AuthError::NotAdmin).status(), 403);
        assert_eq!(ApiError::from(AuthError::BadDevUser).status(), 400);
        assert_eq!(ApiError::RateLimited { retry_after_s: 1 }.status(), 429);
    }

    #[tokio::test]
    async fn rate_limited_answers_carry_retry_after() {
        let response = ApiError::RateLimited { retry_after_s: 2 }.to_response();
        assert_eq!(response.headers()["retry-after"], "2");
    }

    #[tokio::test]
    async fn retry_after_is_never_zero() {
        let response = ApiError::RateLimited { retry_after_s: 0 }.to_response();
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[tokio::test]
    async fn admission_refusals_are_503_with_retry_after_and_a_code() {
        let response = ApiError::Overloaded(Overload::FileDescriptors).to_response();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            ApiError::Overloaded(Overload::ConnectionsPerIp { limit: 3 }).code(),
            "ip_connection_limit"
        );
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_map_to_404_and_405() {
        use warp::Filter;
        let routes = warp::path("x")
            .and(warp::get())
            .map(|| "ok")
            .recover(handle_rejection);
        let missing = warp::test::request().path("/nope").reply(&routes).await;
        assert_eq!(missing.status(), 404);
        let wrong = warp::test::request()
            .method("POST")
            .path("/x")
            .reply(&routes)
            .await;
        assert_eq!(wrong.status(), 405);
        let body: serde_json::Value = serde_json::from_slice(wrong.body()).unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
}
