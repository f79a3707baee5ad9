//! Owns how nodes authenticate what they publish to each other
//! (`PRESENCE_CLUSTER_SECRET`): the sealed framing of every message on the
//! cluster's channels (deltas, inboxes, revokes, alerts), opening it again,
//! and the rule for a message that does not open. Pure: no I/O, no clock
//! (time is a parameter).
//!
//! A sealed message is `v1.<mac>.<text>`: `<mac>` is 64 lowercase hex
//! digits of HMAC-SHA256 keyed with the secret over `<channel>\n<text>`,
//! and `<text>` is the JSON exactly as written. The receiver verifies the
//! MAC (in constant time) over the very bytes it then parses, so nothing
//! but the authenticated text reaches the parser. The channel name is part
//! of the MAC, so a sealed message cannot be replayed on another channel
//! (a request sent to one node's inbox, published to another's).
//!
//! Without a secret nothing is sealed and everything is opened as it came:
//! the wire is exactly wire version 1. With a secret, a message without a
//! MAC or with a wrong one is refused, whoever sent it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::Millis;

type HmacSha256 = Hmac<Sha256>;

/// What a sealed message starts with.
const PREFIX: &[u8] = b"v1.";
/// Hex digits of a MAC.
const MAC_HEX: usize = 64;
/// Prefix, MAC and the dot after it.
const HEADER: usize = PREFIX.len() + MAC_HEX + 1;
/// At most one log line about refused messages per this long.
pub const LOG_EVERY: Millis = 60_000;

/// Seals and opens this node's cluster messages; keyless without
/// `PRESENCE_CLUSTER_SECRET`.
#[derive(Clone, Default)]
pub struct Seal {
    key: Option<HmacSha256>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.key.is_some() { "keyed" } else { "off" };
        f.debug_tuple("Seal").field(&state).finish()
    }
}

/// Why a message was refused: the `reason` label of
/// `presence_cluster_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The message carries no MAC (not `v1.<mac>.`).
    MissingMac,
    /// The MAC is malformed or does not match (wrong secret, changed text,
    /// another channel).
    BadMac,
}

impl Rejection {
    /// Every reason, for the metric's zero values.
    pub const ALL: [Rejection; 2] = [Rejection::MissingMac, Rejection::BadMac];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MissingMac => "missing_mac",
            Rejection::BadMac => "bad_mac",
        }
    }
}

impl Seal {
    /// No secret: messages go out and come in as they are.
    pub fn off() -> Self {
        Self::default()
    }

    /// Seals with `secret` (config checks its length). HMAC takes keys of
    /// any length, so this does not fail in practice; if it did, the hub
    /// would stop rather than run unsealed.
    pub fn with_secret(secret: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self {
            key: Some(HmacSha256::new_from_slice(secret)?),
        })
    }

    /// Whether messages are sealed and checked.
    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// `text` as it goes out on `channel`.
    pub fn seal(&self, channel: &str, text: String) -> String {
        let Some(key) = &self.key else {
            return text;
        };
        let mac = hex::encode(
            mac_of(key, channel, text.as_bytes())
                .finalize()
                .into_bytes(),
        );
        format!("v1.{mac}.{text}")
    }

    /// The text to parse of `payload` received on `channel`, or why it
    /// must be dropped unread.
    pub fn open<'a>(&self, channel: &str, payload: &'a [u8]) -> Result<&'a [u8], Rejection> {
        let Some(key) = &self.key else {
            return Ok(payload);
        };
        if !payload.starts_with(PREFIX) {
            return Err(Rejection::MissingMac);
        }
        let (header, text) = payload.split_at_checked(HEADER).ok_or(Rejection::BadMac)?;
        let (mac, dot) = header[PREFIX.len()..].split_at(MAC_HEX);
        if dot != b"." {
            return Err(Rejection::BadMac);
        }
        let mac = hex::decode(mac).map_err(|_| Rejection::BadMac)?;
        mac_of(key, channel, text)
            .verify_slice(&mac)
            .map_err(|_| Rejection::BadMac)?;
        Ok(text)
    }
}

/// The keyed MAC over `<channel>\n<text>`, ready to finalize or verify.
fn mac_of(key: &HmacSha256, channel: &str, text: &[u8]) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(channel.as_bytes());
    mac.update(b"\n");
    mac.update(text);
    mac
}

/// Lets one log line through per `LOG_EVERY`, so a flood of forged
/// messages is counted in full but cannot flood the log.
#[derive(Debug, Default)]
pub struct LogLimit {
    last: Option<Millis>,
}

impl LogLimit {
    /// Whether to log at `now` (and if so, the next line waits a minute).
    pub fn admits(&mut self, now: Millis) -> bool {
        match self.last {
            Some(last) if now - last < LOG_EVERY => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-cluster-secret-of-32-bytes-or-more";
    const CHANNEL: &str = "presence:deltas";
    const TEXT: &str = r#"{"kind":"heartbeat"}"#;

    fn keyed() -> Seal {
        Seal::with_secret(SECRET).unwrap()
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_channel_newline_text() {
        // printf 'presence:deltas\n{"kind":"heartbeat"}' | openssl dgst -sha256 -hmac <SECRET>
        assert_eq!(
            keyed().seal(CHANNEL, TEXT.to_string()),
            format!("v1.697d827c54403179d6b8e1cd0f6a88e887b540a6fa6c221aafa799fe8ed9d79b.{TEXT}")
        );
    }

    #[test]
    fn a_sealed_message_opens_to_its_exact_text() {
        let sealed = keyed().seal(CHANNEL, TEXT.to_string());
        assert_eq!(
            keyed().open(CHANNEL, sealed.as_bytes()),
            Ok(TEXT.as_bytes())
        );
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let sealed = keyed().seal(CHANNEL, TEXT.to_string()).into_bytes();
        for at in PREFIX.len()..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x01;
            assert_eq!(
                keyed().open(CHANNEL, &tampered),
                Err(Rejection::BadMac),
                "byte {at} changed"
            );
        }
    }

    #[test]
    fn another_key_or_another_channel_is_refused() {
        let sealed = keyed().seal(CHANNEL, TEXT.to_string());
        let other = Seal::with_secret(b"another-cluster-secret-of-32-bytes").unwrap();
        assert_eq!(
            other.open(CHANNEL, sealed.as_bytes()),
            Err(Rejection::BadMac)
        );
        assert_eq!(
            keyed().open("presence:node:{b}:inbox", sealed.as_bytes()),
            Err(Rejection::BadMac)
        );
    }

    #[test]
    fn a_message_without_a_mac_is_refused() {
        assert_eq!(
            keyed().open(CHANNEL, TEXT.as_bytes()),
            Err(Rejection::MissingMac)
        );
        assert_eq!(keyed().open(CHANNEL, b""), Err(Rejection::MissingMac));
    }

    #[test]
    fn a_malformed_mac_is_refused() {
        let zeros = "0".repeat(MAC_HEX);
        for payload in [
            "v1.".to_string(),
            "v1.abc.{}".to_string(),
            format!("v1.{}.{TEXT}", "g".repeat(MAC_HEX)),
            format!("v1.{zeros}:{TEXT}"),
            format!("v1.{zeros}.{TEXT}"),
        ] {
            assert_eq!(
                keyed().open(CHANNEL, payload.as_bytes()),
                Err(Rejection::BadMac),
                "{payload}"
            );
        }
    }

    #[test]
    fn without_a_secret_the_wire_is_unchanged() {
        let seal = Seal::off();
        assert!(!seal.is_keyed());
        assert_eq!(seal.seal(CHANNEL, TEXT.to_string()), TEXT);
        assert_eq!(seal.open(CHANNEL, TEXT.as_bytes()), Ok(TEXT.as_bytes()));
        assert_eq!(format!("{:?}", keyed()), r#"Seal("keyed")"#);
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_minute() {
        let mut limit = LogLimit::default();
        assert!(limit.admits(1_000));
        assert!(!limit.admits(1_000 + LOG_EVERY - 1));
        assert!(limit.admits(1_000 + LOG_EVERY));
        assert!(!limit.admits(1_000 + LOG_EVERY + 1));
    }
}
