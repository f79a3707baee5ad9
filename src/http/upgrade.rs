//! Owns taking a WebSocket upgrade through warp while driving the socket
//! ourselves: the accept loop puts hyper's `OnUpgrade` and the peer address
//! into each request's extensions, and `switch_protocols` answers 101 and
//! hands the upgraded connection to a task the hub tracks.
//!
//! This is how connections get tokio-tungstenite with small buffers instead
//! of `warp::ws()`'s fixed 128 KiB read buffer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::task::TaskTracker;
use warp::http::{HeaderMap, Response, StatusCode, header};
use warp::reply::Reply;

use super::admission::SocketPermit;
use super::error::ApiError;

/// The upgrade future of one request, taken at most once.
#[derive(Clone)]
pub struct UpgradeSlot(Arc<Mutex<Option<OnUpgrade>>>);

impl UpgradeSlot {
    /// Wraps the request's upgrade future.
    pub fn new(on_upgrade: OnUpgrade) -> Self {
        Self(Arc::new(Mutex::new(Some(on_upgrade))))
    }

    fn take(&self) -> Option<OnUpgrade> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The TCP peer of a request.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Checks the WebSocket handshake headers; returns the accept key.
pub fn check_handshake(headers: &HeaderMap) -> Result<String, ApiError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(ApiError::BadRequest(
            "expected a WebSocket upgrade request".into(),
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(ApiError::BadRequest(
            "Sec-WebSocket-Version must be 13".into(),
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::BadRequest("missing Sec-WebSocket-Key".into()))?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// Answers 101 and runs `serve` on the upgraded connection in a tracked task.
///
/// The task holds `permit` until it ends, whatever the reason, so the
/// admission count falls with it. An upgrade that does not complete within
/// the permit's upgrade timeout (the client does not take the 101) is dropped, which
/// closes the connection.
pub fn switch_protocols<F, Fut>(
    slot: Option<UpgradeSlot>,
    accept_key: &str,
    tracker: &TaskTracker,
    permit: SocketPermit,
    serve: F,
) -> Result<warp::reply::Response, ApiError>
where
    F: FnOnce(TokioIo<Upgraded>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_upgrade = slot
        .and_then(|slot| slot.take())
        .ok_or(ApiError::Internal)?;
    let upgrade_timeout = permit.upgrade_timeout();
    let fut = async move {
        let _permit = permit;
        match tokio::time::timeout(upgrade_timeout, on_upgrade).await {
            Ok(Ok(upgraded)) => serve(TokioIo::new(upgraded)).await,
            Ok(Err(err)) => tracing::debug!(error = %err, "websocket upgrade failed"),
            Err(_) => tracing::debug!("websocket upgrade timed out"),
        }
    };
    tracker.spawn(fut);
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key)
        .body(warp::hyper::body::Bytes::new())
        .map_err(|_| ApiError::Internal)?;
    Ok(response.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proper_handshake_yields_the_accept_key() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, "websocket".parse().unwrap());
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        headers.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        // RFC 6455 section 1.3's example.
        assert_eq!(
            check_handshake(&headers).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_plain_get_is_not_a_handshake() {
        assert!(check_handshake(&HeaderMap::new()).is_err());
    }
}
