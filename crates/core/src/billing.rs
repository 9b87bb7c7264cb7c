//! WhatsApp cost metering (channels.md §3.5): which pricing model applies on a date, what a
//! customer message or a delivered business message opens or costs, and a month's usage report.
//!
//! Pure and table-driven. The pricing *rules* are dated rows ([`ERAS`]); the *prices* per
//! category and market are configuration (a [`Tariff`]). Every function takes the event's time;
//! state (open conversations, the customer-service window, the free entry point, the month's free
//! tier) is an argument, so the same [`meter`] runs in the server (state read from the store in
//! the writing transaction) and in [`Meter`], the in-memory simulation the tests script.
//!
//! Conventions: windows and conversations include their last millisecond (a message exactly 24 h
//! after the customer's is inside the window, as in `core::policy`); months are UTC calendar
//! months; money is integer millionths of the tariff's currency.

use crate::business_hours::Date;
use crate::model::str_enum;
use crate::policy::{DAY_MS, HOUR_MS};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

str_enum!(
    /// A pricing category: the three template categories, and `service` (non-template messages,
    /// user-initiated conversations).
    Category {
        Marketing = "marketing",
        Utility = "utility",
        Authentication = "authentication",
        Service = "service",
    }
);

impl Category {
    /// A template's category as the Graph API spells it (`MARKETING`, ...). `service` is a
    /// pricing category, never a template category.
    pub fn of_template(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "marketing" => Some(Self::Marketing),
            "utility" => Some(Self::Utility),
            "authentication" => Some(Self::Authentication),
            _ => None,
        }
    }
}

str_enum!(PricingModel {
    ConversationBased = "conversation_based",
    PerMessage = "per_message",
});

str_enum!(
    /// What one event did.
    ChargeKind {
        // A customer's message opened (or renewed) the 24 h customer-service window. No cost.
        WindowOpened = "window_opened",
        // Conversation-based: the message opened a 24 h conversation of its category.
        ConversationOpened = "conversation_opened",
        // Conversation-based: the message went into a conversation already open. No cost.
        InConversation = "in_conversation",
        // The business's reply to an ad / call-to-action message opened the 72 h free entry point.
        EntryPointOpened = "entry_point_opened",
        // A message inside an open free entry point. No cost.
        InEntryPoint = "in_entry_point",
        // Per-message: one delivered message, charged or free.
        Message = "message",
    }
);

str_enum!(
    /// Why something billable-looking cost nothing.
    FreeReason {
        // Within the month's free allowance (1,000 service conversations per business until
        // 2024-10-31; a configurable [U] allowance of service messages from 2026-10-01).
        FreeTier = "free_tier",
        // Conversation-based, from 2024-11-01: service conversations are free.
        ServiceFree = "service_free",
        // Inside (or opening) a free entry point.
        EntryPoint = "free_entry_point",
        // Per-message, until 2026-09-30: non-template messages in the window are free.
        CustomerService = "free_customer_service",
        // Per-message, until 2026-09-30: a utility template inside an open window is free.
        UtilityInWindow = "utility_in_window",
        // Conversation-based: inside an open conversation.
        InConversation = "in_conversation",
    }
);

/// The customer-service window (channels.md §3.3).
pub const WINDOW_MS: i64 = DAY_MS;
/// A conversation-based conversation lasts this long from the message that opened it.
pub const CONVERSATION_MS: i64 = DAY_MS;
/// The business must answer an ad / CTA message within this long for the free entry point.
pub const ENTRY_POINT_REPLY_MS: i64 = DAY_MS;
/// The free entry point window, from that answer.
pub const ENTRY_POINT_MS: i64 = 72 * HOUR_MS;

/// 2024-11-01T00:00:00Z: service conversations free and unlimited (the 1,000/month tier ends).
pub const SERVICE_FREE_FROM: Timestamp = Timestamp(1_730_419_200_000);
/// 2025-07-01T00:00:00Z: per-message pricing.
pub const PER_MESSAGE_FROM: Timestamp = Timestamp(1_751_328_000_000);
/// 2026-10-01T00:00:00Z: service messages and in-window utility templates are charged [R].
pub const SERVICE_CHARGED_FROM: Timestamp = Timestamp(1_790_812_800_000);

/// The pricing rules in force over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub model: PricingModel,
    /// Conversation-based: free service conversations per UTC month per business account.
    pub free_service_conversations_per_month: u32,
    /// Service conversations (conversation-based) / non-template messages (per-message) are free.
    pub service_free: bool,
    /// Per-message: a utility template delivered inside an open customer-service window is free.
    pub utility_in_window_free: bool,
    /// The rate a charged service conversation / message uses.
    pub service_rate: Category,
    /// Free service messages per phone number per month. [U] from 2026-10-01: reported by
    /// several BSPs, absent from Meta's announcement; 0 here, set by [`Tariff`] configuration.
    pub free_service_messages_per_month: u32,
}

impl Era {
    pub fn in_effect(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|f| at >= f) && self.until.is_none_or(|u| at < u)
    }
}

/// channels.md §3.5, in date order. The conversation-based rows are modelled as they stood from
/// 2023-06-01 (four categories, service conversations user-initiated); earlier dates use them too.
pub const ERAS: &[Era] = &[
    Era {
        from: None,
        until: Some(SERVICE_FREE_FROM),
        model: PricingModel::ConversationBased,
        free_service_conversations_per_month: 1_000,
        service_free: false,
        utility_in_window_free: false,
        service_rate: Category::Service,
        free_service_messages_per_month: 0,
    },
    Era {
        from: Some(SERVICE_FREE_FROM),
        until: Some(PER_MESSAGE_FROM),
        model: PricingModel::ConversationBased,
        free_service_conversations_per_month: 0,
        service_free: true,
        utility_in_window_free: false,
        service_rate: Category::Service,
        free_service_messages_per_month: 0,
    },
    Era {
        from: Some(PER_MESSAGE_FROM),
        until: Some(SERVICE_CHARGED_FROM),
        model: PricingModel::PerMessage,
        free_service_conversations_per_month: 0,
        service_free: true,
        utility_in_window_free: true,
        service_rate: Category::Utility,
        free_service_messages_per_month: 0,
    },
    Era {
        from: Some(SERVICE_CHARGED_FROM),
        until: None,
        model: PricingModel::PerMessage,
        free_service_conversations_per_month: 0,
        service_free: false,
        utility_in_window_free: false,
        service_rate: Category::Utility,
        free_service_messages_per_month: 0,
    },
];

/// One configured price: per conversation (conversation-based) or per message (per-message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// ISO 3166 country code (`VN`, `US`, ...) or `*` for every market without its own rate.
    pub market: String,
    pub category: Category,
    /// Only for this model; `None`: both.
    pub model: Option<PricingModel>,
    /// Valid from (Meta changes rates on the first day of a quarter); `None`: always.
    pub from: Option<Timestamp>,
    /// Millionths of the tariff's currency.
    pub micros: i64,
}

/// Prices and the configurable uncertain facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tariff {
    pub currency: String,
    pub rates: Vec<Rate>,
    /// [U] free service messages per phone number per month from 2026-10-01 (0 = none).
    pub free_service_messages_per_month_from_2026_10: u32,
}

impl Tariff {
    /// The rules in force at `at`, with the configured uncertain values applied.
    pub fn era(&self, at: Timestamp) -> Era {
        let mut e = ERAS
            .iter()
            .copied()
            .find(|e| e.in_effect(at))
            .unwrap_or(ERAS[0]);
        if e.from == Some(SERVICE_CHARGED_FROM) {
            e.free_service_messages_per_month = self.free_service_messages_per_month_from_2026_10;
        }
        e
    }

    /// The price of one conversation / message: the market's own rate, else `*`; the latest
    /// `from` not after `at` wins.
    pub fn price(
        &self,
        market: &str,
        category: Category,
        model: PricingModel,
        at: Timestamp,
    ) -> Option<i64> {
        let pick = |m: &str| {
            self.rates
                .iter()
                .filter(|r| {
                    r.market.eq_ignore_ascii_case(m)
                        && r.category == category
                        && r.model.is_none_or(|x| x == model)
                        && r.from.is_none_or(|f| f <= at)
                })
                .max_by_key(|r| r.from.unwrap_or(Timestamp(i64::MIN)))
                .map(|r| r.micros)
        };
        pick(market).or_else(|| pick("*"))
    }
}

/// Country calling codes of the markets most relevant here (longest prefix wins). `1` is the
/// North American numbering plan, priced by Meta as one market.
const CALLING_CODES: &[(&str, &str)] = &[
    ("1", "US"),
    ("7", "RU"),
    ("20", "EG"),
    ("27", "ZA"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("36", "HU"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("51", "PE"),
    ("52", "MX"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("86", "CN"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("94", "LK"),
    ("95", "MM"),
    ("212", "MA"),
    ("234", "NG"),
    ("254", "KE"),
    ("351", "PT"),
    ("353", "IE"),
    ("358", "FI"),
    ("852", "HK"),
    ("853", "MO"),
    ("855", "KH"),
    ("856", "LA"),
    ("880", "BD"),
    ("886", "TW"),
    ("966", "SA"),
    ("971", "AE"),
    ("972", "IL"),
    ("974", "QA"),
];

/// The market a customer is priced in: from the phone number (`wa_id`) by calling code, or the
/// country prefix of a business-scoped user id (`CC.<digits>`); `*` when unknown.
pub fn market_of(user_id: &str) -> String {
    if let Some((cc, rest)) = user_id.split_once('.')
        && cc.len() == 2
        && cc.chars().all(|c| c.is_ascii_alphabetic())
        && !rest.is_empty()
    {
        return cc.to_ascii_uppercase();
    }
    let digits = user_id.trim_start_matches('+');
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return "*".into();
    }
    CALLING_CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map_or_else(|| "*".into(), |(_, m)| (*m).to_owned())
}

/// `YYYY-MM` (UTC) of a time.
pub fn month_of(at: Timestamp) -> String {
    let d = Date::from_days_since_epoch(at.millis().div_euclid(DAY_MS));
    format!("{:04}-{:02}", d.year, d.month)
}

/// Money in micro-units as a decimal string with six places ("0.135000"): the API shows amounts
/// this way so no client rounds through a float.
pub fn decimal(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// `[start, end)` of a `YYYY-MM` month (UTC), or `None` if it is not one.
pub fn month_bounds(month: &str) -> Option<(Timestamp, Timestamp)> {
    let first = Date::parse(&format!("{month}-01"))?;
    if month.len() != 7 {
        return None;
    }
    let (y, m) = if first.month == 12 {
        (first.year + 1, 1)
    } else {
        (first.year, first.month + 1)
    };
    let next = Date {
        year: y,
        month: m,
        day: 1,
    };
    Some((
        Timestamp(first.days_since_epoch() * DAY_MS),
        Timestamp(next.days_since_epoch() * DAY_MS),
    ))
}

/// What the meter knows about one customer of one business.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserState {
    /// The customer's last message (opens the customer-service window).
    pub last_inbound_at: Option<Timestamp>,
    /// Their last message that came through a Click-to-WhatsApp ad or a Page call-to-action.
    pub entry_point_inbound_at: Option<Timestamp>,
    /// When the last free entry point was opened, and until when it lasts.
    pub entry_point_opened_at: Option<Timestamp>,
    pub entry_point_until: Option<Timestamp>,
    /// Conversation-based: open conversations and their ends.
    pub open: Vec<(Category, Timestamp)>,
}

/// This month's use of the free allowances before the event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthUsage {
    /// Service conversations that counted against the monthly free tier (per business account).
    pub service_conversations: u32,
    /// Service messages that counted against the monthly allowance (per phone number).
    pub service_messages: u32,
}

/// An event to meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// The customer wrote (any message type). `entry_point`: through an ad or a Page CTA (the
    /// message carries a `referral`).
    Customer { at: Timestamp, entry_point: bool },
    /// A business message was delivered; `template`: its template category, `None` for free-form.
    Delivered {
        at: Timestamp,
        template: Option<Category>,
    },
}

/// What one event opened or cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    pub at: Timestamp,
    pub model: PricingModel,
    pub kind: ChargeKind,
    pub category: Category,
    pub billable: bool,
    pub free_reason: Option<FreeReason>,
    /// The end of what this event opened (window, conversation, entry point).
    pub until: Option<Timestamp>,
    pub market: String,
    /// Millionths of the tariff's currency; 0 when free or unpriced.
    pub cost_micros: i64,
    /// Billable, but no rate is configured for its market and category.
    pub unpriced: bool,
    /// The customer's message came through an ad or a call-to-action.
    pub entry_point: bool,
}

impl Charge {
    /// Counts against the monthly free tier of service conversations.
    pub fn uses_service_conversation_tier(&self) -> bool {
        self.kind == ChargeKind::ConversationOpened
            && self.category == Category::Service
            && matches!(self.free_reason, None | Some(FreeReason::FreeTier))
    }
    /// Counts against the monthly allowance of service messages.
    pub fn uses_service_message_allowance(&self) -> bool {
        self.kind == ChargeKind::Message
            && self.category == Category::Service
            && matches!(self.free_reason, None | Some(FreeReason::FreeTier))
    }
}

fn within(start: Option<Timestamp>, len: i64, at: Timestamp) -> bool {
    start.is_some_and(|s| at >= s && at.millis() - s.millis() <= len)
}

/// Meters one event for one customer: the charge it makes and the customer's state after it.
pub fn meter(
    t: &Tariff,
    s: &UserState,
    month: MonthUsage,
    market: &str,
    ev: Traffic,
) -> (Charge, UserState) {
    let mut next = s.clone();
    let (at, template) = match ev {
        Traffic::Customer { at, entry_point } => {
            next.last_inbound_at = Some(s.last_inbound_at.map_or(at, |l| l.max(at)));
            if entry_point {
                next.entry_point_inbound_at = Some(at);
            }
            let charge = Charge {
                at,
                model: t.era(at).model,
                kind: ChargeKind::WindowOpened,
                category: Category::Service,
                billable: false,
                free_reason: None,
                until: Some(at.plus_millis(WINDOW_MS)),
                market: market.to_owned(),
                cost_micros: 0,
                unpriced: false,
                entry_point,
            };
            return (charge, next);
        }
        Traffic::Delivered { at, template } => (at, template),
    };
    let era = t.era(at);
    let category = template.unwrap_or(Category::Service);
    let free = |kind, reason, until| Charge {
        at,
        model: era.model,
        kind,
        category,
        billable: false,
        free_reason: Some(reason),
        until,
        market: market.to_owned(),
        cost_micros: 0,
        unpriced: false,
        entry_point: false,
    };
    let billed = |kind, rate: Category, until| {
        let price = t.price(market, rate, era.model, at);
        Charge {
            at,
            model: era.model,
            kind,
            category,
            billable: true,
            free_reason: None,
            until,
            market: market.to_owned(),
            cost_micros: price.unwrap_or(0),
            unpriced: price.is_none(),
            entry_point: false,
        }
    };

    // The free entry point comes first in every model: everything in it is free (§3.3, §3.5).
    if s.entry_point_until.is_some_and(|u| at <= u)
        && s.entry_point_opened_at.is_some_and(|o| at >= o)
    {
        return (
            free(ChargeKind::InEntryPoint, FreeReason::EntryPoint, None),
            next,
        );
    }
    if let Some(ad) = s.entry_point_inbound_at
        && within(Some(ad), ENTRY_POINT_REPLY_MS, at)
        && s.entry_point_opened_at.is_none_or(|o| o < ad)
    {
        let until = at.plus_millis(ENTRY_POINT_MS);
        next.entry_point_opened_at = Some(at);
        next.entry_point_until = Some(until);
        return (
            free(
                ChargeKind::EntryPointOpened,
                FreeReason::EntryPoint,
                Some(until),
            ),
            next,
        );
    }

    let charge = match era.model {
        PricingModel::ConversationBased => {
            next.open.retain(|(_, until)| at <= *until);
            let open_any = !next.open.is_empty();
            let open_same = next.open.iter().any(|(c, _)| *c == category);
            let until = at.plus_millis(CONVERSATION_MS);
            if (category == Category::Service && open_any) || open_same {
                free(ChargeKind::InConversation, FreeReason::InConversation, None)
            } else {
                next.open.push((category, until));
                if category != Category::Service {
                    billed(ChargeKind::ConversationOpened, category, Some(until))
                } else if era.service_free {
                    free(
                        ChargeKind::ConversationOpened,
                        FreeReason::ServiceFree,
                        Some(until),
                    )
                } else if month.service_conversations < era.free_service_conversations_per_month {
                    free(
                        ChargeKind::ConversationOpened,
                        FreeReason::FreeTier,
                        Some(until),
                    )
                } else {
                    billed(
                        ChargeKind::ConversationOpened,
                        era.service_rate,
                        Some(until),
                    )
                }
            }
        }
        PricingModel::PerMessage => {
            let in_window = within(s.last_inbound_at, WINDOW_MS, at);
            match category {
                Category::Service if era.service_free => {
                    free(ChargeKind::Message, FreeReason::CustomerService, None)
                }
                Category::Service
                    if month.service_messages < era.free_service_messages_per_month =>
                {
                    free(ChargeKind::Message, FreeReason::FreeTier, None)
                }
                Category::Service => billed(ChargeKind::Message, era.service_rate, None),
                Category::Utility if in_window && era.utility_in_window_free => {
                    free(ChargeKind::Message, FreeReason::UtilityInWindow, None)
                }
                c => billed(ChargeKind::Message, c, None),
            }
        }
    };
    (charge, next)
}

/// The meter over many customers, in memory: what the server does with the store, for
/// simulations and tests. Free tiers count per business (conversations) and per phone number
/// (messages), per UTC month.
#[derive(Debug, Default)]
pub struct Meter {
    users: HashMap<(String, String), UserState>,
    months: HashMap<(String, String), MonthUsage>,
    numbers: HashMap<(String, String), MonthUsage>,
}

impl Meter {
    pub fn record(
        &mut self,
        t: &Tariff,
        business: &str,
        number: &str,
        user: &str,
        ev: Traffic,
    ) -> Charge {
        let at = match ev {
            Traffic::Customer { at, .. } | Traffic::Delivered { at, .. } => at,
        };
        let month = month_of(at);
        let key = (business.to_owned(), user.to_owned());
        let state = self.users.get(&key).cloned().unwrap_or_default();
        let biz = self
            .months
            .get(&(business.to_owned(), month.clone()))
            .copied()
            .unwrap_or_default();
        let num = self
            .numbers
            .get(&(number.to_owned(), month.clone()))
            .copied()
            .unwrap_or_default();
        let usage = MonthUsage {
            service_conversations: biz.service_conversations,
            service_messages: num.service_messages,
        };
        let (charge, next) = meter(t, &state, usage, &market_of(user), ev);
        self.users.insert(key, next);
        if charge.uses_service_conversation_tier() {
            self.months
                .entry((business.to_owned(), month.clone()))
                .or_default()
                .service_conversations += 1;
        }
        if charge.uses_service_message_allowance() {
            self.numbers
                .entry((number.to_owned(), month))
                .or_default()
                .service_messages += 1;
        }
        charge
    }
}

/// One category's line in a usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryUsage {
    pub category: Category,
    /// Conversation-based: conversations opened (free or billed, entry points included).
    pub conversations: u32,
    /// Per-message: messages delivered (free or billed).
    pub messages: u32,
    pub billable: u32,
    pub free: u32,
    /// Free ones by reason (`free_tier`, `service_free`, `free_entry_point`, ...).
    pub free_by_reason: BTreeMap<&'static str, u32>,
    pub cost_micros: i64,
    /// Billable ones without a configured rate.
    pub unpriced: u32,
}

/// A month's WhatsApp usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub month: String,
    pub currency: String,
    /// The pricing models in force during the month, in date order.
    pub models: Vec<PricingModel>,
    pub categories: Vec<CategoryUsage>,
    /// Customer messages that opened or renewed a customer-service window.
    pub windows_opened: u32,
    pub entry_points_opened: u32,
    pub total_cost_micros: i64,
    pub unpriced: u32,
}

/// Sums a month's charges (already metered, free tiers applied) into a report.
pub fn report(month: &str, currency: &str, charges: &[Charge]) -> UsageReport {
    let models = month_bounds(month)
        .map(|(start, end)| {
            let mut m: Vec<PricingModel> = Vec::new();
            for e in ERAS {
                let overlaps = e.from.is_none_or(|f| f < end) && e.until.is_none_or(|u| u > start);
                if overlaps && !m.contains(&e.model) {
                    m.push(e.model);
                }
            }
            m
        })
        .unwrap_or_default();
    let mut categories: Vec<CategoryUsage> = Category::ALL
        .iter()
        .map(|c| CategoryUsage {
            category: *c,
            conversations: 0,
            messages: 0,
            billable: 0,
            free: 0,
            free_by_reason: BTreeMap::new(),
            cost_micros: 0,
            unpriced: 0,
        })
        .collect();
    let mut r = UsageReport {
        month: month.to_owned(),
        currency: currency.to_owned(),
        models,
        categories: Vec::new(),
        windows_opened: 0,
        entry_points_opened: 0,
        total_cost_micros: 0,
        unpriced: 0,
    };
    for c in charges {
        match c.kind {
            ChargeKind::WindowOpened => {
                r.windows_opened += 1;
                continue;
            }
            ChargeKind::InConversation => continue,
            ChargeKind::EntryPointOpened => r.entry_points_opened += 1,
            ChargeKind::ConversationOpened | ChargeKind::InEntryPoint | ChargeKind::Message => {}
        }
        let counted = match c.model {
            PricingModel::ConversationBased => c.kind != ChargeKind::InEntryPoint,
            PricingModel::PerMessage => true,
        };
        let Some(line) = categories.iter_mut().find(|l| l.category == c.category) else {
            continue;
        };
        if !counted {
            continue;
        }
        match c.model {
            PricingModel::ConversationBased => line.conversations += 1,
            PricingModel::PerMessage => line.messages += 1,
        }
        if c.billable {
            line.billable += 1;
            line.cost_micros += c.cost_micros;
            r.total_cost_micros += c.cost_micros;
            if c.unpriced {
                line.unpriced += 1;
                r.unpriced += 1;
            }
        } else {
            line.free += 1;
            if let Some(reason) = c.free_reason {
                *line.free_by_reason.entry(reason.as_str()).or_default() += 1;
            }
        }
    }
    r.categories = categories;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_a_decimal_string_with_six_places() {
        for (micros, shown) in [
            (135_000, "0.135000"),
            (12_000_001, "12.000001"),
            (0, "0.000000"),
            (1, "0.000001"),
            (-1_400, "-0.001400"),
            (i64::MIN, "-9223372036854.775808"),
        ] {
            assert_eq!(decimal(micros), shown, "{micros}");
        }
    }

    fn day(s: &str) -> Timestamp {
        let d = Date::parse(s).unwrap_or_else(|| panic!("{s}"));
        Timestamp(d.days_since_epoch() * DAY_MS)
    }

    const VN: &str = "84901000000";
    const US: &str = "16505550000";

    /// Illustrative prices (not Meta's): per conversation before 2025-07, per message after.
    fn tariff() -> Tariff {
        let rate = |market: &str, category, model, micros| Rate {
            market: market.into(),
            category,
            model: Some(model),
            from: None,
            micros,
        };
        use Category::*;
        use PricingModel::*;
        Tariff {
            currency: "USD".into(),
            rates: vec![
                rate("*", Marketing, ConversationBased, 50_000),
                rate("*", Utility, ConversationBased, 20_000),
                rate("*", Authentication, ConversationBased, 15_000),
                rate("*", Service, ConversationBased, 10_000),
                rate("VN", Marketing, ConversationBased, 30_000),
                rate("VN", Service, ConversationBased, 5_000),
                rate("*", Marketing, PerMessage, 25_000),
                rate("*", Utility, PerMessage, 4_000),
                rate("*", Authentication, PerMessage, 3_500),
                rate("VN", Marketing, PerMessage, 14_000),
                rate("VN", Utility, PerMessage, 2_000),
            ],
            free_service_messages_per_month_from_2026_10: 0,
        }
    }

    fn user(i: usize) -> String {
        format!("{VN}{i:05}")
    }

    fn line(r: &UsageReport, c: Category) -> &CategoryUsage {
        r.categories
            .iter()
            .find(|l| l.category == c)
            .unwrap_or_else(|| panic!("{c}"))
    }

    #[test]
    fn eras_change_on_their_dates() {
        let t = tariff();
        let at = |s: &str| t.era(day(s));
        assert_eq!(at("2023-06-01").model, PricingModel::ConversationBased);
        let before = t.era(SERVICE_FREE_FROM.plus_millis(-1));
        assert_eq!(
            (
                before.free_service_conversations_per_month,
                before.service_free
            ),
            (1_000, false)
        );
        let after = at("2024-11-01");
        assert_eq!(
            (after.model, after.service_free),
            (PricingModel::ConversationBased, true)
        );
        assert_eq!(
            t.era(PER_MESSAGE_FROM.plus_millis(-1)).model,
            PricingModel::ConversationBased
        );
        let pmp = at("2025-07-01");
        assert_eq!(
            (pmp.model, pmp.service_free, pmp.utility_in_window_free),
            (PricingModel::PerMessage, true, true)
        );
        assert!(t.era(SERVICE_CHARGED_FROM.plus_millis(-1)).service_free);
        let late = at("2026-10-01");
        assert_eq!(
            (
                late.service_free,
                late.utility_in_window_free,
                late.service_rate
            ),
            (false, false, Category::Utility)
        );
        assert_eq!(day("2024-11-01"), SERVICE_FREE_FROM);
        assert_eq!(day("2025-07-01"), PER_MESSAGE_FROM);
        assert_eq!(day("2026-10-01"), SERVICE_CHARGED_FROM);
    }

    #[test]
    fn markets_months_and_rates() {
        assert_eq!(market_of("84901234567"), "VN");
        assert_eq!(market_of("16505551234"), "US");
        assert_eq!(market_of("+447700900000"), "GB");
        assert_eq!(market_of("85512345678"), "KH");
        assert_eq!(market_of("US.13491208655302741918"), "US");
        assert_eq!(market_of("vn.123"), "VN");
        assert_eq!(market_of(""), "*");
        assert_eq!(market_of("abc"), "*");
        assert_eq!(
            month_of(day("2024-10-31").plus_millis(DAY_MS - 1)),
            "2024-10"
        );
        assert_eq!(month_of(day("2024-11-01")), "2024-11");
        assert_eq!(
            month_bounds("2024-12"),
            Some((day("2024-12-01"), day("2025-01-01")))
        );
        assert_eq!(month_bounds("2024-13"), None);
        assert_eq!(month_bounds("2024-1"), None);
        let mut t = tariff();
        t.rates.push(Rate {
            market: "VN".into(),
            category: Category::Marketing,
            model: Some(PricingModel::PerMessage),
            from: Some(day("2025-10-01")),
            micros: 16_000,
        });
        let pm = PricingModel::PerMessage;
        assert_eq!(
            t.price("VN", Category::Marketing, pm, day("2025-09-30")),
            Some(14_000)
        );
        assert_eq!(
            t.price("VN", Category::Marketing, pm, day("2025-10-01")),
            Some(16_000)
        );
        assert_eq!(
            t.price("BR", Category::Marketing, pm, day("2025-10-01")),
            Some(25_000)
        );
        assert_eq!(
            t.price("BR", Category::Service, pm, day("2025-10-01")),
            None
        );
    }

    /// October 2024, conversation-based with 1,000 free service conversations: 1,003 customers
    /// write and get answers, some get templates, one came from an ad.
    #[test]
    fn conversation_based_month_with_the_1000_free_service_conversations() {
        let t = tariff();
        let mut m = Meter::default();
        let mut charges = Vec::new();
        let start = day("2024-10-01");
        let mut rec = |m: &mut Meter, u: &str, ev| {
            let c = m.record(&t, "WABA1", "PN1", u, ev);
            charges.push(c.clone());
            c
        };
        let cust = |at: Timestamp| Traffic::Customer {
            at,
            entry_point: false,
        };
        let free_form = |at: Timestamp| Traffic::Delivered { at, template: None };
        let tpl = |at: Timestamp, c| Traffic::Delivered {
            at,
            template: Some(c),
        };
        for i in 0..1_003 {
            let at = start.plus_minutes(i64::try_from(i).unwrap_or(0));
            rec(&mut m, &user(i), cust(at));
            let c = rec(&mut m, &user(i), free_form(at.plus_minutes(1)));
            assert_eq!(c.kind, ChargeKind::ConversationOpened);
            let want = if i < 1_000 {
                (false, Some(FreeReason::FreeTier))
            } else {
                (true, None)
            };
            assert_eq!((c.billable, c.free_reason), want, "customer {i}");
        }
        // More replies in the same 24 h: inside the service conversation, no cost.
        let u0 = user(0);
        let c = rec(&mut m, &u0, free_form(start.plus_hours(5)));
        assert_eq!(c.kind, ChargeKind::InConversation);
        // A marketing template while a service conversation is open: its own conversation.
        let c = rec(&mut m, &u0, tpl(start.plus_hours(6), Category::Marketing));
        assert_eq!(
            (c.kind, c.billable, c.cost_micros),
            (ChargeKind::ConversationOpened, true, 30_000)
        );
        let c = rec(&mut m, &u0, tpl(start.plus_hours(8), Category::Marketing));
        assert_eq!(c.kind, ChargeKind::InConversation);
        // Exactly 24 h after opening: still the same conversation; 1 ms later: a new one.
        let opened = start.plus_hours(6);
        let c = rec(&mut m, &u0, tpl(opened.plus_hours(24), Category::Marketing));
        assert_eq!(c.kind, ChargeKind::InConversation);
        let c = rec(
            &mut m,
            &u0,
            tpl(opened.plus_hours(24).plus_millis(1), Category::Marketing),
        );
        assert_eq!((c.kind, c.billable), (ChargeKind::ConversationOpened, true));
        // A US customer gets a utility template (no window needed for templates), then writes;
        // the free-form answer sits in the open utility conversation.
        let c = rec(&mut m, US, tpl(start.plus_days(3), Category::Utility));
        assert_eq!((c.cost_micros, c.market.as_str()), (20_000, "US"));
        rec(&mut m, US, cust(start.plus_days(3).plus_hours(1)));
        let c = rec(&mut m, US, free_form(start.plus_days(3).plus_hours(2)));
        assert_eq!(c.kind, ChargeKind::InConversation);
        // Two days later the US customer writes again: a new service conversation, past the free
        // tier, priced at the default service rate.
        rec(&mut m, US, cust(start.plus_days(5)));
        let c = rec(&mut m, US, free_form(start.plus_days(5).plus_minutes(3)));
        assert_eq!((c.billable, c.cost_micros), (true, 10_000));
        // An ad customer: the answer within 24 h opens 72 h in which everything is free.
        let ad = "84909999999";
        rec(
            &mut m,
            ad,
            Traffic::Customer {
                at: start.plus_days(10),
                entry_point: true,
            },
        );
        let c = rec(&mut m, ad, free_form(start.plus_days(10).plus_hours(23)));
        assert_eq!(
            (c.kind, c.free_reason),
            (ChargeKind::EntryPointOpened, Some(FreeReason::EntryPoint))
        );
        let fep_until = start.plus_days(10).plus_hours(23 + 72);
        let c = rec(&mut m, ad, tpl(fep_until, Category::Marketing));
        assert_eq!((c.kind, c.billable), (ChargeKind::InEntryPoint, false));
        let c = rec(
            &mut m,
            ad,
            tpl(fep_until.plus_millis(1), Category::Marketing),
        );
        assert_eq!((c.kind, c.billable), (ChargeKind::ConversationOpened, true));

        let r = report("2024-10", "USD", &charges);
        assert_eq!(r.models, vec![PricingModel::ConversationBased]);
        let s = line(&r, Category::Service);
        // 1,003 answered customers + the US customer's second visit (+ the ad entry point).
        assert_eq!((s.conversations, s.free, s.billable), (1_005, 1_001, 4));
        assert_eq!(s.free_by_reason.get("free_tier"), Some(&1_000));
        assert_eq!(s.free_by_reason.get("free_entry_point"), Some(&1));
        assert_eq!(s.cost_micros, 3 * 5_000 + 10_000);
        let mk = line(&r, Category::Marketing);
        assert_eq!((mk.conversations, mk.billable), (3, 3));
        assert_eq!(mk.cost_micros, 3 * 30_000);
        assert_eq!(line(&r, Category::Utility).cost_micros, 20_000);
        assert_eq!(r.windows_opened, 1_003 + 2 + 1);
        assert_eq!(r.entry_points_opened, 1);
        assert_eq!(r.total_cost_micros, 25_000 + 90_000 + 20_000);
        assert_eq!(r.unpriced, 0);
    }

    /// The same first week in November 2024: service conversations are free, templates are not.
    #[test]
    fn conversation_based_after_2024_11_01_service_is_free() {
        let t = tariff();
        let mut m = Meter::default();
        let start = day("2024-11-01");
        let mut charges = Vec::new();
        for i in 0..1_200 {
            let at = start.plus_minutes(i64::try_from(i).unwrap_or(0));
            charges.push(m.record(
                &t,
                "WABA1",
                "PN1",
                &user(i),
                Traffic::Customer {
                    at,
                    entry_point: false,
                },
            ));
            charges.push(m.record(
                &t,
                "WABA1",
                "PN1",
                &user(i),
                Traffic::Delivered {
                    at: at.plus_minutes(1),
                    template: None,
                },
            ));
        }
        charges.push(m.record(
            &t,
            "WABA1",
            "PN1",
            US,
            Traffic::Delivered {
                at: start.plus_days(2),
                template: Some(Category::Authentication),
            },
        ));
        let r = report("2024-11", "USD", &charges);
        let s = line(&r, Category::Service);
        assert_eq!((s.conversations, s.free, s.billable), (1_200, 1_200, 0));
        assert_eq!(s.free_by_reason.get("service_free"), Some(&1_200));
        assert_eq!(line(&r, Category::Authentication).cost_micros, 15_000);
        assert_eq!(r.total_cost_micros, 15_000);
    }

    /// August 2025, per-message: templates charged by category and market, utility templates
    /// inside the window free, free-form free, the free entry point free.
    #[test]
    fn per_message_month() {
        let t = tariff();
        let mut m = Meter::default();
        let start = day("2025-08-01");
        let mut charges = Vec::new();
        let mut rec = |u: &str, ev| {
            let c = m.record(&t, "WABA1", "PN1", u, ev);
            charges.push(c.clone());
            c
        };
        let vn = user(1);
        rec(
            &vn,
            Traffic::Customer {
                at: start,
                entry_point: false,
            },
        );
        for h in [1, 2, 3] {
            let c = rec(
                &vn,
                Traffic::Delivered {
                    at: start.plus_hours(h),
                    template: None,
                },
            );
            assert_eq!(
                (c.kind, c.free_reason),
                (ChargeKind::Message, Some(FreeReason::CustomerService))
            );
        }
        // Utility inside the window (exactly 24 h) is free; 1 ms later it is charged.
        let c = rec(
            &vn,
            Traffic::Delivered {
                at: start.plus_hours(24),
                template: Some(Category::Utility),
            },
        );
        assert_eq!(c.free_reason, Some(FreeReason::UtilityInWindow));
        let c = rec(
            &vn,
            Traffic::Delivered {
                at: start.plus_hours(24).plus_millis(1),
                template: Some(Category::Utility),
            },
        );
        assert_eq!((c.billable, c.cost_micros), (true, 2_000));
        // Marketing and authentication are charged, inside the window or not.
        for (h, cat, cost) in [
            (2, Category::Marketing, 14_000),
            (30, Category::Marketing, 14_000),
            (31, Category::Authentication, 3_500),
        ] {
            let c = rec(
                &vn,
                Traffic::Delivered {
                    at: start.plus_hours(h),
                    template: Some(cat),
                },
            );
            assert_eq!((c.billable, c.cost_micros), (true, cost));
        }
        rec(
            US,
            Traffic::Delivered {
                at: start.plus_days(4),
                template: Some(Category::Marketing),
            },
        );
        // An ad customer: 72 h of free messages from the first answer.
        let ad = "84909999999";
        rec(
            ad,
            Traffic::Customer {
                at: start.plus_days(6),
                entry_point: true,
            },
        );
        let c = rec(
            ad,
            Traffic::Delivered {
                at: start.plus_days(6).plus_hours(2),
                template: None,
            },
        );
        assert_eq!(c.kind, ChargeKind::EntryPointOpened);
        let c = rec(
            ad,
            Traffic::Delivered {
                at: start.plus_days(8),
                template: Some(Category::Marketing),
            },
        );
        assert_eq!((c.kind, c.billable), (ChargeKind::InEntryPoint, false));
        let c = rec(
            ad,
            Traffic::Delivered {
                at: start.plus_days(10),
                template: Some(Category::Marketing),
            },
        );
        assert!(c.billable);

        let r = report("2025-08", "USD", &charges);
        assert_eq!(r.models, vec![PricingModel::PerMessage]);
        let s = line(&r, Category::Service);
        assert_eq!((s.messages, s.free, s.billable), (4, 4, 0));
        let u = line(&r, Category::Utility);
        assert_eq!(
            (u.messages, u.free, u.billable, u.cost_micros),
            (2, 1, 1, 2_000)
        );
        let mk = line(&r, Category::Marketing);
        assert_eq!(
            (mk.messages, mk.free, mk.billable, mk.cost_micros),
            (5, 1, 4, 14_000 * 3 + 25_000)
        );
        assert_eq!(line(&r, Category::Authentication).cost_micros, 3_500);
        assert_eq!(r.total_cost_micros, 2_000 + 67_000 + 3_500);
        assert_eq!(r.entry_points_opened, 1);
    }

    /// October 2026: service messages charged at the utility rate, utility in the window charged,
    /// the optional [U] monthly allowance applied when configured; June 2025 and July 2025 differ.
    #[test]
    fn the_2026_10_change_and_the_model_switch_month() {
        let mut t = tariff();
        let start = day("2026-10-01");
        let run = |t: &Tariff| {
            let mut m = Meter::default();
            let mut charges = Vec::new();
            let vn = user(7);
            charges.push(m.record(
                t,
                "W",
                "PN",
                &vn,
                Traffic::Customer {
                    at: start,
                    entry_point: false,
                },
            ));
            for i in 1..=3 {
                charges.push(m.record(
                    t,
                    "W",
                    "PN",
                    &vn,
                    Traffic::Delivered {
                        at: start.plus_minutes(i),
                        template: None,
                    },
                ));
            }
            charges.push(m.record(
                t,
                "W",
                "PN",
                &vn,
                Traffic::Delivered {
                    at: start.plus_hours(2),
                    template: Some(Category::Utility),
                },
            ));
            report("2026-10", "USD", &charges)
        };
        let r = run(&t);
        let s = line(&r, Category::Service);
        assert_eq!((s.messages, s.billable, s.cost_micros), (3, 3, 3 * 2_000));
        let u = line(&r, Category::Utility);
        assert_eq!((u.billable, u.cost_micros), (1, 2_000));
        t.free_service_messages_per_month_from_2026_10 = 2;
        let r = run(&t);
        let s = line(&r, Category::Service);
        assert_eq!((s.free, s.billable, s.cost_micros), (2, 1, 2_000));
        assert_eq!(s.free_by_reason.get("free_tier"), Some(&2));

        // September 2026 (the day before): the same traffic costs nothing but nothing else.
        let before = report("2026-09", "USD", &[]);
        assert_eq!(before.models, vec![PricingModel::PerMessage]);
        // July 2025 is per-message only; June 2025 conversation-based only.
        assert_eq!(
            report("2025-06", "USD", &[]).models,
            vec![PricingModel::ConversationBased]
        );
        assert_eq!(
            report("2025-07", "USD", &[]).models,
            vec![PricingModel::PerMessage]
        );
    }

    #[test]
    fn unpriced_markets_are_counted_not_guessed() {
        let t = Tariff {
            currency: "USD".into(),
            ..Tariff::default()
        };
        let mut m = Meter::default();
        let c = m.record(
            &t,
            "W",
            "PN",
            "5511999999999",
            Traffic::Delivered {
                at: day("2025-09-01"),
                template: Some(Category::Marketing),
            },
        );
        assert_eq!((c.billable, c.unpriced, c.cost_micros), (true, true, 0));
        assert_eq!(c.market, "BR");
        let r = report("2025-09", "USD", &[c]);
        assert_eq!(r.unpriced, 1);
    }
}
