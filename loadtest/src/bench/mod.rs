//! Owns turning JSON reports into the Markdown tables of `docs/benchmarks.md`
//! (hidden `table` subcommand, used by `scripts/bench`).
//!
//! Reports are named `SERVER:RUN` (e.g. `hub:rtt-1000`, `node:rtt-1000`).
//! It prints the results table, the rooms and resume tables (`rooms`), the
//! webhook and alert-cost tables (`webhooks`, only when such runs are
//! present), the targets table (hub runs only) and the side-by-side table;
//! it does not run anything.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

mod rooms;
mod webhooks;

/// One labelled report.
#[derive(Debug)]
struct Labelled {
    server: String,
    run: String,
    report: Value,
}

/// A target from the issue and how to judge it.
struct Goal {
    run: &'static str,
    target: &'static str,
    judge: fn(&Value) -> (String, bool),
}

/// The targets, in the order the document lists them.
const GOALS: &[Goal] = &[
    Goal {
        run: "hold-19k",
        target: "hold: 19,000 idle connections on one hub, ramp 5,000/s, zero errors, RSS growth < 8 KiB per connection",
        judge: judge_hold,
    },
    Goal {
        run: "rtt-1000",
        target: "rtt: >= 150,000 ping/pong per second at 1,000 clients",
        judge: judge_rtt_rate,
    },
    Goal {
        run: "rtt-100",
        target: "rtt: p99 < 1.5 ms at 100 clients",
        judge: judge_rtt_p99,
    },
    Goal {
        run: "propagation-1000",
        target: "propagation: p99 < 1 ms, 1,000 clients changing status once a second",
        judge: |r| judge_propagation(r, 1.0),
    },
    Goal {
        run: "propagation-5000",
        target: "propagation: p99 < 1.5 ms at 5,000 clients",
        judge: |r| judge_propagation(r, 1.5),
    },
    Goal {
        run: "propagation-cross-node",
        target: "propagation: p99 < 20 ms across two nodes through Redis",
        judge: |r| judge_propagation(r, 20.0),
    },
    Goal {
        run: "churn-10k",
        target: "churn: 10,000 reconnects complete within 3 s with no error",
        judge: judge_churn,
    },
];

/// Reads `SERVER:RUN=FILE` arguments and prints every table.
pub fn print_tables(args: &[String]) -> Result<()> {
    let reports = args.iter().map(|a| load(a)).collect::<Result<Vec<_>>>()?;
    let mut out = String::new();
    results_table(&mut out, &reports);
    out.push('\n');
    rooms::rooms_table(&mut out, &reports);
    rooms::resume_table(&mut out, &reports);
    webhooks::tables(&mut out, &reports);
    targets_table(&mut out, &reports);
    out.push('\n');
    side_by_side(&mut out, &reports);
    print!("{out}");
    Ok(())
}

/// Parses one `SERVER:RUN=FILE` argument and reads its report.
fn load(arg: &str) -> Result<Labelled> {
    let Some((label, file)) = arg.split_once('=') else {
        bail!("expected SERVER:RUN=FILE, got {arg:?}");
    };
    let Some((server, run)) = label.split_once(':') else {
        bail!("expected SERVER:RUN in {label:?}");
    };
    let path = PathBuf::from(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Labelled {
        server: server.to_owned(),
        run: run.to_owned(),
        report: serde_json::from_str(&text)
            .with_context(|| format!("{} is not a report", path.display()))?,
    })
}

/// A number field, if present.
fn num(report: &Value, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(report, |v, key| v.get(key))
        .and_then(Value::as_f64)
}

/// A number formatted with `digits` decimals, or an em dash.
fn fmt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// Total errors of a report.
fn errors(report: &Value) -> u64 {
    report["errors"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

/// `p50 / p99 / max` of a latency field.
fn latency(report: &Value, field: &str) -> String {
    if report.get(field).is_none() {
        return "-".to_owned();
    }
    format!(
        "{} / {} / {}",
        fmt(num(report, &[field, "p50"]), 3),
        fmt(num(report, &[field, "p99"]), 3),
        fmt(num(report, &[field, "max"]), 3)
    )
}

/// Appends the table of every run.
fn results_table(out: &mut String, reports: &[Labelled]) {
    out.push_str("| server | run | connected / target | errors | msgs/s | RTT p50 / p99 / max ms | propagation p50 / p99 / max ms (n) | connect p50 / p99 ms | hub RSS per conn | measured s |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for l in reports {
        let r = &l.report;
        let samples =
            num(r, &["propagation_ms", "count"]).map_or(String::new(), |n| format!(" ({n})"));
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} | {} | {} | {}{} | {} / {} | {} | {} |",
            l.server,
            l.run,
            fmt(num(r, &["clients_connected"]), 0),
            fmt(num(r, &["clients_target"]), 0),
            errors(r),
            fmt(num(r, &["msgs_per_s"]), 0),
            latency(r, "rtt_ms"),
            latency(r, "propagation_ms"),
            samples,
            fmt(num(r, &["connect_ms", "p50"]), 3),
            fmt(num(r, &["connect_ms", "p99"]), 3),
            rss_per_conn(r),
            fmt(num(r, &["duration_s"]), 2),
        );
    }
}

/// RSS per connection in KiB, or a dash.
fn rss_per_conn(report: &Value) -> String {
    num(report, &["rss_per_connection_bytes"])
        .map_or_else(|| "-".to_owned(), |b| format!("{:.1} KiB", b / 1024.0))
}

/// Appends the targets table (hub runs only).
fn targets_table(out: &mut String, reports: &[Labelled]) {
    out.push_str("| target | measured here | met |\n|---|---|---|\n");
    for goal in GOALS.iter().chain(rooms::GOALS) {
        let found = reports
            .iter()
            .find(|l| l.server == "hub" && l.run == goal.run);
        let (measured, met) = match found {
            Some(l) => {
                let (text, met) = (goal.judge)(&l.report);
                (text, if met { "yes" } else { "**no**" })
            }
            None => ("not measured in this run".to_owned(), "-"),
        };
        let _ = writeln!(out, "| {} | {measured} | {met} |", goal.target);
    }
}

/// Judges the hold target.
fn judge_hold(r: &Value) -> (String, bool) {
    let connected = num(r, &["clients_connected"]).unwrap_or(0.0);
    let per_conn = num(r, &["rss_per_connection_bytes"]);
    let text = format!(
        "{connected:.0} connected, {} errors, {}",
        errors(r),
        rss_per_conn(r)
    );
    let met = connected >= 19_000.0 && errors(r) == 0 && per_conn.is_some_and(|b| b < 8192.0);
    (text, met)
}

/// Judges the round-trip rate target.
fn judge_rtt_rate(r: &Value) -> (String, bool) {
    let rate = num(r, &["msgs_per_s"]).unwrap_or(0.0);
    (format!("{rate:.0} ping/pong per second"), rate >= 150_000.0)
}

/// Judges the RTT p99 target.
fn judge_rtt_p99(r: &Value) -> (String, bool) {
    let p99 = num(r, &["rtt_ms", "p99"]).unwrap_or(f64::INFINITY);
    (format!("p99 {p99:.3} ms"), p99 < 1.5)
}

/// Judges a propagation p99 target of `limit_ms`.
fn judge_propagation(r: &Value, limit_ms: f64) -> (String, bool) {
    let p99 = num(r, &["propagation_ms", "p99"]).unwrap_or(f64::INFINITY);
    let n = num(r, &["propagation_ms", "count"]).unwrap_or(0.0);
    let text = format!("p99 {p99:.3} ms ({n:.0} samples, {} errors)", errors(r));
    (text, p99 < limit_ms && errors(r) == 0)
}

/// Judges the churn target.
fn judge_churn(r: &Value) -> (String, bool) {
    let done = num(r, &["connect_ms", "count"]).unwrap_or(0.0);
    let secs = num(r, &["duration_s"]).unwrap_or(f64::INFINITY);
    let text = format!("{done:.0} reconnects in {secs:.2} s, {} errors", errors(r));
    (text, done >= 10_000.0 && secs <= 3.0 && errors(r) == 0)
}

/// Appends the hub-versus-Node table for runs both servers did.
fn side_by_side(out: &mut String, reports: &[Labelled]) {
    out.push_str("| run | hub msgs/s | node msgs/s | hub p99 ms | node p99 ms | hub RSS per conn | node RSS per conn |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for hub in reports.iter().filter(|l| l.server == "hub") {
        let Some(node) = reports
            .iter()
            .find(|l| l.server == "node" && l.run == hub.run)
        else {
            continue;
        };
        let p99 =
            |r: &Value| num(r, &["rtt_ms", "p99"]).or_else(|| num(r, &["propagation_ms", "p99"]));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            hub.run,
            fmt(num(&hub.report, &["msgs_per_s"]), 0),
            fmt(num(&node.report, &["msgs_per_s"]), 0),
            fmt(p99(&hub.report), 3),
            fmt(p99(&node.report), 3),
            rss_per_conn(&hub.report),
            rss_per_conn(&node.report),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn churn_target_needs_count_time_and_no_errors() {
        let report = json!({"errors": {}, "duration_s": 2.5, "connect_ms": {"count": 10000}});
        assert!(judge_churn(&report).1);
        let slow = json!({"errors": {}, "duration_s": 3.5, "connect_ms": {"count": 10000}});
        assert!(!judge_churn(&slow).1);
    }

    #[test]
    fn results_row_shows_connected_errors_and_latency() {
        let reports = [Labelled {
            server: "hub".into(),
            run: "rtt-100".into(),
            report: json!({
                "scenario": "rtt", "clients_target": 100, "clients_connected": 100,
                "errors": {"pong_timeout": 2}, "duration_s": 10.0, "msgs_per_s": 1234.0,
                "rtt_ms": {"p50": 0.1, "p90": 0.2, "p99": 0.3, "p999": 0.4, "max": 0.5, "count": 9},
                "connect_ms": {"p50": 1.0, "p90": 1.0, "p99": 2.0, "p999": 2.0, "max": 2.0, "count": 100}
            }),
        }];
        let mut out = String::new();
        results_table(&mut out, &reports);
        assert!(
            out.contains("| hub | rtt-100 | 100 / 100 | 2 | 1234 | 0.100 / 0.300 / 0.500 | - |"),
            "{out}"
        );
    }
}
