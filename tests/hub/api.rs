//! The admin HTTP API of contract section 6, against a real hub.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, admin_session_event, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

async fn get(hub: &TestHub, path: &str) -> (u16, Value) {
    let response = reqwest::get(hub.http(path)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(hub: &TestHub, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .delete(hub.http(path))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn connect(hub: &TestHub, query: &str) -> (WsClient, String) {
    let mut client = WsClient::connect(&hub.ws_url(&format!("/ws?{query}"))).await;
    let welcome = client.recv_type("welcome", ms(5000)).await;
    (client, welcome["session_id"].as_str().unwrap().to_string())
}

fn ids(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn users_are_listed_filtered_searched_and_paged() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_a, _) = connect(&hub, "user=alice&name=Alice%20Smith&org=acme").await;
        let (_b, _) = connect(&hub, "user=bob&name=Bob&org=acme").await;
        let (mut c, _) = connect(&hub, "user=carol&org=other").await;
        c.send_json(json!({"type": "status", "manual": "away"}))
            .await;
        c.recv_type("status", ms(5000)).await;

        let (status, all) = get(&hub, "/api/v1/users").await;
        assert_eq!(status, 200);
        assert_eq!(all["total"], 3);
        assert_eq!(
            (all["page"].clone(), all["page_size"].clone()),
            (json!(1), json!(20))
        );
        assert_eq!(ids(&all, "users", "user_id"), vec!["alice", "bob", "carol"]);
        let (_, acme) = get(&hub, "/api/v1/users?org=acme").await;
        assert_eq!(ids(&acme, "users", "user_id"), vec!["alice", "bob"]);
        let (_, away) = get(&hub, "/api/v1/users?status=away").await;
        assert_eq!(ids(&away, "users", "user_id"), vec!["carol"]);
        let (_, active) = get(&hub, "/api/v1/users?status=active").await;
        assert_eq!(active["total"], 2);
        let (_, online) = get(&hub, "/api/v1/users?status=online").await;
        assert_eq!(online["total"], 3);
        let (_, search) = get(&hub, "/api/v1/users?q=SMITH").await;
        assert_eq!(
            ids(&search, "users", "user_id"),
            vec!["alice"],
            "q searches names case-insensitively"
        );
        let (_, page2) = get(&hub, "/api/v1/users?page=2&page_size=2").await;
        assert_eq!(ids(&page2, "users", "user_id"), vec!["carol"]);
        assert_eq!(page2["total"], 3);
        let (_, past) = get(&hub, "/api/v1/users?page=9").await;
        assert_eq!(
            (
                past["users"].as_array().unwrap().len(),
                past["total"].clone()
            ),
            (0, json!(3))
        );
    })
    .await;
}

#[tokio::test]
async fn bad_parameters_are_400_and_name_the_parameter() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        for (path, name) in [
            ("/api/v1/users?page_size=0", "page_size"),
            ("/api/v1/users?page_size=501", "page_size"),
            ("/api/v1/users?page=0", "page"),
            ("/api/v1/users?status=sleeping", "status"),
            ("/api/v1/sessions?status=dead", "status"),
            ("/api/v1/sessions?from=yesterday", "from"),
            ("/api/v1/sessions?page=abc", "page"),
            ("/api/v1/sessions/export?format=xml", "format"),
        ] {
            let (status, body) = get(&hub, path).await;
            assert_eq!(status, 400, "{path}");
            assert_eq!(body["error"]["code"], "bad_parameter", "{path}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(name),
                "{path}: {body}"
            );
        }
        let (status, _) = get(&hub, "/api/v1/users?page_size=500").await;
        assert_eq!(status, 200, "500 is allowed");
    })
    .await;
}

#[tokio::test]
async fn a_user_has_live_sessions_or_is_offline_from_history_or_unknown() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (tab, id) = connect(&hub, "user=alice&name=Alice").await;
        let (status, user) = get(&hub, "/api/v1/users/alice").await;
        assert_eq!(status, 200);
        assert_eq!(user["status"], "active");
        assert_eq!(ids(&user, "sessions", "session_id"), vec![id.clone()]);
        tab.close().await;
        let (_, offline) = crate::support::eventually(ms(5000), "offline", || async {
            let (status, user) = get(&hub, "/api/v1/users/alice").await;
            (user["status"] == "offline").then_some((status, user))
        })
        .await;
        assert_eq!(offline["session_count"], 0);
        assert_eq!(offline["name"], "Alice");
        assert_eq!(offline["sessions"], json!([]));
        let (status, body) = get(&hub, "/api/v1/users/nobody").await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
    })
    .await;
}

#[tokio::test]
async fn sessions_are_listed_newest_first_with_filters() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_a, a) = connect(&hub, "user=alice&org=acme").await;
        tokio::time::sleep(ms(5)).await;
        let (_b, b) = connect(&hub, "user=bob&org=zeta").await;
        tokio::time::sleep(ms(5)).await;
        let (gone, c) = connect(&hub, "user=carol&org=acme").await;
        gone.close().await;
        crate::support::eventually(ms(5000), "carol ended", || async {
            (get(&hub, "/api/v1/sessions?status=ended").await.1["total"] == 1).then_some(())
        })
        .await;

        let (_, live) = get(&hub, "/api/v1/sessions").await;
        assert_eq!(
            ids(&live, "sessions", "session_id"),
            vec![b.clone(), a.clone()],
            "default is live, newest first"
        );
        let (_, ended) = get(&hub, "/api/v1/sessions?status=ended").await;
        assert_eq!(ids(&ended, "sessions", "session_id"), vec![c.clone()]);
        assert_eq!(ended["sessions"][0]["end_cause"], "client_closed");
        let (_, all) = get(&hub, "/api/v1/sessions?status=all").await;
        assert_eq!(
            ids(&all, "sessions", "session_id"),
            vec![c.clone(), b.clone(), a.clone()]
        );
        let (_, acme) = get(&hub, "/api/v1/sessions?status=all&org=acme").await;
        assert_eq!(acme["total"], 2);
        let (_, by_user) = get(&hub, "/api/v1/sessions?user_id=bob").await;
        assert_eq!(ids(&by_user, "sessions", "session_id"), vec![b.clone()]);
        let (_, by_node) = get(&hub, "/api/v1/sessions?node_id=test-node").await;
        assert_eq!(by_node["total"], 2);
        let (_, other_node) = get(&hub, "/api/v1/sessions?node_id=elsewhere").await;
        assert_eq!(other_node["total"], 0);
        let prefix = &a[..8];
        let (_, by_id) = get(
            &hub,
            &format!("/api/v1/sessions?q={}", prefix.to_uppercase()),
        )
        .await;
        assert_eq!(
            ids(&by_id, "sessions", "session_id"),
            vec![a.clone()],
            "q matches session ids"
        );
        let (_, by_ip) = get(&hub, "/api/v1/sessions?q=127.0.0&status=all").await;
        assert_eq!(by_ip["total"], 3);
        let (_, page) = get(&hub, "/api/v1/sessions?status=all&page=2&page_size=2").await;
        assert_eq!(ids(&page, "sessions", "session_id"), vec![a.clone()]);
        let future = "2999-01-01T00:00:00Z";
        let (_, none) = get(&hub, &format!("/api/v1/sessions?status=all&from={future}")).await;
        assert_eq!(none["total"], 0);
        let (_, before) = get(&hub, &format!("/api/v1/sessions?status=all&to={future}")).await;
        assert_eq!(before["total"], 3);
        let (status, one) = get(&hub, &format!("/api/v1/sessions/{c}")).await;
        assert_eq!(
            (status, one["status"].clone()),
            (200, json!("ended")),
            "detail from history"
        );
        let (status, one) = get(&hub, &format!("/api/v1/sessions/{a}")).await;
        assert_eq!((status, one["status"].clone()), (200, json!("active")));
        assert_eq!(
            get(
                &hub,
                "/api/v1/sessions/00000000-0000-4000-8000-000000000000"
            )
            .await
            .0,
            404
        );
        assert_eq!(get(&hub, "/api/v1/sessions/not-an-id").await.0, 404);
    })
    .await;
}

#[tokio::test]
async fn terminate_and_revoke_reach_the_real_client_and_history() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut one, id) = connect(&hub, "user=alice").await;
        let started = std::time::Instant::now();
        let (status, body) = delete(&hub, &format!("/api/v1/sessions/{id}")).await;
        assert_eq!((status, body), (200, json!({"terminated": true})));
        assert_eq!(
            one.recv_type("terminated", ms(1000)).await["reason"],
            "admin"
        );
        assert_eq!(one.recv_close(ms(1000)).await, Some(4003));
        assert!(started.elapsed() < ms(1000), "within 1 s");
        let ended = admin_session_event(&mut admin, ms(5000), "terminated", |e, s| {
            e == "ended" && s["session_id"] == id.as_str()
        })
        .await;
        assert_eq!(ended["session"]["end_cause"], "terminated");
        assert_eq!(
            delete(&hub, &format!("/api/v1/sessions/{id}")).await.0,
            404,
            "already gone"
        );

        let (mut t1, _) = connect(&hub, "user=bob").await;
        let (mut t2, _) = connect(&hub, "user=bob").await;
        let (_other, _) = connect(&hub, "user=carol").await;
        let (status, body) = delete(&hub, "/api/v1/users/bob/sessions").await;
        assert_eq!((status, body), (200, json!({"terminated": 2})));
        for tab in [&mut t1, &mut t2] {
            assert_eq!(
                tab.recv_type("terminated", ms(1000)).await["reason"],
                "revoked"
            );
            assert_eq!(tab.recv_close(ms(1000)).await, Some(4003));
        }
        let (_, history) = crate::support::eventually(ms(5000), "history", || async {
            let found = get(&hub, "/api/v1/sessions?status=ended&user_id=bob").await;
            (found.1["total"] == 2).then_some(found)
        })
        .await;
        assert!(
            history["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["end_cause"] == "revoked")
        );
        let (_, live) = get(&hub, "/api/v1/sessions").await;
        assert_eq!(live["total"], 1, "carol is untouched");
        assert_eq!(
            delete(&hub, "/api/v1/users/nobody/sessions").await.1,
            json!({"terminated": 0})
        );
    })
    .await;
}

#[tokio::test]
async fn history_records_timeouts_with_duration() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.heartbeat_interval = ms(200);
            c.dead_after = ms(600);
        })
        .await;
        let _silent = WsClient::connect(&hub.ws_url("/ws?user=ghost")).await;
        let (_, ended) = crate::support::eventually(ms(5000), "timeout in history", || async {
            let found = get(&hub, "/api/v1/sessions?status=ended").await;
            (found.1["total"] == 1).then_some(found)
        })
        .await;
        let session = &ended["sessions"][0];
        assert_eq!(session["end_cause"], "timeout");
        assert!(session["ended_at"].is_string());
        let duration = session["duration_s"].as_f64().unwrap();
        assert!((0.5..3.0).contains(&duration), "{duration}");
    })
    .await;
}

#[tokio::test]
async fn stats_count_a_scripted_scenario() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.idle_after = ms(600);
            c.away_after = ms(5000);
        })
        .await;
        let phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        let mut idle = WsClient::try_connect(&hub.ws_url("/ws?user=alice"), &[("user-agent", phone)]).await.unwrap();
        idle.recv_type("welcome", ms(5000)).await;
        idle.recv_until(ms(5000), "idle", |v| v["type"] == "status" && v["status"] == "idle").await;
        let (_b, _) = connect(&hub, "user=bob").await;
        let (_b2, _) = connect(&hub, "user=bob").await;
        let (gone, _) = connect(&hub, "user=carol").await;
        gone.close().await;
        let stats = crate::support::eventually(ms(5000), "stats", || async {
            let (_, stats) = get(&hub, "/api/v1/stats").await;
            (stats["sessions"]["live"] == 3).then_some(stats)
        })
        .await;
        assert_eq!(stats["online_users"], 2);
        assert_eq!(stats["sessions"], json!({"live": 3, "active": 2, "idle": 1, "away": 0}));
        assert_eq!(stats["by_device_type"], json!({"mobile": 1, "unknown": 2}));
        assert_eq!(stats["by_node"], json!({"test-node": 3}));
        assert_eq!(stats["started"], json!({"today": 4, "last_7d": 4, "last_30d": 4}));
        assert_eq!(stats["peak_online"]["users"], 3, "alice, bob and carol were online at once");
        assert!(stats["peak_online"]["at"].as_str().unwrap().ends_with('Z'));
    })
    .await;
}

#[tokio::test]
async fn the_export_is_csv_that_parses_back() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (_live, live_id) = connect(&hub, "user=alice&name=Smith%2C%20%22Al%22&page=%2Fa%2Cb").await;
        let (gone, gone_id) = connect(&hub, "user=bob&app=crm&app_version=2").await;
        gone.close().await;
        crate::support::eventually(ms(5000), "bob ended", || async {
            (get(&hub, "/api/v1/sessions?status=ended").await.1["total"] == 1).then_some(())
        })
        .await;
        let response = reqwest::get(hub.http("/api/v1/sessions/export?format=csv")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = response.text().await.unwrap();
        assert!(text.contains("\r\n"), "RFC 4180 line endings");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(
            header.join(","),
            "session_id,user_id,name,org,node_id,transport,status,connected_at,ended_at,end_cause,duration_s,ip,platform,device_type,browser,app_name,app_version,page,email,team,meta"
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let live = rows.iter().find(|r| &r[0] == live_id.as_str()).unwrap();
        assert_eq!(&live[2], "Smith, \"Al\"", "quotes and commas survive");
        assert_eq!(&live[17], "/a,b");
        assert_eq!(&live[6], "active");
        assert_eq!(&live[8], "", "no ended_at for a live session");
        let ended = rows.iter().find(|r| &r[0] == gone_id.as_str()).unwrap();
        assert_eq!((&ended[6], &ended[9]), ("ended", "client_closed"));
        assert_eq!((&ended[15], &ended[16]), ("crm", "2"));

        let ndjson = reqwest::get(hub.http("/api/v1/sessions/export?format=ndjson")).await.unwrap().text().await.unwrap();
        let lines: Vec<Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let future = "2999-01-01T00:00:00Z";
        let empty = reqwest::get(hub.http(&format!("/api/v1/sessions/export?from={future}"))).await.unwrap().text().await.unwrap();
        assert_eq!(empty.lines().count(), 1, "just the header");
    })
    .await;
}

#[tokio::test]
async fn history_survives_a_restart_with_a_history_file_even_after_a_torn_line() {
    within(LIMIT, async {
        let path = std::env::temp_dir().join(format!(
            "presence-history-test-{}.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let file = path.clone();
        let hub = TestHub::start(|c| c.history_file = Some(file)).await;
        let (client, id) = connect(&hub, "user=alice").await;
        client.close().await;
        crate::support::eventually(ms(5000), "ended", || async {
            (get(&hub, "/api/v1/sessions?status=ended").await.1["total"] == 1).then_some(())
        })
        .await;
        let (_still_live, live_id) = connect(&hub, "user=bob").await;
        hub.shutdown().await;
        // A crash mid-append leaves half a line behind.
        std::fs::write(
            &path,
            [
                std::fs::read(&path).unwrap(),
                b"{\"session_id\":\"8f1".to_vec(),
            ]
            .concat(),
        )
        .unwrap();

        let file = path.clone();
        let hub = TestHub::start(|c| c.history_file = Some(file)).await;
        let (status, session) = get(&hub, &format!("/api/v1/sessions/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(session["end_cause"], "client_closed");
        let (_, shut) = get(&hub, &format!("/api/v1/sessions/{live_id}")).await;
        assert_eq!(
            shut["end_cause"], "shutdown",
            "sessions open at shutdown are recorded too"
        );
        let (_, user) = get(&hub, "/api/v1/users/alice").await;
        assert_eq!(user["status"], "offline");
        let _ = std::fs::remove_file(&path);
    })
    .await;
}

#[tokio::test]
async fn the_api_is_rate_limited_per_token_with_retry_after() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.api_rate_limit = "5/s".into()).await;
        let mut statuses = Vec::new();
        for _ in 0..15 {
            let response = reqwest::get(hub.http("/api/v1/stats")).await.unwrap();
            statuses.push(response.status().as_u16());
            if response.status() == 429 {
                assert!(
                    response.headers()["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                        >= 1
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
            }
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            10,
            "burst of twice the rate: {statuses:?}"
        );
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5);
    })
    .await;
}

#[tokio::test]
async fn admin_routes_check_tokens_and_unknown_routes_are_json_errors() {
    within(LIMIT, async {
        let hub =
            TestHub::start(|c| c.jwt_secret = Some("s3cret-s3cret-s3cret-s3cret-s3cret".into()))
                .await;
        let client = reqwest::Client::new();
        let status = |path: &'static str, token: Option<String>| {
            let client = client.clone();
            let url = hub.http(path);
            async move {
                let mut request = client.get(url);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                request.send().await.unwrap().status().as_u16()
            }
        };
        assert_eq!(status("/api/v1/users", None).await, 401);
        assert_eq!(
            status(
                "/api/v1/users",
                Some(jwt("s3cret-s3cret-s3cret-s3cret-s3cret", "bob", None, 60))
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "/api/v1/users",
                Some(jwt(
                    "s3cret-s3cret-s3cret-s3cret-s3cret",
                    "root",
                    Some("admin"),
                    -60
                ))
            )
            .await,
            401
        );
        assert_eq!(
            status(
                "/api/v1/users",
                Some(jwt(
                    "s3cret-s3cret-s3cret-s3cret-s3cret",
                    "root",
                    Some("admin"),
                    60
                ))
            )
            .await,
            200
        );
        assert_eq!(
            status(
                "/api/v1/stats",
                Some(jwt("other", "root", Some("admin"), 60))
            )
            .await,
            401
        );
        let post = client.post(hub.http("/api/v1/users")).send().await.unwrap();
        assert_eq!(post.status(), 405);
        let body: Value = post.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(status("/api/v1/nothing", None).await, 404);
        assert_eq!(status("/", None).await, 200, "the panel needs no token");
    })
    .await;
}

#[tokio::test]
async fn metrics_move_with_a_scenario() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut client, _) = connect(&hub, "user=alice").await;
        for i in 0..3 {
            client.send_json(json!({"type": "ping", "id": i})).await;
            client.recv_type("pong", ms(5000)).await;
        }
        client.send_text("garbage").await;
        client.recv_type("error", ms(5000)).await;
        let (_admin, _) = hub.admin("").await;
        let _ = get(&hub, "/api/v1/users").await;
        let text = reqwest::get(hub.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("metric {name} in\n{text}"))
        };
        assert_eq!(value("presence_connections "), 1.0);
        assert_eq!(value("presence_messages_in_total{type=\"ping\"}"), 3.0);
        assert_eq!(
            value("presence_bad_frames_total{code=\"bad_message\"}"),
            1.0
        );
        assert_eq!(value("presence_sessions{status=\"active\"}"), 1.0);
        assert_eq!(value("presence_online_users "), 1.0);
        assert_eq!(value("presence_admin_subscribers "), 1.0);
        assert!(
            value("presence_api_requests_total{route=\"/api/v1/users\",status=\"200\"}") >= 1.0
        );
        assert!(value("process_resident_memory_bytes ") > 0.0);

        let disabled = TestHub::start(|c| c.metrics = false).await;
        assert_eq!(
            reqwest::get(disabled.http("/metrics"))
                .await
                .unwrap()
                .status(),
            404
        );
    })
    .await;
}

#[tokio::test]
async fn history_older_than_the_retention_is_pruned_in_the_background() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.history_retention = ms(1500)).await;
        let (client, id) = connect(&hub, "user=alice").await;
        client.close().await;
        crate::support::eventually(ms(5000), "recorded", || async {
            (get(&hub, &format!("/api/v1/sessions/{id}")).await.0 == 200).then_some(())
        })
        .await;
        crate::support::eventually(ms(8000), "pruned", || async {
            (get(&hub, &format!("/api/v1/sessions/{id}")).await.0 == 404).then_some(())
        })
        .await;
        let (_, ended) = get(&hub, "/api/v1/sessions?status=ended").await;
        assert_eq!(ended["total"], 0);
    })
    .await;
}
