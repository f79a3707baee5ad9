//! The panel's record views against a real hub: the Audit tab lists what
//! the admin API did (and follows the stream), the drawer shows a session's
//! timeline (live, then ended from the history), and the Analytics tab
//! draws the analytics routes' own figures.

use std::time::Duration;

use serde_json::{Value, json};

use crate::driver::Browser;
use crate::pages::{get_json, hub_defaults, wait_in_history};
use crate::support::{TestHub, WsClient, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

/// Opens the panel at `path` (a `#tab`) and waits until it is live.
async fn open_panel_at(browser: &Browser, hub: &TestHub, path: &str) {
    browser.open(&hub.http(path)).await;
    browser.wait_text("#conn-state", "live").await;
}

async fn delete(url: &str) {
    let response = reqwest::Client::new().delete(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "DELETE {url}");
}

fn session_id(welcome: &Value) -> String {
    welcome["session_id"].as_str().unwrap().to_string()
}

/// The number of elements `css` matches.
async fn count(browser: &Browser, css: &str) -> u64 {
    let n = browser
        .eval(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await;
    n.as_u64().unwrap()
}

/// Sets a `<select>` or input and fires `change` on it, as a person picking a value.
async fn set_value(browser: &Browser, css: &str, value: &str) {
    browser
        .eval(
            "const el = document.querySelector(arguments[0]); el.value = arguments[1];\
             el.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![json!(css), json!(value)],
        )
        .await;
}

const TERMINATED: &str = r#"#audit-tbody tr[data-action="session.terminate"]"#;

#[tokio::test]
async fn the_audit_tab_lists_admin_actions_and_follows_the_stream() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let (_bob, welcome) = hub.welcomed_client("bob").await;
        let bob_session = session_id(&welcome);
        delete(&hub.http(&format!("/api/v1/sessions/{bob_session}"))).await;

        let browser = Browser::start().await;
        open_panel_at(&browser, &hub, "/#audit").await;
        assert_eq!(
            browser.attr("#tab-audit", "aria-selected").await.as_deref(),
            Some("true")
        );
        browser
            .wait_text(
                &format!("{TERMINATED} [data-field=target]"),
                &format!("session {bob_session}"),
            )
            .await;
        let actor = browser
            .text(&format!("{TERMINATED} [data-field=actor]"))
            .await
            .unwrap();
        assert!(actor.contains("(admin) from 127.0.0.1"), "{actor}");
        assert_eq!(
            browser
                .text(&format!("{TERMINATED} [data-field=result]"))
                .await
                .as_deref(),
            Some("ok")
        );

        // While the tab is shown, a new action arrives by the stream.
        let (_carol, welcome) = hub.welcomed_client("carol").await;
        let carol_session = session_id(&welcome);
        delete(&hub.http(&format!("/api/v1/sessions/{carol_session}"))).await;
        browser
            .wait_text(
                &format!("{TERMINATED} [data-field=target]"),
                &format!("session {carol_session}"),
            )
            .await;
        assert_eq!(count(&browser, TERMINATED).await, 2);

        // Filtering by action keeps the sign-out only.
        let _dave = hub.welcomed_client("dave").await;
        delete(&hub.http("/api/v1/users/dave/sessions")).await;
        set_value(&browser, "#audit-action", "user.revoke").await;
        browser.click("#audit-apply").await;
        browser
            .wait_text(
                r#"#audit-tbody tr[data-action="user.revoke"] [data-field=target]"#,
                "user dave",
            )
            .await;
        browser.wait_gone(TERMINATED).await;
        browser.wait_text("#audit-count", "1–1 of 1 events").await;

        // The export link names the route, and the route has the events.
        let href = browser.attr("#audit-export-csv", "href").await.unwrap();
        assert_eq!(href, "/api/v1/audit/export?format=csv");
        let csv = reqwest::get(hub.http(&href))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(csv.starts_with("id,at,action,actor_user_id"), "{csv}");
        assert!(
            csv.contains(&bob_session) && csv.contains(&carol_session),
            "{csv}"
        );
        let ndjson = browser.attr("#audit-export-ndjson", "href").await.unwrap();
        assert_eq!(ndjson, "/api/v1/audit/export?format=ndjson");
    })
    .await;
}

const TIMELINE: &str = "#drawer-timeline-list";

#[tokio::test]
async fn the_drawer_shows_the_timeline_of_a_live_then_ended_session() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let mut bob = WsClient::connect(&hub.ws_url("/ws?user=bob&page=/inbox")).await;
        let welcome = bob.recv_type("welcome", ms(2000)).await;
        let bob_session = session_id(&welcome);
        bob.send_json(json!({"type": "ping", "page": "/reports"}))
            .await;
        bob.send_json(json!({"type": "status", "manual": "busy"}))
            .await;

        let browser = Browser::start().await;
        open_panel_at(&browser, &hub, "/").await;
        browser
            .click(r#"#users-table tbody tr[data-user-id="bob"] [data-field=name]"#)
            .await;
        browser
            .wait_attr("#drawer-session", "data-session-id", &bob_session)
            .await;
        browser
            .wait_text(
                &format!("{TIMELINE} li[data-kind=page] .timeline-text"),
                "Page /inbox → /reports",
            )
            .await;
        browser
            .wait_text(
                &format!("{TIMELINE} li[data-kind=manual] .timeline-text"),
                "Manual status none → busy",
            )
            .await;
        assert!(
            browser
                .exists(&format!("{TIMELINE} li[data-kind=connected]"))
                .await
        );

        // A change while the drawer is open is read again.
        bob.send_json(json!({"type": "status", "manual": null}))
            .await;
        browser
            .wait_text(
                &format!("{TIMELINE} li[data-kind=manual]:last-of-type .timeline-text"),
                "Manual status busy → none",
            )
            .await;
        // The drawer lists exactly the route's entries between its two edges.
        let route = get_json(&hub.http(&format!("/api/v1/sessions/{bob_session}/timeline"))).await;
        let entries = route["entries"].as_array().unwrap().len() as u64;
        assert_eq!(
            count(&browser, &format!("{TIMELINE} li:not(.timeline-edge)")).await,
            entries
        );

        // Ended: opened from the history, with its end.
        bob.close().await;
        browser.click("#drawer-close").await;
        wait_in_history(&hub, &bob_session).await;
        browser.click("#tab-history").await;
        let row = format!(r#"#history-tbody tr[data-session-id="{bob_session}"]"#);
        browser.click(&format!("{row} [data-field=name]")).await;
        browser
            .wait_attr("#drawer-session", "data-status", "ended")
            .await;
        browser
            .wait_text(
                &format!("{TIMELINE} li[data-kind=ended] .timeline-text"),
                "Ended (client_closed)",
            )
            .await;
        browser
            .wait_text(
                &format!("{TIMELINE} li[data-kind=page] .timeline-text"),
                "Page /inbox → /reports",
            )
            .await;
    })
    .await;
}

/// The heatmap as the panel draws it: 7 rows of 24 `data-value`s.
const HEATMAP_VALUES: &str = r#"
    const rows = [];
    for (let d = 0; d < 7; d += 1) {
        const row = [];
        for (let h = 0; h < 24; h += 1) {
            const td = document.querySelector(`#heatmap td[data-day="${d}"][data-hour="${h}"]`);
            row.push(td && td.dataset.value != null ? Number(td.dataset.value) : null);
        }
        rows.push(row);
    }
    return rows;
"#;

async fn wait_heatmap(browser: &Browser, expected: &Value) {
    browser
        .wait_for("the heatmap to match the route", || async {
            let seen = browser.eval(HEATMAP_VALUES, vec![]).await;
            (seen == *expected).then_some(()).ok_or(seen)
        })
        .await;
}

#[tokio::test]
async fn the_analytics_tab_draws_the_routes_figures() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let _a = hub.welcomed_client("ana").await;
        let _b = hub.welcomed_client("ben").await;
        let (c, welcome) = hub.welcomed_client("cai").await;
        let cai_session = session_id(&welcome);
        tokio::time::sleep(ms(300)).await;
        c.close().await;
        // The end is in the records before the panel reads them.
        wait_in_history(&hub, &cai_session).await;

        let browser = Browser::start().await;
        open_panel_at(&browser, &hub, "/#analytics").await;
        let heatmap = get_json(&hub.http("/api/v1/analytics/heatmap")).await;
        let total: u64 = heatmap["cells"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap())
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 3, "{heatmap}");
        wait_heatmap(&browser, &heatmap["cells"]).await;
        browser
            .wait_for("the summary", || async {
                let text = browser.text("#heatmap-summary").await.unwrap_or_default();
                text.starts_with("3 sessions started")
                    .then_some(())
                    .ok_or(text)
            })
            .await;

        let durations = get_json(&hub.http("/api/v1/analytics/durations")).await;
        let sessions = durations["groups"][0]["sessions"].to_string();
        assert_eq!(sessions, "1", "{durations}");
        browser
            .wait_text("#durations-tbody tr [data-field=sessions]", &sessions)
            .await;
        assert_eq!(
            browser
                .text("#durations-tbody tr [data-field=key]")
                .await
                .as_deref(),
            Some("All sessions")
        );

        let daily = get_json(&hub.http("/api/v1/analytics/daily")).await;
        let today = daily["days"].as_array().unwrap().last().unwrap().clone();
        let row = format!(
            r#"#daily-tbody tr[data-date="{}"]"#,
            today["date"].as_str().unwrap()
        );
        browser
            .wait_text(
                &format!("{row} [data-field=sessions-started]"),
                &today["sessions_started"].to_string(),
            )
            .await;
        assert_eq!(
            browser
                .text(&format!("{row} [data-field=distinct-users]"))
                .await,
            Some(today["distinct_users"].to_string())
        );

        // Another metric and another grouping: each part is read again.
        set_value(&browser, "#heatmap-metric", "online_users").await;
        browser
            .wait_attr("#heatmap", "data-metric", "online_users")
            .await;
        let online = get_json(&hub.http("/api/v1/analytics/heatmap?metric=online_users")).await;
        wait_heatmap(&browser, &online["cells"]).await;
        set_value(&browser, "#durations-group", "end_cause").await;
        browser
            .wait_text(
                r#"#durations-tbody tr[data-key="client_closed"] [data-field=sessions]"#,
                "1",
            )
            .await;
    })
    .await;
}
