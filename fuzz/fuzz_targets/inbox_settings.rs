//! Inbox settings as `POST /inboxes` and `PATCH /inboxes/{id}` take them, for every channel
//! (`switchboard_channels::settings::check`), and what the API shows of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_channels::settings::{self, SettingsError};
use switchboard_core::ChannelKind;

const CHANNELS: [ChannelKind; 7] = [
    ChannelKind::Livechat,
    ChannelKind::Messenger,
    ChannelKind::Instagram,
    ChannelKind::Whatsapp,
    ChannelKind::Zalo,
    ChannelKind::Telegram,
    ChannelKind::Shopee,
];

fuzz_target!(|body: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    for channel in CHANNELS {
        // Stored settings that are not ours (a migration, a hand edit) are read without a panic.
        let _ = settings::check(channel, None, Some(&v));
        let _ = settings::check(channel, Some(v.clone()), Some(&v));

        match settings::check(channel, Some(v.clone()), None) {
            Ok(out) => {
                // Accepted settings are an object that validates again, unchanged, whether sent
                // again as a new inbox or kept as they are.
                assert!(out.is_object());
                assert_eq!(
                    settings::check(channel, Some(out.clone()), None).as_ref(),
                    Ok(&out)
                );
                assert_eq!(
                    settings::check(channel, None, Some(&out)).as_ref(),
                    Ok(&out)
                );
                // Only keys that were given or defaulted, and the routing key is there.
                if let Some(key) = settings::account_key(channel) {
                    assert!(
                        out[key].as_str().is_some_and(|a| !a.is_empty()),
                        "{channel}: {out}"
                    );
                }
                // The API's view never holds a secret, and says which are set.
                let public = settings::public_settings(channel, &out);
                for k in settings::secrets(channel) {
                    assert!(public.get(*k).is_none(), "{channel} shows {k}");
                    let listed = public["secrets_set"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == *k));
                    assert_eq!(listed, out.get(*k).is_some(), "{channel}: {k}");
                }
            }
            Err(SettingsError::Invalid { message, field }) => {
                assert!(message.starts_with("settings: "));
                if let Some(f) = field {
                    assert!(message.contains(&format!("`{f}`")), "{message} / {f}");
                }
            }
            // Nothing was stored: an internal error is impossible here.
            Err(SettingsError::Internal) => {
                panic!("internal error for {channel} without previous settings")
            }
        }
    }
});
