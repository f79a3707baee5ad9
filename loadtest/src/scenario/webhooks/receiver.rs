//! Owns the run's webhook receivers: real HTTP/1.1 servers on loopback
//! that check every request's `X-Presence-Signature` and hand the batch to
//! the tally (the healthy one) or just count it after a delay (the slow one).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::tally::Tally;
use crate::failure::Failure;
use crate::worker::Ctx;

/// The hub's replay window: a signature older than this is refused.
const REPLAY_WINDOW_S: i64 = 300;
/// Largest body a receiver reads (the hub sends at most 100 events).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Counter of the requests the slow receiver answered.
pub const SLOW_BATCHES: &str = "webhook_slow_batches";

/// What a receiver does with a verified batch.
#[derive(Debug, Clone)]
pub enum Role {
    /// Answers at once and records every event in the tally.
    Healthy(Arc<Tally>),
    /// Answers after this long and counts the request.
    Slow(Duration),
}

/// One receiver's shared state.
#[derive(Debug)]
struct Receiver {
    ctx: Arc<Ctx>,
    secret: Vec<u8>,
    role: Role,
    stop: CancellationToken,
}

/// Binds `addr` and serves webhook requests until `stop`.
pub async fn start(
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    secret: &str,
    role: Role,
    stop: CancellationToken,
) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("webhook receiver cannot listen on {addr}"))?;
    let receiver = Arc::new(Receiver {
        ctx,
        secret: secret.as_bytes().to_vec(),
        role,
        stop,
    });
    tokio::spawn(accept_loop(listener, receiver));
    Ok(())
}

/// Accepts connections and serves each on its own task until stopped.
async fn accept_loop(listener: TcpListener, receiver: Arc<Receiver>) {
    loop {
        let accepted = tokio::select! {
            () = receiver.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let receiver = Arc::clone(&receiver);
        tokio::spawn(async move {
            let stop = receiver.stop.clone();
            let service = service_fn(move |request| {
                let receiver = Arc::clone(&receiver);
                async move { Ok::<_, Infallible>(receiver.handle(request).await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

impl Receiver {
    /// Reads, verifies and handles one request.
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let signature = request
            .headers()
            .get("x-presence-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default();
        let Ok(body) = Limited::new(request.into_body(), MAX_BODY).collect().await else {
            self.ctx.stats.fail(&Failure::WebhookBadBody);
            return answer(StatusCode::BAD_REQUEST);
        };
        let body = body.to_bytes();
        let received = SystemTime::now();
        if let Role::Slow(delay) = &self.role {
            tokio::select! {
                () = tokio::time::sleep(*delay) => {}
                () = self.stop.cancelled() => {}
            }
        }
        if !verify(&self.secret, &signature, &body, unix_now()) {
            self.ctx.stats.fail(&Failure::WebhookBadSignature);
            return answer(StatusCode::UNAUTHORIZED);
        }
        match &self.role {
            Role::Healthy(tally) => {
                if tally.batch(&self.ctx, &body, received).is_err() {
                    self.ctx.stats.fail(&Failure::WebhookBadBody);
                    return answer(StatusCode::BAD_REQUEST);
                }
            }
            Role::Slow(_) => self.ctx.stats.count(SLOW_BATCHES, 1),
        }
        answer(StatusCode::NO_CONTENT)
    }
}

/// An empty answer with `status`.
fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// True when `header` (`t=<unix>,v1=<hex>`) signs `body` with `secret`
/// and is within the replay window of `now_unix`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_unix: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now_unix - t).abs() > REPLAY_WINDOW_S {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_time() {
        let header = sign(b"k", 1000, b"{}");
        assert!(verify(b"k", &header, b"{}", 1000));
        assert!(verify(b"k", &header, b"{}", 1000 + REPLAY_WINDOW_S));
        assert!(!verify(b"other", &header, b"{}", 1000));
        assert!(!verify(b"k", &header, b"{ }", 1000));
        assert!(!verify(b"k", &header, b"{}", 1000 + REPLAY_WINDOW_S + 1));
        assert!(!verify(b"k", "t=1000", b"{}", 1000));
        assert!(!verify(b"k", "", b"{}", 1000));
    }
}
