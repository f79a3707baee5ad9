//! Owns the read side of the `records` scenario: the catalogue of list,
//! filter and search queries (first page of `GET /api/v1/sessions` and
//! `/api/v1/me/history`), `GET /api/v1/stats` and the analytics routes,
//! each with parameters drawn from the synthetic data so every request hits
//! real rows, timed by concurrent HTTP clients into HDR histograms.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;

use super::data::{self, NAME_FRAGMENTS, NODES, Shape};
use crate::report::Percentiles;
use crate::stats::{Micros, new_histogram};

/// A query of the catalogue: its name and how to draw one request's path.
pub struct Query {
    /// Report key.
    pub name: &'static str,
    make: fn(&Shape, &mut StdRng) -> String,
}

fn user(shape: &Shape, rng: &mut StdRng) -> u32 {
    let r: f64 = rng.random();
    ((r * r) * f64::from(shape.users)) as u32 % shape.users.max(1)
}

fn day_ms(shape: &Shape, rng: &mut StdRng, days: u32) -> (String, String) {
    let last = shape.days.saturating_sub(days).max(1);
    let from = shape.start_ms() + i64::from(rng.random_range(0..last)) * 86_400_000;
    let to = from + i64::from(days) * 86_400_000;
    (data::rfc3339(from), data::rfc3339(to))
}

fn ended(query: &str) -> String {
    format!("/api/v1/sessions?status=ended&{query}")
}

/// Every list, filter and search query of contract §6 and §10, first page.
pub fn catalogue() -> Vec<Query> {
    vec![
        Query {
            name: "ended",
            make: |_, _| "/api/v1/sessions?status=ended".to_owned(),
        },
        Query {
            name: "all",
            make: |_, _| "/api/v1/sessions?status=all".to_owned(),
        },
        Query {
            name: "user_id",
            make: |s, r| ended(&format!("user_id={}", data::user_id(user(s, r)))),
        },
        Query {
            name: "org",
            make: |s, r| ended(&format!("org={}", data::org(s, user(s, r)))),
        },
        Query {
            name: "node_id",
            make: |_, r| {
                ended(&format!(
                    "node_id={}",
                    NODES[r.random_range(0..NODES.len())]
                ))
            },
        },
        Query {
            name: "email",
            make: |s, r| ended(&format!("email={}", data::email(s, user(s, r)))),
        },
        Query {
            name: "team",
            make: |s, r| ended(&format!("team={}", data::team(s, user(s, r)))),
        },
        Query {
            name: "meta_one",
            make: |_, r| {
                let [(k, v), _] = data::meta_pairs(r);
                ended(&format!("meta.{k}={v}"))
            },
        },
        Query {
            name: "meta_two",
            make: |_, r| {
                let [(k1, v1), (k2, v2)] = data::meta_pairs(r);
                ended(&format!("meta.{k1}={v1}&meta.{k2}={v2}"))
            },
        },
        Query {
            name: "q_name",
            make: |_, r| {
                ended(&format!(
                    "q={}",
                    NAME_FRAGMENTS[r.random_range(0..NAME_FRAGMENTS.len())]
                ))
            },
        },
        Query {
            name: "q_user",
            make: |s, r| ended(&format!("q={}", &data::user_id(user(s, r))[2..])),
        },
        Query {
            name: "q_email",
            make: |s, r| ended(&format!("q={}", email_part(&data::email(s, user(s, r))))),
        },
        Query {
            name: "q_rare",
            make: |_, r| ended(&format!("q={:08x}", r.random::<u32>())),
        },
        Query {
            name: "q_short",
            make: |_, r| {
                ended(&format!(
                    "q={}",
                    ["ar", "Mo", "ko", "li", "na"][r.random_range(0..5)]
                ))
            },
        },
        Query {
            name: "q_org",
            make: |s, r| {
                let frag = NAME_FRAGMENTS[r.random_range(0..NAME_FRAGMENTS.len())];
                ended(&format!("org={}&q={frag}", data::org(s, user(s, r))))
            },
        },
        Query {
            name: "from_to_day",
            make: |s, r| {
                let (from, to) = day_ms(s, r, 1);
                ended(&format!("from={from}&to={to}"))
            },
        },
        Query {
            name: "org_from_to",
            make: |s, r| {
                let (from, to) = day_ms(s, r, 7);
                ended(&format!(
                    "org={}&from={from}&to={to}",
                    data::org(s, user(s, r))
                ))
            },
        },
        Query {
            name: "user_from_to",
            make: |s, r| {
                let (from, to) = day_ms(s, r, 7);
                ended(&format!(
                    "user_id={}&from={from}&to={to}",
                    data::user_id(user(s, r))
                ))
            },
        },
        Query {
            name: "meta_from_to",
            make: |s, r| {
                let (from, to) = day_ms(s, r, 1);
                let [(k, v), _] = data::meta_pairs(r);
                ended(&format!("meta.{k}={v}&from={from}&to={to}"))
            },
        },
        Query {
            name: "me_history",
            make: |s, r| format!("/api/v1/me/history?user={}", data::user_id(user(s, r))),
        },
    ]
}

/// The local part of an email, a part users search by.
fn email_part(email: &str) -> &str {
    email.split('@').next().unwrap_or(email)
}

/// `GET /api/v1/stats`.
pub fn stats_query() -> Query {
    Query {
        name: "stats",
        make: |_, _| "/api/v1/stats".to_owned(),
    }
}

/// The analytics routes over the last 30 days of the set.
pub fn analytics(shape: &Shape) -> Vec<(&'static str, String)> {
    let to = data::rfc3339(shape.now_ms);
    let from = data::rfc3339(shape.now_ms - 30 * 86_400_000);
    let range = format!("from={from}&to={to}");
    let a = "/api/v1/analytics";
    vec![
        (
            "heatmap_sessions_started",
            format!("{a}/heatmap?{range}&metric=sessions_started"),
        ),
        (
            "heatmap_online_users",
            format!("{a}/heatmap?{range}&metric=online_users"),
        ),
        (
            "durations_none",
            format!("{a}/durations?{range}&group_by=none"),
        ),
        (
            "durations_device_type",
            format!("{a}/durations?{range}&group_by=device_type"),
        ),
        (
            "durations_org",
            format!("{a}/durations?{range}&group_by=org"),
        ),
        (
            "durations_app",
            format!("{a}/durations?{range}&group_by=app"),
        ),
        (
            "durations_end_cause",
            format!("{a}/durations?{range}&group_by=end_cause"),
        ),
        ("daily", format!("{a}/daily?{range}")),
    ]
}

/// What one query measured.
#[derive(Debug, Clone, Serialize)]
pub struct Timed {
    /// An example of the requests sent.
    pub example: String,
    /// Latency of the answered requests (200), ms.
    pub latency_ms: Option<Percentiles>,
    /// Requests that did not answer 200 (by status or `error`).
    pub failed: BTreeMap<String, u64>,
    /// `total` of the first answer, when it has one: how many rows matched.
    pub total: Option<u64>,
    /// Whether the time budget ended the query before its request count.
    pub cut_by_budget: bool,
}

/// How a query is driven.
#[derive(Debug, Clone, Copy)]
pub struct Drive {
    /// Requests per query.
    pub requests: u32,
    /// Clients sending at once.
    pub concurrency: u32,
    /// No request starts after this much time on one query.
    pub budget: Duration,
    /// Seed of the parameter draws.
    pub seed: u64,
}

struct Shared {
    histogram: Micros,
    failed: BTreeMap<String, u64>,
    total: Option<u64>,
    sent: u32,
}

/// Sends `drive.requests` requests of `query` from `drive.concurrency`
/// clients and times them.
pub async fn time_query(
    client: &reqwest::Client,
    base: &str,
    shape: &Shape,
    query: &Query,
    drive: Drive,
) -> Timed {
    let shared = Arc::new(Mutex::new(Shared {
        histogram: new_histogram(),
        failed: BTreeMap::new(),
        total: None,
        sent: 0,
    }));
    let example = (query.make)(shape, &mut StdRng::seed_from_u64(drive.seed));
    let deadline = Instant::now() + drive.budget;
    let mut tasks = Vec::new();
    for worker in 0..drive.concurrency.max(1) {
        let (client, base, shape, make, shared) = (
            client.clone(),
            base.to_owned(),
            *shape,
            query.make,
            shared.clone(),
        );
        let mut rng = StdRng::seed_from_u64(drive.seed.wrapping_add(u64::from(worker) + 1));
        tasks.push(tokio::spawn(async move {
            loop {
                {
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if s.sent >= drive.requests || Instant::now() > deadline {
                        return;
                    }
                    s.sent += 1;
                }
                let path = make(&shape, &mut rng);
                let outcome = one_request(&client, &format!("{base}{path}")).await;
                let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok((took, total)) => {
                        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                        s.histogram.saturating_record(micros);
                        if s.total.is_none() {
                            s.total = total;
                        }
                    }
                    Err(kind) => *s.failed.entry(kind).or_default() += 1,
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let s = shared.lock().unwrap_or_else(|e| e.into_inner());
    Timed {
        example,
        latency_ms: Percentiles::of(&s.histogram),
        failed: s.failed.clone(),
        total: s.total,
        cut_by_budget: s.sent < drive.requests,
    }
}

/// One GET, timed until the whole body has arrived; its `total` if any.
pub async fn one_request(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Duration, Option<u64>), String> {
    let started = Instant::now();
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            "timeout".to_owned()
        } else {
            "request".to_owned()
        }
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        if e.is_timeout() {
            "timeout".to_owned()
        } else {
            "body".to_owned()
        }
    })?;
    let took = started.elapsed();
    if !status.is_success() {
        return Err(format!("status_{}", status.as_u16()));
    }
    let total = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("total").and_then(serde_json::Value::as_u64));
    Ok((took, total))
}

/// What one analytics route measured: sequential runs, each timed.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticsTimed {
    /// The request.
    pub path: String,
    /// Runs answered with 200, each in ms.
    pub runs_ms: Vec<f64>,
    /// The slowest answered run, ms.
    pub max_ms: Option<f64>,
    /// Runs that failed or ran past the timeout (by kind).
    pub failed: BTreeMap<String, u64>,
}

/// Times `runs` sequential requests of `path`; a run that fails or times
/// out ends the route's runs.
pub async fn time_analytics(
    client: &reqwest::Client,
    base: &str,
    path: String,
    runs: u32,
) -> AnalyticsTimed {
    let mut out = AnalyticsTimed {
        path,
        runs_ms: Vec::new(),
        max_ms: None,
        failed: BTreeMap::new(),
    };
    for _ in 0..runs {
        match one_request(client, &format!("{base}{}", out.path)).await {
            Ok((took, _)) => out.runs_ms.push((took.as_secs_f64() * 1e6).round() / 1e3),
            Err(kind) => {
                *out.failed.entry(kind).or_default() += 1;
                break;
            }
        }
    }
    out.max_ms = out.runs_ms.iter().copied().reduce(f64::max);
    out
}
