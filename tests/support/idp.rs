//! A stand-in identity provider: key pairs made by the `openssl` command
//! line at test time, tokens signed with them, and a real HTTP/1.1 server
//! on 127.0.0.1 serving their JWKS, which a test can change, slow down or
//! count the requests of.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::temp::TempDir;

/// The key types an identity provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048, RS256.
    Rsa,
    /// EC P-256, ES256.
    P256,
    /// Ed25519, EdDSA.
    Ed25519,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Rsa, KeyKind::P256, KeyKind::Ed25519];

    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            Self::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Self::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Self::Ed25519 => &["-algorithm", "ED25519"],
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::RS256,
            Self::P256 => Algorithm::ES256,
            Self::Ed25519 => Algorithm::EdDSA,
        }
    }
}

/// A private key and its public key, both as PEM files in a temp dir.
pub struct KeyPair {
    pub kind: KeyKind,
    pub private_pem: String,
    pub public_pem: String,
    dir: TempDir,
}

/// Runs `openssl` and returns its standard output.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
    output.stdout
}

impl KeyPair {
    /// A fresh key of `kind` (`openssl genpkey`, then `pkey -pubout`).
    pub fn generate(kind: KeyKind) -> Self {
        let dir = TempDir::new("idp-key");
        let private = dir.join("private.pem");
        let public = dir.join("public.pem");
        let mut args = vec!["genpkey"];
        args.extend_from_slice(kind.genpkey_args());
        args.extend(["-out", private.to_str().unwrap()]);
        openssl(&args);
        openssl(&[
            "pkey",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
        Self {
            kind,
            private_pem: std::fs::read_to_string(&private).unwrap(),
            public_pem: std::fs::read_to_string(&public).unwrap(),
            dir,
        }
    }

    /// The public key file, for `PRESENCE_JWT_PUBLIC_KEY`.
    pub fn public_path(&self) -> std::path::PathBuf {
        self.dir.join("public.pem")
    }

    /// The private key file.
    pub fn private_path(&self) -> std::path::PathBuf {
        self.dir.join("private.pem")
    }

    fn encoding_key(&self) -> EncodingKey {
        let pem = self.private_pem.as_bytes();
        match self.kind {
            KeyKind::Rsa => EncodingKey::from_rsa_pem(pem),
            KeyKind::P256 => EncodingKey::from_ec_pem(pem),
            KeyKind::Ed25519 => EncodingKey::from_ed_pem(pem),
        }
        .unwrap()
    }

    /// A token for `sub` valid for 5 minutes, signed with this key under
    /// its algorithm, naming `kid` when given.
    pub fn token(&self, sub: &str, kid: Option<&str>) -> String {
        self.token_as(self.kind.algorithm(), sub, kid)
    }

    /// The same under `algorithm` (for RSA: RS384 or RS512 too).
    pub fn token_as(&self, algorithm: Algorithm, sub: &str, kid: Option<&str>) -> String {
        self.sign(algorithm, &claims(sub), kid)
    }

    /// `claims` signed under `algorithm`, naming `kid` when given.
    pub fn sign(&self, algorithm: Algorithm, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }

    /// The public key as a JWK named `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let der = openssl(&[
            "pkey",
            "-pubin",
            "-in",
            self.public_path().to_str().unwrap(),
            "-outform",
            "DER",
        ]);
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let tail = |n: usize| &der[der.len() - n..];
        match self.kind {
            // The SubjectPublicKeyInfo of a 2048-bit key with e = 65537
            // ends with the 256 modulus bytes, then `02 03 01 00 01`.
            KeyKind::Rsa => {
                assert_eq!(tail(5), [0x02, 0x03, 0x01, 0x00, 0x01]);
                let n = &der[der.len() - 5 - 256..der.len() - 5];
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(n), "e": "AQAB"})
            }
            // ... ends with the uncompressed point `04 || x || y`.
            KeyKind::P256 => {
                let point = tail(65);
                assert_eq!(point[0], 0x04);
                json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            KeyKind::Ed25519 => {
                json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(tail(32))})
            }
        }
    }
}

/// The claims of a test token for `sub`.
pub fn claims(sub: &str) -> Value {
    let exp = chrono::Utc::now().timestamp() + 300;
    json!({"sub": sub, "exp": exp, "name": format!("{sub} name"), "org": "acme"})
}

/// An HS256 token signed with `secret` bytes (for alg-confusion tests:
/// the public key's PEM as the HMAC secret).
pub fn hs256_token(secret: &[u8], sub: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims(sub), &EncodingKey::from_secret(secret)).unwrap()
}

struct Served {
    keys: Mutex<Vec<Value>>,
    delay: Mutex<Duration>,
    started: AtomicUsize,
    answered: AtomicUsize,
}

/// A JWKS server on 127.0.0.1; stops when dropped.
pub struct JwksServer {
    pub addr: SocketAddr,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    /// Serves `{"keys": keys}` to every request, on any free port.
    pub async fn start(keys: Vec<Value>) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), keys).await
    }

    /// The same on `addr`: a server that comes up where a hub already looks.
    pub async fn start_on(addr: SocketAddr, keys: Vec<Value>) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Served {
            keys: Mutex::new(keys),
            delay: Mutex::new(Duration::ZERO),
            started: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
        });
        let shared = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self { addr, served, task }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// Serves `keys` from the next request on.
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.served.keys.lock().unwrap() = keys;
    }

    /// Waits this long before answering each later request.
    pub fn set_delay(&self, delay: Duration) {
        *self.served.delay.lock().unwrap() = delay;
    }

    /// Requests read so far (answered or not).
    pub fn requests(&self) -> usize {
        self.served.started.load(Ordering::SeqCst)
    }

    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.served.answered.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, served: Arc<Served>) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    served.started.fetch_add(1, Ordering::SeqCst);
    let delay = *served.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let body = json!({"keys": *served.keys.lock().unwrap()}).to_string();
    // Counted before it is written: a hub can have read it by the time a
    // test looks.
    served.answered.fetch_add(1, Ordering::SeqCst);
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}
