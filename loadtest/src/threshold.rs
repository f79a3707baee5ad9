//! Owns pass/fail thresholds on a finished report: `--fail-if` expressions
//! (`rtt.p99>5ms`, `errors>0`, `room_gaps>0`) and the rule that a run in
//! which fewer clients connected than asked for fails.
//!
//! A field is a dot path into the JSON report; a first segment `x` also
//! finds `x_ms` (so `rtt.p99` is `rtt_ms.p99`), and `errors` is the total of
//! the errors object. Durations (`us`, `ms`, `s`) compare in milliseconds.
//! A field that is absent or `null` (nothing measured) fails the check, so
//! a typo cannot pass silently.

use anyhow::{Result, bail};
use serde_json::Value;

/// One `--fail-if` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    text: String,
    path: Vec<String>,
    op: Op,
    value: f64,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Threshold {
    /// Parses `field<op>value[unit]` with `op` one of `>`, `>=`, `<`, `<=`.
    pub fn parse(text: &str) -> Result<Self> {
        let Some(at) = text.find(['>', '<']) else {
            bail!(
                "--fail-if {text:?}: expected FIELD>VALUE, FIELD>=VALUE, FIELD<VALUE or FIELD<=VALUE"
            );
        };
        let (field, rest) = text.split_at(at);
        let (op, value) = match rest.as_bytes() {
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', ..] => (Op::Gt, &rest[1..]),
            _ => (Op::Lt, &rest[1..]),
        };
        let field = field.trim();
        if field.is_empty() {
            bail!("--fail-if {text:?}: no field before the comparison");
        }
        Ok(Self {
            text: text.to_owned(),
            path: field.split('.').map(str::to_owned).collect(),
            op,
            value: parse_value(text, value.trim())?,
        })
    }

    /// Why `report` fails this threshold, or `None` when it passes.
    pub fn failure(&self, report: &Value) -> Option<String> {
        let Some(actual) = lookup(report, &self.path) else {
            return Some(format!("{}: not measured in this run", self.text));
        };
        let fails = match self.op {
            Op::Gt => actual > self.value,
            Op::Ge => actual >= self.value,
            Op::Lt => actual < self.value,
            Op::Le => actual <= self.value,
        };
        fails.then(|| format!("{}: measured {actual}", self.text))
    }
}

/// A number with an optional duration unit, in milliseconds for durations.
fn parse_value(text: &str, value: &str) -> Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n * scale),
        _ => bail!("--fail-if {text:?}: {value:?} is not a number (units: us, ms, s)"),
    }
}

/// The number at `path`; `errors` alone is the total of the errors object.
fn lookup(report: &Value, path: &[String]) -> Option<f64> {
    let (first, rest) = path.split_first()?;
    if first == "errors" && rest.is_empty() {
        let errors = report.get("errors")?.as_object()?;
        return Some(errors.values().filter_map(Value::as_u64).sum::<u64>() as f64);
    }
    let root = report
        .get(first.as_str())
        .or_else(|| report.get(format!("{first}_ms").as_str()))?;
    rest.iter()
        .try_fold(root, |v, key| v.get(key.as_str()))
        .and_then(Value::as_f64)
}

/// Every reason `report` fails: too few clients, then each threshold.
pub fn failures(report: &Value, thresholds: &[Threshold]) -> Vec<String> {
    let mut out = Vec::new();
    let connected = report["clients_connected"].as_u64().unwrap_or(0);
    let target = report["clients_target"].as_u64().unwrap_or(0);
    if connected < target {
        out.push(format!("only {connected} of {target} clients connected"));
    }
    out.extend(thresholds.iter().filter_map(|t| t.failure(report)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({"clients_target": 10, "clients_connected": 10,
               "errors": {"closed_0": 2, "pong_timeout": 1},
               "rtt_ms": {"p99": 4.5}, "propagation_ms": null, "room_gaps": 0})
    }

    #[test]
    fn latency_thresholds_read_the_ms_field_in_any_unit() {
        let r = report();
        assert!(
            Threshold::parse("rtt.p99>5ms")
                .unwrap()
                .failure(&r)
                .is_none()
        );
        assert!(
            Threshold::parse("rtt.p99>4ms")
                .unwrap()
                .failure(&r)
                .is_some()
        );
        assert!(
            Threshold::parse("rtt_ms.p99>=0.004s")
                .unwrap()
                .failure(&r)
                .is_some()
        );
        assert!(
            Threshold::parse("rtt.p99>4600us")
                .unwrap()
                .failure(&r)
                .is_none()
        );
    }

    #[test]
    fn errors_is_the_total_and_unmeasured_fields_fail() {
        let r = report();
        assert!(Threshold::parse("errors>2").unwrap().failure(&r).is_some());
        assert!(Threshold::parse("errors>3").unwrap().failure(&r).is_none());
        assert!(
            Threshold::parse("room_gaps>0")
                .unwrap()
                .failure(&r)
                .is_none()
        );
        assert!(
            Threshold::parse("propagation.p99>1ms")
                .unwrap()
                .failure(&r)
                .is_some()
        );
        assert!(Threshold::parse("rtt.p99=5").is_err());
        assert!(Threshold::parse("rtt.p99>fast").is_err());
    }

    #[test]
    fn fewer_clients_than_asked_for_fail() {
        let mut r = report();
        assert!(failures(&r, &[]).is_empty());
        r["clients_connected"] = json!(9);
        assert_eq!(failures(&r, &[]), ["only 9 of 10 clients connected"]);
    }
}
