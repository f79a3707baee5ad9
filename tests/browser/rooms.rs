//! Rooms in the browser (contract v1.1 §8): two tabs of different users on
//! the demo page share its room, and each tab's "who is here" stack shows
//! the other appear, change status and leave.

use std::time::Duration;

use crate::driver::Browser;
use crate::pages::hub_defaults;
use crate::support::{TestHub, within};

const LIMIT: Duration = Duration::from_secs(60);

fn avatar(user: &str) -> String {
    format!(r#"#demo-here .avatar[data-user-id="{user}"]"#)
}

#[tokio::test]
async fn two_tabs_see_each_other_arrive_change_status_and_leave() {
    within(LIMIT, async {
        let hub = TestHub::start(hub_defaults).await;
        let browser = Browser::start().await;
        let anna = browser
            .open(&hub.http("/demo.html?user=anna&name=Anna%20Berg&room=doc:shared"))
            .await;
        browser.wait_text("#demo-state", "open").await;
        browser.wait_text("#demo-room", "doc:shared").await;
        browser
            .wait_attr(&avatar("anna"), "data-status", "active")
            .await;
        assert_eq!(browser.text(&avatar("anna")).await.as_deref(), Some("AB"));

        let ben = browser
            .open(&hub.http("/demo.html?user=ben&name=Ben&room=doc:shared"))
            .await;
        browser.wait_text("#demo-state", "open").await;
        browser
            .wait_attr(&avatar("anna"), "data-status", "active")
            .await;
        browser.wait_text("#demo-here-count", "2").await;

        browser.switch_to(&anna).await;
        browser
            .wait_attr(&avatar("ben"), "data-status", "active")
            .await;
        browser.wait_text("#demo-here-count", "2").await;
        browser.click("#demo-manual-busy").await;

        browser.switch_to(&ben).await;
        browser
            .wait_attr(&avatar("anna"), "data-manual", "busy")
            .await;
        browser.click("#demo-manual-away").await;

        browser.switch_to(&anna).await;
        browser
            .wait_attr(&avatar("ben"), "data-status", "away")
            .await;
        browser
            .wait_attr(&avatar("ben"), "data-manual", "away")
            .await;

        browser.switch_to(&ben).await;
        browser.click("#demo-close").await;
        browser.wait_text("#demo-state", "closed").await;

        browser.switch_to(&anna).await;
        browser.wait_gone(&avatar("ben")).await;
        browser.wait_text("#demo-here-count", "1").await;
        assert!(browser.exists(&avatar("anna")).await, "anna is still here");
    })
    .await;
}
