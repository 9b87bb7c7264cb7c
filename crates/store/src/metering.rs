//! WhatsApp cost metering in batches, planned in memory: dialect-free, shared by the SQLite and
//! PostgreSQL stores (as `core::ingest::batch` is for ingest). A backend reads what a batch needs with a
//! fixed number of statements — the events metered before, the customers' recent charges, the
//! month's free-tier counters — this module decides every event in order through
//! `core::billing::meter` (later events see the charges of earlier ones, exactly as one
//! transaction per event would), and the backend writes the new rows and counter increments with
//! one statement each.
//!
//! Why counters: the free tier depends on how many service conversations (per business) and
//! service messages (per number) the month has used. Counting them with `COUNT(*)` over the
//! month's rows made every event cost as much as the month had rows so far — O(n²) over a month of
//! a busy number. `whatsapp_usage_counts` keeps the two numbers, moved in the same transaction as
//! the rows they count.

use crate::MeterEvent;
use std::collections::HashMap;
use switchboard_core::Timestamp;
use switchboard_core::billing::{self, Charge, ChargeKind, MonthUsage, Tariff, Traffic, UserState};
use uuid::Uuid;

/// How far back a customer's rows can still matter (the longest window is the 72 h entry point,
/// opened up to 24 h after the ad message).
pub(crate) const STATE_HORIZON_MS: i64 = 8 * 24 * 3_600_000;

/// The counter of service conversations of a business (`business:<waba id>`).
pub(crate) fn business_scope(business: &str) -> String {
    format!("business:{business}")
}

/// The counter of service messages of a number (`inbox:<inbox id>`).
pub(crate) fn inbox_scope(inbox: &str) -> String {
    format!("inbox:{inbox}")
}

pub(crate) fn traffic_at(t: &Traffic) -> Timestamp {
    match t {
        Traffic::Customer { at, .. } | Traffic::Delivered { at, .. } => *at,
    }
}

/// The customer's meter state as of `at`, from their charges (oldest first).
pub(crate) fn user_state(rows: &[Charge], at: Timestamp) -> UserState {
    let mut s = UserState::default();
    let since = at.millis() - STATE_HORIZON_MS;
    for c in rows.iter().filter(|c| c.at <= at && c.at.millis() >= since) {
        match c.kind {
            ChargeKind::WindowOpened => {
                s.last_inbound_at = Some(s.last_inbound_at.map_or(c.at, |l| l.max(c.at)));
                if c.entry_point {
                    s.entry_point_inbound_at =
                        Some(s.entry_point_inbound_at.map_or(c.at, |l| l.max(c.at)));
                }
            }
            ChargeKind::EntryPointOpened if s.entry_point_opened_at.is_none_or(|o| c.at >= o) => {
                s.entry_point_opened_at = Some(c.at);
                s.entry_point_until = c.until;
            }
            ChargeKind::ConversationOpened if c.until.is_some_and(|u| u >= at) => {
                if let Some(u) = c.until {
                    s.open.push((c.category, u));
                }
            }
            _ => {}
        }
    }
    s
}

/// What a backend must read for a batch.
pub(crate) struct Lookups {
    /// (inbox, event key): events that may have been metered before.
    pub keys: Vec<(String, String)>,
    /// (business, user, since): each customer's charges from `since` on.
    pub users: Vec<(String, String, i64)>,
    /// (scope, month): the free-tier counters.
    pub counters: Vec<(String, String)>,
}

pub(crate) fn lookups(events: &[MeterEvent]) -> Lookups {
    let mut users: HashMap<(String, String), i64> = HashMap::new();
    let mut counters = Vec::new();
    for e in events {
        let at = traffic_at(&e.traffic).millis();
        let since = users
            .entry((e.business_id.clone(), e.user_id.clone()))
            .or_insert(at);
        *since = (*since).min(at);
        let month = billing::month_of(traffic_at(&e.traffic));
        counters.push((business_scope(&e.business_id), month.clone()));
        counters.push((inbox_scope(&e.inbox_id.to_string()), month));
    }
    counters.sort();
    counters.dedup();
    let mut users: Vec<_> = users
        .into_iter()
        .map(|((b, u), at)| (b, u, at - STATE_HORIZON_MS))
        .collect();
    users.sort();
    Lookups {
        keys: events
            .iter()
            .map(|e| (e.inbox_id.to_string(), e.event_key.clone()))
            .collect(),
        users,
        counters,
    }
}

/// What the backend read.
#[derive(Default)]
pub(crate) struct Known {
    /// Charges of events metered before, by (inbox, event key).
    pub stored: HashMap<(String, String), Charge>,
    /// Each customer's charges by (business, user), in any order.
    pub recent: HashMap<(String, String), Vec<Charge>>,
    /// Counter values by (scope, month); a missing counter is 0.
    pub counters: HashMap<(String, String), i64>,
}

/// A `whatsapp_usage` row to insert.
pub(crate) struct UsageRow {
    pub id: Uuid,
    pub inbox_id: String,
    pub business_id: String,
    pub user_id: String,
    pub event_key: String,
    pub message_id: Option<String>,
    pub month: String,
    pub charge: Charge,
    pub provider_pricing: Option<String>,
}

pub(crate) struct Plan {
    /// One per event, in order.
    pub charges: Vec<Charge>,
    pub rows: Vec<UsageRow>,
    /// (scope, month, increment) for the counters.
    pub increments: Vec<(String, String, i64)>,
}

/// Decides every event in order: an event metered before (or earlier in the batch) gets its
/// stored charge; a new one is metered on the customer's charges and the counters as they stand
/// after the events before it.
pub(crate) fn plan(events: &[MeterEvent], mut known: Known, tariff: &Tariff) -> Plan {
    for rows in known.recent.values_mut() {
        rows.sort_by_key(|c| c.at);
    }
    let mut charges = Vec::with_capacity(events.len());
    let mut rows = Vec::new();
    let mut increments: HashMap<(String, String), i64> = HashMap::new();
    for e in events {
        let key = (e.inbox_id.to_string(), e.event_key.clone());
        if let Some(c) = known.stored.get(&key) {
            charges.push(c.clone());
            continue;
        }
        let at = traffic_at(&e.traffic);
        let month = billing::month_of(at);
        let user = (e.business_id.clone(), e.user_id.clone());
        let recent = known.recent.entry(user).or_default();
        let state = user_state(recent, at);
        let business = (business_scope(&e.business_id), month.clone());
        let inbox = (inbox_scope(&key.0), month.clone());
        let count = |k: &(String, String)| {
            u32::try_from(known.counters.get(k).copied().unwrap_or(0)).unwrap_or(u32::MAX)
        };
        let usage = MonthUsage {
            service_conversations: count(&business),
            service_messages: count(&inbox),
        };
        let (charge, _) = billing::meter(tariff, &state, usage, &e.market, e.traffic);
        let counted = if charge.uses_service_conversation_tier() {
            Some(business)
        } else if charge.uses_service_message_allowance() {
            Some(inbox)
        } else {
            None
        };
        if let Some(k) = counted {
            *known.counters.entry(k.clone()).or_default() += 1;
            *increments.entry(k).or_default() += 1;
        }
        // Later events of this customer see it (kept in time order, ties in arrival order).
        let pos = recent.partition_point(|c| c.at <= charge.at);
        recent.insert(pos, charge.clone());
        known.stored.insert(key.clone(), charge.clone());
        rows.push(UsageRow {
            id: Uuid::now_v7(),
            inbox_id: key.0,
            business_id: e.business_id.clone(),
            user_id: e.user_id.clone(),
            event_key: key.1,
            message_id: e.message_id.map(|m| m.to_string()),
            month,
            charge: charge.clone(),
            provider_pricing: e
                .provider_pricing
                .as_ref()
                .map(|p| serde_json::to_string(p).unwrap_or_else(|_| "null".into())),
        });
        charges.push(charge);
    }
    let mut increments: Vec<_> = increments
        .into_iter()
        .map(|((scope, month), n)| (scope, month, n))
        .collect();
    increments.sort();
    Plan {
        charges,
        rows,
        increments,
    }
}
