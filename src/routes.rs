//! Owns the route tree: every route of the hub composed in one place, the
//! one `recover` that turns every rejection into the JSON error body, the
//! request counter and duration histograms, refused WebSocket handshakes
//! by reason, CORS (`http::cors`) on the routes it covers, and what every
//! 401 and 403 answer feeds, whichever route gave it: the audit of refused
//! authentication and the count of 401s per client IP (for the
//! `auth_failures` alert). It is the only module that knows every edge.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use warp::Filter;
use warp::http::{HeaderMap, StatusCode};
use warp::path::FullPath;
use warp::reply::Reply;

use crate::admin::AdminContext;
use crate::alerts::AuthFailures;
use crate::audit::Auditor;
use crate::auth::{Authenticator, DevIdentity, Role};
use crate::client::ClientContext;
use crate::http::auth::{query_param, token_of};
use crate::http::client_ip::client_ip;
use crate::http::cors::CorsPolicy;
use crate::http::origin::{OriginPolicy, check_origin};
use crate::http::upgrade::PeerAddr;
use crate::http::{error, panel, route_label};
use crate::metrics::Metrics;
use crate::model::{AuditAction, AuditActor, AuditTarget};
use crate::ops::OpsContext;

/// What the audit of refused requests needs.
#[derive(Debug, Clone)]
pub struct RefusalAudit {
    /// Where the events go.
    pub auditor: Auditor,
    /// To name the caller of a 403 whose token was valid.
    pub auth: Authenticator,
    /// Proxies whose `X-Forwarded-For` is honoured.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// 401s per client IP, for the `auth_failures` alert.
    pub auth_failures: AuthFailures,
}

/// Every route of the hub, with JSON errors for every rejection.
pub fn all(
    client: Arc<ClientContext>,
    admin: Arc<AdminContext>,
    ops: OpsContext,
    refusals: RefusalAudit,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let metrics: Metrics = ops.metrics.clone();
    let handshakes = HandshakeRefusals {
        metrics: metrics.clone(),
        client_origins: client.origins.clone(),
        admin_origins: admin.origins.clone(),
    };
    let cors = CorsPolicy::new(client.connections.limits.cors_origins.clone());
    let preflight = preflight(cors.clone());
    let tree = crate::client::routes(client)
        .or(crate::admin::routes(admin))
        .unify()
        .or(crate::ops::routes(ops))
        .unify()
        .or(panel::routes())
        .unify()
        .recover(error::handle_rejection)
        .unify()
        .map(Reply::into_response);
    let tree = preflight.or(tree).unify();
    warp::ext::optional::<PeerAddr>()
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::path::full())
        .and(tree)
        .map(
            move |peer: Option<PeerAddr>,
                  headers: HeaderMap,
                  query: String,
                  path: FullPath,
                  reply| {
                let mut response = Reply::into_response(reply);
                refusals.observe(response.status(), peer, &headers, &query);
                handshakes.observe(path.as_str(), &response, &headers);
                cors.decorate(path.as_str(), &headers, &mut response);
                response
            },
        )
        .with(warp::log::custom(move |info| {
            let route = route_label(info.path());
            metrics
                .api_requests
                .with_label_values(&[route, info.status().as_str()])
                .inc();
            let elapsed = info.elapsed().as_secs_f64();
            if info.status() == StatusCode::SWITCHING_PROTOCOLS {
                metrics
                    .ops
                    .handshake_duration
                    .with_label_values(&[route])
                    .observe(elapsed);
            } else {
                metrics
                    .ops
                    .http_duration
                    .with_label_values(&[route])
                    .observe(elapsed);
            }
        }))
}

/// `OPTIONS` on the CORS paths, when CORS is configured.
fn preflight(
    cors: CorsPolicy,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(move |method, path: FullPath, headers: HeaderMap| {
            let answer = cors.preflight(&method, path.as_str(), &headers);
            async move { answer.ok_or_else(warp::reject::not_found) }
        })
}

/// Counts refused WebSocket upgrades by reason
/// (`presence_handshake_rejections_total`).
#[derive(Debug, Clone)]
struct HandshakeRefusals {
    metrics: Metrics,
    client_origins: OriginPolicy,
    admin_origins: OriginPolicy,
}

impl HandshakeRefusals {
    fn observe(&self, path: &str, response: &warp::reply::Response, headers: &HeaderMap) {
        let status = response.status();
        let origins = match path {
            "/ws" => &self.client_origins,
            "/admin/ws" => &self.admin_origins,
            _ => return,
        };
        if status == StatusCode::SWITCHING_PROTOCOLS || status == StatusCode::METHOD_NOT_ALLOWED {
            return;
        }
        let reason = match status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            // A 403 is a refused origin or a token without the admin role.
            StatusCode::FORBIDDEN if check_origin(headers, origins).is_err() => "origin",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::TOO_MANY_REQUESTS => "limits",
            // Admission control asks to retry; a hub shutting down does not.
            StatusCode::SERVICE_UNAVAILABLE
                if response
                    .headers()
                    .contains_key(warp::http::header::RETRY_AFTER) =>
            {
                "limits"
            }
            StatusCode::SERVICE_UNAVAILABLE => "shutdown",
            StatusCode::BAD_REQUEST | StatusCode::UPGRADE_REQUIRED => "bad_handshake",
            _ => "other",
        };
        self.metrics.ops.handshake_rejected(reason);
    }
}

impl RefusalAudit {
    /// Records a 401 as `auth.failed` and a 403 as `auth.denied`.
    fn observe(
        &self,
        status: StatusCode,
        peer: Option<PeerAddr>,
        headers: &HeaderMap,
        query: &str,
    ) {
        let (action, result) = match status {
            StatusCode::UNAUTHORIZED => (AuditAction::AuthFailed, "unauthorized"),
            StatusCode::FORBIDDEN => (AuditAction::AuthDenied, "forbidden"),
            _ => return,
        };
        let client_ip = self.ip_of(peer, headers);
        if action == AuditAction::AuthFailed {
            self.auth_failures.record(client_ip);
        }
        let ip = client_ip.to_string();
        let mut actor = AuditActor {
            user_id: None,
            role: None,
            ip: Some(ip),
        };
        if action == AuditAction::AuthDenied {
            self.name_caller(&mut actor, headers, query);
        }
        tracing::info!(
            action = action.as_str(),
            ip = actor.ip.as_deref().unwrap_or(""),
            user_id = actor.user_id.as_deref().unwrap_or(""),
            "request refused"
        );
        self.auditor
            .auth_refused(action, actor, AuditTarget::default(), result);
    }

    /// A 403 with a valid token names its caller.
    fn name_caller(&self, actor: &mut AuditActor, headers: &HeaderMap, query: &str) {
        let token = token_of(headers, query);
        let user = query_param(query, "user");
        let dev = DevIdentity {
            user: user.as_deref(),
            ..DevIdentity::default()
        };
        if let Ok(principal) = self.auth.client(token.as_deref(), &dev) {
            actor.user_id = Some(principal.user_id.to_string());
            actor.role = Some(
                match principal.role {
                    Role::Admin => "admin",
                    Role::Client => "client",
                }
                .to_string(),
            );
        }
    }

    fn ip_of(&self, peer: Option<PeerAddr>, headers: &HeaderMap) -> IpAddr {
        let peer_ip = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        client_ip(peer_ip, forwarded, &self.trusted_proxies)
    }
}
