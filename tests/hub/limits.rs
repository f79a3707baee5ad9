//! Size, rate and bad-frame limits: the offender is closed, nobody else is
//! affected, and the session ends with cause `policy`.

use std::time::Duration;

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
