//! Validated newtypes: the boundary turns raw input into these, or into a clear error.

use serde::Serialize;

/// The longest message text a customer or agent may send (characters, not bytes).
pub const MAX_TEXT_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: &'static str,
}

impl ValidationError {
    pub const fn new(field: &'static str, message: &'static str) -> Self {
        Self { field, message }
    }
}

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);
        impl $name {
            pub fn as_str(&self) -> &str { &self.0 }
            pub fn into_inner(self) -> String { self.0 }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str { &self.0 }
        }
    };
}

newtype!(
    /// An email address, trimmed and lower-cased.
    Email
);
impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim().to_lowercase();
        let bad = ValidationError::new("email", "is not a valid email address");
        if s.len() > 254 || s.chars().any(char::is_whitespace) {
            return Err(bad);
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(bad);
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(bad);
        }
        Ok(Self(s))
    }
}

newtype!(
    /// A phone number: an optional leading `+` and 8–15 digits; spaces, dots, dashes and
    /// parentheses are dropped ("0912 345 678" → "0912345678").
    Phone
);
impl Phone {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' => {}
                _ => {
                    return Err(ValidationError::new(
                        "phone",
                        "may contain only digits, spaces, dashes and a leading +",
                    ));
                }
            }
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(ValidationError::new("phone", "must have 8 to 15 digits"));
        }
        Ok(Self(if plus { format!("+{digits}") } else { digits }))
    }
}

newtype!(
    /// A tag: 1–50 characters, trimmed, no commas; compared case-insensitively (stored lower-case).
    TagName
);
impl TagName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        if s.chars().count() > 50 {
            return Err(ValidationError::new(
                "name",
                "must be at most 50 characters",
            ));
        }
        if s.contains(',') || s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain commas or control characters",
            ));
        }
        Ok(Self(s))
    }
}

newtype!(
    /// A quick-reply code typed after `/`: 1–32 of a–z, 0–9, `_`, `-` (lower-cased).
    QuickReplyCode
);
impl QuickReplyCode {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim().trim_start_matches('/').to_lowercase();
        if s.is_empty() || s.len() > 32 {
            return Err(ValidationError::new("code", "must be 1 to 32 characters"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(ValidationError::new(
                "code",
                "may contain only letters a-z, digits, '_' and '-'",
            ));
        }
        Ok(Self(s))
    }
}

/// A control character no text of ours may hold: C0 controls (NUL first of all: PostgreSQL
/// refuses it) other than tab, line feed and carriage return, and DEL.
pub fn is_forbidden_control(c: char) -> bool {
    (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}'
}

/// Whether text holds a [forbidden control](is_forbidden_control): such input from people is
/// refused (422) at the boundary.
pub fn has_forbidden_control(s: &str) -> bool {
    s.chars().any(is_forbidden_control)
}

/// Text from a provider with the [forbidden controls](is_forbidden_control) dropped: a customer's
/// message is kept (we cannot refuse it), but nothing in it may poison the store.
pub fn strip_controls(s: &mut String) {
    if has_forbidden_control(s) {
        s.retain(|c| !is_forbidden_control(c));
    }
}

/// [`strip_controls`] on every string (keys too) of a provider's JSON extras.
pub fn strip_controls_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => strip_controls(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_controls_json),
        serde_json::Value::Object(map) => {
            if map.keys().any(|k| has_forbidden_control(k)) {
                let old = std::mem::take(map);
                for (mut k, v) in old {
                    strip_controls(&mut k);
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(strip_controls_json);
        }
        _ => {}
    }
}

/// Whether any string (or key) of a JSON document holds a forbidden control.
pub fn json_has_forbidden_control(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => has_forbidden_control(s),
        serde_json::Value::Array(items) => items.iter().any(json_has_forbidden_control),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(k, v)| has_forbidden_control(k) || json_has_forbidden_control(v)),
        _ => false,
    }
}

newtype!(
    /// Message text: not blank, at most [`MAX_TEXT_CHARS`] characters. Kept as written (not trimmed)
    /// so multi-line messages keep their shape; only trailing whitespace is dropped.
    MessageText
);
impl MessageText {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim_end();
        if s.trim().is_empty() {
            return Err(ValidationError::new("text", "must not be empty"));
        }
        if s.chars().count() > MAX_TEXT_CHARS {
            return Err(ValidationError::new(
                "text",
                "must be at most 4096 characters",
            ));
        }
        if has_forbidden_control(s) {
            return Err(ValidationError::new(
                "text",
                "must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

newtype!(
    /// A person's display name: 1–100 characters, trimmed.
    PersonName
);
impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        if s.chars().count() > 100 || s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must be at most 100 printable characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for (raw, want) in [
            ("An@Example.com", Some("an@example.com")),
            ("  a.b+c@shop.vn ", Some("a.b+c@shop.vn")),
            ("no-at-sign", None),
            ("a@b", None),
            ("a@.b.c", None),
            ("a@b..c", None),
            ("@b.c", None),
            ("a b@c.d", None),
            ("a@b@c.d", None),
        ] {
            assert_eq!(
                Email::parse(raw).ok().map(Email::into_inner).as_deref(),
                want,
                "{raw}"
            );
        }
    }

    #[test]
    fn phones() {
        for (raw, want) in [
            ("0912 345 678", Some("0912345678")),
            ("+84 (912) 345-678", Some("+84912345678")),
            ("1234567", None),
            ("1234567890123456", None),
            ("09123abc78", None),
            ("++84912345678", None),
        ] {
            assert_eq!(
                Phone::parse(raw).ok().map(Phone::into_inner).as_deref(),
                want,
                "{raw}"
            );
        }
    }

    #[test]
    fn provider_text_loses_its_controls_and_keeps_everything_else() {
        let mut s = String::from("Xin\0 chào\u{1}\n\tđơn\u{7f}");
        strip_controls(&mut s);
        assert_eq!(s, "Xin chào\n\tđơn");
        let mut v = serde_json::json!({"a\0": ["x\0y", {"k": "\u{2}z"}], "n": 1});
        assert!(json_has_forbidden_control(&v));
        strip_controls_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["xy", {"k": "z"}], "n": 1}));
        assert!(!json_has_forbidden_control(&v));
    }

    #[test]
    fn tags_codes_texts_names() {
        assert_eq!(
            TagName::parse(" VIP ").map(TagName::into_inner),
            Ok("vip".into())
        );
        assert!(TagName::parse("  ").is_err());
        assert!(TagName::parse("a,b").is_err());
        assert!(TagName::parse(&"x".repeat(51)).is_err());
        assert!(TagName::parse(&"đ".repeat(50)).is_ok());

        assert_eq!(
            QuickReplyCode::parse("/Hello_1").map(QuickReplyCode::into_inner),
            Ok("hello_1".into())
        );
        assert!(QuickReplyCode::parse("xin chào").is_err());
        assert!(QuickReplyCode::parse("").is_err());

        assert_eq!(
            MessageText::parse("line 1\nline 2\n").map(MessageText::into_inner),
            Ok("line 1\nline 2".into())
        );
        assert!(MessageText::parse(" \n ").is_err());
        assert!(MessageText::parse(&"ă".repeat(4096)).is_ok());
        assert!(MessageText::parse(&"ă".repeat(4097)).is_err());

        assert!(MessageText::parse("a\tb\r\nc").is_ok());
        for bad in ["a\0b", "\u{1}x", "x\u{1b}[31m", "x\u{7f}"] {
            assert!(MessageText::parse(bad).is_err(), "{bad:?}");
        }

        assert!(PersonName::parse(" Lan ").is_ok());
        assert!(PersonName::parse("").is_err());
    }
}
