//! An inbox's routing rules as `PUT /inboxes/{id}/routing` takes them
//! (`switchboard_core::routing::RoutingRules::from_json`), and the business-hours answers they give.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::Timestamp;
use switchboard_core::business_hours::local_time;
use switchboard_core::routing::RoutingRules;

/// ±30,000 years around 1970, in ms: every clock we can meet, with room to spare.
const MAX_MS: i64 = 1_000_000_000_000_000;
const DAY_MS: i64 = 86_400_000;

fuzz_target!(|body: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let Ok(rules) = RoutingRules::from_json(&v) else {
        return;
    };
    // What we store and show validates again, to the same rules, and shows the same.
    let shown = rules.to_json();
    let again = RoutingRules::from_json(&shown);
    assert_eq!(again.as_ref(), Ok(&rules), "{shown}");
    assert_eq!(again.map(|r| r.to_json()).ok(), Some(shown));

    // Business hours answer for any moment; a holiday is closed all day, in the inbox's own time.
    let seed = body
        .iter()
        .fold(0i64, |h, b| h.wrapping_mul(31).wrapping_add(i64::from(*b)));
    for now in [0, 1_767_225_600_000, seed % MAX_MS, -(seed % MAX_MS)] {
        let now = Timestamp(now);
        let _ = rules.outside_hours(now);
        let _ = rules.routing_paused(now);
        let _ = rules.outside_hours_reply(now);
    }
    if let Some(bh) = &rules.business_hours {
        for h in &bh.holidays {
            let local_noon = h.days_since_epoch() * DAY_MS + DAY_MS / 2;
            let now = Timestamp(local_noon - i64::from(bh.utc_offset_minutes) * 60_000);
            assert_eq!(local_time(now, bh.utc_offset_minutes).date, *h);
            assert!(rules.outside_hours(now), "open on holiday {h}");
            assert!(!bh.is_open(now));
        }
    }
});
