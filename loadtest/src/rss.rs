//! Owns reading the hub's resident memory: `/proc/PID/status` when the pid
//! is known, else `process_resident_memory_bytes` from `/metrics`.

use std::time::Duration;

use crate::target::Target;

/// Reads the hub's RSS in bytes, if it can be found.
pub async fn hub_rss(pid: Option<u32>, target: &Target) -> Option<u64> {
    match pid {
        Some(pid) => from_proc(pid).await,
        None => from_metrics(target).await,
    }
}

/// `VmRSS` of `/proc/PID/status`.
async fn from_proc(pid: u32) -> Option<u64> {
    let status = tokio::fs::read_to_string(format!("/proc/{pid}/status"))
        .await
        .ok()?;
    parse_vm_rss(&status)
}

/// Parses `VmRSS:   1234 kB` into bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `process_resident_memory_bytes` from the hub's Prometheus text.
async fn from_metrics(target: &Target) -> Option<u64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let text = client
        .get(target.hub.http_url("/metrics", ""))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    parse_metric(&text, "process_resident_memory_bytes")
}

/// The value of an unlabelled metric in Prometheus text.
fn parse_metric(text: &str, name: &str) -> Option<u64> {
    let value = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?;
    let value: f64 = value.split_whitespace().next()?.parse().ok()?;
    Some(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\thub\nVmRSS:\t   2048 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(2 * 1024 * 1024));
    }

    #[test]
    fn reads_a_prometheus_gauge() {
        let text =
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.2e+07\n";
        assert_eq!(
            parse_metric(text, "process_resident_memory_bytes"),
            Some(12_000_000)
        );
    }
}
