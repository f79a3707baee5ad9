//! Owns TLS on the main listener: reading `PRESENCE_TLS_CERT` (a PEM
//! certificate chain, leaf first) and `PRESENCE_TLS_KEY` (its PEM private
//! key) into a rustls `CertifiedKey` and checking that the key matches the
//! certificate, the rustls server configuration (ring provider, HTTP/1.1 by
//! ALPN), the certificate each new handshake is given (`CertificateStore`,
//! swapped whole on reload), the bounded handshake itself, and the task that
//! reloads both files on SIGHUP.
//!
//! The accept loop (`server.rs`) counts a connection before its handshake
//! and runs the handshake under the request-head timeout, so a client that
//! never finishes it holds its slot no longer than a silent plain-HTTP one.
//! A reload only changes what later handshakes see: open connections keep
//! the session they negotiated. A reload that fails keeps the certificate
//! in use and is logged and counted (`presence_tls_reloads_total`).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::IntCounterVec;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::TlsFiles;

const CERT_VARIABLE: &str = "PRESENCE_TLS_CERT";
const KEY_VARIABLE: &str = "PRESENCE_TLS_KEY";

/// A certificate or key file the hub cannot serve with.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct TlsError {
    /// The variable naming the file at fault.
    pub variable: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl TlsError {
    fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// The crypto the hub's TLS runs on.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The bytes of `path`, or an error naming `variable`.
fn read_file(variable: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|err| TlsError::new(variable, format!("cannot read {}: {err}", path.display())))
}

/// Every certificate of the PEM chain at `path`, leaf first; at least one.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(CERT_VARIABLE, path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            let reason = format!("{} is not a PEM certificate chain: {err}", path.display());
            TlsError::new(CERT_VARIABLE, reason)
        })?;
    if chain.is_empty() {
        let reason = format!("{} holds no CERTIFICATE block", path.display());
        return Err(TlsError::new(CERT_VARIABLE, reason));
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of the PEM file at `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(KEY_VARIABLE, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| {
        let reason = format!("{} holds no usable PEM private key: {err}", path.display());
        TlsError::new(KEY_VARIABLE, reason)
    })
}

/// Reads both files and checks that the key is the certificate's.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|err| {
        let reason = format!("does not fit the certificate of {CERT_VARIABLE}: {err}");
        TlsError::new(KEY_VARIABLE, reason)
    })
}

/// The certificate new handshakes are given, reloadable from its files.
#[derive(Debug)]
pub struct CertificateStore {
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
}

impl CertificateStore {
    /// Reads `files` now; fails as `load` does.
    pub fn open(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let current = ArcSwap::from_pointee(load(&files)?);
        Ok(Arc::new(Self { files, current }))
    }

    /// Reads the files again; on success later handshakes use them, on
    /// failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.files)?;
        self.current.store(Arc::new(fresh));
        Ok(())
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server side of the listener's handshakes.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsServer")
    }
}

/// The main listener's TLS: the store's certificate, TLS 1.2 and 1.3,
/// HTTP/1.1 offered by ALPN (the hub speaks nothing else).
pub fn server(store: Arc<CertificateStore>) -> Result<TlsServer, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::new(CERT_VARIABLE, err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    Ok(TlsServer { acceptor })
}

impl TlsServer {
    /// Runs the server side of the handshake on `stream` for at most
    /// `limit`; None when it fails or takes longer (the connection is then
    /// dropped).
    pub async fn handshake<S>(&self, stream: S, limit: Duration) -> Option<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        handshake(&self.acceptor, stream, limit).await
    }
}

async fn handshake<S>(acceptor: &TlsAcceptor, stream: S, limit: Duration) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// Reloads `store` once and counts the result in `reloads`.
fn reload_and_count(store: &CertificateStore, reloads: &IntCounterVec) {
    match store.reload() {
        Ok(()) => {
            reloads.with_label_values(&["ok"]).inc();
            tracing::info!("TLS certificate and key reloaded");
        }
        Err(err) => {
            reloads.with_label_values(&["error"]).inc();
            tracing::error!(error = %err, "TLS reload failed; the previous certificate stays in use");
        }
    }
}

/// Installs the SIGHUP handler now (so a SIGHUP right after the start line
/// reloads instead of killing the process) and returns the task that
/// reloads `store` on each one until `stop`.
#[cfg(unix)]
pub fn reload_on_hangup(
    store: Arc<CertificateStore>,
    reloads: IntCounterVec,
    stop: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            tokio::select! {
                received = hangups.recv() => if received.is_none() { break },
                () = stop.cancelled() => break,
            }
            reload_and_count(&store, &reloads);
        }
    })
}

/// Without SIGHUP there is nothing to wait for: the task ends with `stop`.
#[cfg(not(unix))]
pub fn reload_on_hangup(
    _store: Arc<CertificateStore>,
    _reloads: IntCounterVec,
    stop: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async move { stop.cancelled().await })
}
