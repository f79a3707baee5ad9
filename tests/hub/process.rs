//! The real binary: exit codes, the start line, signals, memory per idle
//! connection.

use std::time::{Duration, Instant};

use crate::support::idp::{KeyKind, KeyPair, openssl};
use crate::support::temp::TempDir;
use crate::support::tls::TestCa;
use crate::support::{HubProcess, WsClient, ms, rss_bytes, within};

const LIMIT: Duration = Duration::from_secs(60);

fn run_binary(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"));
    command.env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run presence-hub")
}

/// PEM files `PRESENCE_JWT_PUBLIC_KEY` must refuse, each made by
/// `openssl`: a private key, a certificate and a P-384 public key.
struct WrongKeys {
    _dir: TempDir,
    private: String,
    certificate: String,
    p384: String,
}

fn wrong_keys(key: &KeyPair) -> WrongKeys {
    let dir = TempDir::new("wrong-keys");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let certificate = path("certificate.pem");
    let private = key.private_path();
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        private.to_str().unwrap(),
        "-subj",
        "/CN=idp.test",
        "-days",
        "1",
        "-out",
        &certificate,
    ]);
    let p384 = path("p384.pem");
    let p384_private = path("p384-private.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        &p384_private,
    ]);
    openssl(&["pkey", "-in", &p384_private, "-pubout", "-out", &p384]);
    WrongKeys {
        private: private.to_str().unwrap().to_string(),
        certificate,
        p384,
        _dir: dir,
    }
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let key = KeyPair::generate(KeyKind::P256);
    let public = key.public_path().to_str().unwrap().to_string();
    let wrong = wrong_keys(&key);
    let secret = "a-secret-of-at-least-thirty-two-bytes";
    let jwks = "https://idp.example/jwks.json";
    let ca = TestCa::new();
    let (leaf, other) = (ca.issue("leaf"), ca.issue("other"));
    let cert = leaf.chain.to_str().unwrap();
    let (key, other_key) = (leaf.key.to_str().unwrap(), other.key.to_str().unwrap());
    let cases: [(&[(&str, &str)], &str); 35] = [
        (
            &[("PRESENCE_ALLOWED_ORIGINS", ",,,")],
            "PRESENCE_ALLOWED_ORIGINS",
        ),
        (&[("PRESENCE_JWT_SECRET", "")], "PRESENCE_JWT_SECRET"),
        (&[("PRESENCE_JWT_SECRET", "short")], "PRESENCE_JWT_SECRET"),
        (
            &[("PRESENCE_CLUSTER_SECRET", "short")],
            "PRESENCE_CLUSTER_SECRET",
        ),
        (&[("PRESENCE_METRICS", "maybe")], "PRESENCE_METRICS"),
        (
            &[("PRESENCE_MAX_MESSAGE_BYTES", "lots")],
            "PRESENCE_MAX_MESSAGE_BYTES",
        ),
        (
            &[("PRESENCE_IDLE_AFTER", "5m"), ("PRESENCE_AWAY_AFTER", "1m")],
            "PRESENCE_AWAY_AFTER",
        ),
        (&[("PRESENCE_IDLE_AFTER", "soon")], "PRESENCE_IDLE_AFTER"),
        (&[("PRESENCE_BIND", "nowhere")], "PRESENCE_BIND"),
        (&[("PRESENCE_BIND", "0.0.0.0:0")], "PRESENCE_INSECURE_DEV"),
        (
            &[("PRESENCE_DATABASE_URL", "mysql://db/x")],
            "PRESENCE_DATABASE_URL",
        ),
        // A node's SQLite file cannot be shared by a cluster.
        (
            &[
                ("PRESENCE_REDIS_URL", "redis://127.0.0.1:1"),
                ("PRESENCE_DATABASE_URL", "sqlite://node.db"),
            ],
            "PRESENCE_DATABASE_URL",
        ),
        (
            &[
                ("PRESENCE_RESUME_GRACE", "2s"),
                ("PRESENCE_RECONNECT_SPREAD", "3s"),
            ],
            "PRESENCE_RECONNECT_SPREAD",
        ),
        (
            &[("PRESENCE_MAX_SESSION_AGE", "forever")],
            "PRESENCE_MAX_SESSION_AGE",
        ),
        (&[("PRESENCE_REDIS_URL", "http://x")], "PRESENCE_REDIS_URL"),
        (
            &[("PRESENCE_SESSION_RATE_PER_IP", "often")],
            "PRESENCE_SESSION_RATE_PER_IP",
        ),
        // One key mode at a time.
        (
            &[
                ("PRESENCE_JWT_SECRET", secret),
                ("PRESENCE_JWT_PUBLIC_KEY", &public),
            ],
            "PRESENCE_JWT_PUBLIC_KEY",
        ),
        (
            &[
                ("PRESENCE_JWT_PUBLIC_KEY", &public),
                ("PRESENCE_JWKS_URL", jwks),
            ],
            "PRESENCE_JWKS_URL",
        ),
        (
            &[("PRESENCE_JWT_SECRET", secret), ("PRESENCE_JWKS_URL", jwks)],
            "PRESENCE_JWKS_URL",
        ),
        (
            &[("PRESENCE_JWT_PUBLIC_KEY", "/nonexistent/key.pem")],
            "PRESENCE_JWT_PUBLIC_KEY",
        ),
        (
            &[("PRESENCE_JWT_PUBLIC_KEY", &wrong.private)],
            "PRESENCE_JWT_PUBLIC_KEY",
        ),
        (
            &[("PRESENCE_JWT_PUBLIC_KEY", &wrong.certificate)],
            "PRESENCE_JWT_PUBLIC_KEY",
        ),
        (
            &[("PRESENCE_JWT_PUBLIC_KEY", &wrong.p384)],
            "PRESENCE_JWT_PUBLIC_KEY",
        ),
        (
            &[("PRESENCE_JWKS_URL", "ftp://idp.example/jwks.json")],
            "PRESENCE_JWKS_URL",
        ),
        (&[("PRESENCE_JWKS_URL", "not a url")], "PRESENCE_JWKS_URL"),
        (&[("PRESENCE_JWKS_URL", "")], "PRESENCE_JWKS_URL"),
        (
            &[("PRESENCE_JWT_PUBLIC_KEY", "")],
            "PRESENCE_JWT_PUBLIC_KEY",
        ),
        (
            &[
                ("PRESENCE_JWKS_URL", jwks),
                ("PRESENCE_JWKS_REFRESH_INTERVAL", "10s"),
            ],
            "PRESENCE_JWKS_REFRESH_INTERVAL",
        ),
        // TLS needs both files, readable, the key the certificate's.
        (&[("PRESENCE_TLS_CERT", cert)], "PRESENCE_TLS_KEY"),
        (&[("PRESENCE_TLS_KEY", key)], "PRESENCE_TLS_CERT"),
        (
            &[("PRESENCE_TLS_CERT", ""), ("PRESENCE_TLS_KEY", key)],
            "PRESENCE_TLS_CERT",
        ),
        (
            &[
                ("PRESENCE_TLS_CERT", "/nonexistent/cert.pem"),
                ("PRESENCE_TLS_KEY", key),
            ],
            "PRESENCE_TLS_CERT",
        ),
        (
            &[
                ("PRESENCE_TLS_CERT", cert),
                ("PRESENCE_TLS_KEY", "/nonexistent/key.pem"),
            ],
            "PRESENCE_TLS_KEY",
        ),
        (
            &[("PRESENCE_TLS_CERT", cert), ("PRESENCE_TLS_KEY", other_key)],
            "PRESENCE_TLS_KEY",
        ),
        // A key file holds no certificate.
        (
            &[("PRESENCE_TLS_CERT", key), ("PRESENCE_TLS_KEY", key)],
            "PRESENCE_TLS_CERT",
        ),
    ];
    for (env, named) in cases {
        let output = run_binary(env);
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{env:?}: {stderr}");
    }
}

#[test]
fn help_documents_every_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "PRESENCE_BIND",
        "PRESENCE_JWT_SECRET",
        "PRESENCE_JWT_PUBLIC_KEY",
        "PRESENCE_JWKS_URL",
        "PRESENCE_JWKS_REFRESH_INTERVAL",
        "PRESENCE_JWKS_MIN_REFRESH_INTERVAL",
        "PRESENCE_REDIS_URL",
        "PRESENCE_NAMESPACE",
        "PRESENCE_NODE_ID",
        "PRESENCE_IDLE_AFTER",
        "PRESENCE_AWAY_AFTER",
        "PRESENCE_HEARTBEAT_INTERVAL",
        "PRESENCE_DEAD_AFTER",
        "PRESENCE_HTTP_SESSION_TTL",
        "PRESENCE_NODE_TIMEOUT",
        "PRESENCE_MAX_SESSIONS_PER_USER",
        "PRESENCE_MAX_MESSAGE_BYTES",
        "PRESENCE_HISTORY_RETENTION",
        "PRESENCE_ALLOWED_ORIGINS",
        "PRESENCE_TRUSTED_PROXIES",
        "PRESENCE_INSECURE_DEV",
        "PRESENCE_HISTORY_FILE",
        "PRESENCE_DATABASE_URL",
        "PRESENCE_TLS_CERT",
        "PRESENCE_TLS_KEY",
        "PRESENCE_API_RATE_LIMIT",
        "PRESENCE_METRICS",
        "PRESENCE_LOG_FORMAT",
        "PRESENCE_MAX_CONNECTIONS",
        "PRESENCE_MAX_CONNECTIONS_PER_IP",
        "PRESENCE_HANDSHAKE_TIMEOUT",
        "PRESENCE_RESUME_GRACE",
        "PRESENCE_RECONNECT_SPREAD",
        "PRESENCE_TOKEN_REFRESH_WINDOW",
        "PRESENCE_MAX_SESSION_AGE",
        "PRESENCE_SESSION_RATE_PER_USER",
        "PRESENCE_SESSION_RATE_PER_IP",
    ] {
        assert!(help.contains(variable), "--help mentions {variable}");
    }
    // Switches take 1/0, yes/no and on/off too: listing only true and
    // false would mislead.
    assert!(!help.contains("[possible values: true, false]"), "{help}");
}

#[tokio::test]
async fn a_public_key_is_not_dev_mode_so_the_hub_may_bind_any_address() {
    within(LIMIT, async {
        let key = KeyPair::generate(KeyKind::Ed25519);
        let public = key.public_path();
        let hub = HubProcess::start(&[
            ("PRESENCE_JWT_PUBLIC_KEY", public.to_str().unwrap()),
            ("PRESENCE_BIND", "0.0.0.0:0"),
        ])
        .await;
        // Dev mode would have exited 2 rather than bind 0.0.0.0.
        assert!(hub.addr.ip().is_unspecified(), "{}", hub.addr);
        let logs = hub.logs.lock().unwrap().join("\n");
        assert!(!logs.contains("DEV MODE"), "{logs}");
        assert!(
            logs.contains("public_key"),
            "the start line names the key source: {logs}"
        );
    })
    .await;
}

#[test]
fn a_bad_redis_url_is_named_and_its_password_hidden() {
    let output = run_binary(&[("PRESENCE_REDIS_URL", "http://user:s3cret@x")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PRESENCE_REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("PRESENCE_HISTORY_FILE"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[tokio::test]
async fn sigterm_terminates_clients_and_exits_0_within_5_seconds() {
    within(LIMIT, async {
        let mut hub = HubProcess::start(&[]).await;
        let mut client = WsClient::connect(&hub.ws_url("/ws?user=alice")).await;
        client.recv_type("welcome", ms(5000)).await;
        let started = Instant::now();
        hub.signal(15);
        assert_eq!(
            client.recv_type("terminated", ms(3000)).await["reason"],
            "shutdown"
        );
        assert_eq!(client.recv_close(ms(3000)).await, Some(1001));
        let status = tokio::time::timeout(ms(5000), hub.child.wait())
            .await
            .expect("exits in time")
            .unwrap();
        assert_eq!(status.code(), Some(0));
        assert!(started.elapsed() < ms(5000));
    })
    .await;
}

#[tokio::test]
async fn json_logs_carry_the_start_line() {
    within(LIMIT, async {
        let hub = HubProcess::start(&[("PRESENCE_LOG_FORMAT", "json")]).await;
        assert!(hub.addr.port() > 0);
    })
    .await;
}

/// The hub's JSON log lines (fields flattened) whose `event` is `event`.
fn log_events(hub: &HubProcess, event: &str) -> Vec<serde_json::Value> {
    let lines = hub.logs.lock().unwrap().clone();
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["event"] == event)
        .collect()
}

#[tokio::test]
async fn json_logs_give_a_siem_one_line_per_session_start_end_and_audit_event() {
    within(LIMIT, async {
        let hub = HubProcess::start(&[("PRESENCE_LOG_FORMAT", "json")]).await;
        let (_client, id) = hub.client("user=alice&org=acme").await;
        let deleted = reqwest::Client::new()
            .delete(hub.http(&format!("/api/v1/sessions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200);
        crate::support::eventually(ms(5000), "the three lines", || async {
            let audit = log_events(&hub, "audit");
            let done = !log_events(&hub, "session.ended").is_empty() && !audit.is_empty();
            done.then_some(())
        })
        .await;
        let started = &log_events(&hub, "session.started")[0];
        assert_eq!(started["session_id"], id.as_str());
        assert_eq!(started["user_id"], "alice");
        assert_eq!(started["org"], "acme");
        let ended = &log_events(&hub, "session.ended")[0];
        assert_eq!(ended["session_id"], id.as_str());
        assert_eq!(ended["cause"], "terminated");
        let audit = log_events(&hub, "audit");
        let terminate = audit
            .iter()
            .find(|a| a["action"] == "session.terminate")
            .unwrap_or_else(|| panic!("{audit:?}"));
        assert_eq!(terminate["target_session_id"], id.as_str());
        assert_eq!(terminate["result"], "ok");
    })
    .await;
}

/// A regression guard, not the benchmark (see docs/benchmarks.md).
#[tokio::test]
async fn idle_connections_cost_under_16_kib_each() {
    within(LIMIT, async {
        let hub = HubProcess::start(&[]).await;
        let pid = hub.pid();
        // Warm up allocator arenas and lazy statics.
        let mut warm = Vec::new();
        for i in 0..50 {
            let mut client = WsClient::connect(&hub.ws_url(&format!("/ws?user=warm{i}"))).await;
            client.recv_type("welcome", ms(5000)).await;
            warm.push(client);
        }
        tokio::time::sleep(ms(300)).await;
        let before = rss_bytes(pid);
        let count = 400;
        let mut clients = Vec::with_capacity(count);
        for i in 0..count {
            let mut client = WsClient::connect(&hub.ws_url(&format!("/ws?user=idle{i}"))).await;
            client.recv_type("welcome", ms(5000)).await;
            clients.push(client);
        }
        tokio::time::sleep(ms(500)).await;
        let after = rss_bytes(pid);
        let per_connection = after.saturating_sub(before) / count as u64;
        assert!(
            per_connection < 16 * 1024,
            "{per_connection} bytes per idle connection"
        );
    })
    .await;
}
