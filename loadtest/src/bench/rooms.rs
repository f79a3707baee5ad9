//! Owns the tables and targets of the `rooms` and `resume` runs in
//! `docs/benchmarks.md`: their own figures do not fit the main table's
//! columns, so each kind gets a table of its own (printed only when such a
//! run is present).

use std::fmt::Write as _;

use serde_json::Value;

use super::{Goal, Labelled, errors, fmt, latency, num};

/// Targets of the rooms and resume runs, in document order.
pub const GOALS: &[Goal] = &[
    Goal {
        run: "rooms-5000x1",
        target: "rooms: one room of 5,000 members all watching, 500 changes/s: convergence p99 < 250 ms, no gap, resync or mismatch",
        judge: judge_rooms,
    },
    Goal {
        run: "rooms-950x20",
        target: "rooms: 950 rooms of 20 members (1,000 x 20 sockets exceed one hub's descriptor limit), 10 changes/s each: convergence p99 < 250 ms, no gap, resync or mismatch",
        judge: judge_rooms,
    },
    Goal {
        run: "rooms-5000-cross-node",
        target: "rooms: one room of 5,000 members over two nodes on one Redis, 500 changes/s: convergence p99 < 250 ms, no gap, resync or mismatch",
        judge: judge_rooms,
    },
    Goal {
        run: "resume-19000",
        target: "resume: 19,000 tabs drop and come back within 3 s: all resumed, no ended or offline event",
        judge: judge_resume,
    },
    Goal {
        run: "resume-cross-node",
        target: "resume: tabs of a node stopped with SIGTERM all resume on the other node within PRESENCE_RECONNECT_SPREAD + 1 s (6 s), no ended or offline event",
        judge: judge_resume_cross_node,
    },
];

/// A counter of the report, 0 when absent.
fn count(report: &Value, field: &str) -> u64 {
    report.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// Appends the rooms table, if any rooms run is present.
pub fn rooms_table(out: &mut String, reports: &[Labelled]) {
    let rooms: Vec<_> = reports
        .iter()
        .filter(|l| l.report["scenario"] == "rooms")
        .collect();
    if rooms.is_empty() {
        return;
    }
    out.push_str("| server | run | connected / target | errors | changes | convergence p50 / p99 / max ms | samples / expected | gaps | resyncs | mismatches |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for l in rooms {
        let r = &l.report;
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} | {} | {} | {} / {} | {} | {} | {} |",
            l.server,
            l.run,
            fmt(num(r, &["clients_connected"]), 0),
            fmt(num(r, &["clients_target"]), 0),
            errors(r),
            count(r, "room_changes"),
            latency(r, "room_convergence_ms"),
            fmt(num(r, &["room_convergence_ms", "count"]).or(Some(0.0)), 0),
            count(r, "room_deliveries_expected"),
            count(r, "room_gaps"),
            count(r, "room_resyncs"),
            count(r, "room_mismatches"),
        );
    }
    out.push('\n');
}

/// Appends the resume table, if any resume run is present.
pub fn resume_table(out: &mut String, reports: &[Labelled]) {
    let runs: Vec<_> = reports
        .iter()
        .filter(|l| l.report["scenario"] == "resume")
        .collect();
    if runs.is_empty() {
        return;
    }
    out.push_str("| server | run | connected / target | errors | resume p50 / p99 / max ms | drop -> resumed p50 / p99 / max ms | failed | ended events | offline events | measured s |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for l in runs {
        let r = &l.report;
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} |",
            l.server,
            l.run,
            fmt(num(r, &["clients_connected"]), 0),
            fmt(num(r, &["clients_target"]), 0),
            errors(r),
            latency(r, "resume_ms"),
            latency(r, "resume_gap_ms"),
            count(r, "resume_failed"),
            count(r, "resume_ended_events"),
            count(r, "resume_offline_events"),
            fmt(num(r, &["duration_s"]), 2),
        );
    }
    out.push('\n');
}

/// Judges a rooms target: p99 < 250 ms, nothing lost or different.
fn judge_rooms(r: &Value) -> (String, bool) {
    let p99 = num(r, &["room_convergence_ms", "p99"]).unwrap_or(f64::INFINITY);
    let n = num(r, &["room_convergence_ms", "count"]).unwrap_or(0.0);
    let (gaps, resyncs, mismatches) = (
        count(r, "room_gaps"),
        count(r, "room_resyncs"),
        count(r, "room_mismatches"),
    );
    let text = format!(
        "p99 {p99:.3} ms ({n:.0} samples), {gaps} gaps, {resyncs} resyncs, {mismatches} mismatches, {} errors",
        errors(r)
    );
    let met = p99 < 250.0 && n > 0.0 && gaps + resyncs + mismatches + errors(r) == 0;
    (text, met)
}

/// Judges the single-node resume storm.
fn judge_resume(r: &Value) -> (String, bool) {
    let resumed = num(r, &["resume_gap_ms", "count"]).unwrap_or(0.0);
    let target = num(r, &["clients_target"]).unwrap_or(f64::INFINITY);
    let secs = num(r, &["duration_s"]).unwrap_or(f64::INFINITY);
    let (failed, ended, offline) = resume_counts(r);
    let text = format!(
        "{resumed:.0} resumed in {secs:.2} s, {failed} failed, {ended} ended, {offline} offline"
    );
    let met = resumed >= target && failed + ended + offline == 0;
    (text, met)
}

/// Judges the resume after a node's SIGTERM (spread 5 s + 1 s).
fn judge_resume_cross_node(r: &Value) -> (String, bool) {
    let (text, all) = judge_resume(r);
    let max = num(r, &["resume_gap_ms", "max"]).unwrap_or(f64::INFINITY);
    (format!("{text}, slowest {max:.0} ms"), all && max < 6000.0)
}

/// `resume_failed`, `resume_ended_events`, `resume_offline_events`.
fn resume_counts(r: &Value) -> (u64, u64, u64) {
    (
        count(r, "resume_failed"),
        count(r, "resume_ended_events"),
        count(r, "resume_offline_events"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rooms_target_needs_samples_and_nothing_lost() {
        let good = json!({"errors": {}, "room_gaps": 0, "room_resyncs": 0, "room_mismatches": 0,
            "room_convergence_ms": {"p99": 40.0, "count": 10}});
        assert!(judge_rooms(&good).1);
        let gap = json!({"errors": {}, "room_gaps": 1, "room_resyncs": 0, "room_mismatches": 0,
            "room_convergence_ms": {"p99": 40.0, "count": 10}});
        assert!(!judge_rooms(&gap).1);
        let none = json!({"errors": {}, "room_convergence_ms": null});
        assert!(!judge_rooms(&none).1);
    }

    #[test]
    fn resume_target_needs_every_tab_resumed() {
        let good = json!({"clients_target": 2, "duration_s": 3.0, "resume_failed": 0,
            "resume_ended_events": 0, "resume_offline_events": 0,
            "resume_gap_ms": {"count": 2, "max": 900.0}});
        assert!(judge_resume(&good).1);
        assert!(judge_resume_cross_node(&good).1);
        let ended = json!({"clients_target": 2, "resume_ended_events": 1,
            "resume_gap_ms": {"count": 2, "max": 900.0}});
        assert!(!judge_resume(&ended).1);
    }
}
