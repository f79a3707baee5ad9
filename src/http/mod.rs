//! Owns the HTTP transport shared by `client/`, `admin/` and `ops/`: the
//! listener and its TLS, the upgrade hand-off, WebSocket close, JSON errors, the auth
//! filters, the origin check, strict query strings, client IPs and the embedded panel. It knows no
//! route handler; `routes.rs` composes them.

pub mod admission;
pub mod auth;
pub mod body;
pub mod client_ip;
pub mod cors;
pub mod error;
pub mod origin;
pub mod panel;
pub mod query;
pub mod rate;
pub mod server;
pub mod streamed;
pub mod tls;
pub mod upgrade;
pub mod websocket;

/// The route template of a path, so ids do not explode metric labels.
pub fn route_label(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["ws"] => "/ws",
        ["admin", "ws"] => "/admin/ws",
        ["api", "v1", "heartbeat"] => "/api/v1/heartbeat",
        ["api", "v1", "users"] => "/api/v1/users",
        ["api", "v1", "users", _] => "/api/v1/users/{user_id}",
        ["api", "v1", "users", _, "sessions"] => "/api/v1/users/{user_id}/sessions",
        ["api", "v1", "sessions"] => "/api/v1/sessions",
        ["api", "v1", "sessions", "export"] => "/api/v1/sessions/export",
        ["api", "v1", "sessions", _] => "/api/v1/sessions/{session_id}",
        ["api", "v1", "sessions", _, "timeline"] => "/api/v1/sessions/{session_id}/timeline",
        ["api", "v1", "stats"] => "/api/v1/stats",
        ["api", "v1", "stats", "series"] => "/api/v1/stats/series",
        ["api", "v1", "audit"] => "/api/v1/audit",
        ["api", "v1", "analytics", "heatmap"] => "/api/v1/analytics/heatmap",
        ["api", "v1", "analytics", "durations"] => "/api/v1/analytics/durations",
        ["api", "v1", "analytics", "daily"] => "/api/v1/analytics/daily",
        ["api", "v1", "audit", "export"] => "/api/v1/audit/export",
        ["api", "v1", "me", "sessions"] => "/api/v1/me/sessions",
        ["api", "v1", "me", "sessions", "revoke-others"] => "/api/v1/me/sessions/revoke-others",
        ["api", "v1", "me", "sessions", _] => "/api/v1/me/sessions/{session_id}",
        ["api", "v1", "me", "history"] => "/api/v1/me/history",
        ["api", "v1", "rooms"] => "/api/v1/rooms",
        ["api", "v1", "rooms", _] => "/api/v1/rooms/{room}",
        ["api", "v1", "webhooks"] => "/api/v1/webhooks",
        ["api", "v1", "alerts"] => "/api/v1/alerts",
        ["api", "v1", "openapi.json"] => "/api/v1/openapi.json",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        _ => "other",
    }
}
