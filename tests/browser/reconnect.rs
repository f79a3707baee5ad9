//! A hub restart as the browser sees it: the panel and the demo tab notice
//! the outage, say so, and come back by themselves to the new hub.

use std::time::Duration;

use crate::driver::Browser;
use crate::pages::{alice_cell, hub_defaults, live_session_ids, open_demo, open_panel};
use crate::support::{TestHub, within};

const LIMIT: Duration = Duration::from_secs(60);

/// Both pages back off with full jitter while the hub is down (the demo
/// from 0.5 s doubling, the panel from 0.5 s doubling to 15 s), so the next
/// attempt after the restart may be several seconds away.
const RECONNECT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn panel_and_demo_reconnect_after_a_hub_restart() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            hub_defaults(c);
            c.node_id = Some("before-restart".into());
        })
        .await;
        let addr = hub.addr;
        let browser = Browser::start().await;
        let demo = open_demo(&browser, &hub).await;
        browser.wait_text("#demo-node", "before-restart").await;
        let panel = open_panel(&browser, &hub).await;
        browser.wait_text(&alice_cell("session-count"), "1").await;
        browser.wait_text("#hub-node", "node before-restart").await;

        hub.shutdown().await;
        browser.wait_text("#conn-state", "reconnecting").await;
        browser.switch_to(&demo.window).await;
        browser.wait_text("#demo-state", "reconnecting").await;

        // Same address, new node id: what comes back must come from the new hub.
        let hub = TestHub::start(|c| {
            hub_defaults(c);
            c.bind = addr.to_string();
            c.node_id = Some("after-restart".into());
        })
        .await;
        assert_eq!(hub.addr, addr, "the new hub took over the address");

        browser
            .wait_text_within(RECONNECT, "#demo-state", "open")
            .await;
        browser.wait_text("#demo-node", "after-restart").await;
        let new_session = browser
            .text("#demo-session-id")
            .await
            .expect("the demo shows its session id");
        assert_ne!(new_session, demo.session_id, "a new session on the new hub");
        assert_eq!(
            live_session_ids(&hub, "alice").await,
            [new_session],
            "the new hub lists the demo's new session"
        );

        browser.switch_to(&panel).await;
        browser
            .wait_text_within(RECONNECT, "#conn-state", "live")
            .await;
        browser.wait_text("#hub-node", "node after-restart").await;
        browser.wait_text(&alice_cell("session-count"), "1").await;
        assert_eq!(browser.text("#conn-detail").await.as_deref(), Some(""));
    })
    .await;
}
