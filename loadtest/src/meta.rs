//! Owns what a report says about its run: the command-line parameters
//! (with the JWT secret masked), the start time, this harness's version and
//! the hub's (`presence_build_info` on `/metrics`).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::target::Target;

/// The `run` object of the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// RFC 3339 UTC, when the run started.
    pub started_at: String,
    /// The arguments after the program name; secrets masked.
    pub parameters: Vec<String>,
    /// This harness's version.
    pub loadtest_version: &'static str,
    /// The hub's `presence_build_info{version}`, when it exports it.
    pub hub_version: Option<String>,
}

impl RunInfo {
    /// Describes the run starting now against `target`.
    pub async fn start(target: &Target) -> Self {
        Self {
            started_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            parameters: masked(std::env::args().skip(1)),
            loadtest_version: env!("CARGO_PKG_VERSION"),
            hub_version: hub_version(target).await,
        }
    }

    /// Describes the run starting now, when the hub cannot be asked.
    pub fn without_hub() -> Self {
        Self {
            started_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            parameters: masked(std::env::args().skip(1)),
            loadtest_version: env!("CARGO_PKG_VERSION"),
            hub_version: None,
        }
    }
}

/// The arguments with the value of `--jwt-secret` replaced.
fn masked(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push("***".to_owned());
            hide_next = false;
        } else if arg == "--jwt-secret" {
            hide_next = true;
            out.push(arg);
        } else if arg.starts_with("--jwt-secret=") {
            out.push("--jwt-secret=***".to_owned());
        } else {
            out.push(arg);
        }
    }
    out
}

/// Reads `version` of `presence_build_info` from the hub's `/metrics`.
async fn hub_version(target: &Target) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let response = client
        .get(target.hub.http_url("/metrics", ""))
        .send()
        .await
        .ok()?;
    build_version(&response.text().await.ok()?)
}

/// The `version` label of the first `presence_build_info` sample.
fn build_version(metrics: &str) -> Option<String> {
    let line = metrics
        .lines()
        .find(|l| l.starts_with("presence_build_info{"))?;
    let rest = &line[line.find("version=\"")? + "version=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_hub_version_is_read() {
        let args = [
            "hold",
            "--jwt-secret",
            "s3cret",
            "--jwt-secret=x",
            "--clients",
            "1",
        ];
        let out = masked(args.iter().map(|s| (*s).to_owned()));
        assert_eq!(
            out,
            [
                "hold",
                "--jwt-secret",
                "***",
                "--jwt-secret=***",
                "--clients",
                "1"
            ]
        );
        let metrics = "# TYPE presence_build_info gauge\npresence_build_info{commit=\"abc\",version=\"0.3.1\"} 1\n";
        assert_eq!(build_version(metrics).as_deref(), Some("0.3.1"));
    }
}
