//! `GET /api/v1/stats/series`: the hub samples its online users and live
//! sessions into the records store (here every 200 ms through the test-only
//! `series_interval`), serves them by range, keeps them across a restart on
//! the same SQLite file, refuses bad parameters with 400 naming them and
//! non-admin tokens with 403.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, eventually, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "series-secret-of-at-least-32-bytes!";

async fn get(hub: &TestHub, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(hub.http(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The points of the last hour, once one shows `users` online.
async fn points_with(hub: &TestHub, token: Option<&str>, users: u64) -> Vec<Value> {
    eventually(ms(10_000), "a point with the online users", || async {
        let (status, body) = get(hub, "/api/v1/stats/series", token).await;
        assert_eq!(status, 200, "{body}");
        let points = body["points"].as_array().cloned().unwrap_or_default();
        points.iter().any(|p| p["users"] == users).then_some(points)
    })
    .await
}

#[tokio::test]
async fn the_series_has_points_of_the_online_users_and_sessions() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.series_interval = ms(200)).await;
        let (_a1, _) = hub.welcomed_client("alice").await;
        let (_a2, _) = hub.welcomed_client("alice").await;
        let (_b, _) = hub.welcomed_client("bob").await;
        let points = points_with(&hub, None, 2).await;
        let last = points.iter().rev().find(|p| p["users"] == 2).unwrap();
        assert_eq!(last["sessions"], 3, "{last}");
        let (_, stats) = get(&hub, "/api/v1/stats", None).await;
        assert_eq!(stats["online_users"], last["users"]);
        assert_eq!(stats["sessions"]["live"], last["sessions"]);
        let times: Vec<i64> = points
            .iter()
            .map(|p| {
                let at = p["at"].as_str().unwrap();
                chrono::DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .timestamp_millis()
            })
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "oldest first, one per bucket: {times:?}"
        );
        assert!(
            times.iter().all(|t| t % 200 == 0),
            "bucket starts: {times:?}"
        );
        let (_, body) = get(&hub, "/api/v1/stats/series", None).await;
        assert_eq!(body["interval_ms"], 200);
        // A range that ends before the first point has none.
        let (status, early) = get(
            &hub,
            "/api/v1/stats/series?to=2026-01-01T00:00:00Z&window=3600",
            None,
        )
        .await;
        assert_eq!(status, 200, "{early}");
        assert_eq!(early["points"], json!([]));
        assert_eq!(early["from"], "2025-12-31T23:00:00.000Z");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn points_survive_a_restart_on_the_same_sqlite_file() {
    within(LIMIT, async {
        let dir = crate::support::temp::TempDir::new("series");
        let url = format!("sqlite://{}", dir.join("records.db").display());
        let configure = |c: &mut presence_hub::Config| {
            c.database_url = Some(url.clone());
            c.series_interval = ms(200);
        };
        let hub = TestHub::start(configure).await;
        let (client, _) = hub.welcomed_client("alice").await;
        let before = points_with(&hub, None, 1).await;
        client.close().await;
        hub.shutdown().await;

        // Sampled rarely now, so what is read back is what was kept.
        let hub = TestHub::start(|c| {
            c.database_url = Some(url.clone());
            c.series_interval = Duration::from_secs(3600);
        })
        .await;
        let (status, body) = get(&hub, "/api/v1/stats/series", None).await;
        assert_eq!(status, 200, "{body}");
        let after = body["points"].as_array().cloned().unwrap_or_default();
        for point in before.iter().filter(|p| p["users"] == 1) {
            assert!(after.contains(point), "{point} was kept: {after:?}");
        }
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_them() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        for (query, name) in [
            ("window=9", "window"),
            ("window=86401", "window"),
            ("window=1h", "window"),
            ("from=yesterday", "from"),
            ("to=soon", "to"),
            ("from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:01Z", "from"),
            ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
            ("from=2026-01-01T00:00:00Z&window=60", "window"),
        ] {
            let (status, body) = get(&hub, &format!("/api/v1/stats/series?{query}"), None).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["error"]["code"], "bad_parameter", "{query}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(name),
                "{query}: the 400 names {name}: {body}"
            );
        }
        let (status, body) = get(
            &hub,
            "/api/v1/stats/series?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            None,
        )
        .await;
        assert_eq!(status, 200, "24 h is the longest range: {body}");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn only_admins_read_the_series() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let (status, body) = get(&hub, "/api/v1/stats/series", None).await;
        assert_eq!(status, 401, "{body}");
        let user = jwt(SECRET, "erin", None, 300);
        let (status, body) = get(&hub, "/api/v1/stats/series", Some(&user)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
        let admin = jwt(SECRET, "root", Some("admin"), 300);
        let (status, body) = get(&hub, "/api/v1/stats/series", Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        hub.shutdown().await;
    })
    .await;
}
