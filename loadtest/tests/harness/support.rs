//! Owns what the harness tests share: starting a real hub (and a real
//! redis-server) on free loopback ports, running `presence-loadtest` with a
//! time bound, and reading its report.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// How long the hub may take to print its bound address.
const HUB_START: Duration = Duration::from_secs(30);
/// How long one harness run may take.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A running hub process, killed on drop.
pub struct Hub {
    pub child: Child,
    pub url: String,
}

impl Hub {
    /// Starts the hub in dev mode on 127.0.0.1:0.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the hub with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let bin = hub_binary();
        let mut command = Command::new(&bin);
        command
            .env("PRESENCE_BIND", "127.0.0.1:0")
            .env("PRESENCE_DATABASE_URL", "memory:")
            .env("PRESENCE_LOG_FORMAT", "text")
            .env("RUST_LOG", "presence_hub=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let lines = forward_lines(&mut child);
        let addr = wait_for_address(&lines).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("hub printed no bound 127.0.0.1 address within {HUB_START:?}")
        });
        Self {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hub binary: `$PRESENCE_HUB_BIN`, else the newest built one.
pub fn hub_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PRESENCE_HUB_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PRESENCE_HUB_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let candidates = candidate_binaries();
    candidates
        .iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max_by_key(|(modified, _): &(SystemTime, _)| *modified)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "no presence-hub binary found; build it (cargo build -p presence-hub) or set PRESENCE_HUB_BIN. Looked in: {candidates:?}"
            )
        })
}

/// `debug/presence-hub` and `release/presence-hub` in this test's target
/// directory and in `<workspace>/target`.
fn candidate_binaries() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // This test runs from <target>/<profile>/deps/harness-HASH.
    if let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
    {
        dirs.push(target);
    }
    if let Some(workspace) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        dirs.push(workspace.join("target"));
    }
    dirs.iter()
        .flat_map(|d| ["debug", "release"].map(|p| d.join(p).join("presence-hub")))
        .filter(|p| p.is_file())
        .collect()
}

/// Sends every stdout and stderr line of `child` to one channel, forever.
fn forward_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    rx
}

/// Reads log lines until one shows a `127.0.0.1:PORT` with a non-zero port.
fn wait_for_address(lines: &mpsc::Receiver<String>) -> Option<String> {
    let deadline = Instant::now() + HUB_START;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let line = lines.recv_timeout(left).ok()?;
        if let Some(addr) = loopback_address(&line) {
            return Some(addr);
        }
    }
    None
}

/// The first `127.0.0.1:PORT` in `line` whose port is not 0.
pub fn loopback_address(line: &str) -> Option<String> {
    line.match_indices("127.0.0.1:").find_map(|(at, prefix)| {
        let rest = &line[at + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let port: u16 = digits.parse().ok()?;
        (port != 0).then(|| format!("127.0.0.1:{port}"))
    })
}

/// Runs the harness with `args` plus `--json`, returns the report.
pub fn run_loadtest(name: &str, args: &[&str]) -> Value {
    run_loadtest_within(name, args, RUN_LIMIT)
}

/// `run_loadtest` with a time limit of its own.
pub fn run_loadtest_within(name: &str, args: &[&str], limit: Duration) -> Value {
    let json = std::env::temp_dir().join(format!(
        "presence-loadtest-{}-{name}.json",
        std::process::id()
    ));
    let output = run_limited(
        Command::new(env!("CARGO_BIN_EXE_presence-loadtest"))
            .args(args)
            .arg("--json")
            .arg(&json),
        limit,
    );
    assert!(output.0, "presence-loadtest {args:?} failed:\n{}", output.1);
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).unwrap()
}

/// Runs a command with a time limit; returns (success, stdout + stderr).
pub fn run_bounded(command: &mut Command) -> (bool, String) {
    let (status, output) = run_status(command);
    (status.success(), output)
}

/// Runs a command with a time limit; returns its status and output.
pub fn run_status(command: &mut Command) -> (std::process::ExitStatus, String) {
    run_status_within(command, RUN_LIMIT)
}

/// Runs a command within `limit`; returns (success, stdout + stderr).
fn run_limited(command: &mut Command, limit: Duration) -> (bool, String) {
    let (status, output) = run_status_within(command, limit);
    (status.success(), output)
}

/// Runs a command within `limit`; returns its status and output.
fn run_status_within(command: &mut Command, limit: Duration) -> (std::process::ExitStatus, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = forward_lines(&mut child);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("presence-loadtest did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    thread::sleep(Duration::from_millis(50));
    let output: Vec<String> = lines.try_iter().collect();
    (status, output.join("\n"))
}

/// Asserts the report's common counts: everyone connected, nothing failed.
pub fn assert_clean(report: &Value, scenario: &str, clients: u64) {
    assert_eq!(report["scenario"], scenario, "{report:#}");
    assert_eq!(report["clients_target"], clients, "{report:#}");
    assert_eq!(report["clients_connected"], clients, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert!(report["duration_s"].as_f64().unwrap() > 0.0, "{report:#}");
}

/// A throwaway redis-server on a free loopback port, killed on drop.
pub struct Redis {
    child: Child,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
}

impl Redis {
    /// Starts redis-server without persistence and waits until it listens.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        let deadline = Instant::now() + HUB_START;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// Starts hub node `node` on this Redis in namespace `ns`, with `extra`
    /// environment.
    pub fn start_node(&self, ns: &str, node: &str, extra: &[(&str, &str)]) -> Hub {
        let mut env = vec![
            ("PRESENCE_REDIS_URL", self.url.as_str()),
            ("PRESENCE_NAMESPACE", ns),
            ("PRESENCE_NODE_ID", node),
        ];
        env.extend_from_slice(extra);
        Hub::start_with(&env)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hub's `presence_connections` gauge, read from `/metrics` (0 when it
/// cannot be read).
pub fn open_connections(url: &str) -> u64 {
    use std::io::Write as _;
    let Some(addr) = url.strip_prefix("http://") else {
        return 0;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.lines()
        .find_map(|line| line.strip_prefix("presence_connections "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Waits until `check` holds, or panics after `limit`.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

impl Hub {
    /// Sends SIGTERM to the hub process.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }
}
