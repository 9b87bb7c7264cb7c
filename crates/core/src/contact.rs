//! What agents may change on a contact, and what a profile from the channel may change. A patch
//! names only what changes: an absent key keeps the field, `null` or a blank string clears it.
//!
//! Names: a channel's name (the webhook's, or the profile API's) fills an empty name and follows a
//! name that itself came from the channel; a name an agent typed is kept until the agent asks to
//! sync from the channel ([`channel_name`]). Pictures are copied once per picture the provider
//! names ([`picture_is_new`]).

use crate::model::Contact;
use crate::time::Timestamp;
use crate::validate::{Email, Phone, ValidationError};

/// The longest note an agent may keep on a contact (characters).
pub const MAX_NOTES_CHARS: usize = 10_000;

/// The longest name kept on a contact (characters), typed or synced.
pub const MAX_NAME_CHARS: usize = 200;

/// Where a contact's name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// The channel's webhook or profile API (a row without a source came from there too: before
    /// agents could type names, every name did).
    Channel,
    /// An agent typed it.
    Agent,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Agent => "agent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "channel" => Some(Self::Channel),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }
}

/// A name as we keep it: without control characters, trimmed, at most [`MAX_NAME_CHARS`];
/// `None` when nothing is left.
pub fn clean_name(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The name a channel's `offered` name sets on a contact whose name is `current` (from `source`),
/// or `None` to keep it. `forced`: the agent pressed "sync from channel" — the channel's name then
/// replaces even a typed one (and is from the channel again from then on).
pub fn channel_name(
    current: Option<&str>,
    source: Option<NameSource>,
    offered: Option<&str>,
    forced: bool,
) -> Option<String> {
    let offered = clean_name(offered?)?;
    let typed = current.is_some() && source == Some(NameSource::Agent);
    if typed && !forced {
        return None;
    }
    if current == Some(offered.as_str()) && !typed {
        return None;
    }
    Some(offered)
}

/// Whether the picture the provider names by `offered_key` still has to be copied: not when our
/// copy is of that very picture (a redelivered message or a sync with no new picture downloads
/// nothing).
pub fn picture_is_new(stored_key: Option<&str>, have_copy: bool, offered_key: &str) -> bool {
    !(have_copy && stored_key == Some(offered_key))
}

/// Whether a customer's new message should fetch their profile: never fetched yet, or the
/// message carries a name that would change the contact's.
pub fn wants_profile(
    synced_before: bool,
    current: Option<&str>,
    source: Option<NameSource>,
    offered: Option<&str>,
) -> bool {
    !synced_before || channel_name(current, source, offered, false).is_some()
}

/// Where agents load a contact's picture: our copy (`file`, versioned so a new picture is not
/// served from a browser's cache), else the provider's own URL where it is shown as is (only
/// `https:`: nothing else is put into an `<img>`).
pub fn avatar_url(
    contact: crate::ids::ContactId,
    file: Option<&str>,
    provider_url: Option<&str>,
) -> Option<String> {
    match (file, provider_url) {
        (Some(f), _) => Some(format!("/api/v1/contacts/{contact}/avatar?v={f}")),
        (None, Some(u)) if u.starts_with("https://") && !u.chars().any(char::is_whitespace) => {
            Some(u.to_owned())
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}: unknown field")]
    UnknownField(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Applies `patch` (a JSON object, as sent) to `contact`: every key is checked before anything
/// changes, then name, phone, email and notes in that order. A name set here is the agent's
/// ([`NameSource::Agent`]); a cleared one may be filled by the channel again.
pub fn edit(
    contact: &mut Contact,
    patch: &serde_json::Map<String, serde_json::Value>,
    now: Timestamp,
) -> Result<(), EditError> {
    for k in patch.keys() {
        match k.as_str() {
            "name" | "phone" | "email" | "notes" => {}
            other => return Err(EditError::UnknownField(other.to_owned())),
        }
    }
    let mut next = contact.clone();
    if let Some(n) = text(patch, "name")? {
        if n.as_deref()
            .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
        {
            return Err(ValidationError::new("name", "must be at most 200 characters").into());
        }
        if n.as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err(ValidationError::new("name", "must not contain control characters").into());
        }
        next.name = n.map(|n| n.trim().to_owned());
    }
    if let Some(p) = text(patch, "phone")? {
        next.phone = p
            .map(|p| Phone::parse(&p).map(Phone::into_inner))
            .transpose()?;
    }
    if let Some(e) = text(patch, "email")? {
        next.email = e
            .map(|e| Email::parse(&e).map(Email::into_inner))
            .transpose()?;
    }
    if let Some(n) = text(patch, "notes")? {
        if n.as_deref()
            .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
        {
            return Err(ValidationError::new("notes", "must be at most 10000 characters").into());
        }
        next.notes = n;
    }
    next.updated_at = now;
    *contact = next;
    Ok(())
}

/// `None`: keep; `Some(None)`: clear; `Some(Some(s))`: set to `s` (still to be validated).
fn text(
    patch: &serde_json::Map<String, serde_json::Value>,
    key: &'static str,
) -> Result<Option<Option<String>>, ValidationError> {
    match patch.get(key) {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(Some(None)),
        Some(serde_json::Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ValidationError::new(key, "must be a string or null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ContactId, WorkspaceId};
    use serde_json::json;
    use uuid::Uuid;

    fn contact() -> Contact {
        Contact {
            id: ContactId(Uuid::from_u128(1)),
            workspace_id: WorkspaceId(Uuid::from_u128(2)),
            name: Some("Khách".into()),
            phone: Some("0912345678".into()),
            email: Some("ha@shop.vn".into()),
            notes: Some("old".into()),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
        }
    }

    type Fields = (Option<&'static str>, Option<&'static str>, Option<String>);

    #[test]
    fn patches_keep_clear_set_or_refuse() {
        let long = "a".repeat(MAX_NOTES_CHARS);
        let too_long = "a".repeat(MAX_NOTES_CHARS + 1);
        let kept: Fields = (Some("0912345678"), Some("ha@shop.vn"), Some("old".into()));
        let invalid =
            |field, message| Err(EditError::Invalid(ValidationError::new(field, message)));
        let cases: Vec<(serde_json::Value, Result<Fields, EditError>)> = vec![
            (json!({}), Ok(kept.clone())),
            (json!({"phone": null}), Ok((None, kept.1, kept.2.clone()))),
            (json!({"email": ""}), Ok((kept.0, None, kept.2.clone()))),
            (json!({"notes": "   "}), Ok((kept.0, kept.1, None))),
            (
                json!({"phone": "+84 912-345-678", "email": " Lan@Shop.VN "}),
                Ok((Some("+84912345678"), Some("lan@shop.vn"), kept.2.clone())),
            ),
            (
                json!({"notes": long}),
                Ok((kept.0, kept.1, Some(long.clone()))),
            ),
            (
                json!({"notes": too_long}),
                invalid("notes", "must be at most 10000 characters"),
            ),
            (
                json!({"phone": "12ab"}),
                invalid(
                    "phone",
                    "may contain only digits, spaces, dashes and a leading +",
                ),
            ),
            (
                json!({"phone": "1234567"}),
                invalid("phone", "must have 8 to 15 digits"),
            ),
            (
                json!({"email": "nope"}),
                invalid("email", "is not a valid email address"),
            ),
            (
                json!({"phone": 912}),
                invalid("phone", "must be a string or null"),
            ),
            (
                json!({"notes": ["x"]}),
                invalid("notes", "must be a string or null"),
            ),
            (
                json!({"avatar": "x"}),
                Err(EditError::UnknownField("avatar".into())),
            ),
            // Every key is checked first: a good phone beside an unknown key changes nothing.
            (
                json!({"phone": "0987654321", "avatar": "x"}),
                Err(EditError::UnknownField("avatar".into())),
            ),
            (
                json!({"name": "a".repeat(MAX_NAME_CHARS + 1)}),
                invalid("name", "must be at most 200 characters"),
            ),
            (
                json!({"name": "Chị\u{7}Hà"}),
                invalid("name", "must not contain control characters"),
            ),
            // A later field's error leaves the earlier ones unapplied too.
            (
                json!({"phone": "0987654321", "email": "nope"}),
                invalid("email", "is not a valid email address"),
            ),
        ];
        for (patch, want) in cases {
            let mut c = contact();
            let patch_map = patch.as_object().cloned().unwrap_or_default();
            let got = edit(&mut c, &patch_map, Timestamp::from_millis(5));
            match want {
                Ok((phone, email, notes)) => {
                    assert_eq!(got, Ok(()), "{patch}");
                    assert_eq!(
                        (
                            c.phone.as_deref(),
                            c.email.as_deref(),
                            c.notes,
                            c.updated_at
                        ),
                        (phone, email, notes, Timestamp::from_millis(5)),
                        "{patch}"
                    );
                    assert_eq!(c.name.as_deref(), Some("Khách"), "{patch}");
                }
                Err(e) => {
                    assert_eq!(got, Err(e), "{patch}");
                    assert_eq!(c, contact(), "{patch}: unchanged");
                }
            }
        }
    }

    #[test]
    fn agents_type_or_clear_a_name() {
        let mut c = contact();
        let patch = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            edit(
                &mut c,
                &patch(json!({"name": "  Chị Hà (VIP) "})),
                Timestamp::from_millis(1)
            ),
            Ok(())
        );
        assert_eq!(c.name.as_deref(), Some("Chị Hà (VIP)"));
        assert_eq!(
            edit(
                &mut c,
                &patch(json!({"name": ""})),
                Timestamp::from_millis(2)
            ),
            Ok(())
        );
        assert_eq!(c.name, None);
    }

    #[test]
    fn a_channel_name_fills_an_empty_or_channel_name_never_a_typed_one_unless_asked() {
        use NameSource::*;
        // (current, source, offered, forced) → the name written
        type Case = (
            Option<&'static str>,
            Option<NameSource>,
            Option<&'static str>,
            bool,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            // (current, source, offered, forced) → the name written
            (None, None, Some("Hà"), false, Some("Hà")),
            (None, Some(Agent), Some("Hà"), false, Some("Hà")), // cleared by the agent: filled again
            (
                Some("Hà"),
                None,
                Some("Hà Nguyễn"),
                false,
                Some("Hà Nguyễn"),
            ), // from before sources
            (
                Some("Hà"),
                Some(Channel),
                Some("Hà Nguyễn"),
                false,
                Some("Hà Nguyễn"),
            ),
            (Some("Hà"), Some(Channel), Some("Hà"), false, None), // unchanged: nothing to write
            (Some("Chị Hà"), Some(Agent), Some("Hà"), false, None), // typed: kept
            (Some("Chị Hà"), Some(Agent), Some("Hà"), true, Some("Hà")), // "sync from channel"
            (Some("Hà"), Some(Agent), Some("Hà"), true, Some("Hà")), // becomes the channel's
            (Some("Hà"), Some(Channel), None, true, None),        // the channel gives none: kept
            (Some("Hà"), Some(Channel), Some("  \u{0} "), true, None), // nothing but junk
            (None, None, Some(" An\u{1b} Lê "), false, Some("An Lê")),
        ];
        for (current, source, offered, forced, want) in cases {
            assert_eq!(
                channel_name(*current, *source, *offered, *forced).as_deref(),
                *want,
                "{current:?} {source:?} {offered:?} {forced}"
            );
        }
        let long = "x".repeat(MAX_NAME_CHARS + 50);
        assert_eq!(
            channel_name(None, None, Some(&long), false).map(|n| n.chars().count()),
            Some(MAX_NAME_CHARS)
        );
    }

    #[test]
    fn a_picture_is_copied_once() {
        assert!(picture_is_new(None, false, "AQADx"));
        assert!(picture_is_new(Some("AQADx"), false, "AQADx")); // the last copy failed
        assert!(!picture_is_new(Some("AQADx"), true, "AQADx"));
        assert!(picture_is_new(Some("AQADx"), true, "AQADy")); // a new picture
    }

    #[test]
    fn a_profile_is_fetched_once_or_when_the_channel_renames() {
        assert!(wants_profile(false, Some("An"), None, Some("An")));
        assert!(!wants_profile(true, Some("An"), None, Some("An")));
        assert!(!wants_profile(true, Some("An"), None, None));
        assert!(wants_profile(
            true,
            Some("An"),
            Some(NameSource::Channel),
            Some("An Lê")
        ));
        assert!(!wants_profile(
            true,
            Some("Chị An"),
            Some(NameSource::Agent),
            Some("An Lê")
        ));
    }

    #[test]
    fn avatars_are_ours_or_an_https_url() {
        let id = ContactId(Uuid::from_u128(1));
        assert_eq!(
            avatar_url(id, Some("f1"), Some("https://cdn/x.jpg")).as_deref(),
            Some("/api/v1/contacts/00000000-0000-0000-0000-000000000001/avatar?v=f1")
        );
        assert_eq!(
            avatar_url(id, None, Some("https://cdn/x.jpg")).as_deref(),
            Some("https://cdn/x.jpg")
        );
        for hostile in [
            "javascript:alert(1)",
            "http://cdn/x.jpg",
            "data:image/png;base64,xx",
            "https://a b",
        ] {
            assert_eq!(avatar_url(id, None, Some(hostile)), None, "{hostile}");
        }
        assert_eq!(avatar_url(id, None, None), None);
    }

    #[test]
    fn errors_read_as_the_api_says_them() {
        assert_eq!(
            EditError::UnknownField("avatar".into()).to_string(),
            "avatar: unknown field"
        );
        assert_eq!(
            EditError::from(ValidationError::new("notes", "must be a string or null")).to_string(),
            "notes: must be a string or null"
        );
    }
}
