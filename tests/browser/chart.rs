//! The panel's "Last hour" chart is drawn from the hub's online series
//! (`GET /api/v1/stats/series`), not sampled by the tab: a panel opened on a
//! hub with an hour of history shows that hour at once, then appends the
//! hub's new points.

use std::time::Duration;

use presence_hub::history::HistoryStore;
use presence_hub::history::SeriesPoint;
use presence_hub::history::sqlite::SqliteHistory;
use presence_hub::model::time::now_millis;

use crate::driver::Browser;
use crate::pages::{get_json, hub_defaults, open_panel};
use crate::support::temp::TempDir;
use crate::support::{TestHub, within};

const LIMIT: Duration = Duration::from_secs(60);

/// One point per 10 s over the last hour but the last 10 s: users cycle
/// through 1..=5, sessions are one more.
async fn seed_last_hour(path: &std::path::Path) -> usize {
    let store = SqliteHistory::open(path).await.unwrap();
    let now = now_millis() / 10_000 * 10_000;
    let mut saved = 0;
    for i in 1..355_i64 {
        let users = 1 + u64::try_from(i % 5).unwrap();
        let point = SeriesPoint {
            at: now - i * 10_000,
            users,
            sessions: users + 1,
        };
        store.save_series_point(point).await.unwrap();
        saved += 1;
    }
    saved
}

#[tokio::test]
async fn the_chart_is_full_right_after_the_panel_loads() {
    within(LIMIT, async {
        let dir = TempDir::new("chart");
        let path = dir.join("records.db");
        let seeded = seed_last_hour(&path).await;
        let url = format!("sqlite://{}", path.display());
        let hub = TestHub::start(|c| {
            hub_defaults(c);
            c.database_url = Some(url.clone());
        })
        .await;
        let series = get_json(&hub.http("/api/v1/stats/series")).await;
        assert!(
            series["points"].as_array().map_or(0, Vec::len) >= seeded,
            "the hub serves the seeded hour: {series}"
        );
        let browser = Browser::start().await;
        open_panel(&browser, &hub).await;
        // Well before a tab sampling every 10 s could have drawn more than
        // a point or two.
        let points = browser
            .wait_within(Duration::from_secs(5), "the chart's points", || async {
                let points: usize = browser
                    .attr("#chart", "data-points")
                    .await
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if points >= seeded {
                    Ok(points)
                } else {
                    Err(points)
                }
            })
            .await;
        assert!(points >= seeded);
        let users = browser.attr("#chart-users", "d").await.unwrap_or_default();
        assert!(
            users.matches('L').count() >= seeded - 2,
            "the users line goes through every point: {users}"
        );
        let label = browser
            .attr("#chart", "aria-label")
            .await
            .unwrap_or_default();
        assert!(
            label.contains("at most 5 users in the last hour"),
            "the hour's peak is the hub's: {label}"
        );
        assert_eq!(browser.text("#chart-max").await.as_deref(), Some("6"));
        // Then the hub's own samples (nobody online) are appended as they
        // come, without a reload.
        browser
            .wait_within(Duration::from_secs(30), "a live point appended", || async {
                let label = browser
                    .attr("#chart", "aria-label")
                    .await
                    .unwrap_or_default();
                let now: usize = browser
                    .attr("#chart", "data-points")
                    .await
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if now > points && label.starts_with("Now 0 users online in 0 sessions") {
                    Ok(())
                } else {
                    Err((now, label))
                }
            })
            .await;
    })
    .await;
}
