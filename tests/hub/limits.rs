//! Size, rate and bad-frame limits: the offender is closed, nobody else is
//! affected, and the session ends with cause `policy`.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::support::{TestHub, admin_session_event, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009_and_ends_as_policy() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.max_message_bytes = 256).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut bystander, _) = hub.welcomed_client("bob").await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        client
            .send_json(json!({"type": "ping", "page": "x".repeat(300)}))
            .await;
        assert_eq!(client.recv_close(ms(3000)).await, Some(1009));
        let ended = admin_session_event(&mut admin, ms(5000), "policy end", |e, s| {
            e == "ended" && s["user_id"] == "alice"
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "policy");
        bystander.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(bystander.recv_type("pong", ms(3000)).await["id"], 1);
    })
    .await;
}

#[tokio::test]
async fn more_than_20_bad_frames_in_10_seconds_close_with_1008() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        for _ in 0..20 {
            client.send_text("garbage").await;
            client.recv_type("error", ms(3000)).await;
        }
        client.send_text("garbage").await;
        assert_eq!(client.recv_close(ms(3000)).await, Some(1008));
        let ended =
            admin_session_event(&mut admin, ms(5000), "policy end", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "policy");
    })
    .await;
}

#[tokio::test]
async fn a_flood_above_50_per_second_is_closed_with_1008() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        for i in 0..150 {
            client.send_json(json!({"type": "ping", "id": i})).await;
        }
        assert_eq!(client.recv_close(ms(3000)).await, Some(1008));
        let (mut other, _) = hub.welcomed_client("bob").await;
        other.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(
            other.recv_type("pong", ms(3000)).await["id"],
            1,
            "the hub keeps serving"
        );
    })
    .await;
}

#[tokio::test]
async fn a_client_at_30_messages_per_second_is_never_closed() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        let start = tokio::time::Instant::now();
        for i in 0..120u64 {
            tokio::time::sleep_until(start + ms(i * 1000 / 30)).await;
            client.send_json(json!({"type": "ping", "id": i})).await;
            assert_eq!(client.recv_type("pong", ms(3000)).await["id"], i);
        }
    })
    .await;
}

#[tokio::test]
async fn a_flood_of_websocket_pings_counts_against_the_rate_and_is_closed_with_1008() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, _) = hub.welcomed_client("alice").await;
        for _ in 0..150 {
            let _ = client.socket.send(Message::Ping(Default::default())).await;
        }
        assert_eq!(client.recv_close(ms(3000)).await, Some(1008));
        let ended =
            admin_session_event(&mut admin, ms(5000), "policy end", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "policy");
    })
    .await;
}

/// `count` HTTP heartbeats with `body`, the `i`th with the query
/// `query(i)`, 16 at a time over a few reused connections: thousands of
/// idle ones would crowd the process that runs both the hub and the test.
async fn heartbeats(
    hub: &TestHub,
    count: usize,
    query: impl Fn(usize) -> String,
    body: &serde_json::Value,
) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    futures_util::stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let request = http
                .post(hub.http(&format!("/api/v1/heartbeat?{}", query(i))))
                .json(body);
            async move { assert_eq!(request.send().await.unwrap().status(), 200) }
        })
        .await;
}

/// One sample of a metric without labels on `/metrics`.
async fn metric(hub: &TestHub, name: &str) -> f64 {
    let text = crate::support::scrape(&hub.http("/metrics")).await;
    crate::support::sample(&text, name).unwrap_or(f64::NAN)
}

#[tokio::test]
async fn an_admin_stream_that_stops_reading_is_dropped_at_the_write_deadline() {
    // 4,000 heartbeats first: about 10 s on a debug build, several times
    // that when the whole suite shares the cores.
    within(3 * LIMIT, async {
        let hub = TestHub::start(|c| c.write_timeout = ms(300)).await;
        let meta: serde_json::Map<String, serde_json::Value> = (0..10)
            .map(|i| (format!("k{i}"), json!("m".repeat(90))))
            .collect();
        let body = json!({"active": true, "meta": meta});
        heartbeats(&hub, 4000, |_| "user=bulk".to_string(), &body).await;

        // A snapshot of several megabytes (more than the kernel buffers on
        // loopback hold) into a socket whose reader never reads.
        let stalled = crate::support::slow_reader(&hub.ws_url("/admin/ws")).await;
        crate::support::eventually(ms(10_000), "the stalled admin dropped", || async {
            let dropped = metric(&hub, "presence_admin_lag_closes_total").await >= 1.0;
            let none_left = metric(&hub, "presence_admin_subscribers").await == 0.0;
            (dropped && none_left).then_some(())
        })
        .await;
        drop(stalled);
        let (mut client, _) = hub.welcomed_client("alice").await;
        client.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(client.recv_type("pong", ms(3000)).await["id"], 1);
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_at_the_write_deadline() {
    // 10,000 heartbeats first: several times the admin test's 4,000.
    within(4 * LIMIT, async {
        let hub = TestHub::start(|c| c.write_timeout = ms(300)).await;
        // 10,000 members of `org:acme` with long names: the room's
        // snapshot is several megabytes, more than the kernel buffers on
        // loopback hold (4 MB of send buffer at most), so the write cannot
        // complete while the tab does not read.
        let name = "n".repeat(3000);
        let query = |i| format!("user=member{i}&org=acme&name={name}");
        heartbeats(&hub, 10_000, query, &json!({"active": true})).await;

        let mut stalled =
            crate::support::slow_reader(&hub.ws_url("/ws?user=stalled&org=acme")).await;
        stalled
            .send_json(json!({"type": "watch", "room": "org:acme"}))
            .await;
        let ended = crate::support::eventually(ms(20_000), "the stalled tab ended", || async {
            let found: serde_json::Value =
                reqwest::get(hub.http("/api/v1/sessions?status=ended&user_id=stalled"))
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
            (found["total"] == 1).then_some(found)
        })
        .await;
        assert_eq!(ended["sessions"][0]["end_cause"], "timeout", "{ended}");
        drop(stalled);
        let (mut client, _) = hub.welcomed_client("alice").await;
        client.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(client.recv_type("pong", ms(3000)).await["id"], 1);
    })
    .await;
}
