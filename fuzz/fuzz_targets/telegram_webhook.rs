//! Telegram updates (`switchboard_channels::telegram`): the parser, and the secret-token and
//! bot-token checks on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::telegram::{self, TgEvent};

fuzz_target!(|body: &[u8]| {
    let s = String::from_utf8_lossy(body);
    // The secret header: only the exact secret passes, and never an empty one.
    assert!(!telegram::verify_secret("", Some(&s)));
    assert_eq!(telegram::verify_secret("s3cr3t", Some(&s)), s == "s3cr3t");
    if !s.is_empty() {
        assert!(telegram::verify_secret(&s, Some(&s)));
    }
    // What setWebhook and our URLs accept: nothing that could break out of a header or a path.
    let url_safe = |t: &str| {
        t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if telegram::valid_secret_token(&s) {
        assert!(s.len() <= 256 && url_safe(&s));
    }
    if telegram::valid_bot_token(&s) {
        assert!(s.len() <= 128 && s.split(':').all(url_safe));
    }

    let Ok(u) = telegram::parse(body) else { return };
    match &u.event {
        TgEvent::Message {
            chat_id,
            message_id,
            text,
            ..
        } => assert!(!chat_id.is_empty() && !message_id.is_empty() && !text.is_empty()),
        TgEvent::Edited { text, .. } => assert!(!text.is_empty()),
        _ => {}
    }
});
