//! The analytics routes of contract v1.1 §10 against a real hub: shapes,
//! counts of real sessions, and 400s naming the bad parameter.

use std::time::Duration;

use serde_json::Value;

use crate::support::{TestHub, WsClient, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

async fn get(hub: &TestHub, path: &str) -> (u16, Value) {
    let response = reqwest::get(hub.http(path)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn real_sessions_show_in_the_heatmap_durations_and_daily_table() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let mut ended = WsClient::connect(&hub.ws_url("/ws?user=alice&org=acme")).await;
        ended.recv_type("welcome", ms(5000)).await;
        let (_live, _) = hub.welcomed_client("bob").await;
        // Overlap by more than the millisecond the times are kept in: an
        // end and a start at the same instant are a handover, not a peak.
        tokio::time::sleep(ms(50)).await;
        ended.close().await;
        eventually(ms(5000), "alice's session in history", || async {
            let (_, body) = get(&hub, "/api/v1/sessions?status=ended").await;
            (body["total"] == 1).then_some(())
        })
        .await;

        let (status, heat) = get(&hub, "/api/v1/analytics/heatmap").await;
        assert_eq!(status, 200);
        assert_eq!(
            (heat["metric"].as_str(), heat["tz"].as_str()),
            (Some("sessions_started"), Some("UTC"))
        );
        let cells = heat["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 7);
        assert!(cells.iter().all(|row| row.as_array().unwrap().len() == 24));
        let total: u64 = cells
            .iter()
            .flat_map(|row| row.as_array().unwrap())
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(total, 2, "both sessions started in the last 7 days");

        let (_, online) = get(
            &hub,
            "/api/v1/analytics/heatmap?metric=online_users&tz=Europe/Paris",
        )
        .await;
        let peak = online["cells"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap())
            .map(|n| n.as_u64().unwrap())
            .max();
        assert_eq!(peak, Some(2), "{online}");
        assert_eq!(online["tz"], "Europe/Paris");

        let (status, durations) = get(&hub, "/api/v1/analytics/durations?group_by=org").await;
        assert_eq!(status, 200);
        assert_eq!(durations["group_by"], "org");
        let groups = durations["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "only alice's session has ended");
        assert_eq!(groups[0]["key"], "acme");
        assert_eq!(groups[0]["sessions"], 1);

        let (status, daily) = get(&hub, "/api/v1/analytics/daily").await;
        assert_eq!(status, 200);
        let days = daily["days"].as_array().unwrap();
        assert!(days.len() >= 7, "{daily}");
        let today = days.last().unwrap();
        assert_eq!(today["sessions_started"], 2);
        assert_eq!(today["distinct_users"], 2);
        assert_eq!(today["peak_online"]["users"], 2);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_them() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        for (path, name) in [
            ("/api/v1/analytics/heatmap?tz=Mars/Olympus", "tz"),
            ("/api/v1/analytics/daily?tz=nowhere", "tz"),
            ("/api/v1/analytics/heatmap?metric=clicks", "metric"),
            ("/api/v1/analytics/durations?group_by=colour", "group_by"),
            ("/api/v1/analytics/daily?from=yesterday", "from"),
            (
                "/api/v1/analytics/daily?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                "to",
            ),
        ] {
            let (status, body) = get(&hub, path).await;
            assert_eq!(status, 400, "{path}");
            assert!(body.to_string().contains(name), "{path}: {body}");
        }
        hub.shutdown().await;
    })
    .await;
}
