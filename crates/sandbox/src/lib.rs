//! Provider emulators, written from the shared channel reference independently of the service:
//! `meta` (the Meta Graph API and its webhooks) and `channels` (WhatsApp Cloud, Zalo OA, Telegram,
//! Shopee). Used in-process by the tests and `switchboard demo`, and standalone as
//! `switchboard sandbox`. Time comes from an injected [`switchboard_core::time::Clock`].

pub mod channels;
mod http;
pub mod media;
pub mod meta;

/// The picture every sandboxed profile has (a 4×4 orange PNG): what a provider's picture URL or
/// file download serves.
pub const PICTURE_PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0,
    0, 0, 38, 147, 9, 41, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 120, 144, 224, 0, 71, 12, 196,
    113, 0, 122, 82, 24, 1, 57, 35, 232, 16, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// A picture download: the PNG, typed as the CDNs type it.
fn picture() -> axum::response::Response {
    use axum::response::IntoResponse;
    ([("content-type", "image/png")], PICTURE_PNG).into_response()
}
