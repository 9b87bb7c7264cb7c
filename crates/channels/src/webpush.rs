//! Web Push, the standard way: a message encrypted for one browser subscription (RFC 8291,
//! `aes128gcm` content coding of RFC 8188) and signed for the push service with the server's VAPID
//! key (RFC 8292). Pure: the caller brings the randomness (the one-time key and the salt) and the
//! time, and sends the request built here.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD as B64};
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size we announce: the whole message is one record.
const RECORD_SIZE: u32 = 4096;
/// The most a payload may hold in one 4096-byte record (RFC 8291 §4: 4096 − 86 header − 16 tag −
/// 1 delimiter).
pub const MAX_PAYLOAD: usize = 3993;
/// How long a VAPID token is good for (RFC 8292 allows at most 24 hours).
pub const VAPID_LIFETIME_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the push endpoint must be an https:// URL")]
    BadEndpoint,
    #[error("p256dh must be an uncompressed P-256 public key (65 bytes, base64url)")]
    BadPublicKey,
    #[error("auth must be 16 bytes, base64url")]
    BadAuth,
    #[error("the VAPID key is not a P-256 private key")]
    BadVapidKey,
    #[error("the message is too large for one push ({0} bytes, at most 3993)")]
    TooLarge(usize),
    #[error("encryption failed")]
    Crypto,
}

/// A browser's push subscription: where to send, and its keys (as `PushSubscription.toJSON()`
/// gives them, base64url).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret (16 bytes).
    pub auth: Vec<u8>,
}

impl Subscription {
    /// Checks what a browser sent: an https endpoint (plain http only when `allow_http`, for a
    /// local test push service), a valid public key and a 16-byte secret.
    pub fn parse(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        allow_http: bool,
    ) -> Result<Self, PushError> {
        let scheme_ok =
            endpoint.starts_with("https://") || (allow_http && endpoint.starts_with("http://"));
        let origin = origin(endpoint).ok_or(PushError::BadEndpoint)?;
        if !scheme_ok || endpoint.len() > 2048 || origin.contains('@') {
            return Err(PushError::BadEndpoint);
        }
        let p256dh = decode(p256dh).ok_or(PushError::BadPublicKey)?;
        if p256dh.len() != 65 || PublicKey::from_sec1_bytes(&p256dh).is_err() {
            return Err(PushError::BadPublicKey);
        }
        let auth = decode(auth).ok_or(PushError::BadAuth)?;
        if auth.len() != 16 {
            return Err(PushError::BadAuth);
        }
        Ok(Self {
            endpoint: endpoint.to_owned(),
            p256dh,
            auth,
        })
    }
}

/// The application server's VAPID key pair (P-256).
#[derive(Clone)]
pub struct VapidKey {
    secret: SecretKey,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VapidKey({})", self.public_key_b64())
    }
}

impl VapidKey {
    /// From the 32-byte private scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PushError> {
        if bytes.len() != 32 {
            return Err(PushError::BadVapidKey);
        }
        SecretKey::from_slice(bytes)
            .map(|secret| Self { secret })
            .map_err(|_| PushError::BadVapidKey)
    }

    /// The public key browsers subscribe with (`applicationServerKey`): uncompressed, base64url.
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a request to `endpoint` (RFC 8292): the
    /// token names the push service's origin (`aud`), an expiry (`exp`) and who we are (`sub`, a
    /// `mailto:` or `https:` URL), signed ES256.
    pub fn authorization(
        &self,
        endpoint: &str,
        subject: &str,
        now_secs: i64,
    ) -> Result<String, PushError> {
        let aud = origin(endpoint).ok_or(PushError::BadEndpoint)?;
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": aud, "exp": now_secs + VAPID_LIFETIME_SECS, "sub": subject });
        let signed = format!("{header}.{}", B64.encode(claims.to_string()));
        let signature: Signature = SigningKey::from(&self.secret).sign(signed.as_bytes());
        Ok(format!(
            "vapid t={signed}.{}, k={}",
            B64.encode(signature.to_bytes()),
            self.public_key_b64()
        ))
    }
}

/// The message for one subscription: `payload` encrypted with the one-time key `ephemeral` (32
/// random bytes) and `salt` (16 random bytes), as RFC 8291 §3.4 and RFC 8188 §2 lay it out:
/// `salt ‖ record size ‖ key id length ‖ our one-time public key ‖ ciphertext`.
pub fn encrypt(
    payload: &[u8],
    sub: &Subscription,
    ephemeral: &[u8; 32],
    salt: &[u8; 16],
) -> Result<Vec<u8>, PushError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(PushError::TooLarge(payload.len()));
    }
    let as_secret = SecretKey::from_slice(ephemeral).map_err(|_| PushError::Crypto)?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let ua_public = PublicKey::from_sec1_bytes(&sub.p256dh).map_err(|_| PushError::BadPublicKey)?;
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());

    // IKM = HKDF(auth, ecdh, "WebPush: info" ‖ 0 ‖ ua_public ‖ as_public, 32)
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&sub.p256dh);
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&sub.auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| PushError::Crypto)?;
    // The content-encryption key and nonce, from the salt (RFC 8188 §2.2, §2.3).
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| PushError::Crypto)?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| PushError::Crypto)?;

    // One record, the last: the payload, then the delimiter 2 (no padding).
    let mut record = payload.to_vec();
    record.push(2);
    let sealed = Aes128Gcm::new_from_slice(&cek)
        .map_err(|_| PushError::Crypto)?
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| PushError::Crypto)?;

    let mut body = Vec::with_capacity(86 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// A push request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What to send to the push service for `sub`: the encrypted `payload` with its content coding, how
/// long the service may keep it (`ttl_secs`), and the VAPID authorization.
#[allow(clippy::too_many_arguments)]
pub fn request(
    sub: &Subscription,
    payload: &[u8],
    vapid: &VapidKey,
    subject: &str,
    now_secs: i64,
    ttl_secs: u32,
    ephemeral: &[u8; 32],
    salt: &[u8; 16],
) -> Result<PushRequest, PushError> {
    Ok(PushRequest {
        url: sub.endpoint.clone(),
        headers: vec![
            (
                "authorization",
                vapid.authorization(&sub.endpoint, subject, now_secs)?,
            ),
            ("content-encoding", "aes128gcm".into()),
            ("content-type", "application/octet-stream".into()),
            ("ttl", ttl_secs.to_string()),
            ("urgency", "high".into()),
        ],
        body: encrypt(payload, sub, ephemeral, salt)?,
    })
}

/// `scheme://host[:port]` of a URL (VAPID's audience), if it is http(s) with a host.
pub fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if host_len == 0 {
        return None;
    }
    Some(&url[..url.len() - rest.len() + host_len])
}

/// base64url with or without padding (browsers send it without).
fn decode(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim_end_matches('='))
        .ok()
        .or_else(|| URL_SAFE.decode(s).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    fn d(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    /// RFC 8291, Appendix A: the published example, byte for byte.
    #[test]
    fn encrypts_the_rfc_8291_example() {
        let sub = Subscription::parse(
            "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "BTBZMqHH6r4Tts7J_aSIgg",
            false,
        )
        .unwrap();
        let ephemeral: [u8; 32] = d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")
            .try_into()
            .unwrap();
        let salt: [u8; 16] = d("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt(
            b"When I grow up, I want to be a watermelon",
            &sub,
            &ephemeral,
            &salt,
        )
        .unwrap();
        assert_eq!(
            B64.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
        // The example's application-server key is the one-time key above.
        let as_key = VapidKey::from_bytes(&ephemeral).unwrap();
        assert_eq!(
            as_key.public_key_b64(),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
    }

    #[test]
    fn the_vapid_token_names_the_push_service_and_verifies_with_the_public_key() {
        let key = VapidKey::from_bytes(&[7u8; 32]).unwrap();
        let auth = key
            .authorization(
                "https://fcm.googleapis.com/fcm/send/abc?x=1",
                "mailto:shop@example.vn",
                1_700_000_000,
            )
            .unwrap();
        let (t, k) = auth
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, key.public_key_b64());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&d(parts[0])).unwrap();
        assert_eq!(header, serde_json::json!({"typ": "JWT", "alg": "ES256"}));
        let claims: serde_json::Value = serde_json::from_slice(&d(parts[1])).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"aud": "https://fcm.googleapis.com", "exp": 1_700_000_000 + 12 * 3600, "sub": "mailto:shop@example.vn"})
        );
        let verifier = VerifyingKey::from_sec1_bytes(&d(k)).unwrap();
        let signature = Signature::from_slice(&d(parts[2])).unwrap();
        assert!(
            verifier
                .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
                .is_ok()
        );
        assert!(verifier.verify(b"something else", &signature).is_err());
    }

    #[test]
    fn subscriptions_are_checked() {
        let key = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        type Case<'a> = (&'a str, &'a str, &'a str, bool, Result<(), PushError>);
        let table: &[Case] = &[
            ("https://push.example.net/x", key, auth, false, Ok(())),
            (
                "https://push.example.net/x",
                &format!("{key}="),
                "BTBZMqHH6r4Tts7J_aSIgg==",
                false,
                Ok(()),
            ),
            ("http://127.0.0.1:9/x", key, auth, true, Ok(())),
            (
                "http://push.example.net/x",
                key,
                auth,
                false,
                Err(PushError::BadEndpoint),
            ),
            (
                "https://user:pw@push.example.net/x",
                key,
                auth,
                false,
                Err(PushError::BadEndpoint),
            ),
            ("https:///x", key, auth, false, Err(PushError::BadEndpoint)),
            (
                "ftp://push.example.net/x",
                key,
                auth,
                true,
                Err(PushError::BadEndpoint),
            ),
            (
                "https://push.example.net/x",
                "BAAA",
                auth,
                false,
                Err(PushError::BadPublicKey),
            ),
            (
                "https://push.example.net/x",
                &format!("BA{}", &key[2..]),
                auth,
                false,
                Err(PushError::BadPublicKey),
            ),
            (
                "https://push.example.net/x",
                key,
                "c2hvcnQ",
                false,
                Err(PushError::BadAuth),
            ),
        ];
        for (endpoint, p256dh, auth, allow_http, want) in table {
            assert_eq!(
                Subscription::parse(endpoint, p256dh, auth, *allow_http).map(|_| ()),
                *want,
                "{endpoint} {p256dh}"
            );
        }
    }

    #[test]
    fn origins_and_sizes() {
        assert_eq!(
            origin("https://a.example:8443/p?q"),
            Some("https://a.example:8443")
        );
        assert_eq!(origin("http://127.0.0.1:9"), Some("http://127.0.0.1:9"));
        assert_eq!(origin("https://"), None);
        assert_eq!(origin("mailto:x@y"), None);
        let sub = Subscription::parse(
            "https://push.example.net/x",
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "BTBZMqHH6r4Tts7J_aSIgg",
            false,
        )
        .unwrap();
        let e = [1u8; 32];
        let s = [2u8; 16];
        assert_eq!(
            encrypt(&[b'x'; MAX_PAYLOAD], &sub, &e, &s).map(|b| b.len()),
            Ok(4096)
        );
        assert_eq!(
            encrypt(&[b'x'; MAX_PAYLOAD + 1], &sub, &e, &s),
            Err(PushError::TooLarge(MAX_PAYLOAD + 1))
        );
    }
}
