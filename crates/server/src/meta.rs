//! Messenger and Instagram inboxes: their settings (validated at the API), and the values the
//! webhook, the outbox and the profile sync read from them.

use crate::error::{ApiError, ApiResult};
use switchboard_channels::meta::{DEFAULT_API_BASE_URL, Object};
use switchboard_core::{ChannelKind, Inbox};

/// Settings that are secrets: stored, used, never returned by the API (not even to admins) and
/// never logged.
pub const SECRET_SETTINGS: &[&str] = &["page_access_token", "app_secret", "verify_token"];

/// The settings key naming the account that webhooks are routed by.
pub fn account_key(channel: ChannelKind) -> Option<&'static str> {
    match channel {
        ChannelKind::Messenger => Some("page_id"),
        ChannelKind::Instagram => Some("ig_account_id"),
        _ => None,
    }
}

pub fn is_meta(channel: ChannelKind) -> bool {
    account_key(channel).is_some()
}

pub fn object(channel: ChannelKind) -> Object {
    if channel == ChannelKind::Instagram {
        Object::Instagram
    } else {
        Object::Page
    }
}

fn setting<'a>(i: &'a Inbox, k: &str) -> Option<&'a str> {
    i.settings
        .get(k)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The page / IG account id webhooks carry in `entry[].id`.
pub fn account_id(i: &Inbox) -> Option<&str> {
    setting(i, account_key(i.channel)?)
}

/// Who sends: the Page (Messenger, and Instagram linked to a Page) or the IG account (Instagram Login).
pub fn sender_id(i: &Inbox) -> Option<&str> {
    setting(i, "page_id").or_else(|| account_id(i))
}

pub fn token(i: &Inbox) -> Option<&str> {
    setting(i, "page_access_token")
}

pub fn app_secret(i: &Inbox) -> Option<&str> {
    setting(i, "app_secret")
}

pub fn verify_token(i: &Inbox) -> Option<&str> {
    setting(i, "verify_token")
}

pub fn api_base_url(i: &Inbox) -> &str {
    setting(i, "api_base_url").unwrap_or(DEFAULT_API_BASE_URL)
}

/// Checks and completes a Messenger / Instagram inbox's settings (`previous` when changing one).
pub fn settings(
    channel: ChannelKind,
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
) -> ApiResult<serde_json::Value> {
    let account = account_key(channel).ok_or_else(ApiError::internal)?;
    let mut s = previous.cloned().unwrap_or_else(|| serde_json::json!({}));
    let serde_json::Value::Object(incoming) = raw.unwrap_or_else(|| serde_json::json!({})) else {
        return Err(ApiError::invalid("settings: must be an object"));
    };
    let obj = s.as_object_mut().ok_or_else(ApiError::internal)?;
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
                return Err(ApiError::invalid(format!(
                    "settings: unknown key `{k}` for a {channel} inbox"
                )));
            }
        };
        if !ok {
            return Err(
                ApiError::invalid(format!("settings: `{k}` has the wrong type or value"))
                    .with_extra(serde_json::json!({"field": k})),
            );
        }
        obj.insert(k, v);
    }
    for k in [account, "page_access_token", "app_secret", "verify_token"] {
        if !obj.get(k).is_some_and(|v| v.is_string()) {
            return Err(ApiError::invalid(format!("settings: `{k}` is required"))
                .with_extra(serde_json::json!({"field": k})));
        }
    }
    obj.entry("api_base_url")
        .or_insert_with(|| serde_json::json!(DEFAULT_API_BASE_URL));
    Ok(s)
}

/// What the API shows of the settings: secrets replaced by which of them are set.
pub fn public_settings(settings: &serde_json::Value) -> serde_json::Value {
    let mut s = settings.clone();
    if let Some(o) = s.as_object_mut() {
        let set: Vec<&str> = SECRET_SETTINGS
            .iter()
            .copied()
            .filter(|k| o.contains_key(*k))
            .collect();
        o.retain(|k, _| !SECRET_SETTINGS.contains(&k.as_str()));
        o.insert("secrets_set".into(), serde_json::json!(set));
    }
    s
}
