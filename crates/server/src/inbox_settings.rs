//! Provider inboxes (Messenger, Instagram, WhatsApp, Zalo OA, Telegram, Shopee): their settings,
//! validated at the API by [`switchboard_channels::settings`] (which also says which of them are
//! secrets: stored and used, never returned — not even to admins — and never logged), and the
//! values the policy and the setup read from them.

use crate::error::{ApiError, ApiResult};
use switchboard_channels::settings as checks;
use switchboard_channels::{shopee, telegram, whatsapp, zalo};
use switchboard_core::{ChannelKind, Inbox};

/// The channels with a provider (every one but live chat).
pub fn is_provider(channel: ChannelKind) -> bool {
    channel != ChannelKind::Livechat
}

/// The settings key webhooks find the inbox by.
pub fn account_key(channel: ChannelKind) -> Option<&'static str> {
    switchboard_channels::for_channel(channel)?.account_key(channel)
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

/// Checks and completes an inbox's settings (`previous` when changing one), as
/// [`switchboard_channels::settings::check`] does; Telegram gets a generated `secret_token`.
pub fn settings(
    channel: ChannelKind,
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
) -> ApiResult<serde_json::Value> {
    let p = switchboard_channels::for_channel(channel).ok_or_else(ApiError::internal)?;
    let mut s = p.check_settings(channel, raw, previous)?;
    let generated = match channel {
        ChannelKind::Telegram => Some("secret_token"),
        // What the admin pastes into the app's webhook setup (shown to them in `setup`).
        ChannelKind::Messenger | ChannelKind::Instagram | ChannelKind::Whatsapp => {
            Some("verify_token")
        }
        _ => None,
    };
    if let (Some(key), Some(obj)) = (generated, s.as_object_mut()) {
        obj.entry(key)
            .or_insert_with(|| serde_json::json!(crate::random::random_token(32)));
    }
    Ok(s)
}

/// What the API shows: secrets replaced by which of them are set.
pub fn public_settings(channel: ChannelKind, settings: &serde_json::Value) -> serde_json::Value {
    checks::public_settings(channel, settings)
}

/// Did this change touch a key that needs the provider told (Telegram's webhook)?
pub fn changed(before: &serde_json::Value, after: &serde_json::Value, keys: &[&str]) -> bool {
    keys.iter().any(|k| before.get(*k) != after.get(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_gets_a_generated_secret_token_and_keeps_a_given_one() {
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
        let again = settings(ChannelKind::Telegram, None, Some(&t)).unwrap_or_default();
        assert_eq!(again["secret_token"], t["secret_token"]);
        assert!(settings(ChannelKind::Livechat, None, None).is_err());
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
