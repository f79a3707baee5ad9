//! Owns reading the hub's CPU time from `/proc/PID/stat` (user + system,
//! every thread) and turning two readings into a percentage of one core.
//! Without `--hub-pid` there is no figure.

use tokio::time::Instant;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// One reading: when, and the hub's CPU ticks so far.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    at: Instant,
    ticks: u64,
}

/// Reads the hub's CPU time now, if its pid is known and readable.
pub async fn read(pid: Option<u32>) -> Option<Reading> {
    let stat = tokio::fs::read_to_string(format!("/proc/{}/stat", pid?))
        .await
        .ok()?;
    Some(Reading {
        at: Instant::now(),
        ticks: parse_ticks(&stat)?,
    })
}

/// CPU used between two readings, in percent of one core.
pub fn percent(from: Reading, to: Reading) -> Option<f64> {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    (wall > 0.0).then(|| {
        let cpu = to.ticks.saturating_sub(from.ticks) as f64 / TICKS_PER_S;
        (cpu / wall * 1000.0).round() / 10.0
    })
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line; the
/// command name in parentheses may hold spaces, so fields count after it.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ticks_are_user_plus_system_after_the_command_name() {
        let stat =
            "4242 (presence hub) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_ticks(stat), Some(300));
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn percent_is_of_one_core() {
        let from = Reading {
            at: Instant::now(),
            ticks: 100,
        };
        let to = Reading {
            at: from.at + Duration::from_secs(2),
            ticks: 250,
        };
        assert_eq!(percent(from, to), Some(75.0));
    }
}
