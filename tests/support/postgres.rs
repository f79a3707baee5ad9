//! A real PostgreSQL server for tests, from the `postgresql` package's
//! binaries (`/usr/lib/postgresql/*/bin`; `scripts/test` installs them).
//! Missing binaries fail the test with a message saying so, never a skip.
//!
//! Each server lives in its own temporary directory (data, log, unix
//! socket), listens on a free 127.0.0.1 port with trust authentication, and
//! runs as the `postgres` user when the tests run as root (`initdb` refuses
//! root). It is stopped and its directory removed on drop; a watchdog
//! process does the same if the test binary dies first. `shared()` is one
//! server per test binary; `database()` gives each test its own database,
//! so tests run in parallel against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

/// A running (or stopped, for an outage) PostgreSQL server.
pub struct PgServer {
    pub port: u16,
    root: PathBuf,
    bin: PathBuf,
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): \
             install the postgresql package (apt-get install postgresql; scripts/test does this)"
        ),
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    /// A new server of its own (for tests that stop it).
    pub fn start() -> Self {
        let bin = bin_dir();
        let port = super::free_port();
        let root = std::env::temp_dir().join(format!("presence-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        if running_as_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&root)
                .status()
                .expect("chown the PostgreSQL test directory");
            assert!(status.success(), "chown postgres {}", root.display());
        }
        let server = Self { port, root, bin };
        let data = server.data().display().to_string();
        server.run_as_postgres(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        server.watchdog();
        server.resume();
        server
    }

    /// One server for the whole test binary.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `program` of the server's binaries, as the `postgres` user when root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        }
    }

    fn run_as_postgres(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
        );
    }

    /// Stops the server and removes its directory once this test process
    /// is gone, however it ends.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let stop = if running_as_root() {
            format!("runuser -u postgres -- {pg_ctl}")
        } else {
            pg_ctl
        };
        // The outer shell returns at once; the loop lives on by itself.
        let script = format!(
            "(while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} -D '{data}' -m immediate stop; rm -rf '{root}') >/dev/null 2>&1 &",
            pid = std::process::id(),
            data = self.data().display(),
            root = self.root.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn the PostgreSQL watchdog");
    }

    /// Starts (again) on the same port and data; returns once it accepts
    /// connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.port,
            self.root.display()
        );
        let data = self.data().display().to_string();
        let log = self.root.join("log").display().to_string();
        self.run_as_postgres(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        );
    }

    /// Stops the server at once, as a crash or an outage would.
    pub fn stop(&self) {
        let data = self.data().display().to_string();
        self.run_as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database of its own; returns its URL.
    pub async fn database(&self, name: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let database = format!("t{}_{n}_{clean}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .execute(&mut admin)
        .await
        .expect("create a test database");
        let _ = admin.close().await;
        self.url(&database)
    }

    /// The server's directory (data, log, socket).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
