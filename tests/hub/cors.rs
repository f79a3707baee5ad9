//! `PRESENCE_CORS_ORIGINS`: preflights and real requests from a listed and
//! an unlisted origin, on the CORS paths and off them.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{TestHub, within};

const LIMIT: Duration = Duration::from_secs(20);
const LISTED: &str = "https://app.example";
const UNLISTED: &str = "https://evil.example";

async fn preflight(hub: &TestHub, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, hub.http(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

async fn heartbeat(hub: &TestHub, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(hub.http("/api/v1/heartbeat?user=alice"))
        .header("origin", origin)
        .json(&json!({"active": true}))
        .send()
        .await
        .unwrap()
}

fn allow_origin(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn listed_origins_get_cors_headers_on_the_client_routes_only() {
    within(LIMIT, async {
        let hub =
            TestHub::start(|c| c.cors_origins = Some(format!("{LISTED}, https://other.example")))
                .await;

        let answer = preflight(&hub, "/api/v1/heartbeat", LISTED).await;
        assert_eq!(answer.status(), 204);
        assert_eq!(allow_origin(&answer), Some(LISTED));
        let allowed = answer.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert!(
            answer.headers()["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        let answer = preflight(&hub, "/api/v1/me/sessions", LISTED).await;
        assert_eq!(allow_origin(&answer), Some(LISTED));

        let answer = preflight(&hub, "/api/v1/heartbeat", UNLISTED).await;
        assert_eq!(allow_origin(&answer), None);

        let real = heartbeat(&hub, LISTED).await;
        assert_eq!(real.status(), 200);
        assert_eq!(allow_origin(&real), Some(LISTED));
        assert!(real.headers().get_all("vary").iter().any(|v| v == "Origin"));
        let real = heartbeat(&hub, UNLISTED).await;
        assert_eq!(
            real.status(),
            200,
            "the hub answers; the browser withholds it"
        );
        assert_eq!(allow_origin(&real), None);

        let script = reqwest::Client::new()
            .get(hub.http("/presence-client.js"))
            .header("origin", LISTED)
            .send()
            .await
            .unwrap();
        assert_eq!(script.status(), 200);
        assert_eq!(allow_origin(&script), Some(LISTED));

        // The client's probe after a refused upgrade: a plain GET of `/ws`,
        // whose status the page may read.
        let probe = reqwest::Client::new()
            .get(hub.http("/ws?user=alice"))
            .header("origin", LISTED)
            .send()
            .await
            .unwrap();
        assert!(probe.status().is_client_error(), "{}", probe.status());
        assert_eq!(allow_origin(&probe), Some(LISTED));

        let admin = reqwest::Client::new()
            .get(hub.http("/api/v1/users"))
            .header("origin", LISTED)
            .send()
            .await
            .unwrap();
        assert_eq!(
            allow_origin(&admin),
            None,
            "the admin API is not for other origins"
        );
        let answer = preflight(&hub, "/api/v1/users", LISTED).await;
        assert_eq!(allow_origin(&answer), None);
    })
    .await;
}

#[tokio::test]
async fn without_the_setting_no_cors_header_is_sent() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let answer = preflight(&hub, "/api/v1/heartbeat", LISTED).await;
        assert_ne!(answer.status(), 204);
        assert_eq!(allow_origin(&answer), None);
        let real = heartbeat(&hub, LISTED).await;
        assert_eq!(real.status(), 200);
        assert_eq!(allow_origin(&real), None);
    })
    .await;
}
