//! Channel connectors. Each module verifies and parses one provider's inbound traffic into the
//! core's terms, and builds its outbound requests; `settings` checks each channel's inbox settings.
//! This crate does no I/O of its own.

pub mod check;
mod lenient;
pub mod links;
pub mod livechat;
pub mod meta;
pub mod provider;
pub mod settings;
pub mod shopee;
pub mod signing;
pub mod telegram;
pub mod webpush;
pub mod whatsapp;
pub mod wire;
pub mod zalo;

use provider::Provider;
use switchboard_core::ChannelKind;

/// Every provider with a webhook.
pub fn registry() -> [&'static dyn Provider; 5] {
    [
        &meta::Meta,
        &whatsapp::WhatsApp,
        &zalo::Zalo,
        &telegram::Telegram,
        &shopee::Shopee,
    ]
}

/// The provider of an inbox's channel (live chat has none: the widget is ours).
pub fn for_channel(channel: ChannelKind) -> Option<&'static dyn Provider> {
    registry()
        .into_iter()
        .find(|p| p.channels().contains(&channel))
}

/// The provider whose webhook path segment is `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Provider> {
    registry().into_iter().find(|p| p.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_found_by_its_webhook_name_and_covers_distinct_channels() {
        let mut seen = Vec::new();
        for p in registry() {
            assert!(std::ptr::eq(
                by_name(p.name())
                    .map_or(std::ptr::null(), |q| q as *const dyn Provider as *const ()),
                p as *const dyn Provider as *const ()
            ));
            for c in p.channels() {
                assert!(!seen.contains(c), "{c:?} twice");
                seen.push(*c);
            }
        }
        assert!(by_name("nope").is_none());
    }
}
