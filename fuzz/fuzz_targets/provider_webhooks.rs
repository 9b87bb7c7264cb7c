//! Every provider of the registry (`switchboard_channels::provider`) on the same body: the
//! claims read before verifying, then the parse into channel-neutral events as if every claimed
//! account were one of ours. Properties: the bounded read never claims more than asked; every
//! event is for an inbox that verified; a body whose claims are read in full names every account
//! its events are for; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::provider::{Claim, Claims, Verified, WebhookRequest};
use switchboard_channels::registry;
use switchboard_core::{ChannelKind, Inbox, InboxId, Timestamp, WorkspaceId};

fn inbox(n: u128, channel: ChannelKind) -> Inbox {
    Inbox {
        id: InboxId(uuid::Uuid::from_u128(n)),
        workspace_id: WorkspaceId(uuid::Uuid::from_u128(0)),
        name: format!("inbox {n}"),
        channel,
        settings: serde_json::json!({"page_id": "P", "ig_account_id": "P", "shop_id": "S"}),
        created_at: Timestamp(0),
    }
}

fuzz_target!(|body: &[u8]| {
    let path_inbox = InboxId(uuid::Uuid::from_u128(7));
    for p in registry() {
        let req = WebhookRequest {
            body,
            headers: Vec::new(),
            inbox: Some(path_inbox),
            public_url: "https://switchboard.example",
        };
        if let Claims::Named(few) = p.claims(&req, 3) {
            assert!(few.len() <= 3 * p.channels().len(), "{}: {} claims", p.name(), few.len());
        }
        // (A body that cannot be read names no account: it is checked against every inbox.)
        let Claims::Named(all) = p.claims(&req, usize::MAX) else {
            continue;
        };
        let mut verified = Verified::default();
        let channel = p.channels()[0];
        for (n, c) in all.iter().enumerate() {
            let ch = match c {
                Claim::Account(ch, _) => *ch,
                _ => channel,
            };
            let id = match c {
                Claim::Inbox(i) => i.0.as_u128(),
                _ => 100 + n as u128,
            };
            verified.add(c.clone(), inbox(id, ch));
        }
        // The path the server takes: parsed, with plausible times, in provider time order.
        let Ok(arrivals) =
            switchboard_channels::provider::arrivals(p, &req, &verified, Timestamp(1_700_000_000_000))
        else {
            continue;
        };
        for a in &arrivals {
            assert!(
                verified.by_id(a.inbox).is_some(),
                "{}: an event for an inbox that did not verify",
                p.name()
            );
            // No time a provider wrote survives implausible (1970, far ahead of our clock).
            let now = Timestamp(1_700_000_000_000);
            assert_eq!(switchboard_core::ingest::plausible_time(a.at, now), a.at);
        }
        let _ = p.ack(&arrivals);
    }
});
