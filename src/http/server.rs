//! Owns the listening socket and the HTTP connections: binds with a large
//! backlog (a reconnect storm of thousands of handshakes is absorbed), serves
//! each connection with hyper (HTTP/1.1 with upgrades) through the warp
//! filter, and on shutdown stops accepting and closes idle connections.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::Filter;
use warp::reply::Reply;

use super::streamed::into_hub_response;
use super::upgrade::{PeerAddr, UpgradeSlot};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
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

/// Accepts and serves connections until `stop` fires; each HTTP connection
/// is then asked to finish, and tracked in `connections`.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
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
                connections.spawn(serve_connection(stream, peer, filter.clone(), stop.clone()));
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

async fn serve_connection<F>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    filter: F,
    stop: CancellationToken,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let warp_service = warp::service(filter);
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        let on_upgrade = hyper::upgrade::on(&mut request);
        request
            .extensions_mut()
            .insert(UpgradeSlot::new(on_upgrade));
        request.extensions_mut().insert(PeerAddr(peer));
        let mut warp_service = warp_service.clone();
        async move {
            let response = warp_service.call(request).await?;
            Ok::<_, std::convert::Infallible>(into_hub_response(response))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
