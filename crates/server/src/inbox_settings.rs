//! WhatsApp, Zalo OA, Telegram and Shopee inboxes: their settings (validated at the API), which of
//! them are secrets (stored and used, never returned — not even to admins — and never logged),
//! and the values webhooks, the outbox and the policy read from them.

use crate::error::{ApiError, ApiResult};
use switchboard_channels::{shopee, telegram, whatsapp, zalo};
use switchboard_core::{ChannelKind, Inbox};

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
            defaults: &[("api_base_url", whatsapp::DEFAULT_API_BASE_URL)],
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
                ("api_base_url", zalo::DEFAULT_API_BASE_URL),
                ("oauth_base_url", zalo::DEFAULT_OAUTH_BASE_URL),
            ],
        },
        ChannelKind::Telegram => Spec {
            required: &["bot_token"],
            optional: &["secret_token", "api_base_url"],
            secrets: &["bot_token", "secret_token"],
            account: None,
            defaults: &[("api_base_url", telegram::DEFAULT_API_BASE_URL)],
        },
        ChannelKind::Shopee => Spec {
            required: &["shop_id", "partner_id", "partner_key", "access_token"],
            optional: &["api_base_url", "push_callback_url"],
            secrets: &["partner_key", "access_token"],
            account: Some("shop_id"),
            defaults: &[("api_base_url", shopee::DEFAULT_API_BASE_URL)],
        },
        _ => return None,
    })
}

/// The channels this module handles.
pub fn is_provider(channel: ChannelKind) -> bool {
    spec(channel).is_some()
}

/// The settings key webhooks find the inbox by.
pub fn account_key(channel: ChannelKind) -> Option<&'static str> {
    spec(channel).and_then(|s| s.account)
}

pub fn setting<'a>(i: &'a Inbox, k: &str) -> Option<&'a str> {
    i.settings
        .get(k)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The inbox's API base URL (with the channel's default).
pub fn api_base_url(i: &Inbox) -> &str {
    setting(i, "api_base_url").unwrap_or(match i.channel {
        ChannelKind::Zalo => zalo::DEFAULT_API_BASE_URL,
        ChannelKind::Telegram => telegram::DEFAULT_API_BASE_URL,
        ChannelKind::Shopee => shopee::DEFAULT_API_BASE_URL,
        _ => whatsapp::DEFAULT_API_BASE_URL,
    })
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
        (ChannelKind::Telegram, "bot_token") => telegram::valid_bot_token(v),
        (ChannelKind::Telegram, "secret_token") => telegram::valid_secret_token(v),
        (ChannelKind::Whatsapp, "phone_number_id" | "waba_id")
        | (ChannelKind::Shopee, "shop_id" | "partner_id")
        | (ChannelKind::Zalo, "oa_id" | "app_id") => {
            id_like(v) && v.chars().all(|c| c.is_ascii_digit())
        }
        _ => !v.trim().is_empty() && v.len() <= 2048 && !v.contains(['\n', '\r']),
    }
}

/// Checks and completes an inbox's settings (`previous` when changing one). Unknown keys and bad
/// values are refused with the offending `field`; Telegram gets a generated `secret_token`.
pub fn settings(
    channel: ChannelKind,
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
) -> ApiResult<serde_json::Value> {
    let spec = spec(channel).ok_or_else(ApiError::internal)?;
    let mut s = previous.cloned().unwrap_or_else(|| serde_json::json!({}));
    let serde_json::Value::Object(incoming) = raw.unwrap_or_else(|| serde_json::json!({})) else {
        return Err(ApiError::invalid("settings: must be an object"));
    };
    let obj = s.as_object_mut().ok_or_else(ApiError::internal)?;
    let field = |k: &str| serde_json::json!({ "field": k });
    for (k, v) in incoming {
        if !spec.required.contains(&k.as_str()) && !spec.optional.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!(
                "settings: unknown key `{k}` for a {channel} inbox"
            ))
            .with_extra(field(&k)));
        }
        if !v.as_str().is_some_and(|x| valid(channel, &k, x)) {
            return Err(
                ApiError::invalid(format!("settings: `{k}` has the wrong type or value"))
                    .with_extra(field(&k)),
            );
        }
        // New Zalo tokens replace the old ones and their expiry.
        if channel == ChannelKind::Zalo && k == "access_token" {
            obj.remove("access_token_expires_at");
        }
        obj.insert(k, v);
    }
    for k in spec.required {
        if !obj.get(*k).is_some_and(|v| v.is_string()) {
            return Err(
                ApiError::invalid(format!("settings: `{k}` is required")).with_extra(field(k))
            );
        }
    }
    for (k, d) in spec.defaults {
        obj.entry(*k).or_insert_with(|| serde_json::json!(d));
    }
    if channel == ChannelKind::Telegram {
        obj.entry("secret_token")
            .or_insert_with(|| serde_json::json!(crate::random::random_token(32)));
    }
    Ok(s)
}

/// What the API shows: secrets replaced by which of them are set.
pub fn public_settings(channel: ChannelKind, settings: &serde_json::Value) -> serde_json::Value {
    let Some(spec) = spec(channel) else {
        return settings.clone();
    };
    let mut s = settings.clone();
    if let Some(o) = s.as_object_mut() {
        let set: Vec<&str> = spec
            .secrets
            .iter()
            .copied()
            .filter(|k| o.contains_key(*k))
            .collect();
        o.retain(|k, _| !spec.secrets.contains(&k.as_str()));
        o.insert("secrets_set".into(), serde_json::json!(set));
    }
    s
}

/// Did this change touch a key that needs the provider told (Telegram's webhook)?
pub fn changed(before: &serde_json::Value, after: &serde_json::Value, keys: &[&str]) -> bool {
    keys.iter().any(|k| before.get(*k) != after.get(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_completed_and_secrets_hidden() {
        let s = settings(
            ChannelKind::Whatsapp,
            Some(serde_json::json!({"phone_number_id": "106540352242922", "waba_id": "102290129340398",
                "access_token": "EAAG", "app_secret": "s", "verify_token": "v"})),
            None,
        )
        .map_err(|e| e.code);
        let s = s.unwrap_or_default();
        assert_eq!(s["api_base_url"], whatsapp::DEFAULT_API_BASE_URL);
        let p = public_settings(ChannelKind::Whatsapp, &s);
        assert!(p.get("access_token").is_none() && p.get("app_secret").is_none());
        assert_eq!(
            p["secrets_set"],
            serde_json::json!(["access_token", "app_secret", "verify_token"])
        );
        assert!(
            settings(
                ChannelKind::Whatsapp,
                Some(serde_json::json!({"phone_number_id": "1"})),
                None
            )
            .is_err()
        );
        assert!(
            settings(
                ChannelKind::Telegram,
                Some(serde_json::json!({"bot_token": "12:AB", "nope": "x"})),
                None
            )
            .is_err()
        );
        let t = settings(
            ChannelKind::Telegram,
            Some(serde_json::json!({"bot_token": "12:AB"})),
            None,
        )
        .unwrap_or_default();
        assert!(
            t["secret_token"]
                .as_str()
                .is_some_and(telegram::valid_secret_token)
        );
        assert!(
            settings(
                ChannelKind::Telegram,
                Some(serde_json::json!({"bot_token": "12:AB", "secret_token": "bad token"})),
                None
            )
            .is_err()
        );
    }
}
