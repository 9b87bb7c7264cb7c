//! Messenger and Instagram inboxes: the values the comment actions and the policy read from their
//! settings (checked at the API by [`switchboard_channels::settings`]).

use switchboard_channels::meta::{DEFAULT_API_BASE_URL, Object};
use switchboard_channels::provider::setting;
use switchboard_channels::settings as checks;
use switchboard_core::{ChannelKind, Inbox};

pub use switchboard_channels::meta::account_id;

pub fn is_meta(channel: ChannelKind) -> bool {
    checks::is_meta(channel)
}

pub fn object(channel: ChannelKind) -> Object {
    switchboard_channels::meta::object_of(channel)
}

pub fn token(i: &Inbox) -> Option<&str> {
    setting(i, "page_access_token")
}

pub fn api_base_url(i: &Inbox) -> &str {
    setting(i, "api_base_url").unwrap_or(DEFAULT_API_BASE_URL)
}
