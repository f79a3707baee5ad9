//! Owns the synthetic ended sessions of the `records` scenario: who the
//! users are (orgs, teams, names, emails), how their sessions spread over
//! the days (a working-day curve), what they ran on (devices, browsers,
//! apps), what metadata they carried and how they ended; written as v1
//! history-file lines (the Session JSON the hub records), and the values the
//! queries pick from so every filter hits real rows.
//!
//! Everything is drawn from a seeded generator: the same seed and count give
//! the same file.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FIRST: [&str; 16] = [
    "Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Keiko", "Liam", "Mara", "Nadia", "Omar", "Priya",
];
const LAST: [&str; 16] = [
    "Martin",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Schmidt",
    "Novak",
    "Garcia",
    "Kowalski",
    "Haddad",
    "Fischer",
    "Rossi",
    "Dubois",
    "Yilmaz",
    "Nguyen",
    "Andersen",
];
/// Fragments of the names above, for `q` (3 to 5 letters, mixed case).
pub const NAME_FRAGMENTS: [&str; 12] = [
    "mart", "OKAF", "lindq", "Moreau", "tanak", "schm", "nova", "garc", "Haddad", "fisch", "ross",
    "yilm",
];
const SECTIONS: [&str; 12] = [
    "/",
    "/inbox",
    "/projects",
    "/projects/board",
    "/reports",
    "/settings",
    "/billing",
    "/docs",
    "/search",
    "/calendar",
    "/chat",
    "/admin",
];
const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
const REGIONS: [&str; 4] = ["eu", "us", "apac", "latam"];
/// Teams per organisation.
const TEAMS: u32 = 6;
/// Nodes the sessions were held on.
pub const NODES: [&str; 4] = ["node-a", "node-b", "node-c", "node-d"];

/// Share of sessions started in each UTC hour (a working day, quieter nights).
const HOURLY: [u32; 24] = [
    2, 1, 1, 1, 2, 3, 5, 8, 11, 12, 12, 11, 10, 11, 12, 12, 11, 9, 7, 6, 5, 4, 3, 2,
];

/// (device_type, platform, browser, app, user agent, share in percent).
const DEVICES: [(&str, &str, &str, &str, &str, u32); 5] = [
    (
        "desktop",
        "Windows 10",
        "Chrome",
        "web",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        42,
    ),
    (
        "desktop",
        "Mac OS X",
        "Safari",
        "desktop",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        18,
    ),
    (
        "mobile",
        "iOS",
        "Mobile Safari",
        "ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        20,
    ),
    (
        "mobile",
        "Android",
        "Chrome Mobile",
        "android",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        15,
    ),
    (
        "tablet",
        "iPadOS",
        "Mobile Safari",
        "ios",
        "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        5,
    ),
];

/// (end cause, share in per mille).
const END_CAUSES: [(&str, u32); 10] = [
    ("client_closed", 700),
    ("timeout", 150),
    ("token_expired", 40),
    ("terminated", 30),
    ("shutdown", 30),
    ("max_age", 20),
    ("revoked", 10),
    ("node_lost", 10),
    ("policy", 5),
    ("session_limit", 5),
];

/// The shape of the data set.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Sessions in the whole set.
    pub count: u64,
    /// Distinct users.
    pub users: u32,
    /// Distinct organisations (each user belongs to one).
    pub orgs: u32,
    /// Days the sessions are spread over, ending an hour before `now_ms`.
    pub days: u32,
    /// Unix ms the set ends at (the run's start).
    pub now_ms: i64,
    /// Seed of the generator.
    pub seed: u64,
}

impl Shape {
    /// The first `connected_at` of the set, Unix ms.
    pub fn start_ms(&self) -> i64 {
        self.end_ms() - i64::from(self.days) * 86_400_000
    }

    /// Nothing starts after this (an hour before `now_ms`), so every
    /// session has ended before the run.
    pub fn end_ms(&self) -> i64 {
        self.now_ms - 3_600_000
    }
}

/// User `u`'s identity.
pub fn user_id(u: u32) -> String {
    format!("user-{u:05}")
}

/// Org of user `u`.
pub fn org(shape: &Shape, u: u32) -> String {
    format!("org-{:03}", u % shape.orgs.max(1))
}

/// Team of user `u` (teams belong to one org).
pub fn team(shape: &Shape, u: u32) -> String {
    format!("{}-team-{}", org(shape, u), (u / shape.orgs.max(1)) % TEAMS)
}

/// Email of user `u`.
pub fn email(shape: &Shape, u: u32) -> String {
    let (first, last) = names(u);
    format!(
        "{}.{}{u}@{}.example.com",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase(),
        org(shape, u)
    )
}

fn names(u: u32) -> (&'static str, &'static str) {
    let first = FIRST[(u as usize) % FIRST.len()];
    let last = LAST[(u as usize / FIRST.len()) % LAST.len()];
    (first, last)
}

/// Meta values of user `u`: plan, region, seats, beta.
fn meta_of(u: u32) -> (&'static str, &'static str, u32, bool) {
    let plan = PLANS[(u as usize * 7 / 3) % PLANS.len()];
    let region = REGIONS[(u as usize / 5) % REGIONS.len()];
    (plan, region, 1 + (u % 50), u.is_multiple_of(9))
}

/// A meta filter that matches users: `(key, value)` pairs as query text.
pub fn meta_pairs(rng: &mut impl Rng) -> [(String, String); 2] {
    let u: u32 = rng.random_range(0..10_000);
    let (plan, region, seats, _) = meta_of(u);
    [
        ("plan".to_owned(), plan.to_owned()),
        if rng.random_bool(0.5) {
            ("region".to_owned(), region.to_owned())
        } else {
            ("seats".to_owned(), seats.to_string())
        },
    ]
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Unix ms now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Maps a fraction of a day onto the hourly curve (monotonic, so sessions
/// written in index order are in `connected_at` order, as a hub writes them).
fn day_curve(fraction: f64) -> f64 {
    let total: u32 = HOURLY.iter().sum();
    let target = fraction * f64::from(total);
    let mut seen = 0.0;
    for (hour, share) in HOURLY.iter().enumerate() {
        let share = f64::from(*share);
        if seen + share >= target {
            return (hour as f64 + (target - seen) / share) / 24.0;
        }
        seen += share;
    }
    1.0
}

/// When session `i` of the set started, Unix ms.
fn connected_at(shape: &Shape, i: u64, rng: &mut StdRng) -> i64 {
    let span = (shape.end_ms() - shape.start_ms()) as f64;
    let at = i as f64 / shape.count.max(1) as f64 * span;
    let day = (at / 86_400_000.0).floor();
    let within = day_curve(at / 86_400_000.0 - day);
    let jitter = rng.random_range(0..1000);
    shape.start_ms() + ((day + within) * 86_400_000.0) as i64 + jitter
}

/// A session length: log-normal around ten minutes, 1 s .. 12 h.
fn duration_ms(rng: &mut StdRng) -> i64 {
    let (a, b): (f64, f64) = (rng.random_range(1e-9..1.0), rng.random());
    let normal = (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos();
    let seconds = (600f64.ln() + 1.3 * normal).exp().clamp(1.0, 43_200.0);
    (seconds * 1000.0) as i64
}

fn pick<T: Copy>(table: &[(T, u32)], rng: &mut StdRng) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (value, weight) in table {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    table[0].0
}

/// A user, skewed so some users have many more sessions than others.
fn pick_user(shape: &Shape, rng: &mut StdRng) -> u32 {
    let r: f64 = rng.random();
    ((r * r) * f64::from(shape.users)) as u32 % shape.users.max(1)
}

/// A session id drawn from the generator (UUID v4 layout).
fn session_id(rng: &mut StdRng) -> String {
    let (a, b): (u64, u64) = (rng.random(), rng.random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Writes sessions `from..to` of the set as history-file lines.
pub fn write_range(shape: &Shape, from: u64, to: u64, out: &mut impl Write) -> std::io::Result<()> {
    for i in from..to {
        let mut rng = StdRng::seed_from_u64(shape.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        write_session(shape, i, &mut rng, out)?;
    }
    Ok(())
}

fn write_session(
    shape: &Shape,
    i: u64,
    rng: &mut StdRng,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let u = pick_user(shape, rng);
    let (first, last) = names(u);
    let started = connected_at(shape, i, rng);
    let ended = (started + duration_ms(rng)).min(shape.now_ms - 1000);
    let (device_type, platform, browser, app, agent, _) = pick(&DEVICES.map(|d| (d, d.5)), rng);
    let transport = if rng.random_bool(0.9) { "ws" } else { "http" };
    let (plan, region, seats, beta) = meta_of(u);
    let msgs_in: u32 = rng.random_range(1..2000);
    let msgs_out: u32 = msgs_in + rng.random_range(0..200);
    let rtt = if transport == "ws" {
        format!("{:.1}", rng.random_range(5.0..180.0))
    } else {
        "null".to_owned()
    };
    let ip = if rng.random_bool(0.8) {
        format!("203.0.113.{}", u % 254 + 1)
    } else {
        format!("2001:db8:{:x}::{:x}", u % 4096, rng.random_range(1..0xffff))
    };
    writeln!(
        out,
        concat!(
            r#"{{"session_id":"{sid}","user_id":"{user}","name":"{first} {last}","org":"{org}","email":"{email}","team":"{team}","#,
            r#""node_id":"{node}","transport":"{transport}","status":"ended","manual":null,"connected_at":"{connected}","last_activity":"{last_activity}","#,
            r#""page":"{page}","rooms":[],"ip":"{ip}","user_agent":"{agent}","device":{{"platform":"{platform}","device_type":"{device_type}","browser":"{browser}"}},"#,
            r#""app":{{"name":"{app}","version":"3.{minor}.{patch}"}},"meta":{{"plan":"{plan}","region":"{region}","seats":{seats},"beta":{beta}}},"location":null,"#,
            r#""ended_at":"{ended_at}","end_cause":"{cause}","duration_s":{duration:.3},"reconnecting":false,"#,
            r#""traffic":{{"msgs_in":{msgs_in},"msgs_out":{msgs_out},"bytes_in":{bytes_in},"bytes_out":{bytes_out}}},"rtt_ms":{rtt}}}"#
        ),
        sid = session_id(rng),
        user = user_id(u),
        org = org(shape, u),
        email = email(shape, u),
        team = team(shape, u),
        node = NODES[rng.random_range(0..NODES.len())],
        connected = rfc3339(started),
        last_activity = rfc3339(ended - rng.random_range(0..(ended - started).max(1))),
        page = SECTIONS[rng.random_range(0..SECTIONS.len())],
        minor = rng.random_range(0..12),
        patch = rng.random_range(0..30),
        ended_at = rfc3339(ended),
        cause = pick(&END_CAUSES, rng),
        duration = (ended - started) as f64 / 1000.0,
        bytes_in = u64::from(msgs_in) * 90,
        bytes_out = u64::from(msgs_out) * 140,
        first = first,
        last = last,
        transport = transport,
        ip = ip,
        agent = agent,
        platform = platform,
        device_type = device_type,
        browser = browser,
        app = app,
        plan = plan,
        region = region,
        seats = seats,
        beta = beta,
        msgs_in = msgs_in,
        msgs_out = msgs_out,
        rtt = rtt,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            count: 1000,
            users: 200,
            orgs: 20,
            days: 35,
            now_ms: 1_800_000_000_000,
            seed: 7,
        }
    }

    #[test]
    fn lines_are_json_sessions_in_time_order_within_the_window() {
        let shape = shape();
        let mut out = Vec::new();
        write_range(&shape, 0, 1000, &mut out).unwrap();
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1000);
        let first = &lines[0];
        assert_eq!(first["status"], "ended");
        assert!(first["meta"]["seats"].is_number());
        assert!(first["email"].as_str().unwrap().contains('@'));
        let days = lines
            .iter()
            .map(|l| l["connected_at"].as_str().unwrap()[..10].to_owned())
            .collect::<std::collections::BTreeSet<_>>();
        assert!(days.len() >= 34, "{days:?}");
        let mut again = Vec::new();
        write_range(&shape, 0, 1000, &mut again).unwrap();
        assert_eq!(out, again, "the same seed gives the same set");
    }

    #[test]
    fn the_day_curve_is_monotonic_and_covers_the_day() {
        let mut last = 0.0;
        for step in 0..=100 {
            let at = day_curve(f64::from(step) / 100.0);
            assert!(at >= last && at <= 1.0);
            last = at;
        }
        assert!((last - 1.0).abs() < 1e-9);
    }
}
