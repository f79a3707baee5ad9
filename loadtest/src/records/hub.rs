//! Owns the hubs the `records` scenario starts itself: a `presence-hub`
//! process on `127.0.0.1:0` over the store under test, its log lines (the
//! bound address, the history-file import), how long it took to answer
//! `/readyz` with 200, its resident memory, and stopping it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

/// How the scenario starts hubs.
#[derive(Debug, Clone)]
pub struct HubSpec {
    /// The `presence-hub` binary.
    pub bin: PathBuf,
    /// `PRESENCE_DATABASE_URL` of the store under test.
    pub database_url: String,
    /// `PRESENCE_HISTORY_RETENTION` (longer than the data set's days).
    pub retention: String,
    /// Extra `KEY=VALUE` environment.
    pub env: Vec<(String, String)>,
}

/// A running hub, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Hub {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// When the process was spawned.
    pub spawned: Instant,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

/// How long a hub may take to bind (an import runs before it does).
const BIND_LIMIT: Duration = Duration::from_secs(3600);

impl HubSpec {
    /// Starts a hub; with `history_file` it imports that file at start.
    /// Returns once it printed its bound address (after any import).
    pub async fn start(&self, history_file: Option<&Path>) -> Result<Hub> {
        let mut command = Command::new(&self.bin);
        command
            .env("PRESENCE_BIND", "127.0.0.1:0")
            .env("PRESENCE_DATABASE_URL", &self.database_url)
            .env("PRESENCE_HISTORY_RETENTION", &self.retention)
            .env("PRESENCE_API_RATE_LIMIT", "1000000/s")
            .env("PRESENCE_LOG_FORMAT", "text")
            .env("RUST_LOG", "presence_hub=info")
            .env("NO_COLOR", "1")
            .env_remove("PRESENCE_HISTORY_FILE")
            .env_remove("PRESENCE_REDIS_URL")
            .env_remove("PRESENCE_JWT_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = history_file {
            command.env("PRESENCE_HISTORY_FILE", path);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        let lines = collect_lines(&mut child);
        let mut hub = Hub {
            child,
            url: String::new(),
            spawned,
            lines,
        };
        let deadline = spawned + BIND_LIMIT;
        loop {
            if let Some(addr) = hub.find_line(loopback_address) {
                hub.url = format!("http://{addr}");
                return Ok(hub);
            }
            if let Some(status) = hub.child.try_wait()? {
                bail!(
                    "presence-hub exited with {status} before binding:\n{}",
                    hub.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!("presence-hub did not bind within {BIND_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Hub {
    /// The process id (for RSS).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for `/readyz` 200; returns the time since spawn.
    pub async fn await_ready(&self, client: &reqwest::Client, limit: Duration) -> Result<Duration> {
        let url = format!("{}/readyz", self.url);
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(self.spawned.elapsed());
            }
            if Instant::now() > deadline {
                bail!("{url} did not answer 200 within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The first log line `find` accepts, mapped; `None` until one comes.
    fn find_line<T>(&self, find: impl Fn(&str) -> Option<T>) -> Option<T> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().find_map(|(_, line)| find(line))
    }

    /// When the hub logged the end of its history-file import, and how many
    /// records it said it imported.
    pub fn import_logged(&self) -> Option<(Instant, u64)> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().find_map(|(at, line)| {
            if !line.contains("history file imported") {
                return None;
            }
            Some((*at, field_u64(line, "imported=")?))
        })
    }

    /// The last log lines, for error messages.
    pub fn log_tail(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let skip = lines.len().saturating_sub(20);
        lines[skip..]
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the hub with SIGTERM (SIGKILL after 10 s) and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        self.terminate().await
    }

    async fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Keeps every stdout and stderr line of `child` with the time it arrived.
fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<(Instant, String)>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let pipes: Vec<Box<dyn std::io::Read + Send>> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    for pipe in pipes {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut kept = lines.lock().unwrap_or_else(|e| e.into_inner());
                kept.push((Instant::now(), line));
                if kept.len() > 10_000 {
                    kept.drain(100..5_000);
                }
            }
        });
    }
    lines
}

/// The first `127.0.0.1:PORT` in `line` whose port is not 0.
fn loopback_address(line: &str) -> Option<String> {
    line.match_indices("127.0.0.1:").find_map(|(at, prefix)| {
        let rest = &line[at + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let port: u16 = digits.parse().ok()?;
        (port != 0).then(|| format!("127.0.0.1:{port}"))
    })
}

/// The number after `key` in a text log line (`imported=1000`).
fn field_u64(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// `VmRSS` of a process, in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_and_the_import_count_from_log_lines() {
        let line = "2026-12-02T06:00:00Z INFO presence_hub: listening addr=127.0.0.1:41234";
        assert_eq!(loopback_address(line).as_deref(), Some("127.0.0.1:41234"));
        assert_eq!(loopback_address("bind 127.0.0.1:0"), None);
        let line = "INFO history file imported path=/tmp/x read=1000 imported=998";
        assert_eq!(field_u64(line, "imported="), Some(998));
    }
}
