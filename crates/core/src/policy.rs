//! The messaging-window policy: may this sender send this kind of message on this conversation
//! now, and with which provider parameters?
//!
//! Rules are data ([`Rule`] rows per channel, each with effective dates), so a rule Meta retires
//! (the non-`HUMAN_AGENT` message tags stopped working on 2026-04-27) applies by date. Facts come
//! from `shared/channels.md` §1.6 (Messenger), §1.9 (private replies), §2 (Instagram), §3.3
//! (WhatsApp: 24 h customer-service window, then templates only) and §4.3 (Zalo OA: 8 free
//! consultation messages within 48 h, paid consultation to 7 days, then templates only). Telegram,
//! Shopee and live chat have no window.
//!
//! Windows are measured from the provider's time of the customer's last qualifying action
//! (clamped to `now`); agent and bot messages never move it. Boundaries are inclusive: a send
//! exactly 24 h after the customer's message is still inside the 24 h window.

use crate::model::{ChannelKind, str_enum};
use crate::time::Timestamp;
use serde::Serialize;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// 2026-04-27T00:00:00Z: from this moment Meta rejects `CONFIRMED_EVENT_UPDATE`, `ACCOUNT_UPDATE`
/// and `POST_PURCHASE_UPDATE` with error code 100 (Messenger changelog, 2026-03-27).
pub const DEAD_TAGS_FROM: Timestamp = Timestamp(1_777_248_000_000);

str_enum!(
    /// Who is sending: a person typing, or anything automated (bots, flows, integrations).
    Sender { Human = "human", Automation = "automation" }
);

str_enum!(
    /// How the provider is asked to send: Meta's `messaging_type` (Messenger, Instagram), a
    /// WhatsApp free-form (session) message or template, Zalo's `cs` / `transaction` /
    /// `promotion` message endpoints.
    MessagingType {
        Response = "RESPONSE",
        Update = "UPDATE",
        MessageTag = "MESSAGE_TAG",
        FreeForm = "free_form",
        Template = "template",
        Consultation = "cs",
        Transaction = "transaction",
        Promotion = "promotion",
    }
);

str_enum!(
    /// Meta's message tags (only those any rule row mentions).
    MessageTag {
        HumanAgent = "HUMAN_AGENT",
        ConfirmedEventUpdate = "CONFIRMED_EVENT_UPDATE",
        PostPurchaseUpdate = "POST_PURCHASE_UPDATE",
        AccountUpdate = "ACCOUNT_UPDATE",
    }
);

str_enum!(
    /// What the message is for. `reply` is a free-form answer; the others are the purposes the
    /// retired essential-notification tags covered.
    Content {
        Reply = "reply",
        EventReminder = "event_reminder",
        OrderStatus = "order_status",
        AccountAlert = "account_alert",
        // A provider-approved template (WhatsApp marketing/utility/authentication, Zalo
        // transaction/promotion).
        Template = "template",
    }
);

str_enum!(
    /// Something the sender must confirm before the send is allowed.
    Confirmation { HumanAgentNotPromotional = "human_agent_not_promotional" }
);

str_enum!(
    RefusalReason {
        // The customer has never written (nothing opens a window).
        NoCustomerMessage = "no_customer_message",
        // Outside every window this sender and content may use.
        WindowClosed = "window_closed",
        // Only a human agent could still answer (`HUMAN_AGENT`); automation may not.
        HumanAgentOnly = "human_agent_only",
        // The requested tag does not exist on this channel.
        TagNotAvailable = "tag_not_available",
        // The requested tag existed but is retired at this date.
        TagRetired = "tag_retired",
        // The tag exists but not for this content or at this point of the window.
        TagNotApplicable = "tag_not_applicable",
        // Outside the free-form window: only an approved template may be sent (WhatsApp, Zalo).
        TemplateRequired = "template_required",
    }
);

str_enum!(
    /// What could make a refused send possible.
    ReopenOption {
        // The customer writes (or reacts, comments, taps a button) again.
        WaitForCustomer = "wait_for_customer",
        // A human agent answers instead (with the `HUMAN_AGENT` confirmation).
        HandOverToHuman = "hand_over_to_human",
        // Answer from the provider's own inbox app (Meta Business Suite).
        OpenInProviderApp = "open_in_provider_app",
        // Send an approved template instead (WhatsApp, Zalo).
        SendTemplate = "send_template",
    }
);

/// What a rule row grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub messaging_type: MessagingType,
    pub tag: Option<MessageTag>,
    pub needs: Option<Confirmation>,
    /// The send uses the account's paid quota (Zalo: beyond the free replies). WhatsApp's costs
    /// are metered separately by `core::billing`.
    pub paid: bool,
}

/// One row of a channel's rule table. It applies when `from <= now < until`, when the time since
/// the customer's last action is in `(after, up_to]` (`after: None` includes 0), when the sender
/// is allowed, the content is listed and — for a row with `free_sends` — fewer than that many
/// messages were sent since the customer's last action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub after_ms: Option<i64>,
    pub up_to_ms: Option<i64>,
    /// `None`: any sender.
    pub sender: Option<Sender>,
    pub contents: &'static [Content],
    pub grant: Grant,
    /// A quota of sends per customer action (Zalo: 8 free replies); `None`: unlimited.
    pub free_sends: Option<u32>,
}

impl Rule {
    pub fn in_effect(&self, now: Timestamp) -> bool {
        self.from.is_none_or(|f| now >= f) && self.until.is_none_or(|u| now < u)
    }
    pub fn covers(&self, elapsed_ms: i64) -> bool {
        self.after_ms.is_none_or(|a| elapsed_ms > a)
            && self.up_to_ms.is_none_or(|u| elapsed_ms <= u)
    }
    fn admits(&self, sender: Sender) -> bool {
        self.sender.is_none_or(|s| s == sender)
    }
    fn has_room(&self, sent_since: u32) -> bool {
        self.free_sends.is_none_or(|q| sent_since < q)
    }
}

/// A channel's rules. `windowed: false` means no messaging window at all (live chat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRules {
    pub channel: ChannelKind,
    pub windowed: bool,
    pub rules: &'static [Rule],
    /// A private reply to a comment: one message, within this long after the comment.
    pub private_reply_within_ms: Option<i64>,
}

const ALL_CONTENT: &[Content] = &[
    Content::Reply,
    Content::EventReminder,
    Content::OrderStatus,
    Content::AccountAlert,
];
const REPLY: &[Content] = &[Content::Reply];

const RESPONSE: Grant = Grant {
    messaging_type: MessagingType::Response,
    tag: None,
    needs: None,
    paid: false,
};
const HUMAN_AGENT: Grant = Grant {
    messaging_type: MessagingType::MessageTag,
    tag: Some(MessageTag::HumanAgent),
    needs: Some(Confirmation::HumanAgentNotPromotional),
    paid: false,
};
const fn tag(t: MessageTag) -> Grant {
    Grant {
        messaging_type: MessagingType::MessageTag,
        tag: Some(t),
        needs: None,
        paid: false,
    }
}
const fn plain(messaging_type: MessagingType, paid: bool) -> Grant {
    Grant {
        messaging_type,
        tag: None,
        needs: None,
        paid,
    }
}
const fn retired_tag(content: &'static [Content], t: MessageTag) -> Rule {
    Rule {
        from: None,
        until: Some(DEAD_TAGS_FROM),
        after_ms: Some(DAY_MS),
        up_to_ms: None,
        sender: None,
        contents: content,
        grant: tag(t),
        free_sends: None,
    }
}

/// Messenger (channels.md §1.6): 24 h standard window; `HUMAN_AGENT` to 7 days for humans who
/// confirm the message is not promotional; the three essential-notification tags by purpose
/// until 2026-04-27.
pub const MESSENGER_RULES: &[Rule] = &[
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: Some(DAY_MS),
        sender: None,
        contents: ALL_CONTENT,
        grant: RESPONSE,
        free_sends: None,
    },
    Rule {
        from: None,
        until: None,
        after_ms: Some(DAY_MS),
        up_to_ms: Some(7 * DAY_MS),
        sender: Some(Sender::Human),
        contents: REPLY,
        grant: HUMAN_AGENT,
        free_sends: None,
    },
    retired_tag(&[Content::EventReminder], MessageTag::ConfirmedEventUpdate),
    retired_tag(&[Content::OrderStatus], MessageTag::PostPurchaseUpdate),
    retired_tag(&[Content::AccountAlert], MessageTag::AccountUpdate),
];

/// Instagram (channels.md §2): 24 h window, then `HUMAN_AGENT` (human only) to 7 days. No other tag
/// was ever available.
pub const INSTAGRAM_RULES: &[Rule] = &[
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: Some(DAY_MS),
        sender: None,
        contents: ALL_CONTENT,
        grant: RESPONSE,
        free_sends: None,
    },
    Rule {
        from: None,
        until: None,
        after_ms: Some(DAY_MS),
        up_to_ms: Some(7 * DAY_MS),
        sender: Some(Sender::Human),
        contents: REPLY,
        grant: HUMAN_AGENT,
        free_sends: None,
    },
];

const TEMPLATE: &[Content] = &[Content::Template];

/// WhatsApp (channels.md §3.3): free-form messages of any type within 24 h of the customer's last
/// message (the customer-service window, inclusive); approved templates at any time. Costs are
/// `core::billing`'s business, not the policy's.
pub const WHATSAPP_RULES: &[Rule] = &[
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: Some(DAY_MS),
        sender: None,
        contents: REPLY,
        grant: plain(MessagingType::FreeForm, false),
        free_sends: None,
    },
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: None,
        sender: None,
        contents: TEMPLATE,
        grant: plain(MessagingType::Template, false),
        free_sends: None,
    },
];

/// How many consultation messages are free after each customer message (Zalo, §4.3).
pub const ZALO_FREE_REPLIES: u32 = 8;

/// Zalo OA (channels.md §4.3, [R]): consultation (`cs`) messages are free for 8 sends within 48 h
/// of the customer's last message (the count restarts with each customer message); further `cs`
/// messages, or after 48 h, use paid quota up to 7 days; after that only transaction / promotion
/// templates reach the customer (Zalo answers `-230`).
pub const ZALO_RULES: &[Rule] = &[
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: Some(2 * DAY_MS),
        sender: None,
        contents: REPLY,
        grant: plain(MessagingType::Consultation, false),
        free_sends: Some(ZALO_FREE_REPLIES),
    },
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: Some(7 * DAY_MS),
        sender: None,
        contents: REPLY,
        grant: plain(MessagingType::Consultation, true),
        free_sends: None,
    },
    Rule {
        from: None,
        until: None,
        after_ms: None,
        up_to_ms: None,
        sender: None,
        contents: TEMPLATE,
        grant: plain(MessagingType::Transaction, true),
        free_sends: None,
    },
];

/// The rule table of a channel. Live chat, Telegram and Shopee have no messaging window
/// (channels.md §5, §6).
pub fn rules_for(channel: ChannelKind) -> ChannelRules {
    let windowed = |rules| ChannelRules {
        channel,
        windowed: true,
        rules,
        private_reply_within_ms: None,
    };
    match channel {
        ChannelKind::Messenger => ChannelRules {
            private_reply_within_ms: Some(7 * DAY_MS),
            ..windowed(MESSENGER_RULES)
        },
        ChannelKind::Instagram => ChannelRules {
            private_reply_within_ms: Some(7 * DAY_MS),
            ..windowed(INSTAGRAM_RULES)
        },
        ChannelKind::Whatsapp => windowed(WHATSAPP_RULES),
        ChannelKind::Zalo => windowed(ZALO_RULES),
        ChannelKind::Livechat | ChannelKind::Telegram | ChannelKind::Shopee => ChannelRules {
            channel,
            windowed: false,
            rules: &[],
            private_reply_within_ms: None,
        },
    }
}

/// What the sender asks for beyond the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requested {
    /// The agent confirmed "I am only replying to the customer; nothing promotional".
    pub human_agent_confirmed: bool,
    /// An explicit tag (`HUMAN_AGENT` counts as the confirmation above).
    pub tag: Option<MessageTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Send with these provider parameters (`messaging_type: None`: the channel has no such notion).
    /// `paid`: the send uses the account's paid quota (Zalo).
    Allowed {
        messaging_type: Option<MessagingType>,
        tag: Option<MessageTag>,
        paid: bool,
    },
    /// Allowed once the sender confirms; `until` is when this possibility ends.
    NeedsConfirmation {
        confirmation: Confirmation,
        grant: Grant,
        until: Option<Timestamp>,
    },
    Refused {
        reason: RefusalReason,
        options: Vec<ReopenOption>,
    },
}

/// Time since the customer's last qualifying action; a provider time ahead of ours counts as now.
fn elapsed(last: Timestamp, now: Timestamp) -> i64 {
    now.millis() - last.clamp_to(now).millis()
}

/// What the policy needs to know about a conversation besides the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The provider's time of the customer's last qualifying action.
    pub last_customer_action: Option<Timestamp>,
    /// Messages sent to the customer since that action (Zalo counts its free replies).
    pub sent_since: u32,
}

impl Facts {
    pub const fn since(last_customer_action: Option<Timestamp>) -> Self {
        Self {
            last_customer_action,
            sent_since: 0,
        }
    }
}

/// The policy decision. Pure: everything it needs is an argument.
pub fn may_send(
    rules: &ChannelRules,
    last_customer_action: Option<Timestamp>,
    now: Timestamp,
    sender: Sender,
    content: Content,
    requested: Requested,
) -> Decision {
    decide(
        rules,
        Facts::since(last_customer_action),
        now,
        sender,
        content,
        requested,
    )
}

/// [`may_send`] with everything the policy can use (the sends counted since the customer wrote).
pub fn decide(
    rules: &ChannelRules,
    facts: Facts,
    now: Timestamp,
    sender: Sender,
    content: Content,
    requested: Requested,
) -> Decision {
    if !rules.windowed {
        return Decision::Allowed {
            messaging_type: None,
            tag: None,
            paid: false,
        };
    }
    let Some(last) = facts.last_customer_action else {
        // A template needs no customer message (WhatsApp business-initiated conversations).
        if content == Content::Template
            && let Some(r) = rules.rules.iter().find(|r| {
                r.in_effect(now)
                    && r.up_to_ms.is_none()
                    && r.admits(sender)
                    && r.contents.contains(&Content::Template)
            })
        {
            return allowed(r.grant);
        }
        let mut options = vec![ReopenOption::WaitForCustomer];
        if template_could(rules, None, now, sender) {
            options.push(ReopenOption::SendTemplate);
        }
        options.push(ReopenOption::OpenInProviderApp);
        return Decision::Refused {
            reason: RefusalReason::NoCustomerMessage,
            options,
        };
    };
    let el = elapsed(last, now);
    let sent = facts.sent_since;
    let applicable = |r: &&Rule| {
        r.in_effect(now)
            && r.covers(el)
            && r.admits(sender)
            && r.contents.contains(&content)
            && r.has_room(sent)
    };
    let confirmed =
        requested.human_agent_confirmed || requested.tag == Some(MessageTag::HumanAgent);

    if let Some(t) = requested.tag.filter(|t| *t != MessageTag::HumanAgent) {
        let granting: Vec<&Rule> = rules
            .rules
            .iter()
            .filter(|r| r.grant.tag == Some(t))
            .collect();
        let reason = if granting.is_empty() {
            RefusalReason::TagNotAvailable
        } else if !granting.iter().any(|r| r.in_effect(now)) {
            RefusalReason::TagRetired
        } else if let Some(r) = granting.iter().copied().find(applicable) {
            return allowed(r.grant);
        } else {
            RefusalReason::TagNotApplicable
        };
        return Decision::Refused {
            reason,
            options: reopen_options(rules, el, now, sender, content),
        };
    }

    match rules
        .rules
        .iter()
        .filter(|r| r.grant.tag.is_none() || r.grant.tag == Some(MessageTag::HumanAgent))
        .find(applicable)
    {
        Some(r) => match r.grant.needs {
            Some(c) if !confirmed => Decision::NeedsConfirmation {
                confirmation: c,
                grant: r.grant,
                until: r.up_to_ms.map(|u| last.clamp_to(now).plus_millis(u)),
            },
            _ => allowed(r.grant),
        },
        None => {
            let human_could =
                sender == Sender::Automation && human_may_reply(rules, el, now, content);
            let reason = if human_could {
                RefusalReason::HumanAgentOnly
            } else if content != Content::Template && template_could(rules, Some(el), now, sender) {
                RefusalReason::TemplateRequired
            } else {
                RefusalReason::WindowClosed
            };
            Decision::Refused {
                reason,
                options: reopen_options(rules, el, now, sender, content),
            }
        }
    }
}

fn allowed(g: Grant) -> Decision {
    Decision::Allowed {
        messaging_type: Some(g.messaging_type),
        tag: g.tag,
        paid: g.paid,
    }
}

/// Would a human (without a tag by purpose) still be allowed to send this content now?
fn human_may_reply(rules: &ChannelRules, el: i64, now: Timestamp, content: Content) -> bool {
    rules.rules.iter().any(|r| {
        (r.grant.tag.is_none() || r.grant.tag == Some(MessageTag::HumanAgent))
            && r.in_effect(now)
            && r.covers(el)
            && r.admits(Sender::Human)
            && r.contents.contains(&content)
    })
}

/// Could this sender send a template now (`el: None`: the customer never wrote)?
fn template_could(rules: &ChannelRules, el: Option<i64>, now: Timestamp, sender: Sender) -> bool {
    rules.rules.iter().any(|r| {
        r.in_effect(now)
            && el.map_or(r.up_to_ms.is_none(), |e| r.covers(e))
            && r.admits(sender)
            && r.contents.contains(&Content::Template)
    })
}

fn reopen_options(
    rules: &ChannelRules,
    el: i64,
    now: Timestamp,
    sender: Sender,
    content: Content,
) -> Vec<ReopenOption> {
    let mut o = vec![ReopenOption::WaitForCustomer];
    if sender == Sender::Automation && human_may_reply(rules, el, now, content) {
        o.push(ReopenOption::HandOverToHuman);
    }
    if content != Content::Template && template_could(rules, Some(el), now, sender) {
        o.push(ReopenOption::SendTemplate);
    }
    o.push(ReopenOption::OpenInProviderApp);
    o
}

/// Could a person answer the customer now with a message of their own (free-form, or with the
/// `HUMAN_AGENT` confirmation)? `false` when only a template, the customer writing again or the
/// provider's own app would do — e.g. Messenger after 7 days, WhatsApp after 24 h.
pub fn human_can_reply(rules: &ChannelRules, facts: Facts, now: Timestamp) -> bool {
    !matches!(
        decide(
            rules,
            facts,
            now,
            Sender::Human,
            Content::Reply,
            Requested::default()
        ),
        Decision::Refused { .. }
    )
}

/// The window as the agent's composer shows it, for a human replying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowSummary {
    /// `no_window` (live chat, Telegram, Shopee), `open` (free-form), `human_agent` (needs the
    /// confirmation), `template_only` (WhatsApp / Zalo: only an approved template) or `closed`.
    pub mode: &'static str,
    /// End of the free-form window (inclusive).
    pub window_ends_at: Option<Timestamp>,
    /// End of the `HUMAN_AGENT` possibility (inclusive).
    pub human_agent_until: Option<Timestamp>,
    /// What a human may use now: `RESPONSE`, `HUMAN_AGENT`, a tag (with its content purpose), a
    /// free-form message or a template.
    pub allowed: Vec<AllowedMode>,
    /// Why the composer is limited: `human_agent_confirmation_required`, `template_required`,
    /// `window_closed`, ...
    pub reason: Option<&'static str>,
    pub options: Vec<ReopenOption>,
    /// A free-form message now would use paid quota (Zalo beyond its free replies).
    pub paid: bool,
    /// Channels with free replies per customer message (Zalo): how many are left and until when.
    pub quota: Option<QuotaSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedMode {
    pub messaging_type: MessagingType,
    pub tag: Option<MessageTag>,
    pub contents: Vec<Content>,
    pub needs_confirmation: Option<Confirmation>,
    pub paid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaSummary {
    /// Free sends left now (0 once used up or once their time is over).
    pub free_left: u32,
    /// Of how many per customer message.
    pub free_per_customer_message: u32,
    /// When the free sends end (inclusive); paid ones may follow until `window_ends_at`.
    pub free_until: Option<Timestamp>,
    /// Free sends already used since the customer's last message.
    pub sent_since_customer: u32,
}

pub fn summary(rules: &ChannelRules, last: Option<Timestamp>, now: Timestamp) -> WindowSummary {
    summarize(rules, Facts::since(last), now)
}

/// [`summary`] with everything the policy can use.
pub fn summarize(rules: &ChannelRules, facts: Facts, now: Timestamp) -> WindowSummary {
    let last = facts.last_customer_action;
    if !rules.windowed {
        return WindowSummary {
            mode: "no_window",
            window_ends_at: None,
            human_agent_until: None,
            allowed: Vec::new(),
            reason: None,
            options: Vec::new(),
            paid: false,
            quota: None,
        };
    }
    let end_of = |pick: &dyn Fn(&Rule) -> bool| {
        let last = last?;
        rules
            .rules
            .iter()
            .filter(|r| r.in_effect(now) && pick(r))
            .filter_map(|r| r.up_to_ms)
            .max()
            .map(|u| last.clamp_to(now).plus_millis(u))
    };
    let free_form = |r: &Rule| {
        r.grant.tag.is_none() && r.grant.needs.is_none() && r.contents.contains(&Content::Reply)
    };
    let window_ends_at = end_of(&free_form);
    let human_agent_until = end_of(&|r| r.grant.tag == Some(MessageTag::HumanAgent));
    let el = last.map(|l| elapsed(l, now));
    let allowed = rules
        .rules
        .iter()
        .filter(|r| {
            r.in_effect(now)
                && r.admits(Sender::Human)
                && r.has_room(facts.sent_since)
                && match el {
                    Some(e) => r.covers(e),
                    None => r.up_to_ms.is_none() && r.contents.contains(&Content::Template),
                }
        })
        .map(|r| AllowedMode {
            messaging_type: r.grant.messaging_type,
            tag: r.grant.tag,
            contents: r.contents.to_vec(),
            needs_confirmation: r.grant.needs,
            paid: r.grant.paid,
        })
        .fold(Vec::<AllowedMode>::new(), |mut acc, m| {
            // One entry per way of sending: the first (cheapest) row wins.
            if !acc
                .iter()
                .any(|a| a.messaging_type == m.messaging_type && a.tag == m.tag)
            {
                acc.push(m);
            }
            acc
        });
    let decision = decide(
        rules,
        facts,
        now,
        Sender::Human,
        Content::Reply,
        Requested::default(),
    );
    let (mode, reason, options, paid) = match decision {
        Decision::Allowed { paid, .. } => ("open", None, Vec::new(), paid),
        Decision::NeedsConfirmation { .. } => (
            "human_agent",
            Some("human_agent_confirmation_required"),
            Vec::new(),
            false,
        ),
        Decision::Refused { reason, options } => {
            let mode = if reason == RefusalReason::TemplateRequired
                || options.contains(&ReopenOption::SendTemplate)
            {
                "template_only"
            } else {
                "closed"
            };
            (mode, Some(reason.as_str()), options, false)
        }
    };
    let quota = rules
        .rules
        .iter()
        .find(|r| r.in_effect(now) && r.free_sends.is_some())
        .and_then(|r| {
            let per = r.free_sends?;
            let free_until = last.and_then(|l| r.up_to_ms.map(|u| l.clamp_to(now).plus_millis(u)));
            let in_time = el.is_some_and(|e| r.covers(e));
            Some(QuotaSummary {
                free_left: if in_time {
                    per.saturating_sub(facts.sent_since)
                } else {
                    0
                },
                free_per_customer_message: per,
                free_until,
                sent_since_customer: facts.sent_since,
            })
        });
    WindowSummary {
        mode,
        window_ends_at,
        human_agent_until,
        allowed,
        reason,
        options,
        paid,
        quota,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrivateReplyRefusal {
    #[error("this channel has no private replies")]
    NotAvailable,
    #[error("this comment already has its private reply (one per comment)")]
    AlreadySent,
    #[error("private replies are possible only within 7 days of the comment")]
    TooLate,
}

impl PrivateReplyRefusal {
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotAvailable => "private_reply_not_available",
            Self::AlreadySent => "private_reply_already_sent",
            Self::TooLate => "private_reply_expired",
        }
    }
}

/// One private reply per comment, within the channel's limit after the comment (inclusive).
pub fn may_private_reply(
    rules: &ChannelRules,
    comment_at: Timestamp,
    now: Timestamp,
    already_sent: bool,
) -> Result<(), PrivateReplyRefusal> {
    let within = rules
        .private_reply_within_ms
        .ok_or(PrivateReplyRefusal::NotAvailable)?;
    if already_sent {
        return Err(PrivateReplyRefusal::AlreadySent);
    }
    if elapsed(comment_at, now) > within {
        return Err(PrivateReplyRefusal::TooLate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision as D;

    const BEFORE: Timestamp = Timestamp(DEAD_TAGS_FROM.0 - 30 * DAY_MS); // late March 2026
    const AFTER: Timestamp = Timestamp(DEAD_TAGS_FROM.0 + 30 * DAY_MS); // late May 2026

    fn ms(h: i64) -> i64 {
        h * HOUR_MS
    }

    fn resp() -> Decision {
        D::Allowed {
            messaging_type: Some(MessagingType::Response),
            tag: None,
            paid: false,
        }
    }
    fn tagged(t: MessageTag) -> Decision {
        D::Allowed {
            messaging_type: Some(MessagingType::MessageTag),
            tag: Some(t),
            paid: false,
        }
    }
    fn needs(last: Timestamp) -> Decision {
        D::NeedsConfirmation {
            confirmation: Confirmation::HumanAgentNotPromotional,
            grant: HUMAN_AGENT,
            until: Some(last.plus_days(7)),
        }
    }
    fn refused(d: &Decision) -> Option<RefusalReason> {
        match d {
            D::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// One expectation: at `elapsed` after the customer's action, at `date`.
    struct Case {
        ch: ChannelKind,
        date: Timestamp,
        elapsed: i64,
        sender: Sender,
        content: Content,
        req: Requested,
        want: Expect,
    }
    #[derive(Debug, PartialEq)]
    enum Expect {
        Response,
        Tag(MessageTag),
        Confirm,
        No(RefusalReason),
    }
    use Expect::*;
    use RefusalReason as R;

    const H: Sender = Sender::Human;
    const A: Sender = Sender::Automation;
    const NONE: Requested = Requested {
        human_agent_confirmed: false,
        tag: None,
    };
    const OK: Requested = Requested {
        human_agent_confirmed: true,
        tag: None,
    };
    const fn with_tag(t: MessageTag) -> Requested {
        Requested {
            human_agent_confirmed: false,
            tag: Some(t),
        }
    }

    fn run(cases: &[Case]) {
        for (i, c) in cases.iter().enumerate() {
            let rules = rules_for(c.ch);
            let last = c.date.plus_millis(-c.elapsed);
            let got = may_send(&rules, Some(last), c.date, c.sender, c.content, c.req);
            let want = match c.want {
                Response => resp(),
                Tag(t) => tagged(t),
                Confirm => needs(last),
                No(r) => {
                    assert_eq!(refused(&got), Some(r), "case {i}: {got:?}");
                    continue;
                }
            };
            assert_eq!(got, want, "case {i} ({} at +{} ms)", c.ch, c.elapsed);
        }
    }

    fn case(
        ch: ChannelKind,
        date: Timestamp,
        elapsed: i64,
        sender: Sender,
        content: Content,
        req: Requested,
        want: Expect,
    ) -> Case {
        Case {
            ch,
            date,
            elapsed,
            sender,
            content,
            req,
            want,
        }
    }

    const DAY: i64 = DAY_MS;
    const WEEK: i64 = 7 * DAY_MS;

    #[test]
    fn whether_a_person_could_reply_at_every_boundary() {
        use ChannelKind::*;
        let at = |ch: ChannelKind, elapsed: Option<i64>| {
            let facts = Facts::since(elapsed.map(|e| AFTER.plus_millis(-e)));
            human_can_reply(&rules_for(ch), facts, AFTER)
        };
        let cases: &[(ChannelKind, Option<i64>, bool)] = &[
            (Messenger, Some(DAY), true),
            (Messenger, Some(DAY + 1), true), // HUMAN_AGENT, with the confirmation
            (Messenger, Some(WEEK), true),
            (Messenger, Some(WEEK + 1), false),
            (Messenger, Some(8 * DAY), false),
            (Messenger, None, false),
            (Instagram, Some(WEEK + 1), false),
            (Whatsapp, Some(DAY), true),
            (Whatsapp, Some(DAY + 1), false), // a template only
            (Zalo, Some(WEEK), true),
            (Zalo, Some(WEEK + 1), false),
            (Livechat, None, true),
            (Telegram, Some(30 * DAY), true),
        ];
        for (ch, elapsed, want) in cases {
            assert_eq!(at(*ch, *elapsed), *want, "{ch} after {elapsed:?} ms");
        }
    }

    #[test]
    fn messenger_standard_window_both_sides_of_24h_before_and_after_the_tag_date() {
        use ChannelKind::Messenger as M;
        use Content::Reply as Re;
        let mut cases = Vec::new();
        for date in [BEFORE, AFTER] {
            for sender in [H, A] {
                cases.push(case(M, date, 0, sender, Re, NONE, Response));
                cases.push(case(M, date, ms(24) - 1000, sender, Re, NONE, Response)); // 23:59:59
                cases.push(case(M, date, DAY, sender, Re, NONE, Response)); // exactly 24 h
            }
            // 24 h + 1 ms: humans need the confirmation, automation is refused.
            cases.push(case(M, date, DAY + 1, H, Re, NONE, Confirm));
            cases.push(case(M, date, DAY + 1000, H, Re, NONE, Confirm)); // 24:00:01
            cases.push(case(
                M,
                date,
                DAY + 1000,
                H,
                Re,
                OK,
                Tag(MessageTag::HumanAgent),
            ));
            cases.push(case(
                M,
                date,
                DAY + 1,
                H,
                Re,
                with_tag(MessageTag::HumanAgent),
                Tag(MessageTag::HumanAgent),
            ));
            cases.push(case(M, date, DAY + 1, A, Re, NONE, No(R::HumanAgentOnly)));
            cases.push(case(M, date, DAY + 1, A, Re, OK, No(R::HumanAgentOnly)));
            // HUMAN_AGENT up to exactly 7 days, not 1 ms more.
            cases.push(case(M, date, WEEK, H, Re, NONE, Confirm));
            cases.push(case(M, date, WEEK, H, Re, OK, Tag(MessageTag::HumanAgent)));
            cases.push(case(M, date, WEEK + 1, H, Re, OK, No(R::WindowClosed)));
            cases.push(case(M, date, WEEK + 1000, H, Re, NONE, No(R::WindowClosed)));
            cases.push(case(M, date, WEEK + 1, A, Re, NONE, No(R::WindowClosed)));
        }
        run(&cases);
    }

    #[test]
    fn messenger_notification_tags_apply_only_before_2026_04_27() {
        use ChannelKind::Messenger as M;
        let rows = [
            (Content::EventReminder, MessageTag::ConfirmedEventUpdate),
            (Content::OrderStatus, MessageTag::PostPurchaseUpdate),
            (Content::AccountAlert, MessageTag::AccountUpdate),
        ];
        let last_moment = DEAD_TAGS_FROM.plus_millis(-1);
        let mut cases = Vec::new();
        for (content, t) in rows {
            for sender in [H, A] {
                // Inside 24 h any content goes as RESPONSE, on both sides of the date.
                for date in [BEFORE, AFTER] {
                    cases.push(case(M, date, DAY, sender, content, NONE, Response));
                }
                // Outside 24 h: the tag by purpose until the last millisecond before the date...
                for date in [BEFORE, last_moment] {
                    cases.push(case(M, date, DAY + 1, sender, content, with_tag(t), Tag(t)));
                    cases.push(case(
                        M,
                        date,
                        WEEK + 1,
                        sender,
                        content,
                        with_tag(t),
                        Tag(t),
                    ));
                    cases.push(case(
                        M,
                        date,
                        365 * DAY,
                        sender,
                        content,
                        with_tag(t),
                        Tag(t),
                    ));
                    // ...never for another purpose, and never inside the window.
                    cases.push(case(
                        M,
                        date,
                        DAY + 1,
                        sender,
                        Content::Reply,
                        with_tag(t),
                        No(R::TagNotApplicable),
                    ));
                    cases.push(case(
                        M,
                        date,
                        DAY,
                        sender,
                        content,
                        with_tag(t),
                        No(R::TagNotApplicable),
                    ));
                }
                // ...and retired from the date on (Meta answers code 100).
                for date in [DEAD_TAGS_FROM, AFTER] {
                    cases.push(case(
                        M,
                        date,
                        DAY + 1,
                        sender,
                        content,
                        with_tag(t),
                        No(R::TagRetired),
                    ));
                    cases.push(case(
                        M,
                        date,
                        DAY,
                        sender,
                        content,
                        with_tag(t),
                        No(R::TagRetired),
                    ));
                }
            }
            // Without asking for the tag, a notification outside 24 h is refused on both sides.
            cases.push(case(
                M,
                BEFORE,
                DAY + 1,
                A,
                content,
                NONE,
                No(R::WindowClosed),
            ));
            cases.push(case(
                M,
                AFTER,
                DAY + 1,
                A,
                content,
                NONE,
                No(R::WindowClosed),
            ));
            // HUMAN_AGENT is for replies only.
            cases.push(case(M, AFTER, DAY + 1, H, content, OK, No(R::WindowClosed)));
        }
        run(&cases);
    }

    #[test]
    fn instagram_has_24h_then_human_agent_to_7_days_and_no_other_tag() {
        use ChannelKind::Instagram as I;
        use Content::Reply as Re;
        let mut cases = Vec::new();
        for date in [BEFORE, AFTER] {
            for sender in [H, A] {
                cases.push(case(I, date, DAY, sender, Re, NONE, Response));
            }
            cases.push(case(I, date, DAY + 1, H, Re, NONE, Confirm));
            cases.push(case(
                I,
                date,
                DAY + 1,
                H,
                Re,
                OK,
                Tag(MessageTag::HumanAgent),
            ));
            cases.push(case(I, date, DAY + 1, A, Re, OK, No(R::HumanAgentOnly)));
            cases.push(case(
                I,
                date,
                WEEK - HOUR_MS,
                H,
                Re,
                OK,
                Tag(MessageTag::HumanAgent),
            )); // 6 d 23 h
            cases.push(case(I, date, WEEK, H, Re, OK, Tag(MessageTag::HumanAgent)));
            cases.push(case(I, date, WEEK + 1, H, Re, OK, No(R::WindowClosed)));
            for t in [
                MessageTag::AccountUpdate,
                MessageTag::ConfirmedEventUpdate,
                MessageTag::PostPurchaseUpdate,
            ] {
                cases.push(case(
                    I,
                    date,
                    DAY + 1,
                    H,
                    Content::AccountAlert,
                    with_tag(t),
                    No(R::TagNotAvailable),
                ));
                cases.push(case(
                    I,
                    date,
                    0,
                    A,
                    Content::OrderStatus,
                    with_tag(t),
                    No(R::TagNotAvailable),
                ));
            }
        }
        run(&cases);
    }

    #[test]
    fn future_provider_times_are_clamped_and_no_customer_message_is_refused() {
        let m = rules_for(ChannelKind::Messenger);
        let now = AFTER;
        let d = may_send(&m, Some(now.plus_hours(3)), now, A, Content::Reply, NONE);
        assert_eq!(d, resp());
        let d = may_send(&m, None, now, H, Content::Reply, OK);
        assert_eq!(refused(&d), Some(R::NoCustomerMessage));
    }

    #[test]
    fn live_chat_telegram_and_shopee_have_no_window() {
        for ch in [
            ChannelKind::Livechat,
            ChannelKind::Telegram,
            ChannelKind::Shopee,
        ] {
            let l = rules_for(ch);
            for last in [None, Some(AFTER.plus_days(-400))] {
                for content in [Content::Reply, Content::Template] {
                    let d = may_send(&l, last, AFTER, A, content, NONE);
                    assert_eq!(
                        d,
                        D::Allowed {
                            messaging_type: None,
                            tag: None,
                            paid: false,
                        },
                        "{ch}"
                    );
                }
            }
            let s = summary(&l, Some(AFTER.plus_days(-400)), AFTER);
            assert_eq!((s.mode, s.quota), ("no_window", None), "{ch}");
        }
    }

    fn wa(elapsed: i64, sender: Sender, content: Content) -> Decision {
        let last = AFTER;
        may_send(
            &rules_for(ChannelKind::Whatsapp),
            Some(last),
            last.plus_millis(elapsed),
            sender,
            content,
            NONE,
        )
    }
    fn free_form() -> Decision {
        D::Allowed {
            messaging_type: Some(MessagingType::FreeForm),
            tag: None,
            paid: false,
        }
    }
    fn template() -> Decision {
        D::Allowed {
            messaging_type: Some(MessagingType::Template),
            tag: None,
            paid: false,
        }
    }

    #[test]
    fn whatsapp_free_form_inside_24h_then_templates_only() {
        for sender in [H, A] {
            assert_eq!(wa(0, sender, Content::Reply), free_form());
            assert_eq!(wa(DAY - 1000, sender, Content::Reply), free_form()); // 23:59:59
            assert_eq!(wa(DAY, sender, Content::Reply), free_form()); // exactly 24 h
            for el in [DAY + 1, DAY + 1000, WEEK, 400 * DAY] {
                match wa(el, sender, Content::Reply) {
                    D::Refused { reason, options } => {
                        assert_eq!(reason, R::TemplateRequired);
                        assert_eq!(
                            options,
                            vec![
                                ReopenOption::WaitForCustomer,
                                ReopenOption::SendTemplate,
                                ReopenOption::OpenInProviderApp
                            ]
                        );
                    }
                    other => panic!("{other:?}"),
                }
            }
            // Templates go at any time, inside the window too, and without any customer message.
            for el in [0, DAY, DAY + 1, 30 * DAY] {
                assert_eq!(wa(el, sender, Content::Template), template());
            }
            let wa_rules = rules_for(ChannelKind::Whatsapp);
            assert_eq!(
                may_send(&wa_rules, None, AFTER, sender, Content::Template, NONE),
                template()
            );
            match may_send(&wa_rules, None, AFTER, sender, Content::Reply, NONE) {
                D::Refused { reason, options } => {
                    assert_eq!(reason, R::NoCustomerMessage);
                    assert!(options.contains(&ReopenOption::SendTemplate));
                }
                other => panic!("{other:?}"),
            }
            // Meta's tags do not exist on WhatsApp.
            let d = may_send(
                &wa_rules,
                Some(AFTER),
                AFTER.plus_millis(DAY + 1),
                sender,
                Content::Reply,
                with_tag(MessageTag::HumanAgent),
            );
            assert_eq!(refused(&d), Some(R::TemplateRequired));
        }
    }

    #[test]
    fn whatsapp_summary_shows_the_template_picker_once_the_window_shuts() {
        let r = rules_for(ChannelKind::Whatsapp);
        let last = AFTER;
        let s = summary(&r, Some(last), last.plus_millis(DAY));
        assert_eq!((s.mode, s.reason), ("open", None));
        assert_eq!(s.window_ends_at, Some(last.plus_days(1)));
        let kinds: Vec<_> = s.allowed.iter().map(|a| a.messaging_type).collect();
        assert_eq!(
            kinds,
            vec![MessagingType::FreeForm, MessagingType::Template]
        );
        let s = summary(&r, Some(last), last.plus_millis(DAY + 1));
        assert_eq!(
            (s.mode, s.reason),
            ("template_only", Some("template_required"))
        );
        let kinds: Vec<_> = s.allowed.iter().map(|a| a.messaging_type).collect();
        assert_eq!(kinds, vec![MessagingType::Template]);
        let s = summary(&r, None, last);
        assert_eq!(
            (s.mode, s.reason),
            ("template_only", Some("no_customer_message"))
        );
        assert_eq!(s.allowed.len(), 1);
        assert_eq!(s.quota, None);
    }

    fn zalo(elapsed: i64, sent: u32, content: Content) -> Decision {
        let last = AFTER;
        decide(
            &rules_for(ChannelKind::Zalo),
            Facts {
                last_customer_action: Some(last),
                sent_since: sent,
            },
            last.plus_millis(elapsed),
            H,
            content,
            NONE,
        )
    }
    fn cs(paid: bool) -> Decision {
        D::Allowed {
            messaging_type: Some(MessagingType::Consultation),
            tag: None,
            paid,
        }
    }

    #[test]
    fn zalo_eight_free_replies_in_48h_then_paid_to_7_days_then_templates() {
        // The 1st..8th reply within 48 h are free; the 9th is paid.
        for sent in 0..ZALO_FREE_REPLIES {
            assert_eq!(zalo(HOUR_MS, sent, Content::Reply), cs(false), "{sent}");
            assert_eq!(zalo(2 * DAY, sent, Content::Reply), cs(false), "{sent}");
        }
        assert_eq!(zalo(HOUR_MS, 8, Content::Reply), cs(true));
        assert_eq!(zalo(HOUR_MS, 50, Content::Reply), cs(true));
        // After 48 h every reply is paid, up to exactly 7 days.
        assert_eq!(zalo(2 * DAY + 1, 0, Content::Reply), cs(true));
        assert_eq!(zalo(WEEK, 0, Content::Reply), cs(true));
        // 7 d + 1 ms: only templates.
        assert_eq!(
            refused(&zalo(WEEK + 1, 0, Content::Reply)),
            Some(R::TemplateRequired)
        );
        assert_eq!(
            zalo(WEEK + 1, 0, Content::Template),
            D::Allowed {
                messaging_type: Some(MessagingType::Transaction),
                tag: None,
                paid: true
            }
        );
    }

    #[test]
    fn zalo_summary_counts_the_free_replies_left() {
        let r = rules_for(ChannelKind::Zalo);
        let last = AFTER;
        let at = |el: i64, sent: u32| {
            summarize(
                &r,
                Facts {
                    last_customer_action: Some(last),
                    sent_since: sent,
                },
                last.plus_millis(el),
            )
        };
        let s = at(HOUR_MS, 3);
        assert_eq!((s.mode, s.paid), ("open", false));
        assert_eq!(
            s.quota,
            Some(QuotaSummary {
                free_left: 5,
                free_per_customer_message: 8,
                free_until: Some(last.plus_days(2)),
                sent_since_customer: 3
            })
        );
        assert_eq!(s.window_ends_at, Some(last.plus_days(7)));
        let s = at(HOUR_MS, 8);
        assert_eq!((s.mode, s.paid), ("open", true));
        assert_eq!(s.quota.map(|q| q.free_left), Some(0));
        let s = at(3 * DAY, 0);
        assert_eq!((s.mode, s.paid), ("open", true));
        assert_eq!(s.quota.map(|q| q.free_left), Some(0));
        let s = at(WEEK + 1000, 0);
        assert_eq!(
            (s.mode, s.reason, s.paid),
            ("template_only", Some("template_required"), false)
        );
    }

    #[test]
    fn refusals_say_what_would_reopen() {
        let m = rules_for(ChannelKind::Messenger);
        let last = AFTER;
        match may_send(
            &m,
            Some(last),
            last.plus_millis(DAY + 1),
            A,
            Content::Reply,
            NONE,
        ) {
            D::Refused { options, .. } => assert_eq!(
                options,
                vec![
                    ReopenOption::WaitForCustomer,
                    ReopenOption::HandOverToHuman,
                    ReopenOption::OpenInProviderApp
                ]
            ),
            other => panic!("{other:?}"),
        }
        match may_send(
            &m,
            Some(last),
            last.plus_millis(WEEK + 1),
            H,
            Content::Reply,
            OK,
        ) {
            D::Refused { options, .. } => assert_eq!(
                options,
                vec![
                    ReopenOption::WaitForCustomer,
                    ReopenOption::OpenInProviderApp
                ]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn summary_follows_the_window() {
        let m = rules_for(ChannelKind::Messenger);
        let last = AFTER;
        let s = summary(&m, Some(last), last.plus_millis(DAY));
        assert_eq!(s.mode, "open");
        assert_eq!(s.window_ends_at, Some(last.plus_days(1)));
        assert_eq!(s.human_agent_until, Some(last.plus_days(7)));
        assert_eq!(s.allowed.len(), 1);
        assert_eq!(s.allowed[0].messaging_type, MessagingType::Response);
        let s = summary(&m, Some(last), last.plus_millis(DAY + 1));
        assert_eq!(
            (s.mode, s.reason),
            ("human_agent", Some("human_agent_confirmation_required"))
        );
        assert_eq!(s.allowed[0].tag, Some(MessageTag::HumanAgent));
        let s = summary(&m, Some(last), last.plus_millis(WEEK + 1));
        assert_eq!((s.mode, s.reason), ("closed", Some("window_closed")));
        assert!(s.allowed.is_empty());
        // Before the tag date, a closed window still lists the notification tags by purpose.
        let s = summary(&m, Some(BEFORE), BEFORE.plus_millis(WEEK + 1));
        assert_eq!(s.mode, "closed");
        let tags: Vec<_> = s.allowed.iter().filter_map(|a| a.tag).collect();
        assert_eq!(
            tags,
            vec![
                MessageTag::ConfirmedEventUpdate,
                MessageTag::PostPurchaseUpdate,
                MessageTag::AccountUpdate
            ]
        );
        let s = summary(&m, None, AFTER);
        assert_eq!(
            (s.mode, s.reason, s.window_ends_at),
            ("closed", Some("no_customer_message"), None)
        );
    }

    #[test]
    fn private_reply_once_within_7_days() {
        for ch in [ChannelKind::Messenger, ChannelKind::Instagram] {
            let r = rules_for(ch);
            let at = AFTER;
            assert_eq!(may_private_reply(&r, at, at, false), Ok(()));
            assert_eq!(may_private_reply(&r, at, at.plus_days(7), false), Ok(()));
            assert_eq!(
                may_private_reply(&r, at, at.plus_millis(WEEK + 1), false),
                Err(PrivateReplyRefusal::TooLate)
            );
            assert_eq!(
                may_private_reply(&r, at, at.plus_hours(1), true),
                Err(PrivateReplyRefusal::AlreadySent)
            );
        }
        assert_eq!(
            may_private_reply(&rules_for(ChannelKind::Livechat), AFTER, AFTER, false),
            Err(PrivateReplyRefusal::NotAvailable)
        );
    }

    #[test]
    fn the_dead_tag_date_is_2026_04_27_utc() {
        // 2026-04-27 is day 20570 after the epoch.
        assert_eq!(DEAD_TAGS_FROM.millis(), 20_570 * DAY_MS);
    }
}
