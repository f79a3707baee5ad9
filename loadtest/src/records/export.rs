//! Owns the export measurement of the `records` scenario: reading
//! `GET /api/v1/sessions/export?format=csv` as it streams, counting rows
//! per second, and sampling the hub's resident memory while it does, so a
//! growing hub shows up as growth rather than as a rate.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::hub;

/// What the export measured.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// The request.
    pub path: String,
    /// Data rows read (the header row not counted).
    pub rows: u64,
    /// Bytes read.
    pub bytes: u64,
    /// From the request to the last row read.
    pub seconds: f64,
    /// `rows / seconds`.
    pub rows_per_s: f64,
    /// Whether the export ended by itself (else `max_rows` stopped it).
    pub complete: bool,
    /// Hub RSS when the export started.
    pub hub_rss_start_bytes: Option<u64>,
    /// Highest hub RSS sampled during the export (every 100 ms).
    pub hub_rss_max_bytes: Option<u64>,
    /// `max - start`.
    pub hub_rss_growth_bytes: Option<i64>,
    /// Why it stopped early, when it failed.
    pub error: Option<String>,
}

/// Streams the export at `base` + `path`, up to `max_rows` rows.
pub async fn measure(
    client: &reqwest::Client,
    base: &str,
    path: String,
    pid: u32,
    max_rows: u64,
) -> Exported {
    let rss_start = hub::rss(pid);
    let mut out = Exported {
        path,
        rows: 0,
        bytes: 0,
        seconds: 0.0,
        rows_per_s: 0.0,
        complete: false,
        hub_rss_start_bytes: rss_start,
        hub_rss_max_bytes: rss_start,
        hub_rss_growth_bytes: None,
        error: None,
    };
    let started = Instant::now();
    let result = stream(client, base, pid, max_rows, &mut out).await;
    out.seconds = started.elapsed().as_secs_f64();
    out.rows_per_s = if out.seconds > 0.0 {
        (out.rows as f64 / out.seconds).round()
    } else {
        0.0
    };
    out.error = result.err();
    out.hub_rss_growth_bytes = match (out.hub_rss_start_bytes, out.hub_rss_max_bytes) {
        (Some(a), Some(b)) => {
            Some(i64::try_from(b).unwrap_or(i64::MAX) - i64::try_from(a).unwrap_or(0))
        }
        _ => None,
    };
    out
}

async fn stream(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    max_rows: u64,
    out: &mut Exported,
) -> Result<(), String> {
    let mut response = client
        .get(format!("{base}{}", out.path))
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status().as_u16()));
    }
    let mut lines: u64 = 0;
    let mut sampled = Instant::now();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                out.bytes += chunk.len() as u64;
                lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            }
            Ok(None) => {
                out.complete = true;
                break;
            }
            Err(e) => return Err(format!("body: {e}")),
        }
        out.rows = lines.saturating_sub(1);
        if sampled.elapsed() >= Duration::from_millis(100) {
            sampled = Instant::now();
            out.hub_rss_max_bytes = out.hub_rss_max_bytes.max(hub::rss(pid));
        }
        if out.rows >= max_rows {
            break;
        }
    }
    out.rows = lines.saturating_sub(1);
    out.hub_rss_max_bytes = out.hub_rss_max_bytes.max(hub::rss(pid));
    Ok(())
}
