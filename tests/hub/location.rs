//! Location (§12) from a MaxMind database built at test time: sessions
//! gain `location` from their (trusted-proxy) IP, stats gain `by_country`,
//! `impossible_travel` is raised, and a missing or unreadable database
//! stops the hub with exit 2.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mmdb::{remove, test_places, write_city_db};
use crate::support::{TestHub, WsClient, ms, within};

const LIMIT: Duration = Duration::from_secs(60);

async fn located_hub(name: &str) -> (TestHub, std::path::PathBuf) {
    let path = write_city_db(name, &test_places());
    let db = path.clone();
    let hub = TestHub::start(move |c| {
        c.geoip_db = Some(db);
        c.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    (hub, path)
}

async fn client_from(hub: &TestHub, user: &str, ip: &str) -> (WsClient, String) {
    let mut client = WsClient::try_connect(
        &hub.ws_url(&format!("/ws?user={user}")),
        &[("x-forwarded-for", ip)],
    )
    .await
    .unwrap();
    let welcome = client.recv_type("welcome", ms(2000)).await;
    (client, welcome["session_id"].as_str().unwrap().to_string())
}

async fn get(hub: &TestHub, path: &str) -> Value {
    reqwest::get(hub.http(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sessions_are_located_from_their_ip_and_counted_by_country() {
    within(LIMIT, async {
        let (hub, path) = located_hub("located").await;
        let (_paris, paris_id) = client_from(&hub, "ana", "192.0.2.10").await;
        let (_ny, ny_id) = client_from(&hub, "ben", "198.51.100.20").await;
        let (_lyon, _) = client_from(&hub, "cai", "203.0.113.30").await;
        let (_nowhere, nowhere_id) = client_from(&hub, "dan", "10.1.2.3").await;
        let paris = get(&hub, &format!("/api/v1/sessions/{paris_id}")).await;
        assert_eq!(paris["ip"], "192.0.2.10");
        assert_eq!(
            paris["location"],
            json!({"country": "FR", "city": "Paris", "timezone": "Europe/Paris", "lat": 48.8566, "lon": 2.3522})
        );
        let ny = get(&hub, &format!("/api/v1/sessions/{ny_id}")).await;
        assert_eq!(ny["location"]["country"], "US");
        assert_eq!(ny["location"]["city"], "New York");
        let nowhere = get(&hub, &format!("/api/v1/sessions/{nowhere_id}")).await;
        assert!(nowhere.get("location").is_some_and(Value::is_null), "{nowhere}");
        let stats = get(&hub, "/api/v1/stats").await;
        assert_eq!(stats["by_country"], json!({"FR": 2, "US": 1}));
        hub.shutdown().await;
        remove(&path);
    })
    .await;
}

#[tokio::test]
async fn heartbeat_sessions_are_located_too() {
    within(LIMIT, async {
        let (hub, path) = located_hub("heartbeat").await;
        let response: Value = reqwest::Client::new()
            .post(hub.http("/api/v1/heartbeat?user=eve"))
            .header("x-forwarded-for", "198.51.100.9")
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = response["session_id"].as_str().unwrap();
        let session = get(&hub, &format!("/api/v1/sessions/{id}")).await;
        assert_eq!(session["location"]["country"], "US");
        hub.shutdown().await;
        remove(&path);
    })
    .await;
}

#[tokio::test]
async fn paris_then_new_york_within_seconds_is_impossible_travel() {
    within(LIMIT, async {
        let (hub, path) = located_hub("travel").await;
        let (mut admin, _) = hub.admin("").await;
        let (_a, paris_id) = client_from(&hub, "frank", "192.0.2.1").await;
        let (_b, lyon_id) = client_from(&hub, "frank", "203.0.113.1").await;
        let (c, ny_id) = client_from(&hub, "frank", "198.51.100.1").await;
        let raised = admin
            .recv_until(ms(5000), "impossible_travel", |v| {
                v["type"] == "alert" && v["alert"]["rule"] == "impossible_travel"
            })
            .await;
        let alert = &raised["alert"];
        assert_eq!(alert["user_id"], "frank");
        assert_eq!(alert["ip"], "198.51.100.1");
        let pair = alert["details"]["session_ids"].as_array().unwrap();
        assert_eq!(pair[1], ny_id.as_str());
        assert!(pair[0] == lyon_id.as_str() || pair[0] == paris_id.as_str());
        assert!(alert["details"]["distance_km"].as_f64().unwrap() > 5000.0);
        c.close().await;
        let cleared = admin
            .recv_until(ms(5000), "impossible_travel cleared", |v| {
                v["type"] == "alert"
                    && v["alert"]["rule"] == "impossible_travel"
                    && v["alert"]["cleared_at"].is_string()
            })
            .await;
        assert_eq!(cleared["alert"]["id"], alert["id"]);
        hub.shutdown().await;
        remove(&path);
    })
    .await;
}

#[test]
fn a_missing_or_unreadable_database_exits_2_naming_it() {
    let garbage =
        std::env::temp_dir().join(format!("presence-{}-garbage.mmdb", std::process::id()));
    std::fs::write(&garbage, b"not a database").unwrap();
    for path in [
        std::path::PathBuf::from("/nonexistent/city.mmdb"),
        garbage.clone(),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_presence-hub"))
            .env_clear()
            .env("PRESENCE_BIND", "127.0.0.1:0")
            .env("PRESENCE_GEOIP_DB", &path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{path:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("PRESENCE_GEOIP_DB"), "{stderr}");
        assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
    }
    let _ = std::fs::remove_file(&garbage);
}
