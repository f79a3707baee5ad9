//! Owns admission control (contract v1.1 section 13): how many WebSockets
//! (`/ws` and `/admin/ws`) are open on this node and per client IP, and how
//! many TCP connections the process holds against its file-descriptor
//! limit.
//!
//! - `admit_socket` is asked at every upgrade, after the route's own checks.
//!   Over `PRESENCE_MAX_CONNECTIONS` or `PRESENCE_MAX_CONNECTIONS_PER_IP` it
//!   answers 503 with `Retry-After`. Otherwise it hands out a `SocketPermit`
//!   that the socket task holds; dropping it, however the task ends, gives
//!   the place back.
//! - `open_connection` is asked by the accept loop for every accepted TCP
//!   connection. The `ConnectionPermit` travels with the stream itself
//!   (`CountedStream`), through the upgrade, so the count falls exactly when
//!   the descriptor is closed. Past the ceiling (the descriptor limit less a
//!   reserve, see `connection_ceiling`) new connections are answered 503.
//!
//! It does not decide what a refusal looks like on the wire (`error.rs`) or
//! when a connection is accepted (`server.rs`).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ipnet::IpNet;
use prometheus::IntCounterVec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use warp::http::HeaderMap;

use super::client_ip::request_ip;
use super::error::{ApiError, Overload};
use super::upgrade::PeerAddr;

/// Seconds a refused client is told to wait (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 5;

/// Descriptors kept back from connections, at least: the listener, stdio,
/// the runtime's own, Redis links, the history file, and room to accept and
/// answer a refusal.
const MIN_FD_RESERVE: u64 = 32;
/// At most this many descriptors are kept back, whatever the limit.
const MAX_FD_RESERVE: u64 = 256;

/// The limits admission control applies.
#[derive(Debug, Clone, Default)]
pub struct AdmissionLimits {
    /// Open WebSockets on this node (0 = no limit).
    pub max_sockets: usize,
    /// Open WebSockets per client IP (0 = no limit).
    pub max_sockets_per_ip: usize,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// How long a WebSocket upgrade may take once the 101 is ready, and a
    /// request body from its head to its end.
    pub handshake_timeout: Duration,
    /// Accepted TCP connections beyond which new ones are refused (None:
    /// no descriptor limit known).
    pub connection_ceiling: Option<usize>,
}

/// Admission control of one node; cloning is shallow.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    limits: AdmissionLimits,
    /// `presence_admission_refusals_total{code}`.
    refusals: IntCounterVec,
    sockets: AtomicUsize,
    /// Open sockets per IP; only kept when there is a per-IP limit. A lock
    /// taken once per upgrade and once per socket end, never per frame.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    connections: AtomicUsize,
}

/// One admitted WebSocket; dropping it frees the place.
#[derive(Debug)]
pub struct SocketPermit {
    inner: Arc<Inner>,
    ip: Option<IpAddr>,
}

/// One accepted TCP connection; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
}

impl Admission {
    /// Admission control with these limits, counting refusals in
    /// `refusals` (by code).
    pub fn new(limits: AdmissionLimits, refusals: IntCounterVec) -> Self {
        Self(Arc::new(Inner {
            limits,
            refusals,
            sockets: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
        }))
    }

    /// How long an upgrade may take once the 101 is ready, and a request
    /// body from its head to its end.
    pub fn handshake_timeout(&self) -> Duration {
        self.0.limits.handshake_timeout
    }

    /// Open WebSockets now.
    #[cfg(test)]
    pub fn open_sockets(&self) -> usize {
        self.0.sockets.load(Ordering::Relaxed)
    }

    /// Admits one more WebSocket for the client of a request, or refuses
    /// it (503 with `Retry-After`).
    pub fn admit_socket(
        &self,
        headers: &HeaderMap,
        peer: Option<PeerAddr>,
    ) -> Result<SocketPermit, ApiError> {
        let limits = &self.0.limits;
        let open = self.0.sockets.fetch_add(1, Ordering::AcqRel) + 1;
        // From here on the permit owns one place: an early return drops it.
        let mut permit = SocketPermit {
            inner: self.0.clone(),
            ip: None,
        };
        if limits.max_sockets > 0 && open > limits.max_sockets {
            return Err(self.refuse(Overload::Connections {
                limit: limits.max_sockets,
            }));
        }
        if limits.max_sockets_per_ip > 0 {
            let ip = request_ip(headers, peer, &limits.trusted_proxies);
            let mut per_ip = self.0.per_ip.lock().map_err(|_| ApiError::Internal)?;
            // A refused IP already holds places (the limit is at least 1),
            // so `or_insert` never leaves a zero entry behind.
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= limits.max_sockets_per_ip {
                drop(per_ip);
                return Err(self.refuse(Overload::ConnectionsPerIp {
                    limit: limits.max_sockets_per_ip,
                }));
            }
            *count += 1;
            permit.ip = Some(ip);
        }
        Ok(permit)
    }

    /// Counts a refusal and turns it into its 503.
    pub fn refuse(&self, overload: Overload) -> ApiError {
        self.0.refusals.with_label_values(&[overload.code()]).inc();
        ApiError::Overloaded(overload)
    }

    /// Counts one accepted TCP connection. The flag says it is over the
    /// descriptor ceiling and must be refused.
    pub fn open_connection(&self) -> (ConnectionPermit, bool) {
        let open = self.0.connections.fetch_add(1, Ordering::AcqRel) + 1;
        let over = self
            .0
            .limits
            .connection_ceiling
            .is_some_and(|ceiling| open > ceiling);
        (
            ConnectionPermit {
                inner: self.0.clone(),
            },
            over,
        )
    }
}

impl SocketPermit {
    /// How long the upgrade of this socket may take once the 101 is ready.
    pub fn upgrade_timeout(&self) -> Duration {
        self.inner.limits.handshake_timeout
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.inner.sockets.fetch_sub(1, Ordering::AcqRel);
        let Some(ip) = self.ip else {
            return;
        };
        // A poisoned map only happens after a panic elsewhere; the count of
        // that IP then stays as it was, which errs on the side of refusing.
        if let Ok(mut per_ip) = self.inner.per_ip.lock()
            && let Some(count) = per_ip.get_mut(&ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.inner.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process's soft `RLIMIT_NOFILE`, when it has a finite one.
pub fn read_nofile_limit() -> Option<u64> {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) if soft != rlimit::INFINITY => Some(soft),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read RLIMIT_NOFILE; no descriptor guard");
            None
        }
    }
}

/// Accepted connections allowed under a descriptor limit of `nofile`: the
/// limit less a reserve of a tenth of it, at least `MIN_FD_RESERVE` and at
/// most `MAX_FD_RESERVE` descriptors. At least one connection is allowed.
pub fn connection_ceiling(nofile: u64) -> usize {
    let reserve = (nofile / 10).clamp(MIN_FD_RESERVE, MAX_FD_RESERVE);
    usize::try_from(nofile.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX)
}

/// A TCP stream that holds its `ConnectionPermit` for as long as it lives,
/// through the upgrade into a WebSocket.
#[derive(Debug)]
pub struct CountedStream {
    stream: TcpStream,
    _permit: ConnectionPermit,
}

impl CountedStream {
    /// Ties `permit` to `stream`.
    pub fn new(stream: TcpStream, permit: ConnectionPermit) -> Self {
        Self {
            stream,
            _permit: permit,
        }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Option<PeerAddr> {
        Some(PeerAddr(std::net::SocketAddr::new(ip.parse().unwrap(), 1)))
    }

    fn admission(max: usize, per_ip: usize) -> Admission {
        let refusals =
            IntCounterVec::new(prometheus::Opts::new("refusals", "test"), &["code"]).unwrap();
        Admission::new(
            AdmissionLimits {
                max_sockets: max,
                max_sockets_per_ip: per_ip,
                ..AdmissionLimits::default()
            },
            refusals,
        )
    }

    #[test]
    fn the_node_limit_counts_every_socket_and_frees_on_drop() {
        let admission = admission(2, 0);
        let headers = HeaderMap::new();
        let a = admission.admit_socket(&headers, peer("10.0.0.1")).unwrap();
        let _b = admission.admit_socket(&headers, peer("10.0.0.2")).unwrap();
        let refused = admission.admit_socket(&headers, peer("10.0.0.3"));
        assert_eq!(refused.unwrap_err().code(), "connection_limit");
        assert_eq!(admission.open_sockets(), 2, "a refusal keeps no place");
        drop(a);
        assert!(admission.admit_socket(&headers, peer("10.0.0.3")).is_ok());
    }

    #[test]
    fn the_per_ip_limit_is_per_client_address() {
        let admission = admission(0, 1);
        let headers = HeaderMap::new();
        let a = admission.admit_socket(&headers, peer("10.0.0.1")).unwrap();
        let refused = admission.admit_socket(&headers, peer("10.0.0.1"));
        assert_eq!(refused.unwrap_err().code(), "ip_connection_limit");
        let _other = admission.admit_socket(&headers, peer("10.0.0.2")).unwrap();
        drop(a);
        let _again = admission.admit_socket(&headers, peer("10.0.0.1")).unwrap();
        assert_eq!(admission.open_sockets(), 2);
    }

    #[test]
    fn the_ceiling_keeps_a_reserve_of_descriptors() {
        assert_eq!(connection_ceiling(64), 32);
        assert_eq!(connection_ceiling(1024), 922);
        assert_eq!(connection_ceiling(1_048_576), 1_048_320);
        assert_eq!(connection_ceiling(20_000), 19_744);
        assert_eq!(connection_ceiling(10), 1);
    }
}
