//! Owns who a request is: JWT validation (claims `sub`, `exp`, `name`,
//! `org`, `role`, `rooms`) against an HS256 secret, a public key or a
//! JWKS, and dev mode, where clients name themselves in the query; and
//! which rooms a principal may join or watch (`RoomGrant`).
//! No warp in here; `http::auth` maps `AuthError` to 401/403. Reading keys
//! is `keys`' business, fetching a JWKS `jwks`'.

pub mod jwks;
pub mod keys;
mod refresh;
#[cfg(test)]
mod tests;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;
use serde::Deserialize;

use jwks::{JwksCache, Lookup};
pub use keys::{JwksSource, KeySource, PublicKey};

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

/// What tokens are checked against.
#[derive(Clone)]
enum Verifier {
    /// No token is checked.
    Dev,
    /// HS256 with a shared secret.
    Secret(DecodingKey),
    /// One public key, with its one algorithm.
    PublicKey(PublicKey),
    /// The cached keys of a JWKS.
    Jwks(JwksCache),
}

/// Checks tokens (JWT mode) or query identities (dev mode).
#[derive(Clone)]
pub struct Authenticator {
    verifier: Verifier,
    /// One per algorithm the verifier accepts, each listing only it, so a
    /// token is checked with its key's algorithm and no other.
    validations: Vec<Validation>,
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
    /// JWT mode with a secret, a public key or a JWKS (an empty cache,
    /// filled by its refresher: see `jwks`); dev mode without.
    pub fn new(source: &KeySource) -> Self {
        let (verifier, algorithms) = match source {
            KeySource::Dev => (Verifier::Dev, vec![]),
            KeySource::Secret(secret) => (
                Verifier::Secret(DecodingKey::from_secret(secret.expose_secret().as_bytes())),
                vec![Algorithm::HS256],
            ),
            KeySource::PublicKey(key) => (Verifier::PublicKey(key.clone()), vec![key.algorithm]),
            KeySource::Jwks(source) => (
                Verifier::Jwks(JwksCache::new(source.clone())),
                vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            ),
        };
        Self {
            verifier,
            validations: algorithms.into_iter().map(validation_for).collect(),
            revocations: Revocations::default(),
        }
    }

    /// This authenticator requiring the `iss` claim `issuer` and an `aud`
    /// naming `audience`, each when given.
    #[must_use]
    pub fn expecting(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        for validation in &mut self.validations {
            if let Some(issuer) = issuer {
                validation.set_issuer(&[issuer]);
                validation.required_spec_claims.insert("iss".into());
            }
            if let Some(audience) = audience {
                validation.set_audience(&[audience]);
                validation.validate_aud = true;
                validation.required_spec_claims.insert("aud".into());
            }
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

    /// The JWKS cache, in JWKS mode: `app` starts its refresher.
    pub fn jwks(&self) -> Option<&JwksCache> {
        match &self.verifier {
            Verifier::Jwks(cache) => Some(cache),
            _ => None,
        }
    }

    /// True when no token is checked (no secret, public key or JWKS).
    pub fn is_dev_mode(&self) -> bool {
        matches!(self.verifier, Verifier::Dev)
    }

    /// A presence client: the token's subject, or the dev-mode `user`.
    pub fn client(
        &self,
        token: Option<&str>,
        dev: &DevIdentity<'_>,
    ) -> Result<Principal, AuthError> {
        if self.is_dev_mode() {
            return dev_principal(dev);
        }
        self.verify(token)
    }

    /// An admin: a token with `role: admin`, or anyone in dev mode.
    pub fn admin(&self, token: Option<&str>) -> Result<Principal, AuthError> {
        if self.is_dev_mode() {
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
        }
        let principal = self.verify(token)?;
        if principal.role != Role::Admin {
            return Err(AuthError::NotAdmin);
        }
        Ok(principal)
    }

    fn verify(&self, token: Option<&str>) -> Result<Principal, AuthError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if has_critical_header(token) {
            return Err(AuthError::Invalid);
        }
        let claims = match &self.verifier {
            Verifier::Dev => return Err(AuthError::Invalid),
            Verifier::Secret(key) => self.decode(token, key, Algorithm::HS256)?,
            Verifier::PublicKey(key) => self.decode(token, &key.key, key.algorithm)?,
            Verifier::Jwks(cache) => self.decode_with_jwks(token, cache)?,
        };
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

    /// The claims of `token` when it verifies with `key` under `algorithm`
    /// (the key's own: a token naming another `alg` is refused).
    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Claims, AuthError> {
        let validation = self
            .validations
            .iter()
            .find(|validation| validation.algorithms == [algorithm])
            .ok_or(AuthError::Invalid)?;
        jsonwebtoken::decode::<Claims>(token, key, validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }

    /// The claims of `token` verified with the cached JWKS key its `kid`
    /// names. An unknown `kid` is refused at once and asks for a fetch in
    /// the background, so a slow identity provider never holds a request.
    fn decode_with_jwks(&self, token: &str, cache: &JwksCache) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let keys = cache.keys();
        match keys.find(header.kid.as_deref()) {
            Lookup::Found(key) => self.decode(token, &key.key, key.algorithm),
            Lookup::UnknownKid => {
                cache.want_refresh();
                Err(AuthError::Invalid)
            }
            Lookup::Ambiguous => Err(AuthError::Invalid),
        }
    }
}

/// The checks every token gets under `algorithm` (the only one listed).
fn validation_for(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.leeway = 0;
    // A token is not valid before its `nbf` (RFC 7519 §4.1.5).
    validation.validate_nbf = true;
    // Without PRESENCE_JWT_AUDIENCE an `aud` is not checked, so tokens
    // of identity providers (which always set one) are accepted.
    validation.validate_aud = false;
    validation
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
