//! TLS for tests: a throwaway CA and leaf certificates for `localhost` and
//! 127.0.0.1 made with the `openssl` command line, and a rustls client that
//! trusts only that CA (HTTPS requests, WSS sockets, the peer certificate).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::idp::openssl;
use super::temp::TempDir;

/// A CA that signs leaf certificates, in a temporary directory.
pub struct TestCa {
    dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
}

/// A leaf certificate signed by a `TestCa`: the chain file (leaf, then the
/// CA), its private key, and the leaf's DER.
pub struct Leaf {
    pub chain: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A fresh P-256 key at `path`.
fn new_key(path: &Path) {
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        text(path),
    ]);
}

impl TestCa {
    /// A self-signed CA, valid for a day.
    pub fn new() -> Self {
        let dir = TempDir::new("tls-ca");
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        new_key(&key);
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            text(&key),
            "-subj",
            "/CN=presence test CA",
            "-days",
            "1",
            "-out",
            text(&cert),
        ]);
        Self { dir, cert, key }
    }

    /// A leaf for `localhost` and 127.0.0.1 named `name` (file names only).
    pub fn issue(&self, name: &str) -> Leaf {
        let path = |suffix: &str| self.dir.join(&format!("{name}{suffix}"));
        let (key, csr, leaf, chain) = (
            path("-key.pem"),
            path(".csr"),
            path("-leaf.pem"),
            path(".pem"),
        );
        new_key(&key);
        let subject = ["req", "-new", "-key", text(&key), "-subj", "/CN=localhost"];
        openssl(&[&subject[..], &["-out", text(&csr)]].concat());
        let extensions = path(".ext");
        std::fs::write(
            &extensions,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            text(&csr),
            "-CA",
            text(&self.cert),
            "-CAkey",
            text(&self.key),
            "-set_serial",
            &rand::random::<u32>().to_string(),
            "-days",
            "1",
            "-extfile",
            text(&extensions),
            "-out",
            text(&leaf),
        ]);
        let mut pem = std::fs::read(&leaf).unwrap();
        pem.extend(std::fs::read(&self.cert).unwrap());
        std::fs::write(&chain, pem).unwrap();
        let der = openssl(&["x509", "-in", text(&leaf), "-outform", "DER"]);
        Leaf { chain, key, der }
    }

    /// A file in the CA's directory, for tests that write broken PEM.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A rustls client trusting this CA only, offering HTTP/1.1.
    pub fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(&self.cert).unwrap();
        roots.add(ca).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}

/// A TLS connection to `addr` verified as `localhost`.
pub async fn connect(connector: &TlsConnector, addr: SocketAddr) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// The DER of the leaf certificate the server presented on `stream`.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let certificates = stream.get_ref().1.peer_certificates().unwrap();
    certificates[0].as_ref().to_vec()
}

/// `GET path` over a new TLS connection: the status and the body.
pub async fn https_get(connector: &TlsConnector, addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = connect(connector, addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body);
    (status, body.unwrap_or_default().to_string())
}

/// A WebSocket over TLS, reading JSON frames.
pub struct WssClient {
    pub socket: WebSocketStream<TlsStream<TcpStream>>,
    /// The leaf certificate the hub presented.
    pub leaf: Vec<u8>,
}

impl WssClient {
    /// Opens `wss://localhost:PORT{path}`.
    pub async fn connect(connector: &TlsConnector, addr: SocketAddr, path: &str) -> Self {
        Self::try_connect(connector, addr, path)
            .await
            .unwrap_or_else(|status| panic!("WSS upgrade of {path} refused: {status}"))
    }

    /// Opens `wss://localhost:PORT{path}`; `Err` is the status of a
    /// refused upgrade.
    pub async fn try_connect(
        connector: &TlsConnector,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::Error;
        let stream = connect(connector, addr).await;
        let leaf = peer_leaf(&stream);
        let url = format!("wss://localhost:{}{path}", addr.port());
        match tokio_tungstenite::client_async(url, stream).await {
            Ok((socket, _)) => Ok(Self { socket, leaf }),
            Err(Error::Http(response)) => Err(response.status().as_u16()),
            Err(err) => panic!("WebSocket handshake over TLS: {err}"),
        }
    }

    /// The close code the hub sends within `limit`.
    pub async fn recv_close(&mut self, limit: Duration) -> Option<u16> {
        let read = async {
            while let Some(Ok(message)) = self.socket.next().await {
                if let Message::Close(frame) = message {
                    return frame.map(|frame| u16::from(frame.code));
                }
            }
            None
        };
        tokio::time::timeout(limit, read).await.ok().flatten()
    }

    pub async fn send_json(&mut self, value: Value) {
        let text = value.to_string();
        self.socket.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON frame of type `kind` within `limit`.
    pub async fn recv_type(&mut self, kind: &str, limit: Duration) -> Value {
        let read = async {
            while let Some(message) = self.socket.next().await {
                if let Message::Text(text) = message.expect("WSS frame") {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == kind {
                        return value;
                    }
                }
            }
            panic!("socket closed before a {kind} frame");
        };
        tokio::time::timeout(limit, read)
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within {limit:?}"))
    }
}
