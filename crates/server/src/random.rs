//! Random secrets: session and API tokens, generated webhook secrets, demo passwords.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;

/// A new id: a UUID v7 (time-ordered, then random).
pub fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// `bytes` random bytes from the OS-seeded generator, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    B64.encode(buf)
}
