//! The audit trail of contract v1.1 §10: admin actions, self-service ends,
//! exports and refused authentication, listed, exported and streamed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, eventually, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "audit-trail-test-secret-of-32-bytes!!";

async fn send(method: reqwest::Method, url: String, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn audit(hub: &TestHub, query: &str, admin: Option<&str>) -> Value {
    let (status, body) = send(
        reqwest::Method::GET,
        hub.http(&format!("/api/v1/audit{query}")),
        admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn events_eventually(
    hub: &TestHub,
    query: &str,
    admin: Option<&str>,
    n: usize,
) -> Vec<Value> {
    eventually(ms(5000), "audit events", || async {
        let list = audit(hub, query, admin).await;
        let events = list["events"].as_array().unwrap().clone();
        (events.len() >= n).then_some(events)
    })
    .await
}

async fn connect(hub: &TestHub, user: &str) -> (WsClient, String) {
    let mut client = WsClient::connect(&hub.ws_url(&format!("/ws?user={user}"))).await;
    let welcome = client.recv_type("welcome", ms(5000)).await;
    (client, welcome["session_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn admin_actions_are_recorded_with_actor_target_and_result() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_bob, bob_session) = connect(&hub, "bob").await;
        let (_carol, _) = connect(&hub, "carol").await;
        let (admin_stream, _) = hub.admin("").await;
        let mut admin_stream = admin_stream;

        send(
            reqwest::Method::DELETE,
            hub.http(&format!("/api/v1/sessions/{bob_session}")),
            None,
        )
        .await;
        send(
            reqwest::Method::DELETE,
            hub.http("/api/v1/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10"),
            None,
        )
        .await;
        send(
            reqwest::Method::DELETE,
            hub.http("/api/v1/users/carol/sessions"),
            None,
        )
        .await;

        let terminated = events_eventually(&hub, "?action=session.terminate", None, 2).await;
        assert_eq!(terminated.len(), 2);
        let (missing, ok) = (&terminated[0], &terminated[1]);
        assert_eq!(ok["result"], "ok");
        assert_eq!(
            ok["target"],
            json!({"user_id": null, "session_id": bob_session})
        );
        assert_eq!(ok["actor"]["role"], "admin");
        assert_eq!(ok["actor"]["ip"], "127.0.0.1");
        assert_eq!(ok["node_id"], "test-node");
        assert_eq!(ok["reason"], Value::Null);
        assert_eq!(missing["result"], "not_found");
        let fields: Vec<&String> = ok.as_object().unwrap().keys().collect();
        for field in [
            "id", "at", "action", "actor", "target", "reason", "node_id", "result",
        ] {
            assert!(fields.iter().any(|f| *f == field), "{field} in {ok}");
        }

        let revoked = events_eventually(&hub, "?action=user.revoke&user_id=carol", None, 1).await;
        assert_eq!(revoked[0]["target"]["user_id"], "carol");
        assert_eq!(revoked[0]["result"], "ok");

        let frame = admin_stream
            .recv_until(ms(5000), "an audit frame", |f| f["type"] == "audit")
            .await;
        assert!(frame["seq"].as_u64().unwrap() > 0);
        assert_eq!(frame["event"]["action"], "session.terminate");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_export_and_a_self_service_end_are_recorded() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_laptop, _) = connect(&hub, "alice").await;
        let (_phone, phone) = connect(&hub, "alice").await;
        let (status, _) = send(
            reqwest::Method::GET,
            hub.http("/api/v1/sessions/export?format=ndjson"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        send(
            reqwest::Method::DELETE,
            hub.http(&format!("/api/v1/me/sessions/{phone}?user=alice")),
            None,
        )
        .await;
        let export = events_eventually(&hub, "?action=sessions.export", None, 1).await;
        assert_eq!(export[0]["reason"], "format=ndjson");
        let ended = events_eventually(&hub, "?action=session.end_by_user", None, 1).await;
        assert_eq!(ended[0]["actor"]["user_id"], "alice");
        assert_eq!(ended[0]["actor"]["role"], "client");
        assert_eq!(
            ended[0]["target"],
            json!({"user_id": "alice", "session_id": phone})
        );
        let by_actor = audit(&hub, "?actor=alice", None).await;
        assert_eq!(by_actor["total"], 1);
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_flood_of_401s_is_folded_per_ip_and_second() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let admin = jwt(SECRET, "root", Some("admin"), 3600);
        for _ in 0..6 {
            let (status, _) = send(reqwest::Method::GET, hub.http("/api/v1/stats"), None).await;
            assert_eq!(status, 401);
        }
        let failed = events_eventually(&hub, "?action=auth.failed", Some(&admin), 2).await;
        assert_eq!(
            failed.len(),
            2,
            "the first at once, the other five folded: {failed:?}"
        );
        let (folded, first) = (&failed[0], &failed[1]);
        assert_eq!(first["reason"], Value::Null);
        assert_eq!(folded["reason"], "folded:5");
        for event in &failed {
            assert_eq!(
                event["actor"],
                json!({"user_id": null, "role": null, "ip": "127.0.0.1"})
            );
            assert_eq!(event["result"], "unauthorized");
        }

        let user = jwt(SECRET, "mallory", None, 3600);
        let (status, _) = send(reqwest::Method::GET, hub.http("/api/v1/stats"), Some(&user)).await;
        assert_eq!(status, 403);
        let denied = events_eventually(&hub, "?action=auth.denied", Some(&admin), 1).await;
        assert_eq!(denied[0]["actor"]["user_id"], "mallory");
        assert_eq!(denied[0]["actor"]["role"], "client");
        assert_eq!(denied[0]["result"], "forbidden");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_trail_exports_as_csv_and_ndjson_and_rejects_bad_filters() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        send(reqwest::Method::DELETE, hub.http("/api/v1/users/nobody/sessions"), None).await;
        events_eventually(&hub, "", None, 1).await;

        let (status, csv) =
            send(reqwest::Method::GET, hub.http("/api/v1/audit/export?format=csv"), None).await;
        assert_eq!(status, 200);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("id,at,action,actor_user_id,actor_role,actor_ip,target_user_id,target_session_id,reason,node_id,result")
        );
        let row = lines.next().unwrap();
        assert!(row.contains(",user.revoke,dev-admin,admin,127.0.0.1,nobody,,,test-node,ok"), "{row}");

        let (status, ndjson) =
            send(reqwest::Method::GET, hub.http("/api/v1/audit/export?format=ndjson"), None).await;
        assert_eq!(status, 200);
        let first: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
        assert_eq!(first["action"], "user.revoke");

        for (query, name) in [
            ("?action=coffee.made", "action"),
            ("?from=yesterday", "from"),
            ("?page_size=0", "page_size"),
        ] {
            let (status, body) =
                send(reqwest::Method::GET, hub.http(&format!("/api/v1/audit{query}")), None).await;
            assert_eq!(status, 400, "{query}");
            assert!(body.contains(name), "{query}: {body}");
        }
        let (status, _) =
            send(reqwest::Method::GET, hub.http("/api/v1/audit/export?format=xml"), None).await;
        assert_eq!(status, 400);
        hub.shutdown().await;
    })
    .await;
}
