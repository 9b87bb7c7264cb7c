//! The messaging-window policy: may this sender send this kind of message on this conversation
//! now, and with which provider parameters?
//!
//! Rules are data ([`Rule`] rows per channel, each with effective dates), so a rule Meta retires
//! (the non-`HUMAN_AGENT` message tags stopped working on 2026-04-27) applies by date. Facts come
//! from `shared/channels.md` §1.6 (Messenger), §1.9 (private replies) and §2 (Instagram).
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
    /// Meta's `messaging_type`.
    MessagingType { Response = "RESPONSE", Update = "UPDATE", MessageTag = "MESSAGE_TAG" }
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
    }
);

/// What a rule row grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub messaging_type: MessagingType,
    pub tag: Option<MessageTag>,
    pub needs: Option<Confirmation>,
}

/// One row of a channel's rule table. It applies when `from <= now < until`, when the time since
/// the customer's last action is in `(after, up_to]` (`after: None` includes 0), when the sender
/// is allowed and the content is listed.
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
};
const HUMAN_AGENT: Grant = Grant {
    messaging_type: MessagingType::MessageTag,
    tag: Some(MessageTag::HumanAgent),
    needs: Some(Confirmation::HumanAgentNotPromotional),
};
const fn tag(t: MessageTag) -> Grant {
    Grant {
        messaging_type: MessagingType::MessageTag,
        tag: Some(t),
        needs: None,
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
    },
    Rule {
        from: None,
        until: None,
        after_ms: Some(DAY_MS),
        up_to_ms: Some(7 * DAY_MS),
        sender: Some(Sender::Human),
        contents: REPLY,
        grant: HUMAN_AGENT,
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
    },
    Rule {
        from: None,
        until: None,
        after_ms: Some(DAY_MS),
        up_to_ms: Some(7 * DAY_MS),
        sender: Some(Sender::Human),
        contents: REPLY,
        grant: HUMAN_AGENT,
    },
];

/// The rule table of a channel. Channels whose rules are not modelled yet have no window here
/// (live chat has none by nature).
pub fn rules_for(channel: ChannelKind) -> ChannelRules {
    match channel {
        ChannelKind::Messenger => ChannelRules {
            channel,
            windowed: true,
            rules: MESSENGER_RULES,
            private_reply_within_ms: Some(7 * DAY_MS),
        },
        ChannelKind::Instagram => ChannelRules {
            channel,
            windowed: true,
            rules: INSTAGRAM_RULES,
            private_reply_within_ms: Some(7 * DAY_MS),
        },
        _ => ChannelRules {
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
    Allowed {
        messaging_type: Option<MessagingType>,
        tag: Option<MessageTag>,
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

/// The policy decision. Pure: everything it needs is an argument.
pub fn may_send(
    rules: &ChannelRules,
    last_customer_action: Option<Timestamp>,
    now: Timestamp,
    sender: Sender,
    content: Content,
    requested: Requested,
) -> Decision {
    if !rules.windowed {
        return Decision::Allowed {
            messaging_type: None,
            tag: None,
        };
    }
    let Some(last) = last_customer_action else {
        return Decision::Refused {
            reason: RefusalReason::NoCustomerMessage,
            options: vec![
                ReopenOption::WaitForCustomer,
                ReopenOption::OpenInProviderApp,
            ],
        };
    };
    let el = elapsed(last, now);
    let applicable = |r: &&Rule| {
        r.in_effect(now) && r.covers(el) && r.admits(sender) && r.contents.contains(&content)
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
            Decision::Refused {
                reason: if human_could {
                    RefusalReason::HumanAgentOnly
                } else {
                    RefusalReason::WindowClosed
                },
                options: reopen_options(rules, el, now, sender, content),
            }
        }
    }
}

fn allowed(g: Grant) -> Decision {
    Decision::Allowed {
        messaging_type: Some(g.messaging_type),
        tag: g.tag,
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
    o.push(ReopenOption::OpenInProviderApp);
    o
}

/// The window as the agent's composer shows it, for a human replying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowSummary {
    /// `no_window` (live chat), `open` (free-form), `human_agent` (needs the confirmation) or `closed`.
    pub mode: &'static str,
    /// End of the free-form window (inclusive).
    pub window_ends_at: Option<Timestamp>,
    /// End of the `HUMAN_AGENT` possibility (inclusive).
    pub human_agent_until: Option<Timestamp>,
    /// What a human may use now: `RESPONSE`, `HUMAN_AGENT`, or a tag (with its content purpose).
    pub allowed: Vec<AllowedMode>,
    /// Why the composer is limited: `human_agent_confirmation_required`, `window_closed`, ...
    pub reason: Option<&'static str>,
    pub options: Vec<ReopenOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedMode {
    pub messaging_type: MessagingType,
    pub tag: Option<MessageTag>,
    pub contents: Vec<Content>,
    pub needs_confirmation: Option<Confirmation>,
}

pub fn summary(rules: &ChannelRules, last: Option<Timestamp>, now: Timestamp) -> WindowSummary {
    if !rules.windowed {
        return WindowSummary {
            mode: "no_window",
            window_ends_at: None,
            human_agent_until: None,
            allowed: Vec::new(),
            reason: None,
            options: Vec::new(),
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
    let window_ends_at = end_of(&|r| r.grant.tag.is_none() && r.grant.needs.is_none());
    let human_agent_until = end_of(&|r| r.grant.tag == Some(MessageTag::HumanAgent));
    let allowed = match last {
        None => Vec::new(),
        Some(l) => {
            let el = elapsed(l, now);
            rules
                .rules
                .iter()
                .filter(|r| r.in_effect(now) && r.covers(el) && r.admits(Sender::Human))
                .map(|r| AllowedMode {
                    messaging_type: r.grant.messaging_type,
                    tag: r.grant.tag,
                    contents: r.contents.to_vec(),
                    needs_confirmation: r.grant.needs,
                })
                .collect()
        }
    };
    let decision = may_send(
        rules,
        last,
        now,
        Sender::Human,
        Content::Reply,
        Requested::default(),
    );
    let (mode, reason, options) = match decision {
        Decision::Allowed { .. } => ("open", None, Vec::new()),
        Decision::NeedsConfirmation { .. } => (
            "human_agent",
            Some("human_agent_confirmation_required"),
            Vec::new(),
        ),
        Decision::Refused { reason, options } => ("closed", Some(reason.as_str()), options),
    };
    WindowSummary {
        mode,
        window_ends_at,
        human_agent_until,
        allowed,
        reason,
        options,
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
        }
    }
    fn tagged(t: MessageTag) -> Decision {
        D::Allowed {
            messaging_type: Some(MessagingType::MessageTag),
            tag: Some(t),
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
    fn live_chat_has_no_window() {
        let l = rules_for(ChannelKind::Livechat);
        let d = may_send(&l, None, AFTER, A, Content::Reply, NONE);
        assert_eq!(
            d,
            D::Allowed {
                messaging_type: None,
                tag: None
            }
        );
        assert_eq!(summary(&l, None, AFTER).mode, "no_window");
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
