//! Variables in a flow's texts: `{{contact.name}}`, with a fallback for an empty field:
//! `{{contact.name | bạn}}` ("Chào bạn" when the name is unknown). Only `contact.<field>` exists.

use super::check::is_field_name;

/// One piece of a template.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var { field: &'a str, fallback: &'a str },
}

fn parse(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("has a '{{' without its '}}'".into());
        };
        let inner = &after[..close];
        let (name, fallback) = match inner.split_once('|') {
            Some((n, f)) => (n.trim(), f.trim()),
            None => (inner.trim(), ""),
        };
        let Some(field) = name.strip_prefix("contact.") else {
            return Err(format!(
                "{{{{{name}}}}} is not a variable (write {{{{contact.<field>}}}})"
            ));
        };
        if !is_field_name(field) {
            return Err(format!("{{{{{name}}}}}: {field:?} is not a field name"));
        }
        out.push(Piece::Var { field, fallback });
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Whether a template's variables are well formed.
pub fn check(s: &str) -> Result<(), String> {
    parse(s).map(|_| ())
}

/// Every string of a JSON template checked.
pub fn check_json(v: &serde_json::Value) -> Result<(), String> {
    match v {
        serde_json::Value::String(s) => check(s),
        serde_json::Value::Array(items) => items.iter().try_for_each(check_json),
        serde_json::Value::Object(map) => map.values().try_for_each(check_json),
        _ => Ok(()),
    }
}

/// The template with its variables filled from `field` (an unknown or empty field: the fallback).
/// `encode` percent-encodes the values (for a URL). A malformed template is returned as written
/// (validation refuses those before a flow is saved).
pub fn render(s: &str, field: &dyn Fn(&str) -> Option<String>, encode: bool) -> String {
    let Ok(pieces) = parse(s) else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(s.len());
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var {
                field: name,
                fallback,
            } => {
                let value = field(name)
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| fallback.to_owned());
                if encode {
                    out.push_str(&percent_encode(&value));
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

/// Every string of a JSON template rendered.
pub fn render_json(
    v: &serde_json::Value,
    field: &dyn Fn(&str) -> Option<String>,
) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) => serde_json::Value::String(render(s, field, false)),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|i| render_json(i, field)).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render_json(v, field)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan(f: &str) -> Option<String> {
        match f {
            "name" => Some("Lan".into()),
            "city" => Some("Hà Nội".into()),
            "empty" => Some("  ".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_filled_from_the_contact() {
        for (template, want) in [
            ("Chào {{contact.name}}!", "Chào Lan!"),
            ("Chào {{ contact.name | bạn }}!", "Chào Lan!"),
            ("Chào {{contact.nickname | bạn}}!", "Chào bạn!"),
            ("Chào {{contact.empty|bạn}}", "Chào bạn"),
            ("{{contact.nickname}}", ""),
            ("Ship về {{contact.city}} nhé", "Ship về Hà Nội nhé"),
            ("no variables", "no variables"),
        ] {
            assert_eq!(render(template, &lan, false), want, "{template}");
        }
        assert_eq!(
            render("https://x.vn/?city={{contact.city}}", &lan, true),
            "https://x.vn/?city=H%C3%A0%20N%E1%BB%99i"
        );
    }

    #[test]
    fn malformed_variables_are_refused() {
        for (template, ok) in [
            ("{{contact.name}}", true),
            ("{{contact.name", false),
            ("{{name}}", false),
            ("{{contact.Tên}}", false),
            ("{{order.id}}", false),
            ("plain {text}", true),
        ] {
            assert_eq!(check(template).is_ok(), ok, "{template}");
        }
    }

    #[test]
    fn json_templates_render_every_string() {
        let body =
            serde_json::json!({"name": "{{contact.name}}", "n": 1, "tags": ["{{contact.city}}"]});
        assert_eq!(
            render_json(&body, &lan),
            serde_json::json!({"name": "Lan", "n": 1, "tags": ["Hà Nội"]})
        );
        assert!(check_json(&serde_json::json!({"a": ["{{x}}"]})).is_err());
    }
}
