//! Checks the OpenAPI document against the routes that exist: the hub serves
//! it, every documented path and method answers with a documented status and
//! a body of the documented shape, the documented parameter bounds are the
//! hub's, the documented security is the hub's, and every route the hub
//! serves is documented.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, jwt, ms, within};

const LIMIT: Duration = Duration::from_secs(30);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// No token in either mode.
    Open,
    /// Any valid token (JWT mode) or `?user=` (dev mode).
    Client,
    /// A token with role `admin` (JWT mode); nothing in dev mode.
    Admin,
}

/// Every route the hub serves: method, template (as `route_label` in
/// `src/http/mod.rs` names it), a concrete path, and who may call it. A new
/// route belongs here and in `docs/openapi.json`; the tests below fail until
/// both say the same as the code.
const SERVED: &[(&str, &str, &str, Auth)] = &[
    ("get", "/ws", "/ws", Auth::Client),
    ("get", "/admin/ws", "/admin/ws", Auth::Admin),
    (
        "post",
        "/api/v1/heartbeat",
        "/api/v1/heartbeat",
        Auth::Client,
    ),
    ("get", "/api/v1/users", "/api/v1/users", Auth::Admin),
    (
        "get",
        "/api/v1/sessions/{session_id}/timeline",
        "/api/v1/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10/timeline",
        Auth::Admin,
    ),
    ("get", "/api/v1/audit", "/api/v1/audit", Auth::Admin),
    (
        "get",
        "/api/v1/analytics/heatmap",
        "/api/v1/analytics/heatmap",
        Auth::Admin,
    ),
    (
        "get",
        "/api/v1/analytics/durations",
        "/api/v1/analytics/durations",
        Auth::Admin,
    ),
    (
        "get",
        "/api/v1/analytics/daily",
        "/api/v1/analytics/daily",
        Auth::Admin,
    ),
    (
        "get",
        "/api/v1/audit/export",
        "/api/v1/audit/export",
        Auth::Admin,
    ),
    (
        "get",
        "/api/v1/me/sessions",
        "/api/v1/me/sessions",
        Auth::Client,
    ),
    (
        "delete",
        "/api/v1/me/sessions/{session_id}",
        "/api/v1/me/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10",
        Auth::Client,
    ),
    (
        "post",
        "/api/v1/me/sessions/revoke-others",
        "/api/v1/me/sessions/revoke-others",
        Auth::Client,
    ),
    (
        "get",
        "/api/v1/me/history",
        "/api/v1/me/history",
        Auth::Client,
    ),
    (
        "get",
        "/api/v1/users/{user_id}",
        "/api/v1/users/alice",
        Auth::Admin,
    ),
    (
        "delete",
        "/api/v1/users/{user_id}/sessions",
        "/api/v1/users/alice/sessions",
        Auth::Admin,
    ),
    ("get", "/api/v1/sessions", "/api/v1/sessions", Auth::Admin),
    (
        "get",
        "/api/v1/sessions/export",
        "/api/v1/sessions/export",
        Auth::Admin,
    ),
    (
        "get",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10",
        Auth::Admin,
    ),
    (
        "delete",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/0b0c8f5e-3a0d-4e43-9a57-2f1d6c1e9b10",
        Auth::Admin,
    ),
    ("get", "/api/v1/stats", "/api/v1/stats", Auth::Admin),
    (
        "get",
        "/api/v1/stats/series",
        "/api/v1/stats/series",
        Auth::Admin,
    ),
    ("get", "/api/v1/rooms", "/api/v1/rooms", Auth::Admin),
    (
        "get",
        "/api/v1/rooms/{room}",
        "/api/v1/rooms/org%3Aacme",
        Auth::Client,
    ),
    ("get", "/api/v1/alerts", "/api/v1/alerts", Auth::Admin),
    ("get", "/api/v1/webhooks", "/api/v1/webhooks", Auth::Admin),
    (
        "get",
        "/api/v1/openapi.json",
        "/api/v1/openapi.json",
        Auth::Open,
    ),
    ("get", "/healthz", "/healthz", Auth::Open),
    ("get", "/readyz", "/readyz", Auth::Open),
    ("get", "/metrics", "/metrics", Auth::Open),
];

/// The panel's static files: served, documented, but not a `route_label` route.
const PANEL: (&str, &str) = ("get", "/");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document as the hub serves it.
async fn fetch_document(hub: &TestHub) -> Value {
    let response = reqwest::get(hub.http("/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).expect("the served OpenAPI document is valid JSON")
}

/// Every `(method, path)` of the document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                found.push((method.to_string(), path.clone()));
            }
        }
    }
    found
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(doc, target)
        }
        None => value,
    }
}

/// Checks `value` against an OpenAPI 3.0 schema: types, `nullable`, `enum`,
/// `required`, `properties`, `items`, `additionalProperties`, `allOf`,
/// `minimum` and `maximum`.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            conforms(doc, part, value, at);
        }
    }
    if value.is_null() {
        assert!(
            schema["nullable"] == true || schema.get("type").is_none(),
            "{at}: null where the document does not allow it"
        );
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        assert!(
            allowed.contains(value),
            "{at}: {value} is not one of the documented {allowed:?}"
        );
    }
    let Some(kind) = schema.get("type").and_then(Value::as_str) else {
        return;
    };
    let kind_ok = match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        other => panic!("{at}: unknown schema type {other}"),
    };
    assert!(
        kind_ok,
        "{at}: {value} is not of the documented type {kind}"
    );
    if let (Some(n), Some(min)) = (value.as_f64(), schema["minimum"].as_f64()) {
        assert!(n >= min, "{at}: {n} is below the documented minimum {min}");
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema["maximum"].as_f64()) {
        assert!(n <= max, "{at}: {n} is above the documented maximum {max}");
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap();
            assert!(
                object.contains_key(key),
                "{at}: the documented required key {key:?} is missing from {value}"
            );
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => conforms(doc, property, item, &format!("{at}.{key}")),
                None => {
                    if let Some(extra) =
                        schema.get("additionalProperties").filter(|s| s.is_object())
                    {
                        conforms(doc, extra, item, &format!("{at}.{key}"));
                    }
                }
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(doc, schema, item, &format!("{at}[{i}]"));
        }
    }
}

/// The live ids the document's path parameters are filled with.
struct Ids {
    /// A user whose session is only read.
    reader: String,
    reader_session: String,
    /// A user whose sessions `DELETE /api/v1/users/{user_id}/sessions` ends.
    revoked: String,
    /// The session `DELETE /api/v1/sessions/{session_id}` ends.
    terminated_session: String,
    /// A user who ends its own session with `DELETE /api/v1/me/...`.
    self_ender: String,
    self_ended_session: String,
    /// A user who signs out its other sessions.
    self_revoker: String,
    /// A room the reader joined, percent-encoded.
    room: String,
}

/// `path` with its `{...}` parameters replaced by live ids.
fn concrete(method: &str, path: &str, ids: &Ids) -> String {
    if path.starts_with("/api/v1/me/") {
        return concrete_own(method, path, ids);
    }
    let deleting = method == "delete";
    let mut out = path.to_string();
    if out.contains("{user_id}") {
        let user = if deleting { &ids.revoked } else { &ids.reader };
        out = out.replace("{user_id}", user);
    }
    if out.contains("{session_id}") {
        let session = if deleting {
            &ids.terminated_session
        } else {
            &ids.reader_session
        };
        out = out.replace("{session_id}", session);
    }
    out = out.replace("{room}", &ids.room);
    assert!(
        !out.contains('{'),
        "{method} {path}: no live id for its parameter; add one to this test"
    );
    out
}

/// A self-service path, with the dev-mode caller who owns what it names.
fn concrete_own(method: &str, path: &str, ids: &Ids) -> String {
    let user = match method {
        "delete" => &ids.self_ender,
        "post" => &ids.self_revoker,
        _ => &ids.reader,
    };
    let out = path.replace("{session_id}", &ids.self_ended_session);
    assert!(!out.contains('{'), "{method} {path}: no live id");
    format!("{out}?user={user}")
}

/// An example body for an operation's JSON request body, from the document.
fn request_example(doc: &Value, operation: &Value) -> Option<Value> {
    let body = resolve(doc, operation.get("requestBody")?);
    let media = &body["content"]["application/json"];
    let example = media
        .get("example")
        .or_else(|| resolve(doc, &media["schema"]).get("example"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    Some(example)
}

/// The documented response for `status`, or a panic naming the operation.
fn documented<'a>(doc: &'a Value, operation: &'a Value, status: u16, what: &str) -> &'a Value {
    let response = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{what} answered {status}, which the document does not list"));
    resolve(doc, response)
}

/// Fails on the two answers that mean "no such route".
fn assert_route_exists(status: u16, body: &str, what: &str) {
    assert_ne!(status, 405, "{what}: method not allowed: {body}");
    assert!(
        !(status == 404 && body.contains("no such route")),
        "{what}: the hub has no such route: {body}"
    );
}

async fn start_hub() -> TestHub {
    TestHub::start(|c| c.api_rate_limit = "10000/s".into()).await
}

#[tokio::test]
async fn the_hub_serves_the_checked_in_document() {
    within(LIMIT, async {
        let hub = start_hub().await;
        let doc = fetch_document(&hub).await;
        let on_disk: Value = serde_json::from_str(include_str!("../../docs/openapi.json"))
            .expect("docs/openapi.json is valid JSON");
        assert_eq!(doc, on_disk);
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
        assert_eq!(
            (&schemes["tokenQuery"]["in"], &schemes["tokenQuery"]["name"]),
            (&json!("query"), &json!("token"))
        );
        for name in ["User", "Session", "Error", "Stats"] {
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "schema {name} is documented"
            );
        }
        let retry_after = resolve(
            &doc,
            &doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"],
        );
        assert!(
            retry_after["schema"].is_object(),
            "429 documents Retry-After"
        );
    })
    .await;
}

#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    within(LIMIT, async {
        let hub = start_hub().await;
        let doc = fetch_document(&hub).await;
        let (mut reader, welcome) = hub.welcomed_client("alice").await;
        reader
            .send_json(json!({"type": "join", "room": "doc:openapi"}))
            .await;
        reader.recv_type("room", ms(5000)).await;
        let (_terminated, bob) = hub.welcomed_client("bob").await;
        let (_revoked, _) = hub.welcomed_client("carol").await;
        let (_self_ended, frank) = hub.welcomed_client("frank").await;
        let (_self_revoker, _) = hub.welcomed_client("grace").await;
        let ids = Ids {
            self_ender: "frank".into(),
            self_ended_session: frank["session_id"].as_str().unwrap().into(),
            self_revoker: "grace".into(),
            reader: "alice".into(),
            reader_session: welcome["session_id"].as_str().unwrap().into(),
            revoked: "carol".into(),
            terminated_session: bob["session_id"].as_str().unwrap().into(),
            room: "doc%3Aopenapi".into(),
        };
        let client = reqwest::Client::new();
        let mut checked = 0;
        for (method, path) in operations(&doc) {
            let operation = &doc["paths"][&path][&method];
            let what = format!("{} {path}", method.to_uppercase());
            let url = concrete(&method, &path, &ids);
            if operation["responses"].get("101").is_some() {
                // A WebSocket upgrade: a real handshake succeeds, and a plain
                // GET is refused with a documented 400, not a missing route.
                let query = if path == "/ws" { "?user=erin" } else { "" };
                let mut socket = WsClient::connect(&hub.ws_url(&format!("{url}{query}"))).await;
                let first = socket.next_json(ms(5000)).await.expect("a first frame");
                let expected = if path == "/ws" { "welcome" } else { "snapshot" };
                assert_eq!(first["type"], expected, "{what}: {first}");
                socket.close().await;
                let plain = client.get(hub.http(&url)).send().await.unwrap();
                let status = plain.status().as_u16();
                let body = plain.text().await.unwrap();
                assert_route_exists(status, &body, &what);
                assert_eq!(status, 400, "{what} without a handshake: {body}");
                documented(&doc, operation, status, &what);
                checked += 1;
                continue;
            }
            let mut request =
                client.request(method.to_uppercase().parse().unwrap(), hub.http(&url));
            if let Some(body) = request_example(&doc, operation) {
                // Client routes identify their user with ?user= in dev mode.
                request = request.query(&[("user", "dave")]).json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = response.text().await.unwrap();
            assert_route_exists(status, &body, &what);
            assert_eq!(status, 200, "{what} with live ids: {body}");
            let answer = documented(&doc, operation, status, &what);
            let content = answer["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: 200 documents no content"));
            let media = content
                .iter()
                .find(|(name, _)| content_type.starts_with(name.as_str()))
                .map(|(_, media)| media)
                .unwrap_or_else(|| {
                    panic!("{what}: content-type {content_type:?} is not documented")
                });
            if content_type.starts_with("application/json") {
                let value: Value = serde_json::from_str(&body).unwrap();
                conforms(&doc, &media["schema"], &value, &what);
            }
            checked += 1;
        }
        assert!(checked >= SERVED.len(), "only {checked} operations checked");
    })
    .await;
}

#[tokio::test]
async fn every_served_route_is_documented() {
    within(LIMIT, async {
        let hub = start_hub().await;
        let doc = fetch_document(&hub).await;
        let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().collect();
        let mut served = BTreeSet::new();
        for (method, template, example, _) in SERVED {
            assert_eq!(
                presence_hub::route_label(example),
                *template,
                "SERVED lists {template}, which route_label does not name so"
            );
            assert!(
                documented.contains(&(method.to_string(), template.to_string())),
                "{} {template} is served but not in docs/openapi.json",
                method.to_uppercase()
            );
            served.insert((method.to_string(), template.to_string()));
        }
        served.insert((PANEL.0.to_string(), PANEL.1.to_string()));
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(undocumented.is_empty(), "not documented: {undocumented:?}");
        assert!(
            unserved.is_empty(),
            "documented but not in SERVED: {unserved:?}"
        );
        for (_, path) in &documented {
            if path != PANEL.1 {
                assert_eq!(
                    presence_hub::route_label(path),
                    path.as_str(),
                    "route_label does not know the documented {path}"
                );
            }
        }
    })
    .await;
}

/// `path?name=value`, plus the dev-mode caller on self-service routes.
fn probe_url(hub: &TestHub, path: &str, name: &str, value: &str) -> reqwest::Url {
    let mut params = vec![(name, value)];
    if path.starts_with("/api/v1/me/") {
        params.push(("user", "alice"));
    }
    reqwest::Url::parse_with_params(&hub.http(path), params).unwrap()
}

#[tokio::test]
async fn documented_query_parameter_bounds_are_the_hubs() {
    within(LIMIT, async {
        let hub = start_hub().await;
        let doc = fetch_document(&hub).await;
        let (_client, _) = hub.welcomed_client("alice").await;
        let mut probed = BTreeSet::new();
        for (method, path) in operations(&doc) {
            if method != "get" || !path.starts_with("/api/v1/") || path.contains('{') {
                continue;
            }
            let operation = &doc["paths"][&path][&method];
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let parameter = resolve(&doc, parameter);
                if parameter["in"] != "query" {
                    continue;
                }
                let name = parameter["name"].as_str().unwrap();
                let schema = resolve(&doc, &parameter["schema"]);
                let mut good: Vec<String> = Vec::new();
                let mut bad: Vec<String> = Vec::new();
                if let Some(values) = schema["enum"].as_array() {
                    good.extend(values.iter().map(|v| v.as_str().unwrap().to_string()));
                    bad.push("not-a-documented-value".into());
                }
                if schema["type"] == "integer" {
                    if let Some(min) = schema["minimum"].as_i64() {
                        good.push(min.to_string());
                        bad.push((min - 1).to_string());
                    }
                    if let Some(max) = schema["maximum"].as_i64() {
                        good.push(max.to_string());
                        bad.push((max + 1).to_string());
                    }
                    bad.push("ten".into());
                }
                if schema["format"] == "date-time" {
                    good.push("2026-01-01T00:00:00.000Z".into());
                    bad.push("yesterday".into());
                }
                for value in &good {
                    let url = probe_url(&hub, &path, name, value);
                    let response = reqwest::get(url).await.unwrap();
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap();
                    assert_eq!(status, 200, "{path}?{name}={value} is documented: {body}");
                    probed.insert(format!("{path}?{name}"));
                }
                for value in &bad {
                    let url = probe_url(&hub, &path, name, value);
                    let response = reqwest::get(url).await.unwrap();
                    assert_eq!(
                        response.status(),
                        400,
                        "{path}?{name}={value} is outside the documented bounds"
                    );
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "bad_parameter");
                    assert!(
                        body["error"]["message"].as_str().unwrap().contains(name),
                        "the 400 names {name}: {body}"
                    );
                }
            }
        }
        for expected in [
            "/api/v1/users?status",
            "/api/v1/users?page",
            "/api/v1/users?page_size",
            "/api/v1/sessions?status",
            "/api/v1/sessions?from",
            "/api/v1/sessions?to",
            "/api/v1/sessions?page",
            "/api/v1/sessions?page_size",
            "/api/v1/sessions/export?format",
            "/api/v1/sessions/export?from",
            "/api/v1/sessions/export?to",
            "/api/v1/rooms?page",
            "/api/v1/rooms?page_size",
            "/api/v1/stats/series?from",
            "/api/v1/stats/series?to",
            "/api/v1/stats/series?window",
        ] {
            assert!(
                probed.contains(expected),
                "{expected} has no documented bound"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn documented_security_is_what_the_hub_checks() {
    within(LIMIT, async {
        let secret = "openapi-secret-of-at-least-32-bytes";
        let hub = TestHub::start(|c| {
            c.jwt_secret = Some(secret.into());
            c.api_rate_limit = "10000/s".into();
        })
        .await;
        let doc = fetch_document(&hub).await;
        let user_token = jwt(secret, "erin", None, 300);
        let client = reqwest::Client::new();
        for (method, template, example, auth) in SERVED {
            let operation = &doc["paths"][template][method];
            let what = format!("{} {template}", method.to_uppercase());
            let security = operation["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{what} states its security (an empty list when open)"));
            assert_eq!(
                security.is_empty(),
                *auth == Auth::Open,
                "{what}: documented security {security:?}"
            );
            if *auth != Auth::Open {
                let schemes: BTreeSet<String> = security
                    .iter()
                    .flat_map(|s| s.as_object().unwrap().keys().cloned())
                    .collect();
                let upgrade = *template == "/ws" || *template == "/admin/ws";
                let expected = if upgrade {
                    BTreeSet::from(["bearerAuth".to_string(), "tokenQuery".to_string()])
                } else {
                    BTreeSet::from(["bearerAuth".to_string()])
                };
                assert_eq!(
                    schemes, expected,
                    "{what}: ?token= only on WebSocket upgrades"
                );
            }
            let method = method.to_uppercase().parse().unwrap();
            let send = |token: Option<&str>| {
                let mut request = client.request(Clone::clone(&method), hub.http(example));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if *template == "/api/v1/heartbeat" {
                    request = request.json(&json!({"active": true}));
                }
                request.send()
            };
            let anonymous = send(None).await.unwrap().status().as_u16();
            let as_user = send(Some(&user_token)).await.unwrap().status().as_u16();
            match auth {
                Auth::Open => {
                    assert_eq!(anonymous, 200, "{what} needs no token");
                }
                Auth::Client => {
                    assert_eq!(anonymous, 401, "{what} without a token");
                    documented(&doc, operation, 401, &what);
                    assert_ne!(as_user, 401, "{what} takes a client token");
                    assert_ne!(as_user, 403, "{what} takes a client token");
                }
                Auth::Admin => {
                    assert_eq!(anonymous, 401, "{what} without a token");
                    documented(&doc, operation, 401, &what);
                    assert_eq!(as_user, 403, "{what} with a non-admin token");
                    documented(&doc, operation, 403, &what);
                }
            }
        }
    })
    .await;
}
