//! Provider emulators, written from the shared channel reference independently of the service:
//! `meta` (the Meta Graph API and its webhooks) and `channels` (WhatsApp Cloud, Zalo OA, Telegram,
//! Shopee). Used in-process by the tests and `switchboard demo`, and standalone as
//! `switchboard sandbox`. Time comes from an injected [`switchboard_core::time::Clock`].

pub mod channels;
mod http;
pub mod meta;
