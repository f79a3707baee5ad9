//! Session continuity in real Chromium (contract v1.1 §9): a reloaded demo
//! tab resumes its session, so the panel never shows the user offline; the
//! self-service page (`/me.html`) signs out the user's other tabs, which
//! then say so.

use std::time::Duration;

use serde_json::{Value, json};

use crate::driver::Browser;
use crate::pages::{ALICE_ROW, alice_cell, hub_defaults, live_session_ids, open_demo, open_panel};
use crate::support::{TestHub, WsClient, ms, within};

const LIMIT: Duration = Duration::from_secs(90);

fn with_resume(config: &mut presence_hub::Config) {
    hub_defaults(config);
    config.resume_grace = Duration::from_secs(10);
}

/// Records every status Alice's row shows in the panel, `absent` while
/// there is no row, so an offline blink between two polls is seen too.
const RECORD_ALICE: &str = r#"
    window.aliceSeen = [];
    const record = () => {
        const cell = document.querySelector(arguments[0]);
        const text = cell ? cell.textContent.trim() : 'absent';
        const log = window.aliceSeen;
        if (log[log.length - 1] !== text) log.push(text);
    };
    new MutationObserver(record).observe(document.body, {
        subtree: true, childList: true, characterData: true, attributes: true,
    });
    record();
"#;

/// Reloads the current window and waits until the new page is connected.
async fn reload_demo(browser: &Browser) {
    browser
        .eval(
            "window.__before_reload = true; setTimeout(() => location.reload(), 0); return null;",
            vec![],
        )
        .await;
    browser
        .wait_for("the reloaded demo to be connected", || async {
            let state = browser
                .eval(
                    "return window.__before_reload ? 'old page' \
                     : document.getElementById('demo-state')?.textContent ?? 'loading';",
                    vec![],
                )
                .await;
            if state == "open" { Ok(()) } else { Err(state) }
        })
        .await;
}

#[tokio::test]
async fn reloading_a_tab_five_times_keeps_its_session_and_the_user_online() {
    within(LIMIT, async {
        let hub = TestHub::start(with_resume).await;
        let mut admin = WsClient::connect(&hub.ws_url("/admin/ws")).await;
        admin.recv_type("snapshot", ms(2000)).await;
        let browser = Browser::start().await;
        let demo = open_demo(&browser, &hub).await;
        let panel = open_panel(&browser, &hub).await;
        browser.wait_text(&alice_cell("session-count"), "1").await;
        browser
            .eval(RECORD_ALICE, vec![json!(alice_cell("status"))])
            .await;

        for reload in 1..=5 {
            browser.switch_to(&demo.window).await;
            reload_demo(&browser).await;
            assert_eq!(
                browser.text("#demo-session-id").await.as_deref(),
                Some(demo.session_id.as_str()),
                "reload {reload} keeps the session"
            );
            assert_eq!(browser.text("#demo-resumed").await.as_deref(), Some("yes"));
            browser.switch_to(&panel).await;
            let status = browser.text(&alice_cell("status")).await;
            assert!(
                browser.exists(ALICE_ROW).await,
                "reload {reload}: alice listed"
            );
            assert!(
                status.as_deref().is_some_and(|s| s != "offline"),
                "reload {reload}: {status:?}"
            );
            assert_eq!(
                browser.text(&alice_cell("session-count")).await.as_deref(),
                Some("1")
            );
        }
        assert_eq!(
            live_session_ids(&hub, "alice").await,
            std::slice::from_ref(&demo.session_id)
        );
        let seen = browser.eval("return window.aliceSeen;", vec![]).await;
        let seen: Vec<&str> = seen
            .as_array()
            .expect("the recorded statuses")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !seen.is_empty() && seen.iter().all(|s| !matches!(*s, "offline" | "absent")),
            "the panel always showed alice online: {seen:?}"
        );

        // What the panel was fed: one start, no end, never offline.
        let frames: Vec<Value> = admin.collect_for(ms(500)).await;
        let events = |kind: &str| {
            frames
                .iter()
                .filter(|f| f["type"] == "session" && f["event"] == kind)
                .count()
        };
        assert_eq!(events("started"), 1, "{frames:?}");
        assert_eq!(events("ended"), 0, "{frames:?}");
        assert!(
            !frames
                .iter()
                .any(|f| f["type"] == "user" && f["user"]["status"] == "offline"),
            "alice never went offline: {frames:?}"
        );
    })
    .await;
}

/// Waits until the self-service list shows `session_id` (or no longer does).
async fn wait_listed(browser: &Browser, session_id: &str, listed: bool) {
    let css = format!(r#"#me-sessions li[data-session-id="{session_id}"]"#);
    browser
        .wait_for("the sessions list", || async {
            if browser.exists(&css).await == listed {
                Ok(())
            } else {
                Err(json!({"session": session_id, "listed": !listed}))
            }
        })
        .await;
}

async fn assert_signed_out(browser: &Browser) {
    browser.wait_text("#demo-state", "terminated").await;
    browser
        .wait_attr("#demo-terminated", "data-reason", "user")
        .await;
    assert_eq!(browser.attr("#demo-terminated", "hidden").await, None);
    let text = browser
        .text("#demo-terminated-text")
        .await
        .unwrap_or_default();
    assert!(text.contains("signed this session out"), "{text}");
}

#[tokio::test]
async fn the_self_service_page_signs_out_one_tab_then_all_others() {
    within(LIMIT, async {
        let hub = TestHub::start(with_resume).await;
        let browser = Browser::start().await;
        let first = open_demo(&browser, &hub).await;
        let second = open_demo(&browser, &hub).await;
        let me = browser.open(&hub.http("/me.html?user=alice")).await;
        wait_listed(&browser, &first.session_id, true).await;
        wait_listed(&browser, &second.session_id, true).await;
        browser
            .wait_for("this device to be marked", || async {
                let marked = browser
                    .text(r#"#me-sessions li[data-current="true"] .me-this-device"#)
                    .await;
                if marked.as_deref() == Some("This device") {
                    Ok(())
                } else {
                    Err(marked)
                }
            })
            .await;
        let device = browser
            .text(&format!(
                r#"#me-sessions li[data-session-id="{}"] .me-device"#,
                first.session_id
            ))
            .await
            .unwrap_or_default();
        assert!(!device.is_empty(), "a device is named");

        browser
            .click(&format!(
                r#"#me-sessions button.me-sign-out[data-session-id="{}"]"#,
                first.session_id
            ))
            .await;
        browser
            .wait_text("#me-toast", "Signed out 1 session.")
            .await;
        wait_listed(&browser, &first.session_id, false).await;
        browser.switch_to(&first.window).await;
        assert_signed_out(&browser).await;

        browser.switch_to(&me).await;
        browser.click("#me-revoke-others").await;
        browser
            .wait_text("#me-toast", "Signed out 1 session.")
            .await;
        wait_listed(&browser, &second.session_id, false).await;
        browser.switch_to(&second.window).await;
        assert_signed_out(&browser).await;

        // Only the self-service page's own session is left.
        let left = live_session_ids(&hub, "alice").await;
        assert_eq!(left.len(), 1, "{left:?}");
        browser.switch_to(&me).await;
        let current = browser.attr("body", "data-session").await;
        assert_eq!(current.as_deref(), Some(left[0].as_str()));
    })
    .await;
}
