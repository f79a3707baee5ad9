//! The self-service routes of contract v1.1 §9 (`/api/v1/me/...`), against
//! a real hub in dev mode and in JWT mode.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "self-service-test-secret-of-32-bytes!";

async fn call(method: reqwest::Method, url: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn connect(url: String) -> (WsClient, String) {
    let mut client = WsClient::connect(&url).await;
    let welcome = client.recv_type("welcome", ms(5000)).await;
    (client, welcome["session_id"].as_str().unwrap().to_string())
}

fn session_ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_user_lists_its_own_sessions_with_the_current_one_marked_and_no_meta() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut laptop, laptop_id) = connect(hub.ws_url("/ws?user=alice")).await;
        laptop
            .send_json(json!({"type": "hello", "meta": {"secret": "for admins"}}))
            .await;
        let (_phone, phone_id) = connect(hub.ws_url("/ws?user=alice")).await;
        let (_other, _) = connect(hub.ws_url("/ws?user=bob")).await;
        // The hello is applied before a later frame on the same socket.
        laptop.send_json(json!({"type": "ping", "id": 1})).await;
        laptop.recv_type("pong", ms(5000)).await;

        let (status, body) = call(
            reqwest::Method::GET,
            hub.http("/api/v1/me/sessions?user=alice"),
            &[("x-presence-session", &laptop_id)],
        )
        .await;
        assert_eq!(status, 200);
        let mut expected = vec![laptop_id.clone(), phone_id.clone()];
        expected.sort();
        assert_eq!(session_ids(&body), expected, "only alice's sessions");
        for session in body["sessions"].as_array().unwrap() {
            let current = session["session_id"] == json!(laptop_id);
            assert_eq!(session["current"], json!(current));
            assert_eq!(session["meta"], Value::Null, "meta is for admins");
            assert_eq!(session["user_id"], "alice");
        }
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_user_ends_one_of_its_sessions_and_not_another_users() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_laptop, laptop_id) = connect(hub.ws_url("/ws?user=alice")).await;
        let (mut phone, phone_id) = connect(hub.ws_url("/ws?user=alice")).await;
        let (mut bob, bob_id) = connect(hub.ws_url("/ws?user=bob")).await;

        let (status, _) = call(
            reqwest::Method::DELETE,
            hub.http(&format!("/api/v1/me/sessions/{bob_id}?user=alice")),
            &[],
        )
        .await;
        assert_eq!(status, 404, "another user's session is not found");
        assert!(
            bob.collect_for(ms(300)).await.is_empty(),
            "bob's session is untouched"
        );

        let (status, body) = call(
            reqwest::Method::DELETE,
            hub.http(&format!("/api/v1/me/sessions/{phone_id}?user=alice")),
            &[("x-presence-session", &laptop_id)],
        )
        .await;
        assert_eq!((status, body), (200, json!({"terminated": true})));
        let terminated = phone.recv_type("terminated", ms(5000)).await;
        assert_eq!(terminated["reason"], "user");
        assert_eq!(phone.recv_close(ms(5000)).await, Some(4003));

        let ended = crate::support::eventually(ms(5000), "the end in history", || async {
            let (_, body) = call(
                reqwest::Method::GET,
                hub.http(&format!("/api/v1/sessions/{phone_id}")),
                &[],
            )
            .await;
            (body["status"] == "ended").then_some(body)
        })
        .await;
        assert_eq!(ended["end_cause"], "terminated");

        let (status, _) = call(
            reqwest::Method::DELETE,
            hub.http("/api/v1/me/sessions/not-a-session?user=alice"),
            &[],
        )
        .await;
        assert_eq!(status, 404);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn revoke_others_keeps_the_current_session_only() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let token = jwt(SECRET, "alice", None, 3600);
        let url = hub.ws_url(&format!("/ws?token={token}"));
        let (mut current, current_id) = connect(url.clone()).await;
        let (mut second, _) = connect(url.clone()).await;
        let (mut third, _) = connect(url).await;
        let bob_token = jwt(SECRET, "bob", None, 3600);
        let (mut bob, _) = connect(hub.ws_url(&format!("/ws?token={bob_token}"))).await;

        let bearer = format!("Bearer {token}");
        let (status, body) = call(
            reqwest::Method::POST,
            hub.http("/api/v1/me/sessions/revoke-others"),
            &[
                ("authorization", &bearer),
                ("x-presence-session", &current_id),
            ],
        )
        .await;
        assert_eq!((status, body), (200, json!({"terminated": 2})));
        for other in [&mut second, &mut third] {
            assert_eq!(
                other.recv_type("terminated", ms(5000)).await["reason"],
                "user"
            );
            assert_eq!(other.recv_close(ms(5000)).await, Some(4003));
        }
        current.send_json(json!({"type": "ping", "id": 2})).await;
        current.recv_type("pong", ms(5000)).await;
        assert!(
            bob.collect_for(ms(300)).await.is_empty(),
            "bob is untouched"
        );

        let (status, body) = call(
            reqwest::Method::GET,
            hub.http("/api/v1/me/sessions"),
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(session_ids(&body), vec![current_id]);

        let (status, _) = call(reqwest::Method::GET, hub.http("/api/v1/me/sessions"), &[]).await;
        assert_eq!(status, 401, "no token");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn history_lists_only_the_callers_ended_sessions_newest_first() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let mut ended = Vec::new();
        for _ in 0..3 {
            let (client, id) = connect(hub.ws_url("/ws?user=alice")).await;
            client.close().await;
            ended.push(id);
            tokio::time::sleep(ms(20)).await;
        }
        let (bob, _) = connect(hub.ws_url("/ws?user=bob")).await;
        bob.close().await;

        let body = crate::support::eventually(ms(5000), "three ended sessions", || async {
            let (_, body) = call(
                reqwest::Method::GET,
                hub.http("/api/v1/me/history?user=alice&page_size=2"),
                &[],
            )
            .await;
            (body["total"] == 3).then_some(body)
        })
        .await;
        let page: Vec<&str> = body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap())
            .collect();
        assert_eq!(page, vec![ended[2].as_str(), ended[1].as_str()]);
        assert_eq!(
            (body["page"].clone(), body["page_size"].clone()),
            (json!(1), json!(2))
        );
        for session in body["sessions"].as_array().unwrap() {
            assert_eq!(session["status"], "ended");
            assert_eq!(session["meta"], Value::Null);
        }
        let (status, _) = call(
            reqwest::Method::GET,
            hub.http("/api/v1/me/history?user=alice&page_size=0"),
            &[],
        )
        .await;
        assert_eq!(status, 400);
        hub.shutdown().await;
    })
    .await;
}
