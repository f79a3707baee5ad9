//! TLS on the main listener (`PRESENCE_TLS_CERT`, `PRESENCE_TLS_KEY`), with
//! the real binary: HTTPS and WSS, plain HTTP refused without harm, the
//! handshake bounded by the head timeout, the WebSocket limits and graceful
//! shutdown on WSS, and SIGHUP reloads.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::tls::{Leaf, TestCa, WssClient, connect, https_get, peer_leaf};
use crate::support::{HubProcess, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(60);
const SIGHUP: i32 = 1;
const SIGTERM: i32 = 15;

/// The files the hub is started with, overwritten to test reloads.
struct Served {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Served {
    fn new(ca: &TestCa, leaf: &Leaf) -> Self {
        let served = Self {
            cert: ca.path("served.pem"),
            key: ca.path("served-key.pem"),
        };
        served.install(leaf);
        served
    }

    fn install(&self, leaf: &Leaf) {
        std::fs::copy(&leaf.chain, &self.cert).unwrap();
        std::fs::copy(&leaf.key, &self.key).unwrap();
    }

    async fn start_hub(&self, extra: &[(&str, &str)]) -> HubProcess {
        let mut env = vec![
            ("PRESENCE_TLS_CERT", text(&self.cert)),
            ("PRESENCE_TLS_KEY", text(&self.key)),
        ];
        env.extend_from_slice(extra);
        HubProcess::start(&env).await
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Sends a plain-HTTP request to `hub` and returns what came back before
/// the hub closed the connection.
async fn plain_http_answer(hub: &HubProcess) -> Vec<u8> {
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(ms(5000), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the hub kept a plain-HTTP connection open");
    answer
}

#[tokio::test]
async fn https_and_wss_are_served_and_plain_http_is_refused() {
    within(LIMIT, async {
        let ca = TestCa::new();
        let leaf = ca.issue("first");
        let served = Served::new(&ca, &leaf);
        let hub = served.start_hub(&[]).await;
        let connector = ca.connector();

        let (status, body) = https_get(&connector, hub.addr, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        let mut socket = WssClient::connect(&connector, hub.addr, "/ws?user=alice").await;
        assert_eq!(socket.leaf, leaf.der, "the configured leaf is served");
        socket.recv_type("welcome", ms(5000)).await;

        let answer = plain_http_answer(&hub).await;
        assert!(
            !answer.starts_with(b"HTTP/"),
            "plain HTTP was answered: {:?}",
            String::from_utf8_lossy(&answer)
        );
        // The hub and its open socket are unharmed.
        assert_eq!(https_get(&connector, hub.addr, "/healthz").await.0, 200);
        socket.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(socket.recv_type("pong", ms(5000)).await["id"], 1);
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    within(LIMIT, async {
        let ca = TestCa::new();
        let served = Served::new(&ca, &ca.issue("first"));
        let hub = served
            .start_hub(&[("PRESENCE_HANDSHAKE_TIMEOUT", "1s")])
            .await;
        let mut silent = TcpStream::connect(hub.addr).await.unwrap();
        let started = Instant::now();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(ms(5000), silent.read(&mut buffer)).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent client was not closed within 5 s: {read:?}"
        );
        assert!(elapsed >= ms(900), "closed too early: {elapsed:?}");
        // A client that does speak still gets through.
        let connector = ca.connector();
        assert_eq!(https_get(&connector, hub.addr, "/healthz").await.0, 200);
    })
    .await;
}

#[tokio::test]
async fn wss_sockets_count_against_the_limits_and_shutdown_reaches_them() {
    within(LIMIT, async {
        let ca = TestCa::new();
        let served = Served::new(&ca, &ca.issue("first"));
        let mut hub = served.start_hub(&[("PRESENCE_MAX_CONNECTIONS", "1")]).await;
        let connector = ca.connector();
        let mut held = WssClient::connect(&connector, hub.addr, "/ws?user=alice").await;
        held.recv_type("welcome", ms(5000)).await;
        let refused = WssClient::try_connect(&connector, hub.addr, "/ws?user=bob").await;
        assert_eq!(refused.err(), Some(503), "the node limit covers WSS");

        hub.signal(SIGTERM);
        let terminated = held.recv_type("terminated", ms(3000)).await;
        assert_eq!(terminated["reason"], "shutdown");
        assert_eq!(held.recv_close(ms(3000)).await, Some(1001));
        let status = tokio::time::timeout(ms(5000), hub.child.wait())
            .await
            .expect("exits in time")
            .unwrap();
        assert_eq!(status.code(), Some(0));
    })
    .await;
}

/// The leaf a new connection to `hub` is shown.
async fn leaf_served(ca: &TestCa, hub: &HubProcess) -> Vec<u8> {
    peer_leaf(&connect(&ca.connector(), hub.addr).await)
}

fn logged(hub: &HubProcess, needle: &str) -> bool {
    hub.logs
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains(needle))
}

#[tokio::test]
async fn sighup_reloads_the_certificate_for_new_handshakes_only() {
    within(LIMIT, async {
        let ca = TestCa::new();
        let (first, second) = (ca.issue("first"), ca.issue("second"));
        assert_ne!(first.der, second.der);
        let served = Served::new(&ca, &first);
        let hub = served.start_hub(&[]).await;
        let connector = ca.connector();
        let mut open = WssClient::connect(&connector, hub.addr, "/ws?user=alice").await;
        open.recv_type("welcome", ms(5000)).await;
        assert_eq!(open.leaf, first.der);

        served.install(&second);
        hub.signal(SIGHUP);
        eventually(ms(5000), "the new certificate", || async {
            (leaf_served(&ca, &hub).await == second.der).then_some(())
        })
        .await;
        open.send_json(json!({"type": "ping", "id": 2})).await;
        assert_eq!(open.recv_type("pong", ms(5000)).await["id"], 2);

        // A broken file: the reload fails, the second certificate stays.
        std::fs::write(&served.cert, "not a certificate\n").unwrap();
        hub.signal(SIGHUP);
        eventually(ms(5000), "the failed reload's log line", || async {
            logged(&hub, "TLS reload failed").then_some(())
        })
        .await;
        assert_eq!(leaf_served(&ca, &hub).await, second.der);
        let (status, metrics) = https_get(&connector, hub.addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("presence_tls_reloads_total{result=\"ok\"} 1"));
        assert!(metrics.contains("presence_tls_reloads_total{result=\"error\"} 1"));
        open.send_json(json!({"type": "ping", "id": 3})).await;
        assert_eq!(open.recv_type("pong", ms(5000)).await["id"], 3);
    })
    .await;
}
