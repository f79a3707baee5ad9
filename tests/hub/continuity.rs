//! Session continuity of contract v1.1 §9: token lifetime, maximum age,
//! paced reconnects, `end`, and resuming a dropped session on one node.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{TestHub, WsClient, admin_session_event, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(20);
const SECRET: &str = "continuity-secret-of-at-least-32-bytes";

/// A token whose `exp` is exactly `exp` (Unix seconds).
fn token_until(sub: &str, name: &str, exp: i64) -> String {
    let claims = json!({"sub": sub, "exp": exp, "name": name, "org": "acme"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `exp` as the hub writes it: RFC 3339 UTC with milliseconds.
fn rfc3339(exp: i64) -> String {
    chrono::DateTime::from_timestamp(exp, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn millis_of(text: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

async fn jwt_hub(configure: impl FnOnce(&mut presence_hub::Config)) -> TestHub {
    TestHub::start(|c| {
        c.jwt_secret = Some(SECRET.to_string().into());
        configure(c);
    })
    .await
}

async fn admin_with_token(hub: &TestHub) -> WsClient {
    let token = jwt(SECRET, "root", Some("admin"), 600);
    let mut admin = WsClient::connect(&hub.ws_url(&format!("/admin/ws?token={token}"))).await;
    admin.recv_type("snapshot", ms(2000)).await;
    admin
}

#[tokio::test]
async fn a_token_inside_the_window_is_asked_for_and_a_new_one_extends_the_session() {
    within(LIMIT, async {
        let hub = jwt_hub(|_| {}).await;
        let mut admin = admin_with_token(&hub).await;
        let exp = unix_now() + 3;
        let mut client = WsClient::connect(
            &hub.ws_url(&format!("/ws?token={}", token_until("alice", "Alice", exp))),
        )
        .await;
        let first = client.next_json(ms(2000)).await.unwrap();
        assert_eq!(first["type"], "welcome");
        let asked = client.next_json(ms(2000)).await.unwrap();
        assert_eq!(
            asked,
            json!({"type": "auth_required", "expires_at": rfc3339(exp)})
        );

        // Another user's token, or garbage: forbidden, and nothing changes.
        let bob = token_until("bob", "Bob", unix_now() + 600);
        client
            .send_json(json!({"type": "auth", "token": bob}))
            .await;
        assert_eq!(
            client.recv_type("error", ms(2000)).await["code"],
            "forbidden"
        );
        client
            .send_json(json!({"type": "auth", "token": "garbage"}))
            .await;
        assert_eq!(
            client.recv_type("error", ms(2000)).await["code"],
            "forbidden"
        );

        let later = unix_now() + 600;
        let renewed = token_until("alice", "Alice Renewed", later);
        client
            .send_json(json!({"type": "auth", "token": renewed}))
            .await;
        let ok = client.recv_type("auth_ok", ms(2000)).await;
        assert_eq!(ok, json!({"type": "auth_ok", "expires_at": rfc3339(later)}));
        let updated = admin_session_event(&mut admin, ms(2000), "renamed", |e, s| {
            e == "updated" && s["name"] == "Alice Renewed"
        })
        .await;
        assert_eq!(updated["session"]["user_id"], "alice");

        // Past the first token's exp the session lives on.
        tokio::time::sleep_until(
            Instant::now()
                + Duration::from_millis(
                    u64::try_from((exp - unix_now()) * 1000 + 700).unwrap_or(0),
                ),
        )
        .await;
        client.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(client.recv_type("pong", ms(2000)).await["id"], 1);
    })
    .await;
}

#[tokio::test]
async fn a_session_whose_token_expires_ends_token_expired_with_4001() {
    within(LIMIT, async {
        let hub = jwt_hub(|c| c.token_refresh_window = ms(500)).await;
        let mut admin = admin_with_token(&hub).await;
        let exp = unix_now() + 2;
        let mut client = WsClient::connect(
            &hub.ws_url(&format!("/ws?token={}", token_until("alice", "Alice", exp))),
        )
        .await;
        client.recv_type("welcome", ms(2000)).await;
        let asked = client.recv_type("auth_required", ms(3000)).await;
        assert_eq!(asked["expires_at"], rfc3339(exp));
        let terminated = client.recv_type("terminated", ms(3000)).await;
        assert_eq!(
            terminated,
            json!({"type": "terminated", "reason": "token_expired"})
        );
        assert_eq!(client.recv_close(ms(2000)).await, Some(4001));
        let ended = admin_session_event(&mut admin, ms(2000), "ended", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "token_expired");
        let ended_at = millis_of(&ended["session"]["ended_at"]);
        assert!(ended_at >= exp * 1000, "not before exp");
    })
    .await;
}

#[tokio::test]
async fn an_http_session_ends_when_its_last_token_expires() {
    within(LIMIT, async {
        let hub = jwt_hub(|_| {}).await;
        let mut admin = admin_with_token(&hub).await;
        let http = reqwest::Client::new();
        let first = token_until("carol", "Carol", unix_now() + 1);
        let body: Value = http
            .post(hub.http("/api/v1/heartbeat"))
            .bearer_auth(&first)
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = body["session_id"].as_str().unwrap().to_string();
        // Renewed with a token of two seconds more: it now ends then.
        let exp = unix_now() + 3;
        let second = token_until("carol", "Carol", exp);
        let status = http
            .post(hub.http("/api/v1/heartbeat"))
            .bearer_auth(&second)
            .json(&json!({"session_id": id, "active": false}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let ended = admin_session_event(&mut admin, ms(5000), "ended", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "token_expired");
        assert!(millis_of(&ended["session"]["ended_at"]) >= exp * 1000);
    })
    .await;
}

#[tokio::test]
async fn sessions_end_max_age_and_resuming_does_not_reset_the_age() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.max_session_age = ms(1500);
            c.resume_grace = ms(5000);
            c.reconnect_spread = ms(1000);
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        let (client, welcome) = hub.welcomed_client("alice").await;
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        client.close().await;
        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], true);
        assert_eq!(again["session_id"], welcome["session_id"]);
        let terminated = back.recv_type("terminated", ms(3000)).await;
        assert_eq!(terminated["reason"], "max_age");
        assert_eq!(back.recv_close(ms(2000)).await, Some(4003));
        let ended = admin_session_event(&mut admin, ms(2000), "ended", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "max_age");
        let duration = ended["session"]["duration_s"].as_f64().unwrap();
        assert!(
            (1.4..2.5).contains(&duration),
            "age counts from the start: {duration}"
        );

        // HTTP-heartbeat sessions too.
        let body: Value = reqwest::Client::new()
            .post(hub.http("/api/v1/heartbeat?user=dave"))
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = body["session_id"].as_str().unwrap().to_string();
        let ended = admin_session_event(&mut admin, ms(4000), "http ended", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "max_age");
    })
    .await;
}

#[tokio::test]
async fn shutdown_paces_reconnects_with_retry_after_ms() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.reconnect_spread = ms(2000)).await;
        let mut clients = Vec::new();
        for n in 0..8 {
            clients.push(hub.welcomed_client(&format!("user{n}")).await.0);
        }
        let shutdown = tokio::spawn(hub.shutdown());
        let mut delays = Vec::new();
        for client in &mut clients {
            let terminated = client.recv_type("terminated", ms(3000)).await;
            assert_eq!(terminated["reason"], "shutdown");
            let delay = terminated["retry_after_ms"].as_u64().unwrap();
            assert!(delay <= 2000, "{delay}");
            delays.push(delay);
            assert_eq!(client.recv_close(ms(3000)).await, Some(1001));
        }
        delays.dedup();
        assert!(delays.len() > 1, "drawn per socket: {delays:?}");
        shutdown.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn end_closes_with_1000_at_once_and_is_never_resumable() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.resume_grace = ms(5000)).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut client, welcome) = hub.welcomed_client("alice").await;
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        client.send_json(json!({"type": "end"})).await;
        assert_eq!(client.recv_close(ms(2000)).await, Some(1000));
        let ended = admin_session_event(&mut admin, ms(1000), "ended", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "client_closed");
        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], false);
        assert_ne!(again["session_id"], welcome["session_id"]);
    })
    .await;
}

#[tokio::test]
async fn a_dropped_tab_resumes_its_session_without_ended_started_or_offline() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.resume_grace = ms(5000)).await;
        let (mut admin, _) = hub.admin("").await;
        let (client, welcome) = hub.welcomed_client("alice").await;
        assert_eq!(welcome["resumed"], false);
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        assert!(token.len() >= 32 && token != id);
        admin_session_event(&mut admin, ms(2000), "started", |e, _| e == "started").await;

        client.close().await;
        let reconnecting = admin_session_event(&mut admin, ms(1000), "reconnecting", |e, s| {
            e == "updated" && s["reconnecting"] == true
        })
        .await;
        assert_eq!(
            reconnecting["session"]["status"], "active",
            "status unchanged"
        );
        let (_, sessions) = get_json(&hub, "/api/v1/sessions").await;
        assert_eq!(sessions["sessions"][0]["reconnecting"], true);
        assert!(
            !sessions.to_string().contains(&token),
            "the token is never shown"
        );

        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], true);
        assert_eq!(again["session_id"], id.as_str());
        let fresh = again["resume_token"].as_str().unwrap().to_string();
        assert_ne!(fresh, token);
        let resumed = admin_session_event(&mut admin, ms(1000), "resumed", |e, s| {
            e == "updated" && s["reconnecting"] == false
        })
        .await;
        assert_eq!(resumed["session"]["session_id"], id.as_str());

        // Nothing else happened to the user: no ended, no started, no offline.
        let rest = admin.collect_for(ms(300)).await;
        for frame in &rest {
            assert_ne!(frame["event"], "ended", "{frame}");
            assert_ne!(frame["event"], "started", "{frame}");
            assert_ne!(frame["user"]["status"], "offline", "{frame}");
            assert!(!frame.to_string().contains(&fresh));
        }

        // The used token works no more: a new session.
        let (_, second) = {
            let mut other =
                WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
            let welcome = other.recv_type("welcome", ms(2000)).await;
            (other, welcome)
        };
        assert_eq!(second["resumed"], false);
        assert_ne!(second["session_id"], id.as_str());
        back.send_json(json!({"type": "ping", "id": 2})).await;
        assert_eq!(back.recv_type("pong", ms(2000)).await["id"], 2);
    })
    .await;
}

#[tokio::test]
async fn a_connection_lost_without_a_close_frame_is_resumable() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.resume_grace = ms(5000)).await;
        let (mut admin, _) = hub.admin("").await;
        let (client, welcome) = hub.welcomed_client("alice").await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        // Dropping the socket closes the TCP connection with no close frame.
        drop(client);
        admin_session_event(&mut admin, ms(2000), "reconnecting", |e, s| {
            e == "updated" && s["reconnecting"] == true
        })
        .await;
        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], true);
        assert_eq!(again["session_id"], id.as_str());
        let rest = admin.collect_for(ms(300)).await;
        assert!(rest.iter().all(|f| f["event"] != "ended"), "{rest:?}");
    })
    .await;
}

#[tokio::test]
async fn without_a_resume_the_session_ends_at_the_time_of_the_drop() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.resume_grace = ms(800);
            c.reconnect_spread = ms(500);
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        let (client, _) = hub.welcomed_client("alice").await;
        let dropped_at = chrono::Utc::now().timestamp_millis();
        let dropped = Instant::now();
        client.close().await;
        let ended = admin_session_event(&mut admin, ms(3000), "ended", |e, _| e == "ended").await;
        assert!(dropped.elapsed() >= ms(700), "after the grace");
        assert_eq!(ended["session"]["end_cause"], "client_closed");
        assert_eq!(ended["session"]["reconnecting"], false);
        let ended_at = millis_of(&ended["session"]["ended_at"]);
        assert!(
            (dropped_at - 50..dropped_at + 400).contains(&ended_at),
            "ended_at {ended_at} is the drop {dropped_at}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_silent_socket_drops_at_dead_after_and_ends_timeout() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.heartbeat_interval = ms(300);
            c.dead_after = ms(900);
            c.resume_grace = ms(700);
            c.reconnect_spread = ms(500);
        })
        .await;
        let (mut admin, _) = hub.admin("").await;
        // Never read again: no Pong goes back, the socket is silent.
        let (_silent, _) = hub.welcomed_client("alice").await;
        let started = Instant::now();
        admin_session_event(&mut admin, ms(3000), "reconnecting", |e, s| {
            e == "updated" && s["reconnecting"] == true
        })
        .await;
        assert!(started.elapsed() >= ms(800));
        let ended = admin_session_event(&mut admin, ms(3000), "ended", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "timeout");
        let duration = ended["session"]["duration_s"].as_f64().unwrap();
        assert!(
            duration < 1.4,
            "ended at the drop, not after the grace: {duration}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_resume_while_the_old_socket_is_open_takes_over_and_closes_it_with_4003() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.resume_grace = ms(5000)).await;
        let (mut old, welcome) = hub.welcomed_client("alice").await;
        let token = welcome["resume_token"].as_str().unwrap().to_string();

        // Another user's attempt is a new session and leaves the token usable.
        let mut bob = WsClient::connect(&hub.ws_url(&format!("/ws?user=bob&resume={token}"))).await;
        assert_eq!(bob.recv_type("welcome", ms(2000)).await["resumed"], false);
        let mut junk = WsClient::connect(&hub.ws_url("/ws?user=alice&resume=%00nope")).await;
        assert_eq!(junk.recv_type("welcome", ms(2000)).await["resumed"], false);

        let mut new =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = new.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], true);
        assert_eq!(again["session_id"], welcome["session_id"]);
        assert_eq!(old.next_json(ms(2000)).await, None, "no terminated frame");
        assert_eq!(old.close_code, Some(4003));
        new.send_json(json!({"type": "ping", "id": 3})).await;
        assert_eq!(new.recv_type("pong", ms(2000)).await["id"], 3);
    })
    .await;
}

async fn get_json(hub: &TestHub, path: &str) -> (u16, Value) {
    let response = reqwest::get(hub.http(path)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn with_a_grace_of_zero_a_close_ends_at_once_and_nothing_resumes() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.resume_grace = Duration::ZERO).await;
        let (mut admin, _) = hub.admin("").await;
        let (client, welcome) = hub.welcomed_client("alice").await;
        let token = welcome["resume_token"].as_str().unwrap().to_string();
        assert!(
            !token.is_empty(),
            "a token in every welcome, whatever the grace"
        );
        assert_eq!(welcome["resumed"], false);
        client.close().await;
        let ended = admin_session_event(&mut admin, ms(1000), "ended", |e, _| e == "ended").await;
        assert_eq!(ended["session"]["end_cause"], "client_closed");
        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={token}"))).await;
        let again = back.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], false);
        assert_ne!(again["session_id"], welcome["session_id"]);
    })
    .await;
}
