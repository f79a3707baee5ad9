//! Owns the public keys tokens are verified against: what the
//! configuration names (`KeySource`), reading a PEM public key file
//! (`PRESENCE_JWT_PUBLIC_KEY`) and one JWKS entry into a `PublicKey`, and
//! which algorithm each key verifies (the key type decides: RSA is RS256,
//! P-256 is ES256, Ed25519 is EdDSA).
//!
//! jsonwebtoken's own PEM readers also take private keys, certificates and
//! EC keys of any curve, so the PEM label and the key's algorithm
//! identifier are checked here first, with a small DER reader. Fetching
//! and caching a JWKS is `jwks`' business, not this module's.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::SecretString;

/// Smallest RSA modulus accepted, in bytes (2048 bits): ring verifies no
/// shorter key, so a smaller one is refused where it is read.
const MIN_RSA_MODULUS_BYTES: usize = 256;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// DER tags read here.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OBJECT_ID: u8 = 0x06;

/// What tokens are verified against, as configured. At most one of
/// `PRESENCE_JWT_SECRET`, `PRESENCE_JWT_PUBLIC_KEY` and `PRESENCE_JWKS_URL`
/// is set; none is dev mode.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Dev mode: no token is verified; clients name themselves.
    Dev,
    /// HS256 with a shared secret.
    Secret(SecretString),
    /// One public key read from a PEM file at start.
    PublicKey(PublicKey),
    /// The keys of a JWKS, fetched and refreshed in the background.
    Jwks(JwksSource),
}

impl KeySource {
    /// True when no token is verified (no secret, key or JWKS).
    pub fn is_dev_mode(&self) -> bool {
        matches!(self, Self::Dev)
    }

    /// The source's name in the start line: `none`, `secret`,
    /// `public_key` or `jwks`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dev => "none",
            Self::Secret(_) => "secret",
            Self::PublicKey(_) => "public_key",
            Self::Jwks(_) => "jwks",
        }
    }
}

/// Where a JWKS is fetched from and how often.
#[derive(Debug, Clone)]
pub struct JwksSource {
    /// An http or https URL.
    pub url: reqwest::Url,
    /// A successful fetch is repeated after this long.
    pub refresh_interval: Duration,
    /// The shortest time between two fetches asked for by tokens naming an
    /// unknown `kid` (and between retries after a failure).
    pub min_refresh_interval: Duration,
}

/// A public key and the one algorithm it verifies.
#[derive(Clone)]
pub struct PublicKey {
    /// RS256, ES256 or EdDSA, from the key type.
    pub algorithm: Algorithm,
    /// The key in jsonwebtoken's form.
    pub key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// Reads the PEM public key file at `path`; the error says what is wrong
/// with it (for `PRESENCE_JWT_PUBLIC_KEY`).
pub fn read_public_key(path: &Path) -> Result<PublicKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    public_key_from_pem(&text)
}

/// The public key of a PEM text holding exactly one
/// `-----BEGIN PUBLIC KEY-----` block (SubjectPublicKeyInfo) of an RSA
/// (2048 bits or more), P-256 or Ed25519 key.
pub fn public_key_from_pem(text: &str) -> Result<PublicKey, String> {
    let der = public_key_block(text)?;
    public_key_from_spki(&der)
}

/// The DER of the single PEM block of `text`, which must be labelled
/// `PUBLIC KEY`; other labels get a reason naming what they are.
fn public_key_block(text: &str) -> Result<Vec<u8>, String> {
    let mut blocks = pem_blocks(text)?;
    if blocks.len() > 1 {
        return Err(format!(
            "holds {} PEM blocks; give exactly one -----BEGIN PUBLIC KEY----- block",
            blocks.len()
        ));
    }
    let Some((label, der)) = blocks.pop() else {
        return Err("holds no PEM block; expected -----BEGIN PUBLIC KEY-----".into());
    };
    match label.as_str() {
        "PUBLIC KEY" => Ok(der),
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => Err(
            "is a private key; give its public key (openssl pkey -in KEY -pubout)".into(),
        ),
        "CERTIFICATE" => Err(
            "is a certificate; give its public key (openssl x509 -in CERT -pubkey -noout)".into(),
        ),
        "RSA PUBLIC KEY" => Err(
            "is a PKCS#1 RSA key; give it as -----BEGIN PUBLIC KEY----- (openssl rsa -RSAPublicKey_in -in KEY -pubout)".into(),
        ),
        other => Err(format!(
            "holds a {other:?} block; expected -----BEGIN PUBLIC KEY-----"
        )),
    }
}

/// Every `-----BEGIN X-----` ... `-----END X-----` block of `text`: its
/// label and decoded contents. Text outside the blocks is ignored.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        match open.take() {
            None => {
                if let Some(label) = armour(line, "BEGIN") {
                    open = Some((label.to_string(), String::new()));
                }
            }
            Some((label, body)) if armour(line, "END") == Some(label.as_str()) => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(&body)
                    .map_err(|_| format!("the {label:?} block is not valid base64"))?;
                blocks.push((label, der));
            }
            Some((label, mut body)) => {
                if line.contains(':') || line.starts_with("-----") {
                    return Err(format!(
                        "the {label:?} block has headers or no matching END line"
                    ));
                }
                body.push_str(line);
                open = Some((label, body));
            }
        }
    }
    if let Some((label, _)) = open {
        return Err(format!("the {label:?} block has no END line"));
    }
    Ok(blocks)
}

/// The label of a `-----BEGIN LABEL-----` (or END) line.
fn armour<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_suffix("-----")?
        .strip_prefix(word)?
        .strip_prefix(' ')
}

/// The key of a DER SubjectPublicKeyInfo:
/// `SEQUENCE { SEQUENCE { OID, params }, BIT STRING }`.
fn public_key_from_spki(der: &[u8]) -> Result<PublicKey, String> {
    let malformed = || "is not a well-formed SubjectPublicKeyInfo".to_string();
    let (spki, rest) = der_expect(der, SEQUENCE).ok_or_else(malformed)?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    let (algorithm_id, after) = der_expect(spki, SEQUENCE).ok_or_else(malformed)?;
    let (bits, tail) = der_expect(after, BIT_STRING).ok_or_else(malformed)?;
    let (oid, params) = der_expect(algorithm_id, OBJECT_ID).ok_or_else(malformed)?;
    let key = match bits.split_first() {
        Some((0, key)) if tail.is_empty() => key,
        _ => return Err(malformed()),
    };
    match oid {
        OID_RSA if params.is_empty() || params == [NULL, 0] => rsa_key(key),
        OID_EC => match der_expect(params, OBJECT_ID) {
            Some((OID_P256, [])) => ec_p256_key(key),
            _ => Err(
                "is an EC key on another curve than P-256 (only P-256, ES256, is accepted)".into(),
            ),
        },
        OID_ED25519 if params.is_empty() => ed25519_key(key),
        _ => Err("is not an RSA, EC P-256 or Ed25519 public key".into()),
    }
}

/// An RSA key from its PKCS#1 `RSAPublicKey` (`SEQUENCE { n, e }`).
fn rsa_key(pkcs1: &[u8]) -> Result<PublicKey, String> {
    let malformed = || "holds a malformed RSA key".to_string();
    let (fields, rest) = der_expect(pkcs1, SEQUENCE).ok_or_else(malformed)?;
    let (modulus, after) = der_expect(fields, INTEGER).ok_or_else(malformed)?;
    der_expect(after, INTEGER).ok_or_else(malformed)?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    check_rsa_size(modulus)?;
    Ok(PublicKey {
        algorithm: Algorithm::RS256,
        key: DecodingKey::from_rsa_der(pkcs1),
    })
}

/// Refuses an RSA modulus (big-endian, maybe with a leading zero byte)
/// shorter than 2048 bits.
pub(super) fn check_rsa_size(modulus: &[u8]) -> Result<(), String> {
    let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
    if significant < MIN_RSA_MODULUS_BYTES {
        return Err(format!(
            "is an RSA key of {} bits; at least 2048 are required",
            significant * 8
        ));
    }
    Ok(())
}

/// A P-256 key from its uncompressed point (`04 || x || y`).
fn ec_p256_key(point: &[u8]) -> Result<PublicKey, String> {
    if point.len() != 65 || point.first() != Some(&0x04) {
        return Err("holds a P-256 key that is not an uncompressed point".into());
    }
    Ok(PublicKey {
        algorithm: Algorithm::ES256,
        key: DecodingKey::from_ec_der(point),
    })
}

/// An Ed25519 key from its 32 bytes.
fn ed25519_key(raw: &[u8]) -> Result<PublicKey, String> {
    if raw.len() != 32 {
        return Err("holds an Ed25519 key that is not 32 bytes".into());
    }
    Ok(PublicKey {
        algorithm: Algorithm::EdDSA,
        key: DecodingKey::from_ed_der(raw),
    })
}

/// The contents of the DER element at the start of `input` when its tag
/// is `tag`, and what follows it.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, rest)
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `openssl` with `args` and returns its standard output.
    fn openssl(args: &[&str]) -> Vec<u8> {
        let output = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
        output.stdout
    }

    /// A fresh private key (PEM) made by `openssl genpkey` with `args`.
    fn private_key(args: &[&str]) -> String {
        let mut all = vec!["genpkey"];
        all.extend_from_slice(args);
        String::from_utf8(openssl(&all)).unwrap()
    }

    /// The `PUBLIC KEY` PEM of `private`.
    fn public_of(private: &str) -> String {
        let dir = std::env::temp_dir().join(format!("presence-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        std::fs::write(&path, private).unwrap();
        let public = openssl(&["pkey", "-in", path.to_str().unwrap(), "-pubout"]);
        let _ = std::fs::remove_dir_all(&dir);
        String::from_utf8(public).unwrap()
    }

    fn ec(curve: &str) -> String {
        private_key(&[
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
        ])
    }

    fn rsa(bits: u32) -> String {
        private_key(&[
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
        ])
    }

    #[test]
    fn each_key_type_verifies_its_own_algorithm() {
        let rsa = public_key_from_pem(&public_of(&rsa(2048))).unwrap();
        assert_eq!(rsa.algorithm, Algorithm::RS256);
        let p256 = public_key_from_pem(&public_of(&ec("P-256"))).unwrap();
        assert_eq!(p256.algorithm, Algorithm::ES256);
        let ed = public_key_from_pem(&public_of(&private_key(&["-algorithm", "ED25519"]))).unwrap();
        assert_eq!(ed.algorithm, Algorithm::EdDSA);
    }

    #[test]
    fn a_private_key_is_refused_though_jsonwebtoken_would_read_it() {
        let private = rsa(2048);
        assert!(DecodingKey::from_rsa_pem(private.as_bytes()).is_ok());
        for private in [private, ec("P-256")] {
            let reason = public_key_from_pem(&private).unwrap_err();
            assert!(reason.contains("private key"), "{reason}");
        }
    }

    #[test]
    fn a_certificate_is_refused() {
        let dir = std::env::temp_dir().join(format!("presence-cert-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(&key, ec("P-256")).unwrap();
        let certificate = openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/CN=idp.test",
            "-days",
            "1",
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8(certificate).unwrap();
        assert!(DecodingKey::from_ec_pem(text.as_bytes()).is_ok());
        let reason = public_key_from_pem(&text).unwrap_err();
        assert!(reason.contains("certificate"), "{reason}");
    }

    #[test]
    fn an_ec_key_on_another_curve_is_refused() {
        for curve in ["P-384", "secp256k1"] {
            let public = public_of(&ec(curve));
            assert!(
                DecodingKey::from_ec_pem(public.as_bytes()).is_ok(),
                "{curve}"
            );
            let reason = public_key_from_pem(&public).unwrap_err();
            assert!(reason.contains("P-256"), "{curve}: {reason}");
        }
    }

    #[test]
    fn a_short_rsa_key_is_refused() {
        let reason = public_key_from_pem(&public_of(&rsa(1024))).unwrap_err();
        assert!(reason.contains("1024 bits"), "{reason}");
    }

    #[test]
    fn other_pem_shapes_are_refused() {
        let public = public_of(&ec("P-256"));
        let refusals = [
            (String::new(), "no PEM block"),
            ("not a key at all".to_string(), "no PEM block"),
            (format!("{public}{public}"), "2 PEM blocks"),
            (public.replace("PUBLIC KEY", "RSA PUBLIC KEY"), "PKCS#1"),
            (public.replace("END PUBLIC", "END PRIVATE"), "END line"),
            (
                "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n".into(),
                "base64",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
                "SubjectPublicKeyInfo",
            ),
        ];
        for (text, reason) in refusals {
            let refused = public_key_from_pem(&text).unwrap_err();
            assert!(refused.contains(reason), "{text:?}: {refused}");
        }
        let framed = format!("a comment before the key\n{public}\ntrailing text\n");
        assert!(public_key_from_pem(&framed).is_ok());
    }

    #[test]
    fn an_unreadable_file_is_named_in_the_reason() {
        let reason = read_public_key(Path::new("/nonexistent/key.pem")).unwrap_err();
        assert!(reason.contains("/nonexistent/key.pem"), "{reason}");
    }
}
