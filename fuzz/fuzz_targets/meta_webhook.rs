//! Messenger / Instagram webhook bodies (`switchboard_channels::meta`): the routing read of an
//! unverified body, the signature check and the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::meta::{self, MetaEvent};
use switchboard_core::validate::has_forbidden_control;

const SECRET: &str = "app_secret_test";

fn clean(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| !has_forbidden_control(s))
}

fuzz_target!(|body: &[u8]| {
    // Signature: ours verifies; a header made of the input verifies only if it is ours.
    let good = meta::signature_header(SECRET, body);
    assert!(meta::verify_signature(SECRET, body, Some(&good)));
    let forged = String::from_utf8_lossy(&body[..body.len().min(80)]);
    if meta::verify_signature(SECRET, body, Some(&forged)) {
        assert_eq!(forged.trim().to_ascii_lowercase(), good);
    }

    let ids = meta::entry_ids(body);
    let Ok(hook) = meta::parse(body) else { return };
    for e in &hook.entries {
        // Every entry the parser accepts is one the routing read found (so its secret was tried).
        assert!(ids.contains(&e.id), "entry {} not in {ids:?}", e.id);
        for ev in &e.events {
            let _ = ev.at();
            // Text we keep from Meta has no control characters left (they poison the store).
            match ev {
                MetaEvent::Message {
                    text, attachments, ..
                }
                | MetaEvent::Echo {
                    text, attachments, ..
                } => {
                    assert!(clean(text));
                    assert!(
                        attachments
                            .iter()
                            .all(|a| !has_forbidden_control(&a.kind) && clean(&a.url))
                    );
                    let d = meta::describe(text.as_deref(), attachments);
                    assert!(!d.is_empty());
                }
                MetaEvent::Postback { title, payload, .. } => {
                    assert!(clean(title) && clean(payload));
                }
                MetaEvent::Edit { text, .. } => assert!(!has_forbidden_control(text)),
                MetaEvent::Comment {
                    from_name, text, ..
                } => assert!(clean(from_name) && clean(text)),
                _ => {}
            }
        }
    }
});
