//! Owns who a request is: HS256 JWT validation (claims `sub`, `exp`, `name`,
//! `org`, `role`, `rooms`) and dev mode, where clients name themselves in the
//! query; and which rooms a principal may join or watch (`RoomGrant`).
//! No warp in here; `http::auth` maps `AuthError` to 401/403.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use crate::model::RoomGrant;
use crate::model::{RoomName, UserId};
use crate::revocation::Revocations;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A presence client.
    Client,
    /// May use the admin API and stream.
    Admin,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// Organisation.
    pub org: Option<String>,
    /// The `email` claim (dev mode: query parameter).
    pub email: Option<String>,
    /// The `team` claim (dev mode: query parameter).
    pub team: Option<String>,
    /// Client or admin.
    pub role: Role,
    /// The token's `exp` in Unix milliseconds (None in dev mode).
    pub expires_at: Option<crate::model::Millis>,
    /// Explicit rooms it may join or watch.
    pub rooms: RoomGrant,
}

impl Principal {
    /// True when this principal may join or watch `room`: its own
    /// `org:<org>` room, or an explicit room its grant lists. Grant entries
    /// never match `org:` names, so `*` opens no other organisation.
    pub fn may_enter(&self, room: &RoomName) -> bool {
        self.rooms.allows(self.org.as_deref(), room)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where one is needed.
    #[error("missing token")]
    Missing,
    /// A token that does not verify or lacks required claims.
    #[error("invalid token")]
    Invalid,
    /// A token past its `exp`.
    #[error("token expired")]
    Expired,
    /// A valid token without `role: admin` on an admin route.
    #[error("admin role required")]
    NotAdmin,
    /// Dev mode: the `user` parameter is missing or not 1..=128 bytes.
    #[error("query parameter 'user' must be 1 to 128 bytes")]
    BadDevUser,
    /// A valid token issued before its user's sessions were revoked.
    #[error("token revoked: this user's sessions were revoked; get a new token")]
    Revoked,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

/// The identity a dev-mode client gives in its query string.
#[derive(Debug, Clone, Default)]
pub struct DevIdentity<'a> {
    /// `user`.
    pub user: Option<&'a str>,
    /// `name`.
    pub name: Option<&'a str>,
    /// `org`.
    pub org: Option<&'a str>,
    /// `email`.
    pub email: Option<&'a str>,
    /// `team`.
    pub team: Option<&'a str>,
}

/// Checks tokens (JWT mode) or query identities (dev mode).
#[derive(Clone)]
pub struct Authenticator {
    key: Option<DecodingKey>,
    validation: Validation,
    revocations: Revocations,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("dev_mode", &self.is_dev_mode())
            .finish()
    }
}

impl Authenticator {
    /// JWT mode with a secret, dev mode without.
    pub fn new(secret: Option<&SecretString>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        // A token is not valid before its `nbf` (RFC 7519 §4.1.5).
        validation.validate_nbf = true;
        // Without PRESENCE_JWT_AUDIENCE an `aud` is not checked, so tokens
        // of identity providers (which always set one) are accepted.
        validation.validate_aud = false;
        Self {
            key: secret.map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes())),
            validation,
            revocations: Revocations::default(),
        }
    }

    /// This authenticator requiring the `iss` claim `issuer` and an `aud`
    /// naming `audience`, each when given.
    #[must_use]
    pub fn expecting(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        if let Some(issuer) = issuer {
            self.validation.set_issuer(&[issuer]);
            self.validation.required_spec_claims.insert("iss".into());
        }
        if let Some(audience) = audience {
            self.validation.set_audience(&[audience]);
            self.validation.validate_aud = true;
            self.validation.required_spec_claims.insert("aud".into());
        }
        self
    }

    /// This authenticator checking tokens against `revocations`.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = revocations;
        self
    }

    /// The deny list every token is checked against (shared by clones).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// True without a JWT secret.
    pub fn is_dev_mode(&self) -> bool {
        self.key.is_none()
    }

    /// A presence client: the token's subject, or the dev-mode `user`.
    pub fn client(
        &self,
        token: Option<&str>,
        dev: &DevIdentity<'_>,
    ) -> Result<Principal, AuthError> {
        match &self.key {
            Some(key) => self.verify(key, token),
            None => dev_principal(dev),
        }
    }

    /// An admin: a token with `role: admin`, or anyone in dev mode.
    pub fn admin(&self, token: Option<&str>) -> Result<Principal, AuthError> {
        let Some(key) = &self.key else {
            return Ok(Principal {
                user_id: UserId::parse("dev-admin").map_err(|_| AuthError::Invalid)?,
                name: None,
                org: None,
                email: None,
                team: None,
                role: Role::Admin,
                expires_at: None,
                rooms: RoomGrant::Any,
            });
        };
        let principal = self.verify(key, token)?;
        if principal.role != Role::Admin {
            return Err(AuthError::NotAdmin);
        }
        Ok(principal)
    }

    fn verify(&self, key: &DecodingKey, token: Option<&str>) -> Result<Principal, AuthError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if has_critical_header(token) {
            return Err(AuthError::Invalid);
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(
                |err| match err.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                },
            )?;
        let claims = data.claims;
        let user_id = UserId::parse(&claims.sub).map_err(|_| AuthError::Invalid)?;
        self.revocations
            .check(
                &user_id,
                claims.iat,
                claims.exp,
                chrono::Utc::now().timestamp(),
            )
            .map_err(|_| AuthError::Revoked)?;
        Ok(Principal {
            user_id,
            name: claims.name,
            org: claims.org,
            email: claims.email,
            team: claims.team,
            role: if claims.role.as_deref() == Some("admin") {
                Role::Admin
            } else {
                Role::Client
            },
            expires_at: Some(claims.exp.saturating_mul(1000)),
            rooms: RoomGrant::Listed(claims.rooms.unwrap_or_default()),
        })
    }
}

fn dev_principal(dev: &DevIdentity<'_>) -> Result<Principal, AuthError> {
    let user = dev.user.ok_or(AuthError::BadDevUser)?;
    Ok(Principal {
        user_id: UserId::parse(user).map_err(|_| AuthError::BadDevUser)?,
        name: dev.name.map(str::to_string),
        org: dev.org.map(str::to_string),
        email: dev.email.map(str::to_string),
        team: dev.team.map(str::to_string),
        role: Role::Client,
        expires_at: None,
        rooms: RoomGrant::Any,
    })
}

/// True when the token's header has a `crit` member. The hub understands
/// no JWS extension, so a token that marks one as critical must be refused
/// (RFC 7515 §4.1.11); an unreadable header is left to the verifier.
fn has_critical_header(token: &str) -> bool {
    use base64::Engine as _;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .is_ok_and(|header| header.get("crit").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(secret: &str, sub: &str, exp_offset: i64, role: Option<&str>) -> String {
        let exp = chrono::Utc::now().timestamp() + exp_offset;
        let claims = serde_json::json!({"sub": sub, "exp": exp, "role": role, "name": "Alice"});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn jwt_mode() -> Authenticator {
        Authenticator::new(Some(&SecretString::from("s3cret")))
    }

    fn signed(claims: &serde_json::Value, header: &Header) -> String {
        encode(header, claims, &EncodingKey::from_secret(b"s3cret")).unwrap()
    }

    fn claims_with(extra: serde_json::Value) -> serde_json::Value {
        let exp = chrono::Utc::now().timestamp() + 60;
        let mut claims = serde_json::json!({"sub": "alice", "exp": exp});
        if let (Some(claims), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        claims
    }

    fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
        auth.client(Some(token), &DevIdentity::default())
    }

    #[test]
    fn a_token_is_refused_before_its_nbf() {
        let later = chrono::Utc::now().timestamp() + 30;
        let early = signed(
            &claims_with(serde_json::json!({"nbf": later})),
            &Header::default(),
        );
        assert_eq!(check(&jwt_mode(), &early).unwrap_err(), AuthError::Invalid);
        let now = chrono::Utc::now().timestamp() - 1;
        let ready = signed(
            &claims_with(serde_json::json!({"nbf": now})),
            &Header::default(),
        );
        assert!(check(&jwt_mode(), &ready).is_ok());
    }

    #[test]
    fn a_critical_header_extension_is_refused() {
        // The header is built by hand: `crit` is not a field of `Header`.
        use base64::Engine as _;
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let plain = signed(&claims_with(serde_json::json!({})), &Header::default());
        let payload = plain.split('.').nth(1).unwrap();
        let header = b64(&serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}));
        let signing_input = format!("{header}.{payload}");
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(b"s3cret"),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        let token = format!("{signing_input}.{signature}");
        assert_eq!(check(&jwt_mode(), &token).unwrap_err(), AuthError::Invalid);
        assert!(check(&jwt_mode(), &plain).is_ok());
    }

    #[test]
    fn aud_is_checked_only_when_an_audience_is_configured() {
        let for_other = signed(
            &claims_with(serde_json::json!({"aud": "other-app"})),
            &Header::default(),
        );
        assert!(
            check(&jwt_mode(), &for_other).is_ok(),
            "no audience configured"
        );
        let strict = jwt_mode().expecting(Some("https://idp.example"), Some("presence"));
        assert_eq!(check(&strict, &for_other).unwrap_err(), AuthError::Invalid);
        let ours = serde_json::json!({"aud": ["presence", "x"], "iss": "https://idp.example"});
        assert!(check(&strict, &signed(&claims_with(ours), &Header::default())).is_ok());
        let foreign_issuer = serde_json::json!({"aud": "presence", "iss": "https://evil.example"});
        let foreign = signed(&claims_with(foreign_issuer), &Header::default());
        assert_eq!(check(&strict, &foreign).unwrap_err(), AuthError::Invalid);
    }

    #[test]
    fn a_valid_token_names_the_user() {
        let principal = jwt_mode()
            .client(
                Some(&token("s3cret", "alice", 60, None)),
                &DevIdentity::default(),
            )
            .unwrap();
        assert_eq!(principal.user_id.as_str(), "alice");
        assert_eq!(principal.name.as_deref(), Some("Alice"));
        assert_eq!(principal.role, Role::Client);
    }

    #[test]
    fn email_and_team_claims_are_kept() {
        let exp = chrono::Utc::now().timestamp() + 60;
        let claims =
            serde_json::json!({"sub": "alice", "exp": exp, "email": "a@x.test", "team": "ops"});
        let token = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret("s3cret".as_bytes()),
        )
        .unwrap();
        let principal = jwt_mode()
            .client(Some(&token), &DevIdentity::default())
            .unwrap();
        assert_eq!(principal.email.as_deref(), Some("a@x.test"));
        assert_eq!(principal.team.as_deref(), Some("ops"));
    }

    #[test]
    fn bad_tokens_are_told_apart() {
        let auth = jwt_mode();
        let none = DevIdentity::default();
        assert_eq!(auth.client(None, &none), Err(AuthError::Missing));
        assert_eq!(auth.client(Some("garbage"), &none), Err(AuthError::Invalid));
        assert_eq!(
            auth.client(Some(&token("other", "alice", 60, None)), &none),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.client(Some(&token("s3cret", "alice", -60, None)), &none),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn admin_routes_need_the_admin_role() {
        let auth = jwt_mode();
        assert_eq!(
            auth.admin(Some(&token("s3cret", "bob", 60, None))),
            Err(AuthError::NotAdmin)
        );
        assert!(
            auth.admin(Some(&token("s3cret", "bob", 60, Some("admin"))))
                .is_ok()
        );
    }

    #[test]
    fn the_rooms_claim_opens_exact_names_and_prefixes_but_no_other_org() {
        let principal = Principal {
            user_id: UserId::parse("alice").unwrap(),
            name: None,
            org: Some("acme".into()),
            role: Role::Client,
            rooms: RoomGrant::Listed(vec!["doc:1".into(), "team/*".into(), "*".into()]),
            expires_at: None,
            email: None,
            team: None,
        };
        let room = |name: &str| RoomName::parse(name).unwrap();
        assert!(principal.may_enter(&room("doc:1")));
        assert!(principal.may_enter(&room("team/eng")));
        assert!(
            principal.may_enter(&room("anything")),
            "* opens explicit rooms"
        );
        assert!(principal.may_enter(&room("org:acme")), "its own org");
        assert!(
            !principal.may_enter(&room("org:other")),
            "never another org"
        );
        let narrow = Principal {
            rooms: RoomGrant::Listed(vec!["doc:1".into(), "team/*".into(), "org:*".into()]),
            ..principal
        };
        assert!(!narrow.may_enter(&room("doc:12")));
        assert!(narrow.may_enter(&room("team/")));
        assert!(
            !narrow.may_enter(&room("org:other")),
            "claims never match org names"
        );
        assert!(!narrow.may_enter(&room("teams")));
    }

    #[test]
    fn dev_mode_takes_the_user_from_the_query() {
        let auth = Authenticator::new(None);
        let ok = auth
            .client(
                None,
                &DevIdentity {
                    user: Some("alice"),
                    name: None,
                    org: Some("acme"),
                    email: Some("alice@acme.test"),
                    team: None,
                },
            )
            .unwrap();
        assert_eq!(ok.org.as_deref(), Some("acme"));
        assert_eq!(ok.email.as_deref(), Some("alice@acme.test"));
        assert_eq!(ok.team, None);
        assert_eq!(
            auth.client(None, &DevIdentity::default()),
            Err(AuthError::BadDevUser)
        );
        let long = "x".repeat(129);
        assert_eq!(
            auth.client(
                None,
                &DevIdentity {
                    user: Some(&long),
                    ..Default::default()
                }
            ),
            Err(AuthError::BadDevUser)
        );
        assert!(auth.admin(None).is_ok());
    }
}
