//! Owns JWT minting for JWT-mode hubs (HS256, claims `sub`, `exp`, `name`,
//! `role`, and for clients `rooms: ["*"]`, so they may join any explicit room).
//!
//! Tokens travel in the `Authorization` header, never in URLs, so they do not
//! end up in access logs. Dev mode needs no token and does not use this.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

/// The claims the hub reads.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    name: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<[&'a str; 1]>,
}

/// Mints tokens with one secret.
#[derive(Clone)]
pub struct Minter {
    key: EncodingKey,
    exp: u64,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter").finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter whose tokens stay valid for `lifetime` from now.
    pub fn new(secret: &str, lifetime: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            exp: (now + lifetime).as_secs(),
        }
    }

    /// A client token for `user_id`.
    pub fn client(&self, user_id: &str) -> Result<String> {
        self.mint(user_id, "user", Some(["*"]))
    }

    /// An admin token.
    pub fn admin(&self, user_id: &str) -> Result<String> {
        self.mint(user_id, "admin", None)
    }

    /// Encodes one token.
    fn mint(&self, sub: &str, role: &str, rooms: Option<[&str; 1]>) -> Result<String> {
        let claims = Claims {
            sub,
            exp: self.exp,
            name: sub,
            role,
            rooms,
        };
        jsonwebtoken::encode(&Header::default(), &claims, &self.key).context("cannot mint JWT")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn minted_token_carries_the_claims() {
        let token = Minter::new("s3cret", Duration::from_secs(60))
            .admin("ops")
            .unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"s3cret"),
            &Validation::default(),
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "ops");
        assert_eq!(data.claims["role"], "admin");
        assert_eq!(data.claims["name"], "ops");
    }
}
