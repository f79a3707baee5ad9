//! Contract v1.1 §9's identity claims and §10's additions to sessions
//! (metadata filters, traffic, timelines), against a real hub in dev mode.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, eventually, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

async fn get(hub: &TestHub, path: &str) -> (u16, Value) {
    let response = reqwest::get(hub.http(path)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn text(hub: &TestHub, path: &str) -> String {
    reqwest::get(hub.http(path))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn connect(hub: &TestHub, query: &str) -> (WsClient, String) {
    let mut client = WsClient::connect(&hub.ws_url(&format!("/ws?{query}"))).await;
    let welcome = client.recv_type("welcome", ms(5000)).await;
    (client, welcome["session_id"].as_str().unwrap().to_string())
}

fn ids(list: &Value, key: &str, field: &str) -> Vec<String> {
    let mut ids: Vec<String> = list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn email_and_team_are_kept_filtered_searched_and_exported() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_a, a) = connect(&hub, "user=alice&email=alice%40acme.test&team=Core").await;
        let (_b, _) = connect(&hub, "user=bob&team=core").await;
        let (gone, g) = connect(&hub, "user=carol&email=carol%40globex.test").await;
        gone.close().await;
        eventually(ms(5000), "carol ended", || async {
            (get(&hub, "/api/v1/sessions?status=ended").await.1["total"] == 1).then_some(())
        })
        .await;

        let (_, alice) = get(&hub, &format!("/api/v1/sessions/{a}")).await;
        assert_eq!(
            (alice["email"].clone(), alice["team"].clone()),
            (json!("alice@acme.test"), json!("Core"))
        );
        let (_, bob) = get(&hub, "/api/v1/users/bob").await;
        assert_eq!(
            (bob["email"].clone(), bob["team"].clone()),
            (Value::Null, json!("core"))
        );
        let (_, carol) = get(&hub, &format!("/api/v1/sessions/{g}")).await;
        assert_eq!(
            (carol["email"].clone(), carol["team"].clone()),
            (json!("carol@globex.test"), Value::Null)
        );

        let (_, by_email) = get(&hub, "/api/v1/users?email=alice%40acme.test").await;
        assert_eq!(ids(&by_email, "users", "user_id"), vec!["alice"]);
        let (_, by_team) = get(&hub, "/api/v1/users?team=core").await;
        assert_eq!(
            ids(&by_team, "users", "user_id"),
            vec!["bob"],
            "team matches exactly"
        );
        let (_, searched) = get(&hub, "/api/v1/users?q=CORE").await;
        assert_eq!(ids(&searched, "users", "user_id"), vec!["alice", "bob"]);
        let (_, sessions) = get(
            &hub,
            "/api/v1/sessions?status=all&email=carol%40globex.test",
        )
        .await;
        assert_eq!(ids(&sessions, "sessions", "user_id"), vec!["carol"]);
        let (_, sessions) = get(&hub, "/api/v1/sessions?status=all&q=globex").await;
        assert_eq!(ids(&sessions, "sessions", "user_id"), vec!["carol"]);
        let (_, sessions) = get(&hub, "/api/v1/sessions?team=Core").await;
        assert_eq!(ids(&sessions, "sessions", "user_id"), vec!["alice"]);

        let csv = text(&hub, "/api/v1/sessions/export?format=csv&team=core").await;
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(&header[18..20], ["email", "team"]);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1, "the export filters on team");
        assert_eq!(
            (&rows[0][1], &rows[0][18], &rows[0][19]),
            ("bob", "", "core"),
            "null exports as an empty cell"
        );
    })
    .await;
}

#[tokio::test]
async fn meta_filters_apply_to_live_and_ended_sessions_and_the_export() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut a, a_id) = connect(&hub, "user=alice").await;
        a.send_json(json!({"type": "hello", "meta": {"plan": "pro", "seats": 3}}))
            .await;
        let (mut b, b_id) = connect(&hub, "user=bob").await;
        b.send_json(json!({"type": "hello", "meta": {"plan": "free", "seats": 3, "beta": true}}))
            .await;
        eventually(ms(5000), "meta applied", || async {
            let (_, list) = get(&hub, "/api/v1/sessions?meta.seats=3").await;
            (list["total"] == 2).then_some(())
        })
        .await;
        let (_, pro) = get(&hub, "/api/v1/sessions?meta.plan=pro").await;
        assert_eq!(ids(&pro, "sessions", "session_id"), vec![a_id.clone()]);
        let (_, both) = get(&hub, "/api/v1/sessions?meta.seats=3&meta.beta=true").await;
        assert_eq!(ids(&both, "sessions", "session_id"), vec![b_id.clone()]);
        b.close().await;
        eventually(ms(5000), "bob ended", || async {
            let (_, list) = get(&hub, "/api/v1/sessions?status=ended&meta.beta=true").await;
            (list["total"] == 1).then_some(())
        })
        .await;
        let (_, all) = get(&hub, "/api/v1/sessions?status=all&meta.seats=3").await;
        assert_eq!(all["total"], 2);

        let (status, bad) = get(&hub, "/api/v1/sessions?meta.=x").await;
        assert_eq!(status, 400);
        assert_eq!(bad["error"]["code"], "bad_parameter");
        assert!(
            bad["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"meta.\""),
            "{bad}"
        );

        let csv = text(&hub, "/api/v1/sessions/export?format=csv&meta.plan=pro").await;
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(&reader.headers().unwrap()[20], "meta");
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][20], r#"{"plan":"pro","seats":3}"#);
        drop(a);
    })
    .await;
}

#[tokio::test]
async fn stats_count_live_sessions_by_org_and_average_todays_durations() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_a, _) = connect(&hub, "user=alice&org=acme").await;
        let (_a2, _) = connect(&hub, "user=alice&org=acme").await;
        let (_b, _) = connect(&hub, "user=bob&org=globex").await;
        let (_c, _) = connect(&hub, "user=carol").await;
        let (_, before) = get(&hub, "/api/v1/stats").await;
        assert_eq!(
            before["avg_duration_s_today"],
            json!(0.0),
            "nothing ended yet"
        );
        let (gone, _) = connect(&hub, "user=dave&org=globex").await;
        tokio::time::sleep(ms(300)).await;
        gone.close().await;
        let ended = eventually(ms(5000), "dave ended", || async {
            let (_, list) = get(&hub, "/api/v1/sessions?status=ended").await;
            list["sessions"].get(0).cloned()
        })
        .await;
        let (_, stats) = get(&hub, "/api/v1/stats").await;
        assert_eq!(
            stats["by_org"],
            json!({"acme": 2, "globex": 1}),
            "live sessions only, no org left out"
        );
        let avg = stats["avg_duration_s_today"].as_f64().unwrap();
        assert!(
            (avg - ended["duration_s"].as_f64().unwrap()).abs() < 1e-9,
            "{avg} vs {ended}"
        );
        assert!(avg >= 0.3);
    })
    .await;
}

#[tokio::test]
async fn traffic_and_round_trip_are_counted_and_kept_on_the_ended_session() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.heartbeat_interval = ms(200)).await;
        let (mut client, id) = connect(&hub, "user=alice").await;
        let (_, fresh) = get(&hub, &format!("/api/v1/sessions/{id}")).await;
        assert_eq!(fresh["rtt_ms"], Value::Null, "no Ping answered yet");
        let pings = [
            json!({"type": "ping"}).to_string(),
            json!({"type": "ping", "id": "p2"}).to_string(),
        ];
        let mut pongs = Vec::new();
        for ping in &pings {
            client.send_text(ping).await;
            let pong = client.recv_type("pong", ms(5000)).await;
            pongs.push(pong.to_string());
        }
        // Reading lets the client answer the hub's WebSocket Pings.
        let session = loop {
            client.collect_for(ms(250)).await;
            let (_, session) = get(&hub, &format!("/api/v1/sessions/{id}")).await;
            if session["rtt_ms"].is_number() {
                break session;
            }
        };
        assert!(session["rtt_ms"].as_f64().unwrap() >= 0.0);
        let traffic = &session["traffic"];
        assert_eq!(traffic["msgs_in"], 2);
        assert_eq!(
            traffic["bytes_in"],
            pings.iter().map(String::len).sum::<usize>()
        );
        assert!(
            traffic["msgs_out"].as_u64().unwrap() >= 3,
            "welcome and two pongs: {traffic}"
        );
        assert!(
            traffic["bytes_out"].as_u64().unwrap()
                > pongs.iter().map(String::len).sum::<usize>() as u64
        );
        client.close().await;
        let ended = eventually(ms(5000), "ended", || async {
            let (_, s) = get(&hub, &format!("/api/v1/sessions/{id}")).await;
            (s["status"] == "ended").then_some(s)
        })
        .await;
        assert_eq!(ended["traffic"]["msgs_in"], 2);
        assert_eq!(ended["traffic"]["bytes_in"], traffic["bytes_in"]);
        assert!(ended["rtt_ms"].is_number());
    })
    .await;
}

#[tokio::test]
async fn heartbeat_sessions_count_http_body_bytes() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let http = reqwest::Client::new();
        let first = json!({"active": true}).to_string();
        let answer = http
            .post(hub.http("/api/v1/heartbeat?user=alice"))
            .header("content-type", "application/json")
            .body(first.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let id = serde_json::from_str::<Value>(&answer).unwrap()["session_id"].as_str().unwrap().to_string();
        let second = json!({"session_id": id, "active": true}).to_string();
        let answer2 = http
            .post(hub.http("/api/v1/heartbeat?user=alice"))
            .header("content-type", "application/json")
            .body(second.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (_, session) = get(&hub, &format!("/api/v1/sessions/{id}")).await;
        assert_eq!(
            session["traffic"],
            json!({"msgs_in": 2, "msgs_out": 2, "bytes_in": first.len() + second.len(), "bytes_out": answer.len() + answer2.len()})
        );
        assert_eq!(session["rtt_ms"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn timelines_record_manual_status_and_page_changes_live_and_ended() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, id) = connect(&hub, "user=alice&page=%2Fstart").await;
        client
            .send_json(json!({"type": "status", "manual": "away"}))
            .await;
        client.recv_type("status", ms(5000)).await;
        client
            .send_json(json!({"type": "ping", "page": "/inbox"}))
            .await;
        client.recv_type("pong", ms(5000)).await;
        let live = eventually(ms(5000), "page entry", || async {
            let (status, body) = get(&hub, &format!("/api/v1/sessions/{id}/timeline")).await;
            assert_eq!(status, 200);
            (body["entries"].as_array().unwrap().len() >= 3).then_some(body)
        })
        .await;
        assert_eq!(live["session_id"], id.as_str());
        assert_eq!(live["truncated"], false);
        assert_eq!(
            kinds(&live),
            vec![
                (json!("manual"), Value::Null, json!("away")),
                (json!("status"), json!("active"), json!("away")),
                (json!("page"), json!("/start"), json!("/inbox")),
            ]
        );
        assert!(live["entries"][0]["at"].as_str().unwrap().ends_with('Z'));
        client.close().await;
        eventually(ms(5000), "ended", || async {
            let (_, s) = get(&hub, &format!("/api/v1/sessions/{id}")).await;
            (s["status"] == "ended").then_some(())
        })
        .await;
        let (status, ended) = get(&hub, &format!("/api/v1/sessions/{id}/timeline")).await;
        assert_eq!(status, 200);
        assert_eq!(
            ended["entries"], live["entries"],
            "kept with the ended session"
        );
        let (status, _) = get(
            &hub,
            "/api/v1/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10/timeline",
        )
        .await;
        assert_eq!(status, 404);
    })
    .await;
}

/// The (kind, from, to) of a timeline's entries.
fn kinds(timeline: &Value) -> Vec<(Value, Value, Value)> {
    timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].clone(), e["from"].clone(), e["to"].clone()))
        .collect()
}

#[tokio::test]
async fn timelines_record_rooms_and_a_resume() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.resume_grace = ms(5000)).await;
        let mut client = WsClient::connect(&hub.ws_url("/ws?user=alice")).await;
        let welcome = client.recv_type("welcome", ms(5000)).await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let resume = welcome["resume_token"].as_str().unwrap().to_string();
        client
            .send_json(json!({"type": "join", "room": "doc:1"}))
            .await;
        client.recv_type("room", ms(5000)).await;
        client
            .send_json(json!({"type": "leave", "room": "doc:1"}))
            .await;
        client.close().await;
        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?user=alice&resume={resume}"))).await;
        assert_eq!(back.recv_type("welcome", ms(5000)).await["resumed"], true);
        let timeline = eventually(ms(5000), "resumed entry", || async {
            let (status, body) = get(&hub, &format!("/api/v1/sessions/{id}/timeline")).await;
            assert_eq!(status, 200);
            (body["entries"].as_array().unwrap().len() >= 4).then_some(body)
        })
        .await;
        assert_eq!(
            kinds(&timeline),
            vec![
                (json!("room_join"), Value::Null, json!("doc:1")),
                (json!("room_leave"), json!("doc:1"), Value::Null),
                (json!("reconnecting"), Value::Null, Value::Null),
                (json!("resumed"), Value::Null, Value::Null),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn timelines_keep_the_newest_entries_up_to_the_limit() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.timeline_limit = 2).await;
        let (mut client, id) = connect(&hub, "user=alice").await;
        for page in ["/a", "/b", "/c"] {
            client
                .send_json(json!({"type": "ping", "page": page}))
                .await;
            client.recv_type("pong", ms(5000)).await;
        }
        let body = eventually(ms(5000), "three pages", || async {
            let (_, body) = get(&hub, &format!("/api/v1/sessions/{id}/timeline")).await;
            (body["entries"]
                .as_array()
                .unwrap()
                .last()
                .map(|e| e["to"].clone())
                == Some(json!("/c")))
            .then_some(body)
        })
        .await;
        assert_eq!(body["truncated"], true);
        let tos: Vec<Value> = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["to"].clone())
            .collect();
        assert_eq!(tos, vec![json!("/b"), json!("/c")]);
    })
    .await;
}
