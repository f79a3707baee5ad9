//! Owns the live-ingest measurement of the `records` scenario: many short
//! HTTP-heartbeat sessions that all end at once (each user revoked with
//! `DELETE /api/v1/users/{id}/sessions`), so the engine hands them to the
//! history writer together; timed from the first revoke until the writer
//! has received every one and its backlog is empty
//! (`presence_sessions_ended_total`, `presence_history_backlog` on
//! `/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::time::Instant;

/// Sessions per simulated user.
const PER_USER: u64 = 50;
/// Requests in flight at once.
const IN_FLIGHT: usize = 64;
/// How long the writer may take to catch up.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// What the live ingest measured.
#[derive(Debug, Clone, Serialize)]
pub struct LiveIngest {
    /// Heartbeat sessions opened.
    pub sessions: u64,
    /// Heartbeats that failed.
    pub failed: u64,
    /// From the first revoke until the writer's backlog was empty with
    /// every session handed over.
    pub seconds: f64,
    /// `sessions / seconds`.
    pub sessions_per_s: f64,
    /// Whether every session reached the writer within the limit.
    pub complete: bool,
}

/// Opens `sessions` heartbeat sessions, ends them all at once and times
/// the writer.
pub async fn measure(client: &reqwest::Client, base: &str, sessions: u64) -> LiveIngest {
    let users = sessions.div_ceil(PER_USER).max(1);
    let failed = Arc::new(AtomicU64::new(0));
    futures_util::stream::iter(0..sessions)
        .map(|i| {
            let (client, failed) = (client.clone(), failed.clone());
            let url = format!(
                "{base}/api/v1/heartbeat?user=live-{:05}&org=live",
                i % users
            );
            async move {
                let ok = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"active":true,"page":"/live"}"#)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    let failed = failed.load(Ordering::Relaxed);
    let opened = sessions - failed;
    let before = ended_total(client, base).await.unwrap_or(0);
    let started = Instant::now();
    futures_util::stream::iter(0..users)
        .map(|u| {
            let client = client.clone();
            let url = format!("{base}/api/v1/users/live-{u:05}/sessions");
            async move {
                let _ = client.delete(url).send().await;
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    let complete = drained(client, base, before + opened).await;
    let seconds = started.elapsed().as_secs_f64();
    LiveIngest {
        sessions: opened,
        failed,
        seconds,
        sessions_per_s: (opened as f64 / seconds).round(),
        complete,
    }
}

/// Waits until the writer received `want` sessions in all and has none waiting.
async fn drained(client: &reqwest::Client, base: &str, want: u64) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < deadline {
        if let Some(text) = metrics(client, base).await {
            let ended = sum_of(&text, "presence_sessions_ended_total");
            let backlog = sum_of(&text, "presence_history_backlog");
            if ended >= want && backlog == 0 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn ended_total(client: &reqwest::Client, base: &str) -> Option<u64> {
    Some(sum_of(
        &metrics(client, base).await?,
        "presence_sessions_ended_total",
    ))
}

async fn metrics(client: &reqwest::Client, base: &str) -> Option<String> {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The sum over every sample of `name` (any labels) in Prometheus text.
fn sum_of(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest.rsplit_once('}')?.1
            } else {
                rest
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_labelled_counter() {
        let text = "# TYPE x counter\npresence_sessions_ended_total{cause=\"revoked\"} 40\npresence_sessions_ended_total{cause=\"timeout\"} 2\npresence_history_backlog 0\n";
        assert_eq!(sum_of(text, "presence_sessions_ended_total"), 42);
        assert_eq!(sum_of(text, "presence_history_backlog"), 0);
    }
}
