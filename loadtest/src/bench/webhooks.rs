//! Owns the tables and targets of the `webhooks` group in
//! `docs/benchmarks.md`: the webhook runs (`webhooks-10k`,
//! `webhooks-bad-endpoints`) and the alert-cost pair (`mix-5000-alerts-on`,
//! `mix-5000-alerts-off`). Both targets compare two runs, so they are judged
//! here rather than through the one-report `Goal`s. Nothing is printed
//! when no such run is present.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Labelled, errors, fmt, latency, num};

/// The run with only the healthy endpoint.
pub const HEALTHY_RUN: &str = "webhooks-10k";
/// The same load with a dead and a slow endpoint added.
pub const BAD_RUN: &str = "webhooks-bad-endpoints";
/// `mix` at 5,000 clients with alert evaluation on.
pub const ALERTS_ON: &str = "mix-5000-alerts-on";
/// The same with `PRESENCE_ALERTS=off`.
pub const ALERTS_OFF: &str = "mix-5000-alerts-off";

/// The healthy endpoint's rate may fall by at most this fraction...
const RATE_TOLERANCE: f64 = 0.05;
/// ...and RTT p99 rise by at most this fraction or `RTT_SLACK_MS`,
/// whichever is larger, for "no measurable change".
const RTT_TOLERANCE: f64 = 0.10;
const RTT_SLACK_MS: f64 = 0.5;

/// A counter, if present.
fn count(report: &Value, field: &str) -> Option<f64> {
    num(report, &[field])
}

/// The hub run labelled `run`.
fn find<'a>(reports: &'a [Labelled], run: &str) -> Option<&'a Value> {
    reports
        .iter()
        .find(|l| l.server == "hub" && l.run == run)
        .map(|l| &l.report)
}

/// Appends the webhook table, the alert-cost table and their targets, when
/// any of their runs is present.
pub fn tables(out: &mut String, reports: &[Labelled]) {
    let hooks: Vec<_> = reports
        .iter()
        .filter(|l| l.report["scenario"] == "webhooks")
        .collect();
    let alerts = [ALERTS_ON, ALERTS_OFF].map(|run| find(reports, run));
    if hooks.is_empty() && alerts.iter().all(Option::is_none) {
        return;
    }
    if !hooks.is_empty() {
        webhook_table(out, &hooks);
    }
    if alerts.iter().any(Option::is_some) {
        alert_table(out, reports);
    }
    targets(out, reports);
}

/// One row per webhook run.
fn webhook_table(out: &mut String, hooks: &[&Labelled]) {
    out.push_str("| run | errors | events/s received | delivery p50 / p99 / max ms | sessions | expected / missing / duplicates | RTT p50 / p99 ms | hub healthy delivered / dropped | slow delivered / dropped | dead failed / dropped | hub CPU % |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for l in hooks {
        let r = &l.report;
        let pair = |a: &str, b: &str| format!("{} / {}", fmt(count(r, a), 0), fmt(count(r, b), 0));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {} / {} | {} / {} | {} | {} | {} | {} |",
            l.run,
            errors(r),
            fmt(count(r, "webhook_events_per_s"), 0),
            latency(r, "webhook_delivery_ms"),
            fmt(count(r, "webhook_sessions"), 0),
            fmt(count(r, "webhook_expected"), 0),
            fmt(count(r, "webhook_missing"), 0),
            fmt(count(r, "webhook_duplicates"), 0),
            fmt(num(r, &["rtt_ms", "p50"]), 3),
            fmt(num(r, &["rtt_ms", "p99"]), 3),
            pair("hub_healthy_delivered", "hub_healthy_dropped"),
            pair("hub_slow_delivered", "hub_slow_dropped"),
            pair("hub_dead_failed", "hub_dead_dropped"),
            fmt(count(r, "hub_cpu_percent"), 1),
        );
    }
    out.push('\n');
}

/// The two `mix` runs side by side.
fn alert_table(out: &mut String, reports: &[Labelled]) {
    out.push_str(
        "| run | connected / target | errors | hub CPU % of one core | RTT p99 ms | measured s |\n",
    );
    out.push_str("|---|---|---|---|---|---|\n");
    for run in [ALERTS_ON, ALERTS_OFF] {
        let Some(r) = find(reports, run) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {run} | {} / {} | {} | {} | {} | {} |",
            fmt(num(r, &["clients_connected"]), 0),
            fmt(num(r, &["clients_target"]), 0),
            errors(r),
            fmt(num(r, &["hub_cpu_percent"]), 1),
            fmt(num(r, &["rtt_ms", "p99"]), 3),
            fmt(num(r, &["duration_s"]), 2),
        );
    }
    out.push('\n');
}

/// The three targets of the group.
fn targets(out: &mut String, reports: &[Labelled]) {
    out.push_str("| webhook and alert target | measured here | met |\n|---|---|---|\n");
    let healthy = find(reports, HEALTHY_RUN);
    let bad = find(reports, BAD_RUN);
    let rows = [
        (
            "webhooks: >= 10,000 events/s to a local receiver, p99 event-to-delivery < 1.5 s, none missing",
            healthy.map(judge_rate),
        ),
        (
            "webhooks: a dead and a slow (5 s) endpoint change neither client RTT p99 nor the healthy endpoint's rate measurably (rate within 5 %, p99 within 10 % or 0.5 ms)",
            healthy.zip(bad).map(|(h, b)| judge_isolation(h, b)),
        ),
        (
            "alerts: evaluation adds < 5 % hub CPU to mix at 5,000 clients",
            find(reports, ALERTS_ON)
                .zip(find(reports, ALERTS_OFF))
                .map(|(on, off)| judge_alert_cost(on, off)),
        ),
    ];
    for (target, judged) in rows {
        let (text, met) = match judged {
            Some((text, met)) => (text, if met { "yes" } else { "**no**" }),
            None => ("not measured in this run".to_owned(), "-"),
        };
        let _ = writeln!(out, "| {target} | {text} | {met} |");
    }
    out.push('\n');
}

/// Rate, p99 delivery and completeness of the healthy run.
fn judge_rate(r: &Value) -> (String, bool) {
    let rate = count(r, "webhook_events_per_s").unwrap_or(0.0);
    let p99_ms = num(r, &["webhook_delivery_ms", "p99"]).unwrap_or(f64::INFINITY);
    let missing = count(r, "webhook_missing").unwrap_or(f64::INFINITY);
    let text = format!(
        "{rate:.0} events/s, p99 {:.0} ms, {missing:.0} missing, {} errors",
        p99_ms,
        errors(r)
    );
    let met = rate >= 10_000.0 && p99_ms < 1500.0 && missing == 0.0 && errors(r) == 0;
    (text, met)
}

/// The bad-endpoint run against the healthy-only run.
fn judge_isolation(healthy: &Value, bad: &Value) -> (String, bool) {
    let rate = |r: &Value| count(r, "webhook_events_per_s").unwrap_or(0.0);
    let p99 = |r: &Value| num(r, &["rtt_ms", "p99"]).unwrap_or(f64::INFINITY);
    let (rate_h, rate_b) = (rate(healthy), rate(bad));
    let (p99_h, p99_b) = (p99(healthy), p99(bad));
    let missing = count(bad, "webhook_missing").unwrap_or(f64::INFINITY);
    let text = format!(
        "events/s {rate_h:.0} -> {rate_b:.0}, RTT p99 {p99_h:.3} -> {p99_b:.3} ms, {missing:.0} missing at the healthy endpoint"
    );
    let rate_ok = rate_b >= rate_h * (1.0 - RATE_TOLERANCE);
    let rtt_ok = p99_b <= (p99_h * (1.0 + RTT_TOLERANCE)).max(p99_h + RTT_SLACK_MS);
    (text, rate_ok && rtt_ok && missing == 0.0)
}

/// Hub CPU with alerts on against off.
fn judge_alert_cost(on: &Value, off: &Value) -> (String, bool) {
    let cpu = |r: &Value| num(r, &["hub_cpu_percent"]);
    let (Some(cpu_on), Some(cpu_off)) = (cpu(on), cpu(off)) else {
        return ("hub CPU not sampled (no --hub-pid)".to_owned(), false);
    };
    if cpu_off <= 0.0 {
        return (format!("{cpu_on:.1} % on, {cpu_off:.1} % off"), false);
    }
    let added = (cpu_on - cpu_off) / cpu_off * 100.0;
    let text = format!("{cpu_on:.1} % on, {cpu_off:.1} % off of one core: {added:+.1} %");
    (text, added < 5.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hooks(rate: f64, p99_rtt: f64) -> Value {
        json!({"scenario": "webhooks", "errors": {}, "webhook_events_per_s": rate,
               "webhook_missing": 0, "webhook_delivery_ms": {"p99": 900.0},
               "rtt_ms": {"p99": p99_rtt}})
    }

    #[test]
    fn isolation_allows_noise_but_not_a_real_change() {
        assert!(judge_isolation(&hooks(10_000.0, 1.0), &hooks(9_800.0, 1.4)).1);
        assert!(!judge_isolation(&hooks(10_000.0, 1.0), &hooks(9_000.0, 1.0)).1);
        assert!(!judge_isolation(&hooks(10_000.0, 10.0), &hooks(10_000.0, 12.0)).1);
        assert!(judge_rate(&hooks(10_000.0, 1.0)).1);
        assert!(!judge_rate(&hooks(9_999.0, 1.0)).1);
    }

    #[test]
    fn alert_cost_is_relative_to_the_run_without_alerts() {
        let cpu = |c: f64| json!({"hub_cpu_percent": c});
        assert!(judge_alert_cost(&cpu(104.0), &cpu(100.0)).1);
        assert!(!judge_alert_cost(&cpu(106.0), &cpu(100.0)).1);
        assert!(!judge_alert_cost(&json!({}), &cpu(100.0)).1);
    }

    #[test]
    fn nothing_is_printed_without_a_webhook_or_alert_run() {
        let reports = [Labelled {
            server: "hub".into(),
            run: "rtt-100".into(),
            report: json!({"scenario": "rtt"}),
        }];
        let mut out = String::new();
        tables(&mut out, &reports);
        assert!(out.is_empty(), "{out}");
    }
}
