//! Every channel's inbox settings: which keys an inbox takes, which of them are secrets (stored
//! and used, never returned — not even to admins — and never logged), and the checks the API runs
//! on them. Pure: no I/O and no randomness. The server adds the secrets it generates (Telegram's
//! `secret_token`, the live chat's `identity_secret`) after [`check`], and turns a
//! [`SettingsError`] into its 422 (or 500).

use serde_json::{Map, Value, json};
use switchboard_core::ChannelKind;

/// The Graph API this version targets (channels.md §1.5); WhatsApp's Cloud API is on it too.
pub const META_API_BASE_URL: &str = "https://graph.facebook.com/v26.0";
pub const ZALO_API_BASE_URL: &str = "https://openapi.zalo.me";
pub const ZALO_OAUTH_BASE_URL: &str = "https://oauth.zaloapp.com";
pub const TELEGRAM_API_BASE_URL: &str = "https://api.telegram.org";
pub const SHOPEE_API_BASE_URL: &str = "https://partner.shopeemobile.com";

/// A `secret_token` Telegram accepts: 1–256 characters of `A-Z a-z 0-9 _ -`.
pub fn valid_secret_token(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A bot token looks like `<digits>:<35ish characters>`; this only keeps garbage out of URLs.
pub fn valid_bot_token(s: &str) -> bool {
    s.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty()
            && id.chars().all(|c| c.is_ascii_digit())
            && !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) && s.len() <= 128
}

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The input is refused (the API's 422); `field` names the offending key where one is named.
    #[error("{message}")]
    Invalid {
        message: String,
        field: Option<String>,
    },
    /// The stored settings are not a JSON object: our fault, not the caller's (the API's 500).
    #[error("the stored settings are not an object")]
    Internal,
}

fn invalid(message: String, field: Option<&str>) -> SettingsError {
    SettingsError::Invalid {
        message,
        field: field.map(str::to_owned),
    }
}

/// What a WhatsApp, Zalo, Telegram or Shopee inbox takes.
struct Spec {
    /// Keys the API must be given (on creation).
    required: &'static [&'static str],
    /// Keys the API may be given.
    optional: &'static [&'static str],
    secrets: &'static [&'static str],
    /// The key webhooks are routed by (none for Telegram: its URL names the inbox).
    account: Option<&'static str>,
    defaults: &'static [(&'static str, &'static str)],
}

fn spec(channel: ChannelKind) -> Option<Spec> {
    Some(match channel {
        ChannelKind::Whatsapp => Spec {
            required: &[
                "phone_number_id",
                "waba_id",
                "access_token",
                "app_secret",
                "verify_token",
            ],
            optional: &["api_base_url"],
            secrets: &["access_token", "app_secret", "verify_token"],
            account: Some("phone_number_id"),
            defaults: &[("api_base_url", META_API_BASE_URL)],
        },
        ChannelKind::Zalo => Spec {
            required: &[
                "oa_id",
                "app_id",
                "app_secret",
                "oa_secret_key",
                "access_token",
                "refresh_token",
            ],
            optional: &["api_base_url", "oauth_base_url"],
            secrets: &[
                "app_secret",
                "oa_secret_key",
                "access_token",
                "refresh_token",
            ],
            account: Some("oa_id"),
            defaults: &[
                ("api_base_url", ZALO_API_BASE_URL),
                ("oauth_base_url", ZALO_OAUTH_BASE_URL),
            ],
        },
        ChannelKind::Telegram => Spec {
            required: &["bot_token"],
            optional: &["secret_token", "api_base_url"],
            secrets: &["bot_token", "secret_token"],
            account: None,
            defaults: &[("api_base_url", TELEGRAM_API_BASE_URL)],
        },
        ChannelKind::Shopee => Spec {
            required: &["shop_id", "partner_id", "partner_key", "access_token"],
            optional: &["api_base_url", "push_callback_url"],
            secrets: &["partner_key", "access_token"],
            account: Some("shop_id"),
            defaults: &[("api_base_url", SHOPEE_API_BASE_URL)],
        },
        _ => return None,
    })
}

/// Messenger and Instagram settings that are secrets.
pub const META_SECRETS: &[&str] = &["page_access_token", "app_secret", "verify_token"];

/// Messenger or Instagram.
pub fn is_meta(channel: ChannelKind) -> bool {
    matches!(channel, ChannelKind::Messenger | ChannelKind::Instagram)
}

/// WhatsApp, Zalo, Telegram or Shopee.
pub fn is_provider(channel: ChannelKind) -> bool {
    spec(channel).is_some()
}

/// The settings key naming the account webhooks are routed by (none for Telegram and the live chat).
pub fn account_key(channel: ChannelKind) -> Option<&'static str> {
    match channel {
        ChannelKind::Messenger => Some("page_id"),
        ChannelKind::Instagram => Some("ig_account_id"),
        _ => spec(channel).and_then(|s| s.account),
    }
}

/// Checks and completes an inbox's settings: `raw` as the API got it, `previous` when changing an
/// inbox. Unknown keys and bad values are refused, naming the key; what is left out keeps its
/// previous value or its default. Generated secrets are the caller's to add.
pub fn check(
    channel: ChannelKind,
    raw: Option<Value>,
    previous: Option<&Value>,
) -> Result<Value, SettingsError> {
    let mut s = previous.cloned().unwrap_or_else(|| json!({}));
    let Value::Object(incoming) = raw.unwrap_or_else(|| json!({})) else {
        return Err(invalid("settings: must be an object".into(), None));
    };
    let obj = s.as_object_mut().ok_or(SettingsError::Internal)?;
    match (channel, spec(channel)) {
        (ChannelKind::Livechat, _) => livechat(obj, incoming)?,
        (ChannelKind::Messenger | ChannelKind::Instagram, _) => {
            meta_settings(channel, obj, incoming)?;
        }
        (_, Some(spec)) => provider(channel, &spec, obj, incoming)?,
        (_, None) => return Err(SettingsError::Internal),
    }
    Ok(s)
}

fn livechat(
    obj: &mut Map<String, Value>,
    incoming: Map<String, Value>,
) -> Result<(), SettingsError> {
    for (k, v) in incoming {
        let ok = match k.as_str() {
            "require_identity" => v.is_boolean(),
            "greeting" => v.is_string() || v.is_null(),
            "identity_secret" => v.as_str().is_some_and(|s| s.len() >= 16),
            "prechat_fields" => v.as_array().is_some_and(|a| {
                a.iter()
                    .all(|f| matches!(f.as_str(), Some("name" | "email" | "phone")))
            }),
            _ => {
                return Err(invalid(
                    format!("settings: unknown key `{k}` for a live-chat inbox"),
                    None,
                ));
            }
        };
        if !ok {
            return Err(invalid(
                format!("settings: `{k}` has the wrong type or value"),
                None,
            ));
        }
        obj.insert(k, v);
    }
    obj.entry("require_identity").or_insert(json!(false));
    obj.entry("prechat_fields").or_insert(json!([]));
    Ok(())
}

fn meta_settings(
    channel: ChannelKind,
    obj: &mut Map<String, Value>,
    incoming: Map<String, Value>,
) -> Result<(), SettingsError> {
    let account = account_key(channel).unwrap_or("page_id");
    for (k, v) in incoming {
        let ok = match k.as_str() {
            "page_id" | "ig_account_id" => {
                (k == account || k == "page_id")
                    && v.as_str().is_some_and(|x| {
                        !x.is_empty()
                            && x.len() <= 64
                            && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
            }
            "page_access_token" | "app_secret" | "verify_token" => v
                .as_str()
                .is_some_and(|x| !x.trim().is_empty() && x.len() <= 1024),
            "api_base_url" => v.as_str().is_some_and(|x| {
                (x.starts_with("https://") || x.starts_with("http://")) && x.len() <= 200
            }),
            _ => {
                return Err(invalid(
                    format!("settings: unknown key `{k}` for a {channel} inbox"),
                    None,
                ));
            }
        };
        if !ok {
            return Err(invalid(
                format!("settings: `{k}` has the wrong type or value"),
                Some(&k),
            ));
        }
        obj.insert(k, v);
    }
    for k in [account, "page_access_token", "app_secret", "verify_token"] {
        if !obj.get(k).is_some_and(Value::is_string) {
            return Err(invalid(format!("settings: `{k}` is required"), Some(k)));
        }
    }
    obj.entry("api_base_url")
        .or_insert_with(|| json!(META_API_BASE_URL));
    Ok(())
}

fn id_like(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn url_like(v: &str) -> bool {
    (v.starts_with("https://") || v.starts_with("http://"))
        && v.len() <= 300
        && !v.chars().any(char::is_whitespace)
}

fn valid(channel: ChannelKind, key: &str, v: &str) -> bool {
    match (channel, key) {
        (_, "api_base_url" | "oauth_base_url" | "push_callback_url") => url_like(v),
        (ChannelKind::Telegram, "bot_token") => valid_bot_token(v),
        (ChannelKind::Telegram, "secret_token") => valid_secret_token(v),
        (ChannelKind::Whatsapp, "phone_number_id" | "waba_id")
        | (ChannelKind::Shopee, "shop_id" | "partner_id")
        | (ChannelKind::Zalo, "oa_id" | "app_id") => {
            id_like(v) && v.chars().all(|c| c.is_ascii_digit())
        }
        _ => !v.trim().is_empty() && v.len() <= 2048 && !v.contains(['\n', '\r']),
    }
}

fn provider(
    channel: ChannelKind,
    spec: &Spec,
    obj: &mut Map<String, Value>,
    incoming: Map<String, Value>,
) -> Result<(), SettingsError> {
    for (k, v) in incoming {
        if !spec.required.contains(&k.as_str()) && !spec.optional.contains(&k.as_str()) {
            return Err(invalid(
                format!("settings: unknown key `{k}` for a {channel} inbox"),
                Some(&k),
            ));
        }
        if !v.as_str().is_some_and(|x| valid(channel, &k, x)) {
            return Err(invalid(
                format!("settings: `{k}` has the wrong type or value"),
                Some(&k),
            ));
        }
        // New Zalo tokens replace the old ones and their expiry.
        if channel == ChannelKind::Zalo && k == "access_token" {
            obj.remove("access_token_expires_at");
        }
        obj.insert(k, v);
    }
    for k in spec.required {
        if !obj.get(*k).is_some_and(Value::is_string) {
            return Err(invalid(format!("settings: `{k}` is required"), Some(k)));
        }
    }
    for (k, d) in spec.defaults {
        obj.entry(*k).or_insert_with(|| json!(d));
    }
    Ok(())
}

/// The settings' secrets (none for the live chat: its `identity_secret` is shown to admins).
pub fn secrets(channel: ChannelKind) -> &'static [&'static str] {
    if is_meta(channel) {
        META_SECRETS
    } else {
        spec(channel).map_or(&[], |s| s.secrets)
    }
}

/// What the API shows of a Messenger, Instagram, WhatsApp, Zalo, Telegram or Shopee inbox's
/// settings: the secrets replaced by `secrets_set`, the list of those that are set. The live chat's
/// settings are shown as they are.
pub fn public_settings(channel: ChannelKind, settings: &Value) -> Value {
    let secrets = secrets(channel);
    let mut s = settings.clone();
    if channel != ChannelKind::Livechat
        && let Some(o) = s.as_object_mut()
    {
        let set: Vec<&str> = secrets
            .iter()
            .copied()
            .filter(|k| o.contains_key(*k))
            .collect();
        o.retain(|k, _| !secrets.contains(&k.as_str()));
        o.insert("secrets_set".into(), json!(set));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<Value, SettingsError>) -> Option<String> {
        match r {
            Err(SettingsError::Invalid { field, .. }) => field,
            _ => None,
        }
    }

    #[test]
    fn provider_settings_are_checked_completed_and_secrets_hidden() {
        let s = check(
            ChannelKind::Whatsapp,
            Some(
                json!({"phone_number_id": "106540352242922", "waba_id": "102290129340398",
                "access_token": "EAAG", "app_secret": "s", "verify_token": "v"}),
            ),
            None,
        )
        .unwrap_or_default();
        assert_eq!(s["api_base_url"], META_API_BASE_URL);
        let p = public_settings(ChannelKind::Whatsapp, &s);
        assert!(p.get("access_token").is_none() && p.get("app_secret").is_none());
        assert_eq!(
            p["secrets_set"],
            json!(["access_token", "app_secret", "verify_token"])
        );
        assert_eq!(
            field(check(
                ChannelKind::Whatsapp,
                Some(json!({"phone_number_id": "1"})),
                None
            )),
            Some("waba_id".into())
        );
        assert_eq!(
            field(check(
                ChannelKind::Telegram,
                Some(json!({"bot_token": "12:AB", "nope": "x"})),
                None
            )),
            Some("nope".into())
        );
        // The secret token is the server's to generate.
        let t = check(
            ChannelKind::Telegram,
            Some(json!({"bot_token": "12:AB"})),
            None,
        )
        .unwrap_or_default();
        assert!(t.get("secret_token").is_none() && t["bot_token"] == "12:AB");
        assert_eq!(
            field(check(
                ChannelKind::Telegram,
                Some(json!({"bot_token": "12:AB", "secret_token": "bad token"})),
                None
            )),
            Some("secret_token".into())
        );
    }

    #[test]
    fn meta_and_livechat_settings() {
        let m = check(
            ChannelKind::Instagram,
            Some(json!({"ig_account_id": "1784", "page_access_token": "t", "app_secret": "s", "verify_token": "v"})),
            None,
        )
        .unwrap_or_default();
        assert_eq!(m["api_base_url"], META_API_BASE_URL);
        assert_eq!(
            public_settings(ChannelKind::Instagram, &m)["secrets_set"],
            json!(["page_access_token", "app_secret", "verify_token"])
        );
        assert!(
            check(
                ChannelKind::Messenger,
                Some(json!({"ig_account_id": "1784"})),
                None
            )
            .is_err()
        );
        let l = check(
            ChannelKind::Livechat,
            Some(json!({"greeting": "Xin chào"})),
            None,
        )
        .unwrap_or_default();
        assert_eq!(l["require_identity"], false);
        assert_eq!(l["prechat_fields"], json!([]));
        assert!(
            check(
                ChannelKind::Livechat,
                Some(json!({"identity_secret": "short"})),
                None
            )
            .is_err()
        );
        assert_eq!(
            check(ChannelKind::Livechat, None, Some(&json!([]))),
            Err(SettingsError::Internal)
        );
        assert!(check(ChannelKind::Livechat, Some(json!([])), None).is_err());
    }
}
