//! Provider secrets at rest: page tokens, app secrets, Zalo refresh tokens, bot tokens... are
//! sealed (ChaCha20-Poly1305, a fresh nonce each) inside an inbox's settings before they are
//! written, and opened when read, so a copy of the database alone reveals none of them.
//!
//! A sealed value is `sb1:<key id>:<base64 of nonce ‖ ciphertext>`; the key id (the first bytes of
//! the key's SHA-256) says which key sealed it, so keys can be rotated: the new key seals, old
//! keys still open, and `switchboard secrets rotate` seals everything again with the new one.
//! Values written before encryption was turned on are plain and still read; the next write of
//! the inbox (or a rotation) seals them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

/// Every settings key, on any channel, that holds a secret.
pub const SECRET_SETTINGS: &[&str] = &[
    "page_access_token",
    "app_secret",
    "verify_token",
    "access_token",
    "refresh_token",
    "oa_secret_key",
    "bot_token",
    "secret_token",
    "partner_key",
    "identity_secret",
];

const PREFIX: &str = "sb1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a secrets key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a stored secret was sealed with a key that is not configured (key id {0})")]
    UnknownKey(String),
    #[error("a stored secret could not be opened (damaged, or the wrong key)")]
    Damaged,
}

struct SealingKey {
    id: String,
    cipher: ChaCha20Poly1305,
}

impl SealingKey {
    fn parse(b64: &str) -> Result<Self, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .or_else(|_| B64.decode(b64.trim()))
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let id: String = Sha256::digest(&bytes)[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            id,
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }
}

/// The configured keys: the first seals, all of them open.
pub struct SecretBox {
    keys: Vec<SealingKey>,
}

impl SecretBox {
    /// `current` seals; `previous` (older keys, during a rotation) only open.
    pub fn new(current: &str, previous: &[String]) -> Result<Self, SecretError> {
        let mut keys = vec![SealingKey::parse(current)?];
        for k in previous {
            keys.push(SealingKey::parse(k)?);
        }
        Ok(Self { keys })
    }

    /// A new random key, base64-encoded (for `switchboard secrets new-key` and first start).
    pub fn generate_key() -> String {
        let mut k = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
        base64::engine::general_purpose::STANDARD.encode(k)
    }

    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    pub fn seal(&self, plain: &str) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        // Encrypting a string with a fresh nonce cannot fail (only sizes near 2^38 bytes can).
        let sealed = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        format!("{PREFIX}{}:{}", key.id, B64.encode(blob))
    }

    /// The plain value of a sealed one; a value that is not sealed is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, b64) = rest.split_once(':').ok_or(SecretError::Damaged)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_owned()))?;
        let blob = B64.decode(b64).map_err(|_| SecretError::Damaged)?;
        if blob.len() < 12 {
            return Err(SecretError::Damaged);
        }
        let (nonce, sealed) = blob.split_at(12);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SecretError::Damaged)
    }

    /// Settings as stored: every secret sealed (with the current key).
    pub fn seal_settings(&self, settings: &serde_json::Value) -> serde_json::Value {
        let mut out = settings.clone();
        if let Some(o) = out.as_object_mut() {
            for k in SECRET_SETTINGS {
                if let Some(serde_json::Value::String(v)) = o.get_mut(*k) {
                    let plain = self.open(v).unwrap_or_else(|_| v.clone());
                    *v = self.seal(&plain);
                }
            }
        }
        out
    }

    /// Whether any secret in these stored settings is plain or sealed with another key than the
    /// current one.
    pub fn needs_reseal(&self, stored: &serde_json::Value) -> bool {
        let current = format!("{PREFIX}{}:", self.keys[0].id);
        SECRET_SETTINGS.iter().any(|k| {
            stored
                .get(*k)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| !v.starts_with(&current))
        })
    }

    /// Settings as used: every secret opened.
    pub fn open_settings(
        &self,
        settings: &serde_json::Value,
    ) -> Result<serde_json::Value, SecretError> {
        let mut out = settings.clone();
        if let Some(o) = out.as_object_mut() {
            for k in SECRET_SETTINGS {
                if let Some(serde_json::Value::String(v)) = o.get_mut(*k) {
                    *v = self.open(v)?;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_sealed_opened_and_rotated() {
        let old = SecretBox::generate_key();
        let new = SecretBox::generate_key();
        let before = SecretBox::new(&old, &[]).unwrap();
        let settings = serde_json::json!({"page_id": "111", "page_access_token": "EAAG-tok", "app_secret": "s3"});
        let stored = before.seal_settings(&settings);
        assert_eq!(stored["page_id"], "111", "only secrets are sealed");
        let sealed = stored["page_access_token"].as_str().unwrap();
        assert!(SecretBox::is_sealed(sealed) && !sealed.contains("EAAG"));
        // Two seals of one value differ (fresh nonces).
        assert_ne!(before.seal("x"), before.seal("x"));
        assert_eq!(before.open_settings(&stored).unwrap(), settings);

        // Rotation: the new key seals, the old one still opens.
        let during = SecretBox::new(&new, std::slice::from_ref(&old)).unwrap();
        assert_eq!(during.open_settings(&stored).unwrap(), settings);
        let resealed = during.seal_settings(&stored);
        let after = SecretBox::new(&new, &[]).unwrap();
        assert_eq!(after.open_settings(&resealed).unwrap(), settings);
        // Without the old key the old values cannot be read — and say why.
        assert!(matches!(
            after.open_settings(&stored),
            Err(SecretError::UnknownKey(_))
        ));
        // Values stored before encryption read as they are.
        assert_eq!(after.open("plain").unwrap(), "plain");
        // Tampering is detected.
        let good = after.seal("abc");
        let (head, b64) = good.rsplit_once(':').unwrap();
        let mut blob = B64.decode(b64).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let bad = format!("{head}:{}", B64.encode(blob));
        assert_eq!(after.open(&bad), Err(SecretError::Damaged));
        assert!(SecretBox::new("c2hvcnQ=", &[]).is_err());
    }
}
