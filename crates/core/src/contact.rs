//! What agents may change on a contact. The name comes from the channel and is read-only; phone,
//! email and notes are the agents' and are validated. A patch names only what changes: an absent
//! key keeps the field, `null` or a blank string clears it.

use crate::model::Contact;
use crate::time::Timestamp;
use crate::validate::{Email, Phone, ValidationError};

/// The longest note an agent may keep on a contact (characters).
pub const MAX_NOTES_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A field the channel owns (`name`).
    #[error("{0}: comes from the channel and cannot be edited")]
    ReadOnly(&'static str),
    #[error("{0}: unknown field")]
    UnknownField(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Applies `patch` (a JSON object, as sent) to `contact`: every key is checked before anything
/// changes, then phone, email and notes in that order.
pub fn edit(
    contact: &mut Contact,
    patch: &serde_json::Map<String, serde_json::Value>,
    now: Timestamp,
) -> Result<(), EditError> {
    for k in patch.keys() {
        match k.as_str() {
            "phone" | "email" | "notes" => {}
            "name" => return Err(EditError::ReadOnly("name")),
            other => return Err(EditError::UnknownField(other.to_owned())),
        }
    }
    let mut next = contact.clone();
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
            (json!({"name": "Hacked"}), Err(EditError::ReadOnly("name"))),
            (
                json!({"avatar": "x"}),
                Err(EditError::UnknownField("avatar".into())),
            ),
            // Every key is checked first: a good phone beside the name changes nothing.
            (
                json!({"phone": "0987654321", "name": "Hacked"}),
                Err(EditError::ReadOnly("name")),
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
    fn errors_read_as_the_api_says_them() {
        assert_eq!(
            EditError::ReadOnly("name").to_string(),
            "name: comes from the channel and cannot be edited"
        );
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
