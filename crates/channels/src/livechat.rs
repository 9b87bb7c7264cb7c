//! The website live-chat channel: visitor tokens and the optional identity check.
//!
//! A visitor token is `base64url(json claims) "." base64url(hmac)`, signed with the server's key.
//! It names one inbox and one contact, and so reaches only that visitor's conversation.
//! The identity check lets a site vouch for its logged-in user: it passes its user id with
//! `hex(HMAC-SHA256(inbox identity secret, user id))`, computed on its own server.
//! The widget API's request bodies ([`NewSession`], [`NewWidgetMessage`]) and their checks live
//! here too, pure, so they can be tested (and fuzzed) without a server.

use crate::signing;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use switchboard_core::validate::{Email, MessageText, PersonName, Phone, ValidationError};
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

/// The longest site user id (`identifier`) a session may name, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 200;
/// The longest `client_message_id` a widget may send, in bytes.
pub const MAX_CLIENT_MESSAGE_ID_BYTES: usize = 100;

/// `POST /widget/v1/sessions`: a visitor opens the chat.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub inbox_id: InboxId,
    /// The site's own user id, vouched for by `identifier_hash`.
    pub identifier: Option<String>,
    pub identifier_hash: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A session's contact details, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionContact {
    pub name: Option<PersonName>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
}

impl NewSession {
    /// The site's user id, trimmed; `None` when absent or blank. Not vouched for: see
    /// [`NewSession::identity_verified`].
    pub fn identifier(&self) -> Option<&str> {
        self.identifier
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Whether `identifier_hash` vouches for the [identifier](NewSession::identifier) under the
    /// inbox's identity secret. No identifier, an empty secret or an identifier over
    /// [`MAX_IDENTIFIER_BYTES`] vouches for nothing.
    pub fn identity_verified(&self, identity_secret: &str) -> bool {
        self.identifier().is_some_and(|user| {
            user.len() <= MAX_IDENTIFIER_BYTES
                && !identity_secret.is_empty()
                && verify_identity(
                    identity_secret,
                    user,
                    self.identifier_hash.as_deref().unwrap_or(""),
                )
        })
    }

    /// Who this visitor is, under the inbox's settings: the site's user (`user:…`) when the
    /// identifier hash vouches for it, an anonymous visitor (`visitor:{anonymous_id}`) when there is
    /// no identifier and the inbox does not `require_identity`; otherwise refused.
    pub fn external_id(
        &self,
        settings: &serde_json::Value,
        anonymous_id: &str,
    ) -> Result<String, IdentityRefusal> {
        match self.identifier() {
            Some(user) => {
                let secret = settings
                    .get("identity_secret")
                    .and_then(|s| s.as_str())
                    .unwrap_or("");
                if !self.identity_verified(secret) {
                    return Err(IdentityRefusal::InvalidIdentity);
                }
                Ok(external_id_for(Some(user), ""))
            }
            None if settings
                .get("require_identity")
                .and_then(|v| v.as_bool())
                .unwrap_or(false) =>
            {
                Err(IdentityRefusal::IdentityRequired)
            }
            None => Ok(external_id_for(None, anonymous_id)),
        }
    }

    /// The contact details, checked. A blank phone or email counts as none; a blank name is refused.
    pub fn contact(&self) -> Result<SessionContact, ValidationError> {
        let blank_is_none = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        Ok(SessionContact {
            name: self.name.as_deref().map(PersonName::parse).transpose()?,
            phone: blank_is_none(&self.phone)
                .as_deref()
                .map(Phone::parse)
                .transpose()?,
            email: blank_is_none(&self.email)
                .as_deref()
                .map(Email::parse)
                .transpose()?,
        })
    }
}

/// Why a session is refused its visitor's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// An identifier whose hash does not match (or too long, or the inbox has no secret).
    InvalidIdentity,
    /// No identifier, and the inbox requires a signed-in user.
    IdentityRequired,
}

/// `POST /widget/v1/messages`: the visitor writes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWidgetMessage {
    pub text: String,
    /// The widget's own id for this message: a retried send with the same id stores one message.
    pub client_message_id: Option<String>,
}

/// A visitor's message, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetMessage {
    pub text: MessageText,
    /// Trimmed, at most [`MAX_CLIENT_MESSAGE_ID_BYTES`]; `None` when absent or blank.
    pub client_message_id: Option<String>,
}

/// The widget's own id of a message (blank: none): at most [`MAX_CLIENT_MESSAGE_ID_BYTES`].
pub fn client_message_id(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) if id.len() > MAX_CLIENT_MESSAGE_ID_BYTES => Err(ValidationError::new(
            "client_message_id",
            "at most 100 characters",
        )),
        id => Ok(id.map(str::to_owned)),
    }
}

impl NewWidgetMessage {
    /// Checks the text ([`MessageText`]) and the `client_message_id`.
    pub fn check(&self) -> Result<WidgetMessage, ValidationError> {
        let text = MessageText::parse(&self.text)?;
        let client_message_id = client_message_id(self.client_message_id.as_deref())?;
        Ok(WidgetMessage {
            text,
            client_message_id,
        })
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

    #[test]
    fn who_a_visitor_is_depends_on_the_inbox() {
        use serde_json::json;
        let hash = signing::hmac_sha256_hex(b"site-secret", b"user-17");
        let long = "u".repeat(MAX_IDENTIFIER_BYTES + 1);
        let long_hash = signing::hmac_sha256_hex(b"site-secret", long.as_bytes());
        let open = json!({"identity_secret": "site-secret"});
        let strict = json!({"identity_secret": "site-secret", "require_identity": true});
        let no_secret = json!({"require_identity": false});
        let cases = [
            (None, None, &open, Ok("visitor:anon".to_owned())),
            (Some("  "), None, &open, Ok("visitor:anon".to_owned())),
            (None, None, &strict, Err(IdentityRefusal::IdentityRequired)),
            (
                Some("user-17"),
                Some(hash.as_str()),
                &open,
                Ok("user:user-17".to_owned()),
            ),
            (
                Some(" user-17 "),
                Some(hash.as_str()),
                &strict,
                Ok("user:user-17".to_owned()),
            ),
            (
                Some("user-18"),
                Some(hash.as_str()),
                &strict,
                Err(IdentityRefusal::InvalidIdentity),
            ),
            (
                Some("user-17"),
                None,
                &open,
                Err(IdentityRefusal::InvalidIdentity),
            ),
            (
                Some("user-17"),
                Some(hash.as_str()),
                &no_secret,
                Err(IdentityRefusal::InvalidIdentity),
            ),
            (
                Some(long.as_str()),
                Some(long_hash.as_str()),
                &open,
                Err(IdentityRefusal::InvalidIdentity),
            ),
        ];
        for (identifier, identifier_hash, settings, want) in cases {
            let s = NewSession {
                inbox_id: InboxId(Uuid::from_u128(7)),
                identifier: identifier.map(str::to_owned),
                identifier_hash: identifier_hash.map(str::to_owned),
                name: None,
                email: None,
                phone: None,
            };
            assert_eq!(
                s.external_id(settings, "anon"),
                want,
                "{identifier:?} {settings}"
            );
        }
    }

    #[test]
    fn widget_bodies() {
        let session = |v: serde_json::Value| serde_json::from_value::<NewSession>(v);
        let inbox = Uuid::from_u128(7).to_string();
        let s = session(
            serde_json::json!({"inbox_id": inbox, "identifier": " user-17 ",
            "identifier_hash": signing::hmac_sha256_hex(b"site-secret", b"user-17"),
            "name": " Lan ", "phone": " ", "email": "Lan@Shop.vn"}),
        );
        let Ok(s) = s else {
            panic!("the session body parses: {s:?}")
        };
        assert_eq!(s.identifier(), Some("user-17"));
        assert!(s.identity_verified("site-secret"));
        assert!(!s.identity_verified("") && !s.identity_verified("other"));
        let c = s.contact().unwrap_or_default();
        assert_eq!(c.name.map(PersonName::into_inner).as_deref(), Some("Lan"));
        assert_eq!(c.phone, None);
        assert_eq!(
            c.email.map(Email::into_inner).as_deref(),
            Some("lan@shop.vn")
        );
        let long = "u".repeat(MAX_IDENTIFIER_BYTES + 1);
        let l = session(serde_json::json!({"inbox_id": inbox, "identifier": long,
            "identifier_hash": signing::hmac_sha256_hex(b"k", long.as_bytes())}));
        assert!(l.is_ok_and(|l| !l.identity_verified("k")));
        assert!(session(serde_json::json!({"inbox_id": inbox, "nope": 1})).is_err());
        assert!(
            session(serde_json::json!({"inbox_id": inbox, "name": " "}))
                .is_ok_and(|s| s.contact().is_err())
        );

        let m = |text: &str, id: Option<&str>| {
            NewWidgetMessage {
                text: text.into(),
                client_message_id: id.map(str::to_owned),
            }
            .check()
        };
        assert_eq!(
            m("Xin chào\n", Some(" c1 ")).map(|w| (w.text.into_inner(), w.client_message_id)),
            Ok(("Xin chào".into(), Some("c1".into())))
        );
        assert!(m("hi", Some(" ")).is_ok_and(|w| w.client_message_id.is_none()));
        assert_eq!(
            m("hi", Some(&"x".repeat(101))).map_err(|e| e.field),
            Err("client_message_id")
        );
        assert!(m("a\0b", None).is_err());
    }
}
