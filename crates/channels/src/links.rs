//! "Open in the provider's app": where a conversation's thread or customer profile lives in the
//! platform's own app, where the platform offers a link to it. Pure: the server passes what it
//! knows (the inbox's account, the customer's id and handle on the channel).
//!
//! What each platform offers (from their public docs and URL schemes; `channels.md` is silent):
//! - Messenger: Meta Business Suite's inbox of the Page (`business.facebook.com/latest/inbox`,
//!   `asset_id` = the Page). Meta documents no link to one thread.
//! - Instagram: the customer's profile `https://www.instagram.com/<username>/` when the profile API
//!   gave a username, else the Business Suite inbox of the account.
//! - WhatsApp: `https://wa.me/<number>` (the "click to chat" link, digits only, no `+`); a customer
//!   known only by a business-scoped user id (no number) has none.
//! - Telegram: `https://t.me/<username>` when the user has a public username (5–32 of
//!   `A-Z a-z 0-9 _`); a user without one cannot be linked to.
//! - Zalo: none. Zalo's `zalo.me/<id>` links name an OA or a phone number, and a follower's user id
//!   is scoped to the OA, so no public link opens a follower's thread (the OA's own chat is in OA
//!   Admin, `oa.zalo.me`, with no documented deep link).
//! - Shopee, live chat: none (Seller Centre has no documented per-conversation link).

use switchboard_core::ChannelKind;

/// A public handle as Instagram and Telegram allow them: 1–32 of `A-Z a-z 0-9 . _`, not starting
/// or ending with a dot, no two dots in a row (nothing else is ever put into a link).
pub fn is_handle(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// The link to open a conversation in the provider's app, if the platform offers one.
/// `account`: the inbox's Page or Instagram account id; `customer`: the customer's id on the
/// channel; `username`: their public handle, when known.
pub fn open_in_app(
    channel: ChannelKind,
    account: Option<&str>,
    customer: &str,
    username: Option<&str>,
) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let business_suite = || {
        account
            .filter(|a| digits(a))
            .map(|a| format!("https://business.facebook.com/latest/inbox/all?asset_id={a}"))
    };
    match channel {
        ChannelKind::Messenger => business_suite(),
        ChannelKind::Instagram => match username.filter(|u| is_handle(u) && u.len() <= 30) {
            Some(u) => Some(format!("https://www.instagram.com/{u}/")),
            None => business_suite(),
        },
        ChannelKind::Whatsapp => {
            let n = customer.trim_start_matches('+');
            (digits(n) && (6..=15).contains(&n.len())).then(|| format!("https://wa.me/{n}"))
        }
        ChannelKind::Telegram => username
            .filter(|u| is_handle(u) && u.len() >= 5 && !u.contains('.'))
            .map(|u| format!("https://t.me/{u}")),
        ChannelKind::Zalo | ChannelKind::Shopee | ChannelKind::Livechat => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChannelKind::*;

    /// (channel, account, customer, username) → the link.
    type Case = (
        ChannelKind,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
        Option<String>,
    );

    #[test]
    fn each_platform_links_where_it_offers_a_link() {
        let bs = Some("https://business.facebook.com/latest/inbox/all?asset_id=111".to_owned());
        let cases: &[Case] = &[
            (Messenger, Some("111"), "psid", None, bs.clone()),
            (Messenger, None, "psid", None, None),
            (Messenger, Some("111&x=<script>"), "psid", None, None),
            (
                Instagram,
                Some("111"),
                "igsid",
                Some("ha.nguyen_"),
                Some("https://www.instagram.com/ha.nguyen_/".into()),
            ),
            (Instagram, Some("111"), "igsid", None, bs.clone()),
            (
                Instagram,
                Some("111"),
                "igsid",
                Some("../admin"),
                bs.clone(),
            ),
            (
                Whatsapp,
                None,
                "84912345678",
                None,
                Some("https://wa.me/84912345678".into()),
            ),
            (
                Whatsapp,
                None,
                "+16505551234",
                None,
                Some("https://wa.me/16505551234".into()),
            ),
            (Whatsapp, None, "US.13491208655302741918", None, None),
            (Whatsapp, None, "12345", None, None),
            (
                Telegram,
                None,
                "1111111",
                Some("an_le"),
                Some("https://t.me/an_le".into()),
            ),
            (Telegram, None, "1111111", None, None),
            (Telegram, None, "1111111", Some("an"), None),
            (Telegram, None, "1111111", Some("an.le"), None),
            (Telegram, None, "1111111", Some("an_le/../x"), None),
            (Zalo, Some("OA"), "246845883529197922", None, None),
            (Shopee, None, "456", Some("buyer"), None),
            (Livechat, None, "visitor", None, None),
        ];
        for (channel, account, customer, username, want) in cases {
            assert_eq!(
                &open_in_app(*channel, *account, customer, *username),
                want,
                "{channel:?} {account:?} {customer} {username:?}"
            );
        }
    }

    #[test]
    fn handles_are_plain() {
        for ok in ["an", "an_le", "ha.nguyen", "A1_b"] {
            assert!(is_handle(ok), "{ok}");
        }
        for bad in [
            "",
            ".an",
            "an.",
            "a..b",
            "a/b",
            "a b",
            "ạn",
            "javascript:x",
            &"a".repeat(33),
        ] {
            assert!(!is_handle(bad), "{bad}");
        }
    }
}
