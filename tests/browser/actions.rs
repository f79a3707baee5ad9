//! The panel's admin actions as the affected tabs see them: "Terminate
//! session" ends one tab for good, "Sign out everywhere" ends all of a
//! user's tabs for good, and neither tab comes back.

use std::time::Duration;

use crate::driver::{Browser, holds_for};
use crate::pages::{
    ALICE_ROW, DemoTab, alice_cell, confirm, drawer_session, get_json, hub_defaults,
    live_session_ids, open_alice_drawer, open_demo, open_panel,
};
use crate::support::{TestHub, within};

const LIMIT: Duration = Duration::from_secs(60);

/// Long enough for several reconnect attempts of the client (the first
/// retry waits at most 0.5 s, the second at most 1 s, the third 2 s).
const NO_RECONNECT_WINDOW: Duration = Duration::from_secs(3);

/// Waits until the demo tab (current window) shows a final termination
/// with `reason`.
async fn assert_terminated(browser: &Browser, reason: &str) {
    browser.wait_text("#demo-state", "terminated").await;
    browser
        .wait_attr("#demo-terminated", "data-reason", reason)
        .await;
    assert_eq!(
        browser.attr("#demo-terminated", "hidden").await,
        None,
        "the terminated banner is shown"
    );
    assert_eq!(
        browser.attr("#demo-status", "data-status").await.as_deref(),
        Some("ended")
    );
}

/// The demo tab (current window) stays terminated, and the hub keeps
/// exactly `expected` live sessions for Alice, for the whole window.
async fn assert_stays_terminated(browser: &Browser, hub: &TestHub, expected: &[&str]) {
    holds_for(
        NO_RECONNECT_WINDOW,
        "the tab to stay terminated",
        || async {
            let state = browser.text("#demo-state").await;
            let client = browser.eval("return window.presence.state;", vec![]).await;
            if state.as_deref() != Some("terminated") || client != "terminated" {
                return Err(format!("#demo-state {state:?}, client state {client}"));
            }
            let live = live_session_ids(hub, "alice").await;
            if live != expected {
                return Err(format!("Alice's live sessions are {live:?}"));
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test]
async fn terminate_session_ends_that_tab_for_good() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let browser = Browser::start().await;
        let doomed = open_demo(&browser, &hub).await;
        let kept = open_demo(&browser, &hub).await;
        let panel = open_panel(&browser, &hub).await;
        browser.wait_text(&alice_cell("session-count"), "2").await;

        open_alice_drawer(&browser).await;
        browser.click(&drawer_session(&doomed.session_id)).await;
        browser
            .wait_attr("#drawer-session", "data-session-id", &doomed.session_id)
            .await;
        browser.click("#terminate-session").await;
        confirm(&browser).await;
        browser.wait_text("#toast", "Session terminated.").await;
        browser.wait_text(&alice_cell("session-count"), "1").await;

        browser.switch_to(&doomed.window).await;
        assert_terminated(&browser, "admin").await;
        assert_stays_terminated(&browser, &hub, &[&kept.session_id]).await;
        let ended = get_json(&hub.http(&format!("/api/v1/sessions/{}", doomed.session_id))).await;
        assert_eq!(ended["status"], "ended", "{ended}");
        assert_eq!(ended["end_cause"], "terminated", "{ended}");

        // The other tab was not touched.
        browser.switch_to(&kept.window).await;
        assert_eq!(browser.text("#demo-state").await.as_deref(), Some("open"));
        browser.switch_to(&panel).await;
        assert_eq!(
            browser.text(&alice_cell("session-count")).await.as_deref(),
            Some("1")
        );
    })
    .await;
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_tab_with_revoked() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let browser = Browser::start().await;
        let tabs: Vec<DemoTab> = vec![
            open_demo(&browser, &hub).await,
            open_demo(&browser, &hub).await,
        ];
        open_panel(&browser, &hub).await;
        browser.wait_text(&alice_cell("session-count"), "2").await;

        open_alice_drawer(&browser).await;
        browser.click("#revoke-user").await;
        confirm(&browser).await;
        browser
            .wait_text("#toast", "Signed out: 2 sessions ended.")
            .await;
        browser.wait_gone(ALICE_ROW).await;

        for tab in &tabs {
            browser.switch_to(&tab.window).await;
            assert_terminated(&browser, "revoked").await;
        }
        assert_stays_terminated(&browser, &hub, &[]).await;
        let alice = get_json(&hub.http("/api/v1/users/alice")).await;
        assert_eq!(alice["status"], "offline", "{alice}");
        assert_eq!(alice["session_count"], 0, "{alice}");
    })
    .await;
}
