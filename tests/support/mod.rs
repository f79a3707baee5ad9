//! Test support shared by the integration test crates: an in-process hub on
//! port 0, the real hub binary as a child process, WebSocket and HTTP
//! clients, and bounded waiting. Hubs keep records in memory unless a test
//! says otherwise, so no test writes `presence-hub.db` into the repository.
//! `postgres.rs`: a real PostgreSQL server; `temp.rs`: temporary directories;
//! `tls.rs`: test certificates and a TLS client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod idp;
pub mod mmdb;
pub mod postgres;
pub mod receiver;
pub mod redis_cluster;
pub mod temp;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_hub::{Config, RunningHub};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Milliseconds as a `Duration`.
pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Runs a test body with a hard limit, so a hang fails in seconds.
pub async fn within<F: Future>(limit: Duration, body: F) -> F::Output {
    timeout(limit, body).await.expect("test timed out")
}

/// Polls `check` until it returns `Some`, or panics at the deadline.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(ms(20)).await;
    }
}

/// A hub running inside the test process on 127.0.0.1:0.
pub struct TestHub {
    pub addr: SocketAddr,
    hub: Option<RunningHub>,
}

impl TestHub {
    /// Starts a hub with the defaults changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::defaults();
        config.bind = "127.0.0.1:0".into();
        config.node_id = Some("test-node".into());
        config.database_url = Some("memory:".into());
        // v1 behaviour unless a test turns resuming on: a closed socket ends
        // its session at once.
        config.resume_grace = Duration::ZERO;
        configure(&mut config);
        let settings = config.validate().expect("test config is valid");
        let hub = presence_hub::start(settings).await.expect("hub starts");
        Self {
            addr: hub.local_addr(),
            hub: Some(hub),
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Connects a client in dev mode as `user`.
    pub async fn client(&self, user: &str) -> WsClient {
        WsClient::connect(&self.ws_url(&format!("/ws?user={user}"))).await
    }

    /// Connects a client and reads its welcome frame.
    pub async fn welcomed_client(&self, user: &str) -> (WsClient, Value) {
        let mut client = self.client(user).await;
        let welcome = client.recv_type("welcome", ms(2000)).await;
        (client, welcome)
    }

    /// Opens an admin stream and reads its snapshot.
    pub async fn admin(&self, query: &str) -> (WsClient, Value) {
        let mut admin = WsClient::connect(&self.ws_url(&format!("/admin/ws{query}"))).await;
        let snapshot = admin.recv_type("snapshot", ms(10_000)).await;
        (admin, snapshot)
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn shutdown(mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown().await;
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that reads JSON frames.
pub struct WsClient {
    pub socket: Socket,
    pub close_code: Option<u16>,
}

/// What a failed handshake answered.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
    /// The `Retry-After` header, when there was one.
    pub retry_after: Option<String>,
}

impl WsClient {
    pub async fn connect(url: &str) -> Self {
        Self::try_connect(url, &[])
            .await
            .unwrap_or_else(|refused| panic!("connect {url}: {refused:?}"))
    }

    /// Connects with extra headers; `Err` carries the HTTP status of a refusal.
    pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Self, Refused> {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap(),
                value.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self {
                socket,
                close_code: None,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(Refused {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                body: response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }),
            Err(other) => panic!("connect {url}: {other}"),
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_string()))
            .await
            .expect("send");
    }

    /// The next JSON frame, or `None` when the socket closed (close code kept).
    pub async fn next_json(&mut self, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = timeout(left, self.socket.next())
                .await
                .expect("timed out waiting for a frame");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("frame is JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Reads frames until one satisfies `matches`; panics at the deadline.
    pub async fn recv_until(
        &mut self,
        limit: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            match timeout(left, self.next_json(left)).await {
                Ok(Some(value)) if matches(&value) => return value,
                Ok(Some(_)) => continue,
                Ok(None) => panic!(
                    "socket closed ({:?}) while waiting for {what}",
                    self.close_code
                ),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    pub async fn recv_type(&mut self, kind: &str, limit: Duration) -> Value {
        self.recv_until(limit, kind, |v| v["type"] == kind).await
    }

    /// Reads until the socket closes; returns the close code.
    pub async fn recv_close(&mut self, limit: Duration) -> Option<u16> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for close");
            if self.next_json(left).await.is_none() {
                return self.close_code;
            }
        }
    }

    /// Collects frames for `window`, keeping the socket open.
    pub async fn collect_for(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        let mut frames = Vec::new();
        while let Ok(Some(Ok(frame))) = timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.socket.next(),
        )
        .await
        {
            if let Message::Text(text) = frame {
                frames.push(serde_json::from_str(&text).unwrap());
            }
        }
        frames
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ = timeout(ms(1000), async {
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await;
    }
}

/// Waits on an admin stream for a session event matching `matches`.
pub async fn admin_session_event(
    admin: &mut WsClient,
    limit: Duration,
    what: &str,
    matches: impl Fn(&str, &Value) -> bool,
) -> Value {
    admin
        .recv_until(limit, what, |v| {
            v["type"] == "session" && matches(v["event"].as_str().unwrap_or(""), &v["session"])
        })
        .await
}

/// The real `presence-hub` binary, started on 127.0.0.1:0.
pub struct HubProcess {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    /// Every line the hub wrote to stderr (its log) so far.
    pub logs: Arc<std::sync::Mutex<Vec<String>>>,
}

impl HubProcess {
    /// Starts the binary with records in memory unless `env` names
    /// `PRESENCE_DATABASE_URL`.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::spawn(Self::binary(), None, env).await
    }

    /// Starts the binary in `dir` with the default records store (unless
    /// `env` says otherwise): `sqlite://presence-hub.db` there.
    pub async fn start_in(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(Self::binary(), Some(dir), env).await
    }

    /// Starts the binary with its descriptor limit (`RLIMIT_NOFILE`) set
    /// to `nofile`.
    pub async fn start_with_nofile(env: &[(&str, &str)], nofile: u32) -> Self {
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\""))
            .arg(env!("CARGO_BIN_EXE_presence-hub"));
        Self::spawn(command, None, env).await
    }

    fn binary() -> tokio::process::Command {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"))
    }

    async fn spawn(
        mut command: tokio::process::Command,
        dir: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Self {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        match dir {
            Some(dir) => command.current_dir(dir),
            None => command.env("PRESENCE_DATABASE_URL", "memory:"),
        };
        command
            .env("PRESENCE_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "presence_hub=info")
            // v1 behaviour unless the test sets a grace itself.
            .env("PRESENCE_RESUME_GRACE", "0s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn presence-hub");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let addr = timeout(ms(10_000), read_bound_address(stderr, logs.clone()))
            .await
            .expect("hub announces its address");
        Self { child, addr, logs }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    pub fn signal(&self, signal: i32) {
        let rc = send_signal(self.pid(), signal);
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

fn send_signal(pid: i32, signal: i32) -> i32 {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    if status.success() { 0 } else { 1 }
}

async fn read_bound_address(
    stderr: tokio::process::ChildStderr,
    logs: Arc<std::sync::Mutex<Vec<String>>>,
) -> SocketAddr {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.lock().unwrap().push(line.clone());
        let text = line
            .split("bind=")
            .nth(1)
            .or_else(|| line.split("\"bind\":\"").nth(1));
        if let Some(rest) = text {
            let addr = rest
                .split(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap_or_default();
            if let Ok(addr) = addr.parse() {
                // Keep reading stderr (into `logs`) so the child never
                // blocks on a full pipe.
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        logs.lock().unwrap().push(line);
                    }
                });
                return addr;
            }
        }
    }
    panic!("hub exited before announcing its address");
}

/// Resident memory of a process in bytes (Linux).
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS line");
    kib * 1024
}

/// An HS256 token for tests.
pub fn jwt(secret: &str, sub: &str, role: Option<&str>, expires_in_s: i64) -> String {
    let exp = chrono::Utc::now().timestamp() + expires_in_s;
    let claims = serde_json::json!({"sub": sub, "exp": exp, "role": role, "name": format!("{sub} name"), "org": "acme"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A real `redis-server` on a free loopback port, stopped on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
    /// TLS certificate directory and password, for `rediss://`.
    tls: Option<(std::path::PathBuf, String)>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = free_port();
        let mut server = Self {
            port,
            child: None,
            tls: None,
        };
        server.spawn().await;
        server
    }

    /// A server that speaks only TLS and wants a password.
    pub async fn start_tls(password: &str) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("presence-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes a test certificate");
        assert!(status.success());
        let mut server = Self {
            port,
            child: None,
            tls: Some((dir, password.to_string())),
        };
        server.spawn().await;
        server
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            .map(String::from)
            .to_vec();
        let port = self.port.to_string();
        match &self.tls {
            None => args.extend(["--port".to_string(), port]),
            Some((dir, password)) => {
                let file = |name: &str| dir.join(name).display().to_string();
                for (flag, value) in [
                    ("--port", "0".to_string()),
                    ("--tls-port", port),
                    ("--tls-cert-file", file("cert.pem")),
                    ("--tls-key-file", file("key.pem")),
                    ("--tls-ca-cert-file", file("cert.pem")),
                    ("--tls-auth-clients", "no".to_string()),
                    ("--requirepass", password.clone()),
                ] {
                    args.push(flag.to_string());
                    args.push(value);
                }
            }
        }
        args
    }

    async fn spawn(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(self.args())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        self.child = Some(child);
        let url = self.url();
        eventually(ms(10_000), "redis to answer PING", || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url).ok()?;
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .ok()
            }
        })
        .await;
    }

    pub fn url(&self) -> String {
        match &self.tls {
            None => format!("redis://127.0.0.1:{}/", self.port),
            // Self-signed test certificate: `#insecure` skips verification.
            Some((_, password)) => {
                format!("rediss://:{password}@127.0.0.1:{}/#insecure", self.port)
            }
        }
    }

    /// Kills the server (an outage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// A command connection for fault injection.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A namespace no other test uses.
pub fn unique_namespace(name: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("test-{}-{name}-{n}", std::process::id())
}

impl HubProcess {
    /// Waits until `/readyz` says 200.
    pub async fn ready(&self) {
        let url = self.http("/readyz");
        eventually(ms(10_000), "readyz 200", || {
            let url = url.clone();
            async move { (reqwest::get(url).await.ok()?.status() == 200).then_some(()) }
        })
        .await;
    }

    /// Opens an admin stream and reads its snapshot.
    pub async fn admin(&self, query: &str) -> (WsClient, Value) {
        let mut admin = WsClient::connect(&self.ws_url(&format!("/admin/ws{query}"))).await;
        let snapshot = admin.recv_type("snapshot", ms(5000)).await;
        (admin, snapshot)
    }

    /// Connects a dev-mode client and reads its welcome; returns the session id.
    pub async fn client(&self, query: &str) -> (WsClient, String) {
        let mut client = WsClient::connect(&self.ws_url(&format!("/ws?{query}"))).await;
        let welcome = client.recv_type("welcome", ms(5000)).await;
        (client, welcome["session_id"].as_str().unwrap().to_string())
    }

    /// GET a JSON route.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(self.http(path)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// An HS256 token with the given claims (`exp` added when missing).
pub fn jwt_claims(secret: &str, mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        claims["exp"] = Value::from(chrono::Utc::now().timestamp() + 300);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A client whose socket has a tiny receive buffer, so a hub writing to it
/// while it does not read fills up quickly.
pub async fn slow_reader(url: &str) -> WsClient {
    let address = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let (socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    WsClient {
        socket,
        close_code: None,
    }
}

/// The `/metrics` text at `url`.
pub async fn scrape(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The value of one series (its name with labels, exactly as exposed) in
/// a `/metrics` text, if it is there.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The HTTP status of a `/ws` upgrade with `token` at `ws_url` (101 when it
/// opens).
pub async fn upgrade_status(ws_url: &str, token: &str) -> u16 {
    match WsClient::try_connect(&format!("{ws_url}?token={token}"), &[]).await {
        Ok(client) => {
            client.close().await;
            101
        }
        Err(refused) => refused.status,
    }
}
