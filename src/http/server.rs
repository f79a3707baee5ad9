//! Owns the listening socket and the HTTP connections: binds with a large
//! backlog (a reconnect storm of thousands of handshakes is absorbed), serves
//! each connection with hyper (HTTP/1.1 with upgrades) through the warp
//! filter, and on shutdown stops accepting and closes idle connections.
//!
//! Every accepted connection is counted (`admission.rs`). One accepted past
//! the descriptor ceiling is still served, but every request on it except
//! the health probes is answered 503 `fd_limit`, and it is closed after one
//! answer: accepts do not fail, and the connections already held go on.
//! A connection has `PRESENCE_HANDSHAKE_TIMEOUT` (10 s) to send each
//! request head (hyper's `header_read_timeout`).
//!
//! With TLS (`tls.rs`) the handshake runs in the connection's own task,
//! after it is counted and within that same timeout; HTTP is then served on
//! the TLS stream exactly as on a plain one.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::Filter;
use warp::http::{HeaderValue, header};
use warp::reply::Reply;

use super::admission::{Admission, CountedStream};
use super::error::{ApiError, Overload};
use super::origin::check_loopback_host;
use super::streamed::into_hub_response;
use super::tls::TlsServer;
use super::upgrade::{PeerAddr, UpgradeSlot};

/// How long a refused connection may take to send its request head.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Paths still served on a connection accepted past the descriptor ceiling.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];
/// How long an HTTP connection may take to finish once shutdown begins.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Binds `addr` with a listen backlog of `backlog`.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// How connections are admitted and timed.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    /// Connection and socket counts.
    pub admission: Admission,
    /// How long a request head may take.
    pub header_timeout: Duration,
    /// Dev mode: refuse a `Host` that is not loopback (DNS rebinding).
    pub loopback_hosts_only: bool,
    /// Serve TLS with this acceptor (None: plain HTTP).
    pub tls: Option<TlsServer>,
}

impl ConnectionPolicy {
    /// Counts an accepted connection; says what it must refuse and how long
    /// its heads may take.
    fn admit(&self, stream: TcpStream, peer: SocketAddr) -> (CountedStream, Refusal, Duration) {
        let (permit, over) = self.admission.open_connection();
        if over {
            tracing::debug!(peer = %peer, "near the descriptor limit: refusing");
        }
        let timeout = if over {
            REFUSAL_HEADER_TIMEOUT.min(self.header_timeout)
        } else {
            self.header_timeout
        };
        let refusal = Refusal {
            fd_limit: over.then(|| self.admission.clone()),
            foreign_hosts: self.loopback_hosts_only,
        };
        (CountedStream::new(stream, permit), refusal, timeout)
    }
}

/// Accepts and serves connections until `stop` fires; each HTTP connection
/// is then asked to finish, and tracked in `connections`.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    policy: ConnectionPolicy,
    stop: CancellationToken,
    connections: TaskTracker,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (stream, refusal, timeout) = policy.admit(stream, peer);
                connections.spawn(serve_admitted(
                    stream,
                    (peer, refusal, timeout),
                    policy.tls.clone(),
                    filter.clone(),
                    stop.clone(),
                ));
            }
            Err(err) => {
                // Out of file descriptors or similar: wait a moment, keep serving.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!("listener closed");
}

/// What a connection refuses before any route runs.
#[derive(Debug, Clone)]
struct Refusal {
    /// It came past the descriptor ceiling: only the probes are served, and
    /// it closes after one answer (refusals are counted here).
    fd_limit: Option<Admission>,
    /// Dev mode: requests naming a non-loopback `Host` get 403.
    foreign_hosts: bool,
}

impl Refusal {
    /// The answer to `request` when it is refused.
    fn check<B>(&self, request: &hyper::Request<B>) -> Result<(), ApiError> {
        if let Some(admission) = &self.fd_limit
            && !PROBES.contains(&request.uri().path())
        {
            return Err(admission.refuse(Overload::FileDescriptors));
        }
        if self.foreign_hosts {
            check_loopback_host(request.headers())?;
        }
        Ok(())
    }
}

/// Serves one counted connection, after its TLS handshake when `tls` is
/// set. The handshake has the head timeout; shutdown cuts it short.
async fn serve_admitted<F>(
    stream: CountedStream,
    admitted: (SocketAddr, Refusal, Duration),
    tls: Option<TlsServer>,
    filter: F,
    stop: CancellationToken,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let Some(tls) = tls else {
        return serve_connection(stream, admitted, filter, stop).await;
    };
    let handshake = tls.handshake(stream, admitted.2);
    let secured = tokio::select! {
        secured = handshake => secured,
        () = stop.cancelled() => None,
    };
    if let Some(stream) = secured {
        serve_connection(stream, admitted, filter, stop).await;
    }
}

/// Serves one connection, refusing what `refuse` says.
async fn serve_connection<S, F>(
    stream: S,
    (peer, refuse, header_timeout): (SocketAddr, Refusal, Duration),
    filter: F,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let keep_alive = refuse.fd_limit.is_none();
    let warp_service = warp::service(filter);
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        let refused = refuse.check(&request).err();
        let on_upgrade = hyper::upgrade::on(&mut request);
        request
            .extensions_mut()
            .insert(UpgradeSlot::new(on_upgrade));
        request.extensions_mut().insert(PeerAddr(peer));
        let mut warp_service = warp_service.clone();
        async move {
            if let Some(error) = refused {
                // Not routed, so a body is never read: close after the answer.
                let mut response = error.to_response();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Ok(into_hub_response(response));
            }
            let response = warp_service.call(request).await?;
            Ok::<_, std::convert::Infallible>(into_hub_response(response))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::trace!(error = %err, "http connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
        }
    }
}
