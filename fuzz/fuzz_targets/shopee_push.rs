//! Shopee push bodies (`switchboard_channels::shopee`): the routing read of an unverified push, the
//! `Authorization` check and the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::shopee::{self, ShopeeEvent};

const KEY: &str = "partner_key_test";
const URL: &str = "https://example.com/shopee/push";

fuzz_target!(|body: &[u8]| {
    // Signature: ours verifies for the configured URL only; a header made of the input only if it is ours.
    let good = shopee::push_signature(KEY, URL, body);
    assert!(shopee::verify_push(KEY, URL, body, Some(&good)));
    assert!(!shopee::verify_push(
        KEY,
        &format!("{URL}/"),
        body,
        Some(&good)
    ));
    let forged = String::from_utf8_lossy(&body[..body.len().min(80)]);
    if shopee::verify_push(KEY, URL, body, Some(&forged)) {
        assert_eq!(forged.trim().to_ascii_lowercase(), good);
    }

    let shop = shopee::shop_id(body);
    let Ok(push) = shopee::parse_push(body) else {
        return;
    };
    // The inbox the push was verified for is the one it is parsed for.
    assert_eq!(shop.as_deref(), Some(push.shop_id.as_str()));
    if let ShopeeEvent::Message {
        conversation_id,
        from_id,
        message_id,
        text,
        ..
    } = &push.event
    {
        assert!(!conversation_id.is_empty() && !from_id.is_empty());
        assert!(!message_id.is_empty() && !text.is_empty());
        // The same push parses to the same message (its derived id is stable).
        assert_eq!(shopee::parse_push(body).ok(), Some(push.clone()));
    }
});
