//! Owns what the tests know about the two pages and the hub around them:
//! opening the demo page and the admin panel and waiting until each is
//! connected, the selectors of docs/panel.md and docs/client.md, and the
//! hub's REST answers the tests compare the pages with.

use fantoccini::wd::WindowHandle;
use presence_hub::Config;
use serde_json::Value;

use crate::driver::{Browser, WAIT};
use crate::support::TestHub;

/// The dev-mode identity every test opens the demo page with.
pub const ALICE_DEMO: &str = "/demo.html?user=alice&name=Alice&org=acme";

/// Alice's row in the users table.
pub const ALICE_ROW: &str = r#"#users-table tbody tr[data-user-id="alice"]"#;

/// A cell of Alice's row: `status`, `name`, `org`, `session-count`, ...
pub fn alice_cell(field: &str) -> String {
    format!("{ALICE_ROW} [data-field={field}]")
}

/// A session's button in the drawer's session list.
pub fn drawer_session(session_id: &str) -> String {
    format!(r#"#drawer-sessions [data-session-id="{session_id}"]"#)
}

/// The test defaults: the panel's own REST calls and the tests' polling
/// must never meet the API rate limit.
pub fn hub_defaults(config: &mut Config) {
    config.api_rate_limit = "1000/s".into();
}

/// A demo tab: its window and the session it holds.
pub struct DemoTab {
    pub window: WindowHandle,
    pub session_id: String,
}

/// Opens the demo page as Alice in a window of its own and waits until it is
/// connected; leaves that window current.
pub async fn open_demo(browser: &Browser, hub: &TestHub) -> DemoTab {
    let window = browser.open(&hub.http(ALICE_DEMO)).await;
    browser.wait_text("#demo-state", "open").await;
    let session_id = browser
        .text("#demo-session-id")
        .await
        .expect("the demo shows its session id");
    assert!(
        session_id.len() > 8,
        "a session id, not {session_id:?} (docs/client.md)"
    );
    DemoTab { window, session_id }
}

/// Opens the admin panel in a window of its own and waits until it is live;
/// leaves that window current.
pub async fn open_panel(browser: &Browser, hub: &TestHub) -> WindowHandle {
    let window = browser.open(&hub.http("/")).await;
    browser.wait_text("#conn-state", "live").await;
    window
}

/// Clicks Alice's row and waits until the drawer shows her.
pub async fn open_alice_drawer(browser: &Browser) {
    browser.click(&alice_cell("name")).await;
    browser.wait_attr("#drawer", "data-user-id", "alice").await;
    assert_eq!(browser.attr("#drawer", "hidden").await, None, "drawer open");
}

/// Confirms the open confirmation dialog.
pub async fn confirm(browser: &Browser) {
    browser.wait_attr("#confirm", "open", "").await;
    browser.click("#confirm-yes").await;
    browser.wait_gone("#confirm[open]").await;
}

/// The ids of `user`'s live sessions, as the hub's REST API lists them.
pub async fn live_session_ids(hub: &TestHub, user: &str) -> Vec<String> {
    let url = hub.http(&format!("/api/v1/sessions?user_id={user}&page_size=100"));
    let body = get_json(&url).await;
    body["sessions"]
        .as_array()
        .expect("a sessions list")
        .iter()
        .map(|s| s["session_id"].as_str().expect("session_id").to_string())
        .collect()
}

/// `GET` a JSON route of the hub; panics on anything but 200.
pub async fn get_json(url: &str) -> Value {
    let response = tokio::time::timeout(WAIT, reqwest::get(url))
        .await
        .expect("the hub answers in time")
        .expect("the hub answers");
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("a JSON body")
}

/// Waits until the hub's history lists the ended session `session_id`, so
/// the History tab can show it.
pub async fn wait_in_history(hub: &TestHub, session_id: &str) {
    let url = hub.http(&format!("/api/v1/sessions?status=ended&q={session_id}"));
    crate::support::eventually(WAIT, "the ended session in the history", || async {
        let body = get_json(&url).await;
        (body["total"] == 1).then_some(())
    })
    .await;
}
