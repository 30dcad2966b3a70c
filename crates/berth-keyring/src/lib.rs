//! Encryption at rest for the secrets Berth stores (the Splunk HEC token and
//! Sentry DSN set through the API, and any later one): AES-256-GCM under a
//! key ring given by configuration.
//!
//! `BERTH_ENCRYPTION_KEYS` is a comma-separated list of `id:key`, where `id`
//! is 1 to 32 of `A-Z a-z 0-9 _ -` and `key` is 32 random bytes in base64
//! (standard or URL-safe alphabet, padded or not), e.g.
//! `2026-11:q3W...=,2025-06:Zm9...=` (`openssl rand -base64 32` makes a key).
//! The first key encrypts; every key decrypts, so a new key goes first and
//! the old one stays after it until `berth rotate-keys` has re-encrypted
//! everything under the new one.
//!
//! A sealed value is text: `v1:<id>:<base64url(nonce ‖ ciphertext ‖ tag)>`,
//! with a fresh random 96-bit nonce each time. It names the key that sealed
//! it, so the right key is found without trying each, and the name of the
//! value is authenticated with it (associated data), so a sealed value copied
//! under another name does not open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::fmt;

/// The environment variable that holds the key ring.
pub const VARIABLE: &str = "BERTH_ENCRYPTION_KEYS";
const VERSION: &str = "v1";
const NONCE_BYTES: usize = 12;
const MAX_ID_LEN: usize = 32;

/// Why a key ring could not be read or a value not sealed or opened. None
/// of them shows a key or a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The configured key ring is malformed; the message names the variable
    /// and the entry.
    #[error("{VARIABLE}: {0}")]
    Config(String),
    /// The value was sealed under a key the ring does not hold.
    #[error(
        "{name} is encrypted under key '{id}', which {VARIABLE} does not hold: add that key \
         (after the first) to decrypt it"
    )]
    UnknownKey { name: String, id: String },
    /// The key of that id does not open the value: it is not the key that
    /// sealed it, or the stored bytes were altered.
    #[error(
        "{name} does not decrypt with key '{id}' of {VARIABLE}: the key is not the one it was \
         encrypted with, or the stored value was altered"
    )]
    Decrypt { name: String, id: String },
    /// The stored text is not a sealed value.
    #[error("{name} is not a value encrypted by Berth ({reason})")]
    Malformed { name: String, reason: &'static str },
}

/// The keys of `BERTH_ENCRYPTION_KEYS`: the first seals, all open.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, Aes256Gcm)>,
}

/// Shows key ids only.
impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Reads a key ring in the format of [`VARIABLE`]. Errors name the
    /// variable and the entry by its position and id, never the key.
    pub fn parse(raw: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (index, entry) in raw.split(',').map(str::trim).enumerate() {
            let position = index + 1;
            let (id, encoded) = entry.split_once(':').ok_or_else(|| {
                KeyRingError::Config(format!(
                    "entry {position} must be id:base64key (no ':' in it)"
                ))
            })?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > MAX_ID_LEN
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyRingError::Config(format!(
                    "entry {position}: the key id must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -"
                )));
            }
            if keys.iter().any(|(known, _)| known == id) {
                return Err(KeyRingError::Config(format!(
                    "entry {position}: key id '{id}' appears twice"
                )));
            }
            let bytes = decode_key(encoded.trim())
                .ok_or_else(|| KeyRingError::Config(format!("key '{id}' is not base64")))?;
            if bytes.len() != 32 {
                return Err(KeyRingError::Config(format!(
                    "key '{id}' is {} bytes; AES-256 keys are 32 bytes (openssl rand -base64 32)",
                    bytes.len()
                )));
            }
            let key = Key::<Aes256Gcm>::from_slice(&bytes);
            keys.push((id.to_owned(), Aes256Gcm::new(key)));
        }
        Ok(Self { keys })
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Every key's id, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// `plaintext` sealed under the first key, bound to `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        let (id, cipher) = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(id, name);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM seals any message under 64 GiB");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{VERSION}:{id}:{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens `sealed`, the value stored as `name`.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, KeyRingError> {
        let malformed = |reason| KeyRingError::Malformed {
            name: name.to_owned(),
            reason,
        };
        let id = key_id(sealed).ok_or_else(|| malformed("no v1:<key id>: prefix"))?;
        let body = &sealed[VERSION.len() + id.len() + 2..];
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(known, _)| known == id)
            .ok_or_else(|| KeyRingError::UnknownKey {
                name: name.to_owned(),
                id: id.to_owned(),
            })?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| malformed("not base64"))?;
        if bytes.len() < NONCE_BYTES + 16 {
            return Err(malformed("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let aad = associated_data(id, name);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| KeyRingError::Decrypt {
                name: name.to_owned(),
                id: id.to_owned(),
            })
    }

    /// Whether `sealed` is sealed under the first key already (nothing to
    /// rotate).
    pub fn is_current(&self, sealed: &str) -> bool {
        key_id(sealed) == Some(self.primary_id())
    }
}

/// The id of the key `sealed` names, if it is a sealed value.
pub fn key_id(sealed: &str) -> Option<&str> {
    let rest = sealed.strip_prefix(VERSION)?.strip_prefix(':')?;
    let (id, _) = rest.split_once(':')?;
    (!id.is_empty()).then_some(id)
}

fn associated_data(id: &str, name: &str) -> String {
    format!("berth:{VERSION}:{id}:{name}")
}

fn decode_key(encoded: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "b:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = KeyRing::parse(A).unwrap();
        let sealed = old.seal("splunk_hec_token", b"hec-token-1");
        assert!(sealed.starts_with("v1:a:"), "{sealed}");
        assert!(!sealed.contains("hec-token-1"));
        let both = KeyRing::parse(&format!("{B},{A}")).unwrap();
        assert_eq!(both.primary_id(), "b");
        assert_eq!(
            both.open("splunk_hec_token", &sealed).unwrap(),
            b"hec-token-1"
        );
        assert!(!both.is_current(&sealed));
        let resealed = both.seal("splunk_hec_token", b"hec-token-1");
        assert!(both.is_current(&resealed));
        let new = KeyRing::parse(B).unwrap();
        assert_eq!(
            new.open("splunk_hec_token", &resealed).unwrap(),
            b"hec-token-1"
        );
        let error = new.open("splunk_hec_token", &sealed).unwrap_err();
        assert!(matches!(error, KeyRingError::UnknownKey { .. }), "{error}");
        assert!(error.to_string().contains("'a'"), "{error}");
        // Two seals of one value differ (fresh nonces).
        assert_ne!(new.seal("x", b"same"), new.seal("x", b"same"));
    }

    /// `sealed` with one character of its ciphertext changed: in the
    /// middle, where each character carries six bits of it (the last may
    /// carry only padding bits, and was sometimes already the 'A' that
    /// replaced it: the test failed about one run in twenty).
    fn altered(sealed: &str) -> String {
        let middle = sealed.len() - 10;
        let replacement = if &sealed[middle..=middle] == "A" {
            "B"
        } else {
            "A"
        };
        format!(
            "{}{replacement}{}",
            &sealed[..middle],
            &sealed[middle + 1..]
        )
    }

    #[test]
    fn a_wrong_key_an_altered_value_or_another_name_does_not_open() {
        let ring = KeyRing::parse(A).unwrap();
        let sealed = ring.seal("sentry_dsn", b"https://k@sentry/1");
        let impostor = KeyRing::parse("a:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=").unwrap();
        for (ring, name, sealed) in [
            (&impostor, "sentry_dsn", sealed.clone()),
            (&ring, "splunk_hec_token", sealed.clone()),
            (&ring, "sentry_dsn", altered(&sealed)),
        ] {
            let error = ring.open(name, &sealed).unwrap_err();
            assert!(
                matches!(error, KeyRingError::Decrypt { .. }),
                "{name}: {error}"
            );
            assert!(error.to_string().contains(VARIABLE), "{error}");
        }
        let error = ring.open("sentry_dsn", "plain text").unwrap_err();
        assert!(matches!(error, KeyRingError::Malformed { .. }), "{error}");
    }

    #[test]
    fn bad_key_rings_are_refused_naming_the_variable_and_entry_never_the_key() {
        for (raw, says) in [
            ("", "entry 1"),
            ("nocolon", "entry 1"),
            ("a:AAEC", "32 bytes"),
            ("a:!!!notbase64!!!", "not base64"),
            (&format!("{A},{A}"), "twice"),
            (&format!("{A},bad id:AAEC"), "entry 2"),
        ] {
            let error = KeyRing::parse(raw).unwrap_err().to_string();
            assert!(error.starts_with(VARIABLE), "{raw}: {error}");
            assert!(error.contains(says), "{raw}: {error}");
            assert!(!error.contains("AAEC"), "{error}");
        }
        assert_eq!(
            format!("{:?}", KeyRing::parse(&format!("{A},{B}")).unwrap()),
            r#"KeyRing { key_ids: ["a", "b"] }"#
        );
    }
}
