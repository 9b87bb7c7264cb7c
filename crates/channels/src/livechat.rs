//! The website live-chat channel: visitor tokens and the optional identity check.
//!
//! A visitor token is `base64url(json claims) "." base64url(hmac)`, signed with the server's key.
//! It names one inbox and one contact, and so reaches only that visitor's conversation.
//! The identity check lets a site vouch for its logged-in user: it passes its user id with
//! `hex(HMAC-SHA256(inbox identity secret, user id))`, computed on its own server.

use crate::signing;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use switchboard_core::{ContactId, InboxId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    #[serde(rename = "i")]
    pub inbox_id: InboxId,
    #[serde(rename = "c")]
    pub contact_id: ContactId,
    /// Issued at, ms since the epoch.
    #[serde(rename = "t")]
    pub issued_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed visitor token")]
    Malformed,
    #[error("visitor token signature does not match")]
    BadSignature,
}

pub fn sign_visitor_token(key: &[u8], claims: &VisitorClaims) -> String {
    let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let sig = B64.encode(signing::hmac_sha256(key, body.as_bytes()));
    format!("{body}.{sig}")
}

pub fn verify_visitor_token(key: &[u8], token: &str) -> Result<VisitorClaims, TokenError> {
    let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    if !signing::verify_raw(key, body.as_bytes(), &sig) {
        return Err(TokenError::BadSignature);
    }
    let json = B64.decode(body).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

/// Checks the site's identity hash for `identifier` in constant time.
pub fn verify_identity(identity_secret: &str, identifier: &str, identifier_hash: &str) -> bool {
    signing::verify_hex(
        identity_secret.as_bytes(),
        identifier.as_bytes(),
        identifier_hash,
    )
}

/// The external id a visitor is known by in the identity table.
pub fn external_id_for(identifier: Option<&str>, anonymous_id: &str) -> String {
    match identifier {
        Some(user) => format!("user:{user}"),
        None => format!("visitor:{anonymous_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn token_round_trip_and_tamper() {
        let claims = VisitorClaims {
            inbox_id: InboxId(Uuid::from_u128(1)),
            contact_id: ContactId(Uuid::from_u128(2)),
            issued_at: 42,
        };
        let tok = sign_visitor_token(b"key", &claims);
        assert_eq!(verify_visitor_token(b"key", &tok), Ok(claims.clone()));
        assert_eq!(
            verify_visitor_token(b"other", &tok),
            Err(TokenError::BadSignature)
        );
        let other = VisitorClaims {
            contact_id: ContactId(Uuid::from_u128(3)),
            ..claims
        };
        let forged = format!(
            "{}.{}",
            sign_visitor_token(b"x", &other)
                .split('.')
                .next()
                .unwrap_or(""),
            tok.split('.').nth(1).unwrap_or("")
        );
        assert_eq!(
            verify_visitor_token(b"key", &forged),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_visitor_token(b"key", "garbage"),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn identity_hash() {
        let h = signing::hmac_sha256_hex(b"site-secret", b"user-17");
        assert!(verify_identity("site-secret", "user-17", &h));
        assert!(!verify_identity("site-secret", "user-18", &h));
        assert_eq!(external_id_for(Some("u1"), "x"), "user:u1");
        assert_eq!(external_id_for(None, "x"), "visitor:x");
    }
}
