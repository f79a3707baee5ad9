//! Owns a JWKS (`PRESENCE_JWKS_URL`): the key set kept in memory that
//! tokens are verified against without waiting (`JwksCache`), the task
//! that fetches it in the background, periodically and when a token names
//! an unknown `kid` (`JwksRefresher`, on `refresh::RefreshSchedule`), and
//! reading a JWKS document key by key (`KeySet::parse`).
//!
//! A request never waits for the identity provider: a token whose `kid`
//! is not cached is refused and only asks the task for a fetch. Spawning
//! the task is `app`'s business; verifying claims is `auth`'s.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::keys::{JwksSource, PublicKey, check_rsa_size};
use super::refresh::RefreshSchedule;

/// Longest one fetch of the JWKS may take, connecting included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read; a bigger one is a failed fetch.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Most keys kept from one document; the rest are skipped.
const MAX_KEYS: usize = 64;

/// The keys of one JWKS document that this hub can verify with.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<NamedKey>,
}

#[derive(Debug)]
struct NamedKey {
    kid: Option<String>,
    key: PublicKey,
}

/// What a token's `kid` finds in a key set.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The key to verify with.
    Found(&'a PublicKey),
    /// No key has this `kid` (yet): worth a fetch.
    UnknownKid,
    /// No `kid`, and not exactly one key to pick.
    Ambiguous,
}

/// One `keys` entry, as much as is read of it.
#[derive(Debug, Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// The usable keys of a JWKS document, and how many entries were
    /// skipped. Each entry is read on its own: one of an unknown `kty` or
    /// curve, a symmetric (`oct`) key, an encryption key or a repeated
    /// `kid` is skipped, not a reason to refuse the set. A document with no
    /// usable key is an error.
    pub fn parse(body: &[u8]) -> Result<(Self, usize), String> {
        let document: Document =
            serde_json::from_slice(body).map_err(|err| format!("not a JWKS document: {err}"))?;
        let total = document.keys.len();
        let mut keys: Vec<NamedKey> = Vec::new();
        for entry in document.keys {
            let Ok(raw) = serde_json::from_value::<RawJwk>(entry) else {
                continue;
            };
            let repeated = raw.kid.is_some() && keys.iter().any(|k| k.kid == raw.kid);
            if repeated || keys.len() == MAX_KEYS {
                continue;
            }
            match key_of(&raw) {
                Ok(key) => keys.push(NamedKey { kid: raw.kid, key }),
                Err(reason) => tracing::debug!(kid = ?raw.kid, reason, "JWKS key skipped"),
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "none of its {total} keys is an RS256, ES256 (P-256) or EdDSA (Ed25519) signing key"
            ));
        }
        let skipped = total - keys.len();
        Ok((Self { keys }, skipped))
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set holds no key (nothing fetched yet).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token's `kid` names; a token without `kid` gets the only
    /// key of a set of one.
    pub fn find(&self, kid: Option<&str>) -> Lookup<'_> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|key| key.kid.as_deref() == Some(kid))
                .map_or(Lookup::UnknownKid, |key| Lookup::Found(&key.key)),
            None => match self.keys.as_slice() {
                [only] => Lookup::Found(&only.key),
                _ => Lookup::Ambiguous,
            },
        }
    }
}

/// The key of one JWK: RSA (2048 bits or more), EC on P-256 or OKP
/// Ed25519, for signatures (`use` absent or `sig`), with an `alg`, when
/// given, that matches the key type.
fn key_of(raw: &RawJwk) -> Result<PublicKey, String> {
    if raw.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return Err("not a signing key".into());
    }
    let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => rsa_key(raw)?,
        ("EC", Some("P-256")) => p256_key(raw)?,
        ("OKP", Some("Ed25519")) => ed25519_key(raw)?,
        ("oct", _) => return Err("a symmetric key is never used".into()),
        (kty, crv) => return Err(format!("unsupported key type {kty} (curve {crv:?})")),
    };
    match raw.alg.as_deref() {
        Some(alg) if alg.parse::<Algorithm>().ok() != Some(key.algorithm) => {
            Err(format!("alg {alg} does not match the key type"))
        }
        _ => Ok(key),
    }
}

/// An RSA JWK (`n`, `e`) of 2048 bits or more: RS256.
fn rsa_key(raw: &RawJwk) -> Result<PublicKey, String> {
    let (n, e) = (required(&raw.n, "n")?, required(&raw.e, "e")?);
    check_rsa_size(&decoded(n, "n")?)?;
    decoded(e, "e")?;
    let key = DecodingKey::from_rsa_components(n, e).map_err(|err| err.to_string())?;
    Ok(PublicKey {
        algorithm: Algorithm::RS256,
        key,
    })
}

/// An EC P-256 JWK (`x`, `y`): ES256.
fn p256_key(raw: &RawJwk) -> Result<PublicKey, String> {
    let (x, y) = (required(&raw.x, "x")?, required(&raw.y, "y")?);
    coordinate(x, "x")?;
    coordinate(y, "y")?;
    let key = DecodingKey::from_ec_components(x, y).map_err(|err| err.to_string())?;
    Ok(PublicKey {
        algorithm: Algorithm::ES256,
        key,
    })
}

/// An OKP Ed25519 JWK (`x`): EdDSA.
fn ed25519_key(raw: &RawJwk) -> Result<PublicKey, String> {
    let x = required(&raw.x, "x")?;
    coordinate(x, "x")?;
    let key = DecodingKey::from_ed_components(x).map_err(|err| err.to_string())?;
    Ok(PublicKey {
        algorithm: Algorithm::EdDSA,
        key,
    })
}

fn required<'a>(field: &'a Option<String>, name: &str) -> Result<&'a str, String> {
    field.as_deref().ok_or_else(|| format!("no {name}"))
}

fn decoded(text: &str, name: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("{name} is not base64url"))
}

/// A 32-byte curve coordinate (P-256 x or y, an Ed25519 key).
fn coordinate(text: &str, name: &str) -> Result<(), String> {
    match decoded(text, name)?.len() {
        32 => Ok(()),
        other => Err(format!("{name} has {other} bytes, not 32")),
    }
}

/// The cached key set, shared by every clone; cloning is shallow.
#[derive(Clone)]
pub struct JwksCache {
    shared: Arc<Shared>,
}

struct Shared {
    source: JwksSource,
    keys: RwLock<Arc<KeySet>>,
    wanted: Notify,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.shared.source.url.as_str())
            .field("keys", &self.keys().len())
            .finish()
    }
}

impl JwksCache {
    /// An empty cache of `source`: every token is refused until the
    /// refresher's first fetch succeeds.
    pub fn new(source: JwksSource) -> Self {
        Self {
            shared: Arc::new(Shared {
                source,
                keys: RwLock::new(Arc::default()),
                wanted: Notify::new(),
            }),
        }
    }

    /// The keys as last fetched (none before the first success).
    pub fn keys(&self) -> Arc<KeySet> {
        match self.shared.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Asks the refresher for a fetch, at its pace; returns at once.
    pub fn want_refresh(&self) {
        self.shared.wanted.notify_one();
    }

    fn replace(&self, set: KeySet) {
        let set = Arc::new(set);
        match self.shared.keys.write() {
            Ok(mut keys) => *keys = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    /// The task that fills this cache.
    pub fn refresher(&self) -> Result<JwksRefresher, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("presence-hub/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let source = &self.shared.source;
        Ok(JwksRefresher {
            cache: self.clone(),
            client,
            schedule: RefreshSchedule::new(source.refresh_interval, source.min_refresh_interval),
        })
    }
}

/// Fetches the JWKS into its cache, on the `RefreshSchedule`.
#[derive(Debug)]
pub struct JwksRefresher {
    cache: JwksCache,
    client: reqwest::Client,
    schedule: RefreshSchedule,
}

impl JwksRefresher {
    /// Fetches now; on success the cache holds the new set and the number
    /// of its keys is returned. On failure the cache keeps what it had.
    pub async fn refresh(&mut self) -> Result<usize, String> {
        let started = Instant::now();
        let fetched = self.fetch().await;
        self.schedule.fetched(started, fetched.is_ok());
        let (set, skipped) = fetched?;
        let count = set.len();
        tracing::debug!(keys = count, skipped, "JWKS fetched");
        self.cache.replace(set);
        Ok(count)
    }

    async fn fetch(&self) -> Result<(KeySet, usize), String> {
        let url = self.cache.shared.source.url.clone();
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| err.without_url().to_string())?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| err.to_string())? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body)
    }

    /// Refreshes on schedule until `stop`; `report` is told how every
    /// fetch went.
    pub async fn run(mut self, report: impl Fn(FetchOutcome) + Send, stop: CancellationToken) {
        loop {
            let due = self.schedule.due_at(Instant::now());
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
                () = self.cache.shared.wanted.notified() => {
                    self.schedule.request();
                    continue;
                }
            }
            let fetched = tokio::select! {
                () = stop.cancelled() => return,
                fetched = self.refresh() => fetched,
            };
            if let Err(reason) = &fetched {
                tracing::warn!(reason, "JWKS fetch failed; the cached keys stay in use");
            }
            report(self.outcome(fetched.is_ok()));
        }
    }

    /// How a fetch went, `fetched` or not, for `report`.
    pub fn outcome(&self, fetched: bool) -> FetchOutcome {
        FetchOutcome {
            fetched,
            has_keys: !self.cache.keys().is_empty(),
        }
    }
}

/// How one JWKS fetch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The fetch succeeded and the cache holds its keys.
    pub fetched: bool,
    /// The cache holds keys to verify with (this fetch's or older ones).
    pub has_keys: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(body: &serde_json::Value) -> Result<(KeySet, usize), String> {
        KeySet::parse(body.to_string().as_bytes())
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ec_key(kid: &str) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    #[test]
    fn each_key_is_read_on_its_own() {
        let (keys, skipped) = set(&serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": b64(b"a shared secret of enough bytes!")},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(&[1; 48]), "y": b64(&[2; 48])},
            {"kty": "XYZ", "kid": "future"},
            {"kty": "OKP", "crv": "X25519", "kid": "ecdh", "x": b64(&[3; 32])},
            {"kty": "RSA", "kid": "short", "n": b64(&[0xff; 128]), "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
            {"kty": "EC", "crv": "P-256", "kid": "mislabelled", "alg": "RS256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
            {"kty": "EC", "crv": "P-256", "kid": "thin", "x": b64(&[1; 31]), "y": b64(&[2; 32])},
            {"kid": 7},
            ec_key("p256"),
            ec_key("p256"),
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": b64(&[3; 32])},
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": b64(&[0xff; 256]), "e": "AQAB"},
        ]}))
        .unwrap();
        assert_eq!((keys.len(), skipped), (3, 10));
        let algorithm = |kid| match keys.find(Some(kid)) {
            Lookup::Found(key) => Some(key.algorithm),
            _ => None,
        };
        assert_eq!(algorithm("p256"), Some(Algorithm::ES256));
        assert_eq!(algorithm("ed"), Some(Algorithm::EdDSA));
        assert_eq!(algorithm("rsa"), Some(Algorithm::RS256));
        assert_eq!(algorithm("hmac"), None, "an oct key is never a key");
        assert!(matches!(keys.find(Some("other")), Lookup::UnknownKid));
        assert!(matches!(keys.find(None), Lookup::Ambiguous));
    }

    #[test]
    fn a_token_without_kid_gets_the_only_key() {
        let (keys, _) = set(&serde_json::json!({"keys": [ec_key("only")]})).unwrap();
        assert!(matches!(keys.find(None), Lookup::Found(_)));
    }

    #[test]
    fn a_document_without_a_usable_key_is_refused() {
        assert!(set(&serde_json::json!({"keys": []})).is_err());
        assert!(set(&serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).is_err());
        assert!(set(&serde_json::json!({"no": "keys"})).is_err());
        assert!(KeySet::parse(b"<html>").is_err());
    }
}
