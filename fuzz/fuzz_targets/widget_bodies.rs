//! The widget API's request bodies as the server takes them: a JSON body with a control character
//! anywhere is refused (`ApiJson`), the rest must fit `NewSession` or `NewWidgetMessage`
//! (`switchboard_channels::livechat`) and pass their checks. On the same bytes: the text
//! validators and control stripping of `switchboard_core::validate`, and the visitor token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::livechat::{self, NewSession, NewWidgetMessage, VisitorClaims};
use switchboard_core::validate::{
    self, Email, MAX_TEXT_CHARS, MessageText, PersonName, Phone, has_forbidden_control,
};

fn text_checks(s: &str) {
    // Accepted text is never blank, never too long, never holds NUL or another control.
    if let Ok(t) = MessageText::parse(s) {
        let t = t.as_str();
        assert!(!t.trim().is_empty() && t.chars().count() <= MAX_TEXT_CHARS);
        assert!(!t.contains('\0') && !has_forbidden_control(t));
        assert_eq!(
            MessageText::parse(t)
                .map(MessageText::into_inner)
                .as_deref(),
            Ok(t)
        );
    }
    if let Ok(n) = PersonName::parse(s) {
        assert!(!n.as_str().chars().any(char::is_control));
        assert_eq!(PersonName::parse(n.as_str()).as_ref(), Ok(&n));
    }
    if let Ok(e) = Email::parse(s) {
        assert_eq!(Email::parse(e.as_str()).as_ref(), Ok(&e));
    }
    if let Ok(p) = Phone::parse(s) {
        assert_eq!(Phone::parse(p.as_str()).as_ref(), Ok(&p));
    }
    // Stripping leaves no control behind, keeps everything else, and is idempotent.
    let mut stripped = s.to_owned();
    validate::strip_controls(&mut stripped);
    assert!(!has_forbidden_control(&stripped));
    assert_eq!(
        stripped,
        s.chars()
            .filter(|c| !validate::is_forbidden_control(*c))
            .collect::<String>()
    );
}

fuzz_target!(|body: &[u8]| {
    let raw = String::from_utf8_lossy(body);
    text_checks(&raw);
    // Any token is read without a panic; ours (below) comes back as it was signed.
    let key = b"visitor-key";
    let _ = livechat::verify_visitor_token(key, &raw);

    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    if validate::json_has_forbidden_control(&v) {
        // What the server does with a provider's JSON instead of refusing it.
        let mut clean = v.clone();
        validate::strip_controls_json(&mut clean);
        assert!(!validate::json_has_forbidden_control(&clean));
        v = clean;
    }

    if let Ok(s) = serde_json::from_value::<NewSession>(v.clone()) {
        if let Some(id) = s.identifier() {
            assert!(!id.is_empty() && id == id.trim());
            assert!(!s.identity_verified(""));
        }
        if let Ok(c) = s.contact() {
            for t in [
                c.name.as_ref().map(PersonName::as_str),
                c.email.as_ref().map(Email::as_str),
                c.phone.as_ref().map(Phone::as_str),
            ]
            .into_iter()
            .flatten()
            {
                text_checks(t);
            }
        }
        let claims = VisitorClaims {
            inbox_id: s.inbox_id,
            contact_id: switchboard_core::ContactId(s.inbox_id.0),
            issued_at: i64::try_from(body.len()).unwrap_or(0),
        };
        let token = livechat::sign_visitor_token(key, &claims);
        assert_eq!(livechat::verify_visitor_token(key, &token), Ok(claims));
    }

    if let Ok(m) = serde_json::from_value::<NewWidgetMessage>(v) {
        if let Ok(w) = m.check() {
            text_checks(w.text.as_str());
            if let Some(id) = &w.client_message_id {
                assert!(!id.is_empty() && id.len() <= livechat::MAX_CLIENT_MESSAGE_ID_BYTES);
                assert_eq!(id, id.trim());
            }
        } else {
            // Refused only for a bad text or a long id.
            let long_id = m
                .client_message_id
                .as_deref()
                .is_some_and(|i| i.trim().len() > livechat::MAX_CLIENT_MESSAGE_ID_BYTES);
            assert!(MessageText::parse(&m.text).is_err() || long_id);
        }
    }
});
