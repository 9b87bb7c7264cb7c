//! Zalo OA webhook bodies (`switchboard_channels::zalo`): the fields the signature covers, the
//! `X-ZEvent-Signature` check and the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::zalo::{self, ZaloEvent};

const KEY: &str = "oa_secret_key_test";

fuzz_target!(|body: &[u8]| {
    // Signature: ours verifies (in either hex case); a header made of the input only if it is ours.
    if let Some((app_id, ts)) = zalo::signed_fields(body) {
        let good = zalo::signature_header(&app_id, body, &ts, KEY);
        assert!(zalo::verify_signature(body, Some(&good), KEY));
        assert!(zalo::verify_signature(
            body,
            Some(&format!("mac={}", good[4..].to_ascii_uppercase())),
            KEY
        ));
        let forged = String::from_utf8_lossy(&body[..body.len().min(80)]);
        if zalo::verify_signature(body, Some(&forged), KEY) {
            assert_eq!(forged.trim().to_ascii_lowercase(), good);
        }
    } else {
        assert!(!zalo::verify_signature(body, Some("mac=00"), KEY));
    }

    let Ok(hook) = zalo::parse(body) else { return };
    assert!(!hook.oa_id.is_empty() && !hook.event_name.is_empty());
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    assert_eq!(zalo::oa_of(&v).as_deref(), Some(hook.oa_id.as_str()));
    match &hook.event {
        ZaloEvent::UserMessage {
            text, attachments, ..
        }
        | ZaloEvent::Echo {
            text, attachments, ..
        } => {
            assert!(!text.is_empty());
            let _ = zalo::describe(Some(text), attachments);
        }
        _ => {}
    }
});
