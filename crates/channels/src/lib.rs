//! Channel connectors. Each module verifies and parses one provider's inbound traffic into the
//! core's terms, and builds its outbound requests; `settings` checks each channel's inbox settings.
//! This crate does no I/O of its own.

pub mod livechat;
pub mod meta;
pub mod provider;
pub mod settings;
pub mod shopee;
pub mod signing;
pub mod telegram;
pub mod whatsapp;
pub mod zalo;
