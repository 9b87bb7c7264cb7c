//! Messenger and Instagram inboxes: their settings (validated at the API by
//! [`switchboard_channels::settings`]), and the values the webhook, the outbox and the profile
//! sync read from them.

use crate::error::{ApiError, ApiResult};
use switchboard_channels::meta::{DEFAULT_API_BASE_URL, Object};
use switchboard_channels::settings as checks;
use switchboard_core::{ChannelKind, Inbox};

/// Settings that are secrets: stored, used, never returned by the API (not even to admins) and
/// never logged.
pub const SECRET_SETTINGS: &[&str] = checks::META_SECRETS;

/// The settings key naming the account that webhooks are routed by.
pub fn account_key(channel: ChannelKind) -> Option<&'static str> {
    checks::account_key(channel).filter(|_| is_meta(channel))
}

pub fn is_meta(channel: ChannelKind) -> bool {
    checks::is_meta(channel)
}

pub fn object(channel: ChannelKind) -> Object {
    switchboard_channels::meta::object_of(channel)
}

pub use switchboard_channels::meta::{account_id, sender_id};
use switchboard_channels::provider::setting;

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
    if !is_meta(channel) {
        return Err(ApiError::internal());
    }
    Ok(checks::check(channel, raw, previous)?)
}

/// What the API shows of the settings: secrets replaced by which of them are set.
pub fn public_settings(settings: &serde_json::Value) -> serde_json::Value {
    checks::public_settings(ChannelKind::Messenger, settings)
}
