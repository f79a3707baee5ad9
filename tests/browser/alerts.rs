//! Alerts and location in the panel against a real hub: the Alerts badge
//! and list (read at start, then raised and cleared by the stream), the
//! drawer's link to a user's alerts, and the country and city of sessions
//! located from a MaxMind database built at test time (and no location
//! columns without one).

use std::time::Duration;

use crate::driver::Browser;
use crate::pages::{get_json, hub_defaults, open_panel, wait_in_history};
use crate::support::mmdb::{remove, test_places, write_city_db};
use crate::support::{TestHub, WsClient, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

/// A client of `user` whose IP the hub takes from `X-Forwarded-For`.
async fn client_from(hub: &TestHub, user: &str, ip: &str) -> (WsClient, String) {
    let mut client = WsClient::try_connect(
        &hub.ws_url(&format!("/ws?user={user}")),
        &[("x-forwarded-for", ip)],
    )
    .await
    .unwrap();
    let welcome = client.recv_type("welcome", ms(2000)).await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    (client, id)
}

const MULTI_IP: &str = r#"#alerts-tbody tr[data-rule="multi_ip"]"#;
const FLOOD: &str = r#"#alerts-tbody tr[data-rule="session_flood"]"#;

#[tokio::test]
async fn the_alerts_badge_and_list_follow_raised_and_cleared_alerts() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            hub_defaults(c);
            c.trusted_proxies = "127.0.0.1".into();
            c.alert_multi_ip_min = 2;
            c.alert_session_flood_min = 3;
        })
        .await;
        // Raised before the panel opens: read from GET /api/v1/alerts.
        let mut flood = Vec::new();
        for _ in 0..3 {
            flood.push(hub.welcomed_client("flooder").await.0);
        }
        let listed = hub.http("/api/v1/alerts?active=true");
        crate::support::eventually(ms(10_000), "the flood alert", || async {
            (get_json(&listed).await["total"] == 1).then_some(())
        })
        .await;
        let browser = Browser::start().await;
        open_panel(&browser, &hub).await;
        browser.wait_text("#alerts-count", "1").await;
        assert_eq!(
            browser.attr("#alerts-count", "aria-label").await.as_deref(),
            Some("1 active alert")
        );

        // Raised while it is open: pushed by the admin stream.
        let (_m1, _) = client_from(&hub, "mallory", "192.0.2.1").await;
        let (m2, _) = client_from(&hub, "mallory", "198.51.100.2").await;
        browser.wait_text("#alerts-count", "2").await;
        browser.click("#tab-alerts").await;
        browser
            .wait_text(&format!("{MULTI_IP} [data-field=subject]"), "mallory")
            .await;
        assert_eq!(
            browser
                .text(&format!("{MULTI_IP} [data-field=details]"))
                .await
                .as_deref(),
            Some("2 distinct IPs: 192.0.2.1, 198.51.100.2")
        );
        assert_eq!(
            browser
                .text(&format!("{FLOOD} [data-field=subject]"))
                .await
                .as_deref(),
            Some("flooder")
        );

        // The user opens the drawer, which links back to the alert.
        browser
            .click(&format!("{MULTI_IP} button[data-user-id=mallory]"))
            .await;
        browser
            .wait_attr("#drawer", "data-user-id", "mallory")
            .await;
        let mark = r#"#drawer-alerts-list li[data-rule="multi_ip"] a"#;
        browser.wait_text(mark, "Several IPs").await;
        assert_eq!(browser.attr("#drawer-alerts", "hidden").await, None);
        assert!(
            !browser
                .exists(r#"#drawer-alerts-list li[data-rule="session_flood"]"#)
                .await,
            "the flooder's alert is not mallory's"
        );
        browser.click("#tab-live").await;
        browser.click(mark).await;
        browser
            .wait_attr("#tab-alerts", "aria-selected", "true")
            .await;
        browser
            .wait_for("the alert to be highlighted", || async {
                let found = browser.exists(&format!("{MULTI_IP}.highlight")).await;
                found.then_some(()).ok_or("not highlighted")
            })
            .await;

        // Cleared: it leaves the badge, the list and the drawer.
        m2.close().await;
        browser.wait_text("#alerts-count", "1").await;
        browser.wait_gone(MULTI_IP).await;
        browser.wait_attr("#drawer-alerts", "hidden", "").await;
        assert!(browser.exists(FLOOD).await);
    })
    .await;
}

fn cell(user: &str, field: &str) -> String {
    format!(r#"#users-table tbody tr[data-user-id="{user}"] [data-field={field}]"#)
}

#[tokio::test]
async fn located_sessions_show_their_country_and_city() {
    within(LIMIT, async {
        let path = write_city_db("panel", &test_places());
        let db = path.clone();
        let hub = TestHub::start(move |c| {
            hub_defaults(c);
            c.geoip_db = Some(db);
            c.trusted_proxies = "127.0.0.1".into();
        })
        .await;
        let (_ana, ana_session) = client_from(&hub, "ana", "192.0.2.10").await;
        let (ben, ben_session) = client_from(&hub, "ben", "198.51.100.20").await;
        let (_dan, _) = client_from(&hub, "dan", "10.1.2.3").await;

        let browser = Browser::start().await;
        open_panel(&browser, &hub).await;
        browser.wait_text(&cell("ana", "country"), "FR").await;
        assert_eq!(
            browser.text(&cell("ana", "city")).await.as_deref(),
            Some("Paris")
        );
        browser.wait_text(&cell("ben", "country"), "US").await;
        assert_eq!(
            browser.text(&cell("ben", "city")).await.as_deref(),
            Some("New York")
        );
        assert_eq!(
            browser.text(&cell("dan", "country")).await.as_deref(),
            Some("-")
        );
        assert_eq!(
            browser.attr("#users-table", "data-geo").await.as_deref(),
            Some("on")
        );

        browser.click(&cell("ana", "name")).await;
        browser
            .wait_attr("#drawer-session", "data-session-id", &ana_session)
            .await;
        browser
            .wait_text("#drawer-session [data-field=country]", "FR")
            .await;
        assert_eq!(
            browser
                .text("#drawer-session [data-field=city]")
                .await
                .as_deref(),
            Some("Paris")
        );
        browser.click("#drawer-close").await;

        // An ended session keeps its location in the history.
        ben.close().await;
        wait_in_history(&hub, &ben_session).await;
        browser.click("#tab-history").await;
        let row = format!(r#"#history-tbody tr[data-session-id="{ben_session}"]"#);
        browser
            .wait_text(&format!("{row} [data-field=country]"), "US")
            .await;
        assert_eq!(
            browser.attr("#history-table", "data-geo").await.as_deref(),
            Some("on")
        );
        hub.shutdown().await;
        remove(&path);
    })
    .await;
}

#[tokio::test]
async fn without_a_location_database_the_location_columns_stay_hidden() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let _bob = hub.welcomed_client("bob").await;
        let browser = Browser::start().await;
        open_panel(&browser, &hub).await;
        browser.wait_text(&cell("bob", "country"), "-").await;
        assert_eq!(
            browser.attr("#users-table", "data-geo").await.as_deref(),
            Some("off")
        );
        let shown = browser
            .eval(
                "return getComputedStyle(document.querySelector(arguments[0])).display;",
                vec![serde_json::json!(cell("bob", "country"))],
            )
            .await;
        assert_eq!(shown, "none", "no empty location columns");
        assert_eq!(browser.text("#alerts-count").await.as_deref(), Some("0"));
        assert_eq!(
            browser.attr("#alerts-count", "data-count").await.as_deref(),
            Some("0")
        );
    })
    .await;
}
