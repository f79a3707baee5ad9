//! What the admin panel shows: users with their tabs, statuses changing on
//! their own as tabs are left alone, and a screenshot of it with real data.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::driver::{Browser, WAIT};
use crate::pages::{
    ALICE_ROW, alice_cell, drawer_session, hub_defaults, open_alice_drawer, open_demo, open_panel,
};
use crate::support::{TestHub, WsClient, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn panel_lists_a_user_with_two_demo_tabs_and_is_live() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let browser = Browser::start().await;
        let first = open_demo(&browser, &hub).await;
        let second = open_demo(&browser, &hub).await;
        assert_ne!(first.session_id, second.session_id, "one session per tab");

        open_panel(&browser, &hub).await;
        browser.wait_text(&alice_cell("session-count"), "2").await;
        assert_eq!(browser.text("#conn-state").await.as_deref(), Some("live"));
        assert_eq!(
            browser.attr("#conn-state", "data-state").await.as_deref(),
            Some("live")
        );
        assert_eq!(
            browser.text(&alice_cell("name")).await.as_deref(),
            Some("Alice")
        );
        assert_eq!(
            browser.text(&alice_cell("org")).await.as_deref(),
            Some("acme")
        );
        assert_eq!(
            browser.text(&alice_cell("status")).await.as_deref(),
            Some("active")
        );
        browser.wait_text("#counter-online-users", "1").await;
        browser.wait_text("#counter-sessions-live", "2").await;
    })
    .await;
}

/// Records every status text Alice's row shows, in order, so a short-lived
/// `idle` cannot slip between two polls.
const RECORD_ALICE_STATUS: &str = r#"
    window.aliceStatuses = [];
    const record = () => {
        const cell = document.querySelector(arguments[0]);
        const text = cell ? cell.textContent.trim() : null;
        const log = window.aliceStatuses;
        if (text && log[log.length - 1] !== text) log.push(text);
    };
    new MutationObserver(record).observe(document.body, {
        subtree: true, childList: true, characterData: true, attributes: true,
    });
    record();
"#;

#[tokio::test]
async fn untouched_demo_tabs_turn_idle_then_away_in_the_panel() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            hub_defaults(c);
            c.idle_after = ms(1000);
            c.away_after = ms(2000);
        })
        .await;
        let browser = Browser::start().await;
        // The panel first, recording from the start; then the demo tabs,
        // which are never touched again after they load: no pointer, key,
        // focus or visibility change reaches them, so they send no ping.
        let panel = open_panel(&browser, &hub).await;
        browser
            .eval(RECORD_ALICE_STATUS, vec![json!(alice_cell("status"))])
            .await;
        open_demo(&browser, &hub).await;
        open_demo(&browser, &hub).await;
        browser.switch_to(&panel).await;

        browser.wait_text(&alice_cell("session-count"), "2").await;
        browser.wait_text(&alice_cell("status"), "away").await;
        assert_eq!(
            browser.attr(ALICE_ROW, "data-status").await.as_deref(),
            Some("away")
        );
        let seen = browser.eval("return window.aliceStatuses;", vec![]).await;
        let seen: Vec<&str> = seen
            .as_array()
            .expect("the recorded statuses")
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        // On a slow machine the first tab may turn idle before the second
        // connects, so the row may go active, idle, active first; what
        // matters is what follows the last activity.
        let last_active = seen.iter().rposition(|s| *s == "active");
        assert_eq!(last_active.map(|_| seen[0]), Some("active"), "{seen:?}");
        assert_eq!(
            seen[last_active.unwrap() + 1..],
            ["idle", "away"],
            "Alice's status cell after her last activity, in order: {seen:?}"
        );
        // Away is not gone: both tabs are still there.
        assert_eq!(
            browser.text(&alice_cell("session-count")).await.as_deref(),
            Some("2")
        );
    })
    .await;
}

#[tokio::test]
async fn screenshot_of_the_panel_with_live_users_is_saved() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let browser = Browser::start().await;
        let first = open_demo(&browser, &hub).await;
        open_demo(&browser, &hub).await;
        let mut others = Vec::new();
        for query in [
            "user=bob&name=Bob%20Stone&org=globex",
            "user=carol&name=Carol%20Diaz&org=acme",
            "user=dave&name=Dave%20Kim&org=initech",
        ] {
            let mut client = WsClient::connect(&hub.ws_url(&format!("/ws?{query}"))).await;
            client.recv_type("welcome", WAIT).await;
            others.push(client);
        }
        others[1]
            .send_json(json!({"type": "status", "manual": "busy"}))
            .await;

        // Opened last, so the counters from /api/v1/stats include everyone.
        open_panel(&browser, &hub).await;
        browser.resize(1280, 900).await;
        browser.wait_text("#counter-online-users", "4").await;
        browser.wait_text("#counter-started-today", "5").await;
        browser.wait_text(&alice_cell("session-count"), "2").await;
        browser
            .wait_attr(
                r#"#users-table tbody tr[data-user-id="carol"] [data-field=status]"#,
                "data-manual",
                "busy",
            )
            .await;
        open_alice_drawer(&browser).await;
        browser.click(&drawer_session(&first.session_id)).await;
        browser
            .wait_attr("#drawer-session", "data-session-id", &first.session_id)
            .await;

        let png = browser.screenshot().await;
        assert!(png.len() > 10_000, "a real picture, {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join("panel.png");
        std::fs::write(&path, &png).expect("write the screenshot");
        let written = std::fs::metadata(&path).expect("screenshot saved").len();
        assert_eq!(written, png.len() as u64, "{} saved whole", path.display());
    })
    .await;
}

/// `target/screenshots`, under `CARGO_TARGET_DIR` when it is set.
fn screenshot_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| manifest.join(dir))
        .unwrap_or_else(|| manifest.join("target"));
    target.join("screenshots")
}
