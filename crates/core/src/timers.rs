//! Timers: what is due when, and what a due timer does.
//!
//! Timers are durable rows (`kind`, conversation, `due_at`, `generation`). [`plan`] says how a
//! conversation change moves them; the store applies that plan in the same transaction as the
//! change, so timers never drift from the conversations they watch. When a timer comes due,
//! [`on_fire`] re-checks it against the conversation as it is *now* — an agent may have replied
//! meanwhile — and says what to do, or to drop it.

use crate::ids::{AgentId, ConversationId, TimerId};
use crate::model::{Conversation, ConversationStatus as S, str_enum};
use crate::policy::{self, ChannelRules, Facts};
use crate::routing::{CloseReason, RoutingRules, Trigger};
use crate::time::Timestamp;

str_enum!(
    /// `reply_sla`: the holder must answer the customer by `due_at` or lose the conversation.
    /// `customer_silence`: the agent had the last word and the customer stayed silent → resolve.
    /// `agent_silence`: the customer had the last word and no agent wrote → resolve.
    /// `offline_release`: the holder went offline and is still offline at `due_at` → release.
    TimerKind {
        ReplySla = "reply_sla",
        CustomerSilence = "customer_silence",
        AgentSilence = "agent_silence",
        OfflineRelease = "offline_release",
    }
);

/// A stored timer. At most one per (conversation, kind); `generation` changes whenever it is
/// rescheduled, so a runner holding an older copy cannot fire it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub id: TimerId,
    pub kind: TimerKind,
    pub conversation_id: ConversationId,
    /// The agent the timer watches (reply SLA, offline release).
    pub agent_id: Option<AgentId>,
    pub due_at: Timestamp,
    pub generation: i64,
}

/// A change to a conversation's timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOp {
    /// Schedule the timer at `due_at`, replacing any of the same kind.
    Set {
        kind: TimerKind,
        due_at: Timestamp,
        agent_id: Option<AgentId>,
    },
    /// Schedule it unless one of this kind is already pending (an earlier deadline stands).
    Ensure {
        kind: TimerKind,
        due_at: Timestamp,
        agent_id: Option<AgentId>,
    },
    Clear(TimerKind),
}

/// The customer wrote last and no agent has answered since.
pub fn awaiting_reply(c: &Conversation) -> bool {
    c.last_customer_message_at
        .is_some_and(|t| c.last_agent_reply_at.is_none_or(|r| r < t))
}

fn active(c: &Conversation) -> bool {
    matches!(c.status, S::Pending | S::Open)
}

/// When auto-close for customer silence is due: the agent's reply is the last word.
pub fn customer_silence_due(c: &Conversation, rules: &RoutingRules) -> Option<Timestamp> {
    let minutes = rules.auto_close.customer_silence_minutes?;
    if !active(c) || awaiting_reply(c) {
        return None;
    }
    Some(c.last_agent_reply_at?.plus_minutes(i64::from(minutes)))
}

/// When auto-close for agent silence is due: the customer's message is the last word.
pub fn agent_silence_due(c: &Conversation, rules: &RoutingRules) -> Option<Timestamp> {
    let minutes = rules.auto_close.agent_silence_minutes?;
    if !active(c) || !awaiting_reply(c) {
        return None;
    }
    Some(c.last_customer_message_at?.plus_minutes(i64::from(minutes)))
}

/// How the timers of a conversation change when it goes from `before` (`None`: new) to `after` at
/// `now`. Passing the same state twice (`before == after`) re-derives the timers, e.g. after the
/// inbox's rules changed.
///
/// Reply SLA: a new turn — a customer message after an answer, or a new holder while the customer
/// waits — starts a fresh `now + N`; more customer messages in the same turn keep the first
/// deadline; an agent reply, a resolve or a return to the pool clears it. Notes change no
/// conversation state, so they never reach this function and never clear it. The deadline watches
/// only customer messages that arrived once it was switched on ([`RoutingRules::reply_sla_covers`]):
/// switching it on mid-shift does not make every conversation already waiting late at once.
pub fn plan(
    before: Option<&Conversation>,
    after: &Conversation,
    rules: &RoutingRules,
    now: Timestamp,
) -> Vec<TimerOp> {
    let mut ops = Vec::with_capacity(4);
    match (rules.reply_sla_minutes, after.status, after.assignee_id) {
        (Some(n), S::Open, Some(holder))
            if awaiting_reply(after) && rules.reply_sla_covers(after) =>
        {
            let due_at = now.plus_minutes(i64::from(n));
            let same_turn = before.is_some_and(|b| {
                b.status == S::Open && b.assignee_id == Some(holder) && awaiting_reply(b)
            });
            let (kind, agent_id) = (TimerKind::ReplySla, Some(holder));
            ops.push(if same_turn {
                TimerOp::Ensure {
                    kind,
                    due_at,
                    agent_id,
                }
            } else {
                TimerOp::Set {
                    kind,
                    due_at,
                    agent_id,
                }
            });
        }
        _ => ops.push(TimerOp::Clear(TimerKind::ReplySla)),
    }
    // Only a presence change schedules an offline release; anything that answers or moves the
    // conversation makes it moot.
    let release_stands = after.status == S::Open
        && after.assignee_id.is_some()
        && awaiting_reply(after)
        && before.is_some_and(|b| b.assignee_id == after.assignee_id);
    if !release_stands {
        ops.push(TimerOp::Clear(TimerKind::OfflineRelease));
    }
    for (kind, due) in [
        (
            TimerKind::CustomerSilence,
            customer_silence_due(after, rules),
        ),
        (TimerKind::AgentSilence, agent_silence_due(after, rules)),
    ] {
        ops.push(match due {
            Some(due_at) => TimerOp::Set {
                kind,
                due_at,
                agent_id: None,
            },
            None => TimerOp::Clear(kind),
        });
    }
    ops
}

/// The offline-release timer for a conversation whose holder just went offline, if the inbox
/// releases and the customer is waiting.
pub fn offline_release(
    c: &Conversation,
    agent: AgentId,
    rules: &RoutingRules,
    now: Timestamp,
) -> Option<TimerOp> {
    let minutes = rules.offline_release_minutes?;
    (c.status == S::Open && c.assignee_id == Some(agent) && awaiting_reply(c)).then(|| {
        TimerOp::Set {
            kind: TimerKind::OfflineRelease,
            due_at: now.plus_minutes(i64::from(minutes)),
            agent_id: Some(agent),
        }
    })
}

/// What the runner knows at firing besides the conversation and its rules.
#[derive(Debug, Clone, Copy)]
pub struct FireFacts {
    /// Whether the agent the timer watches is online now.
    pub holder_online: bool,
    /// The conversation's channel rules and window facts: whether anyone could answer now.
    pub channel: ChannelRules,
    pub window: Facts,
}

/// What a due timer does, decided on the conversation as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerEffect {
    /// Not due yet: leave it.
    NotDue,
    /// No longer applies (answered, moved, resolved, rules changed): delete it, change nothing.
    Drop,
    /// The reply deadline passed but nobody could message the customer now (the channel's window
    /// closed): taking it from the holder would help no one. Delete it, keep the holder, and say
    /// why in the history. The customer's next message starts a new deadline.
    Lapse,
    /// Take the conversation from its holder (to the next agent or the pool, as routing decides).
    TakeBack { from: AgentId, trigger: Trigger },
    Resolve {
        reason: CloseReason,
        closing_message: Option<String>,
    },
}

/// Re-checks a due timer.
pub fn on_fire(
    t: &Timer,
    c: &Conversation,
    rules: &RoutingRules,
    facts: &FireFacts,
    now: Timestamp,
) -> TimerEffect {
    if t.due_at > now {
        return TimerEffect::NotDue;
    }
    let holder_online = facts.holder_online;
    let held_unanswered = |agent: Option<AgentId>| {
        c.status == S::Open && agent.is_some() && c.assignee_id == agent && awaiting_reply(c)
    };
    match t.kind {
        TimerKind::ReplySla => match t.agent_id {
            Some(from) if rules.reply_sla_covers(c) && held_unanswered(t.agent_id) => {
                if policy::human_can_reply(&facts.channel, facts.window, now) {
                    TimerEffect::TakeBack {
                        from,
                        trigger: Trigger::ReplySla,
                    }
                } else {
                    TimerEffect::Lapse
                }
            }
            _ => TimerEffect::Drop,
        },
        TimerKind::OfflineRelease => match t.agent_id {
            Some(from)
                if rules.offline_release_minutes.is_some()
                    && !holder_online
                    && held_unanswered(t.agent_id) =>
            {
                TimerEffect::TakeBack {
                    from,
                    trigger: Trigger::OfflineRelease,
                }
            }
            _ => TimerEffect::Drop,
        },
        TimerKind::CustomerSilence => match customer_silence_due(c, rules) {
            Some(due) if due <= now => TimerEffect::Resolve {
                reason: CloseReason::CustomerSilence,
                closing_message: rules.auto_close.closing_message.clone(),
            },
            _ => TimerEffect::Drop,
        },
        TimerKind::AgentSilence => match agent_silence_due(c, rules) {
            Some(due) if due <= now => TimerEffect::Resolve {
                reason: CloseReason::AgentSilence,
                closing_message: None,
            },
            _ => TimerEffect::Drop,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use crate::routing::AutoClose;
    use TimerKind::*;
    use uuid::Uuid;

    const T: Timestamp = Timestamp(1_790_000_000_000);
    const MIN: i64 = 60_000;

    fn agent(n: u128) -> AgentId {
        AgentId(Uuid::from_u128(n))
    }

    fn conv(
        status: S,
        holder: Option<u128>,
        customer_at: Option<i64>,
        reply_at: Option<i64>,
    ) -> Conversation {
        let mut c = Conversation::new_from_customer(
            ConversationId(Uuid::from_u128(100)),
            WorkspaceId(Uuid::from_u128(200)),
            InboxId(Uuid::from_u128(300)),
            ContactId(Uuid::from_u128(400)),
            T,
        );
        c.status = status;
        c.assignee_id = holder.map(agent);
        c.last_customer_message_at = customer_at.map(|m| T.plus_millis(m));
        c.last_agent_reply_at = reply_at.map(|m| T.plus_millis(m));
        c
    }

    fn rules(sla: Option<u32>, customer: Option<u32>, agent_silence: Option<u32>) -> RoutingRules {
        RoutingRules {
            reply_sla_minutes: sla,
            auto_close: AutoClose {
                customer_silence_minutes: customer,
                agent_silence_minutes: agent_silence,
                closing_message: Some("Cảm ơn anh/chị".into()),
            },
            offline_release_minutes: Some(15),
            ..RoutingRules::default()
        }
    }

    fn sla_op(ops: &[TimerOp]) -> Option<&TimerOp> {
        ops.iter().find(|o| match o {
            TimerOp::Set { kind, .. } | TimerOp::Ensure { kind, .. } => *kind == ReplySla,
            TimerOp::Clear(kind) => *kind == ReplySla,
        })
    }

    #[test]
    fn awaiting_reply_at_the_boundaries() {
        assert!(
            !awaiting_reply(&conv(S::Open, Some(1), None, None)),
            "no customer message"
        );
        assert!(awaiting_reply(&conv(S::Open, Some(1), Some(0), None)));
        assert!(
            awaiting_reply(&conv(S::Open, Some(1), Some(10), Some(9))),
            "reply 1 ms before"
        );
        assert!(
            !awaiting_reply(&conv(S::Open, Some(1), Some(10), Some(10))),
            "same ms counts as answered"
        );
        assert!(!awaiting_reply(&conv(S::Open, Some(1), Some(10), Some(11))));
    }

    #[test]
    fn reply_sla_plan_table() {
        let r = rules(Some(5), None, None);
        let now = T.plus_minutes(1);
        let due = now.plus_minutes(5);
        let set = Some(TimerOp::Set {
            kind: ReplySla,
            due_at: due,
            agent_id: Some(agent(1)),
        });
        let ensure = Some(TimerOp::Ensure {
            kind: ReplySla,
            due_at: due,
            agent_id: Some(agent(1)),
        });
        let clear = Some(TimerOp::Clear(ReplySla));
        let open_waiting = conv(S::Open, Some(1), Some(0), None);
        let cases: Vec<(&str, Option<Conversation>, Conversation, Option<TimerOp>)> = vec![
            (
                "new conversation in the pool",
                None,
                conv(S::Pending, None, Some(0), None),
                clear.clone(),
            ),
            (
                "claimed while the customer waits",
                Some(conv(S::Pending, None, Some(0), None)),
                open_waiting.clone(),
                set.clone(),
            ),
            (
                "assigned to someone else",
                Some(conv(S::Open, Some(2), Some(0), None)),
                open_waiting.clone(),
                set.clone(),
            ),
            (
                "customer writes after an answer: new turn",
                Some(conv(S::Open, Some(1), Some(0), Some(MIN))),
                conv(S::Open, Some(1), Some(2 * MIN), Some(MIN)),
                set.clone(),
            ),
            (
                "customer writes again, same turn: first deadline stands",
                Some(open_waiting.clone()),
                conv(S::Open, Some(1), Some(MIN), None),
                ensure.clone(),
            ),
            (
                "rules re-derived on the same state",
                Some(open_waiting.clone()),
                open_waiting.clone(),
                ensure,
            ),
            (
                "agent replies",
                Some(open_waiting.clone()),
                conv(S::Open, Some(1), Some(0), Some(MIN)),
                clear.clone(),
            ),
            (
                "claimed, nothing to answer",
                Some(conv(S::Pending, None, None, None)),
                conv(S::Open, Some(1), None, None),
                clear.clone(),
            ),
            (
                "returned to the pool",
                Some(open_waiting.clone()),
                conv(S::Pending, None, Some(0), None),
                clear.clone(),
            ),
            (
                "resolved",
                Some(open_waiting.clone()),
                conv(S::Resolved, None, Some(0), None),
                clear.clone(),
            ),
        ];
        for (why, before, after, want) in cases {
            let ops = plan(before.as_ref(), &after, &r, now);
            assert_eq!(sla_op(&ops), want.as_ref(), "{why}");
        }
        let off = plan(None, &open_waiting, &rules(None, None, None), now);
        assert_eq!(sla_op(&off), clear.as_ref(), "SLA off");
    }

    #[test]
    fn reply_sla_watches_only_messages_after_it_was_switched_on() {
        // Switched on at +10 min. `plan(Some(c), c)` is how saving rules re-derives timers.
        let on_at = T.plus_minutes(10);
        let r = RoutingRules {
            reply_sla_since: Some(on_at),
            ..rules(Some(5), None, None)
        };
        let now = T.plus_minutes(11);
        let set = Some(TimerOp::Set {
            kind: ReplySla,
            due_at: now.plus_minutes(5),
            agent_id: Some(agent(1)),
        });
        let clear = Some(TimerOp::Clear(ReplySla));
        let old = conv(S::Open, Some(1), Some(0), None);
        let cases: Vec<(&str, Option<Conversation>, Conversation, Option<TimerOp>)> = vec![
            (
                "held, waiting since before: no deadline",
                Some(old.clone()),
                old.clone(),
                clear.clone(),
            ),
            (
                "claimed, waiting since before: no deadline",
                Some(conv(S::Pending, None, Some(0), None)),
                old.clone(),
                clear.clone(),
            ),
            (
                "1 ms before it was switched on",
                Some(old.clone()),
                conv(S::Open, Some(1), Some(10 * MIN - 1), None),
                clear.clone(),
            ),
            (
                "the same customer writes again after: the deadline starts",
                Some(old.clone()),
                conv(S::Open, Some(1), Some(10 * MIN), None),
                Some(TimerOp::Ensure {
                    kind: ReplySla,
                    due_at: now.plus_minutes(5),
                    agent_id: Some(agent(1)),
                }),
            ),
            (
                "a new customer after",
                Some(conv(S::Pending, None, Some(11 * MIN), None)),
                conv(S::Open, Some(1), Some(11 * MIN), None),
                set,
            ),
        ];
        for (why, before, after, want) in cases {
            let ops = plan(before.as_ref(), &after, &r, now);
            assert_eq!(sla_op(&ops), want.as_ref(), "{why}");
        }
        // A timer left from before (rules switched off and on again) drops.
        let sla = timer(ReplySla, Some(1), now);
        assert_eq!(
            on_fire(&sla, &old, &r, &facts(true), now),
            TimerEffect::Drop
        );
    }

    #[test]
    fn reply_sla_never_takes_back_what_nobody_could_answer() {
        use crate::model::ChannelKind::*;
        let r = rules(Some(5), None, None);
        let take = TimerEffect::TakeBack {
            from: agent(1),
            trigger: Trigger::ReplySla,
        };
        // The customer wrote at T; the deadline is checked `after` later.
        let waiting = conv(S::Open, Some(1), Some(0), None);
        let hours = |h: i64| T.plus_hours(h);
        let cases: Vec<(&str, crate::model::ChannelKind, Timestamp, TimerEffect)> = vec![
            (
                "Messenger, 5 min",
                Messenger,
                T.plus_minutes(5),
                take.clone(),
            ),
            (
                "Messenger, 2 days (HUMAN_AGENT)",
                Messenger,
                hours(48),
                take.clone(),
            ),
            (
                "Messenger, exactly 7 days",
                Messenger,
                hours(7 * 24),
                take.clone(),
            ),
            (
                "Messenger, 8 days",
                Messenger,
                hours(8 * 24),
                TimerEffect::Lapse,
            ),
            ("WhatsApp, exactly 24 h", Whatsapp, hours(24), take.clone()),
            (
                "WhatsApp, 24 h + 1 ms (template only)",
                Whatsapp,
                hours(24).plus_millis(1),
                TimerEffect::Lapse,
            ),
            ("Zalo, 8 days", Zalo, hours(8 * 24), TimerEffect::Lapse),
            ("live chat, 8 days", Livechat, hours(8 * 24), take),
        ];
        for (why, channel, now, want) in cases {
            let sla = timer(ReplySla, Some(1), now);
            assert_eq!(
                on_fire(&sla, &waiting, &r, &on(&waiting, channel), now),
                want,
                "{why}"
            );
        }
        // Answered meanwhile: dropped as before, not lapsed.
        let answered = conv(S::Open, Some(1), Some(0), Some(MIN));
        let now = hours(8 * 24);
        assert_eq!(
            on_fire(
                &timer(ReplySla, Some(1), now),
                &answered,
                &r,
                &on(&answered, Messenger),
                now
            ),
            TimerEffect::Drop
        );
    }

    #[test]
    fn auto_close_plan_and_offline_release() {
        let r = rules(None, Some(60), Some(120));
        let now = T.plus_minutes(3);
        let answered = conv(S::Open, Some(1), Some(0), Some(MIN));
        let ops = plan(None, &answered, &r, now);
        assert!(ops.contains(&TimerOp::Set {
            kind: CustomerSilence,
            due_at: T.plus_minutes(61),
            agent_id: None
        }));
        assert!(ops.contains(&TimerOp::Clear(AgentSilence)));
        let waiting = conv(S::Pending, None, Some(2 * MIN), Some(MIN));
        let ops = plan(Some(&answered), &waiting, &r, now);
        assert!(ops.contains(&TimerOp::Set {
            kind: AgentSilence,
            due_at: T.plus_minutes(122),
            agent_id: None
        }));
        assert!(ops.contains(&TimerOp::Clear(CustomerSilence)));
        assert!(
            ops.contains(&TimerOp::Clear(OfflineRelease)),
            "moved to the pool"
        );
        let resolved = conv(S::Resolved, None, Some(0), Some(MIN));
        let ops = plan(Some(&answered), &resolved, &r, now);
        assert!(
            ops.contains(&TimerOp::Clear(CustomerSilence))
                && ops.contains(&TimerOp::Clear(AgentSilence))
        );

        // Offline release: only for a held conversation awaiting a reply, only if the inbox releases.
        let held = conv(S::Open, Some(1), Some(0), None);
        assert_eq!(
            offline_release(&held, agent(1), &r, now),
            Some(TimerOp::Set {
                kind: OfflineRelease,
                due_at: now.plus_minutes(15),
                agent_id: Some(agent(1))
            })
        );
        assert_eq!(
            offline_release(&answered, agent(1), &r, now),
            None,
            "answered"
        );
        assert_eq!(
            offline_release(&held, agent(2), &r, now),
            None,
            "someone else's"
        );
        assert_eq!(
            offline_release(&held, agent(1), &RoutingRules::default(), now),
            None,
            "off"
        );
        let still = plan(
            Some(&held),
            &conv(S::Open, Some(1), Some(MIN), None),
            &r,
            now,
        );
        assert!(
            !still.contains(&TimerOp::Clear(OfflineRelease)),
            "another customer message keeps it"
        );
    }

    /// Fired on live chat (no window: someone can always answer).
    fn facts(holder_online: bool) -> FireFacts {
        FireFacts {
            holder_online,
            channel: policy::rules_for(crate::model::ChannelKind::Livechat),
            window: Facts::default(),
        }
    }

    /// Fired on `channel`, the window counted from the conversation's last customer message.
    fn on(c: &Conversation, channel: crate::model::ChannelKind) -> FireFacts {
        FireFacts {
            holder_online: true,
            channel: policy::rules_for(channel),
            window: Facts::since(c.last_customer_message_at),
        }
    }

    fn timer(kind: TimerKind, agent_n: Option<u128>, due: Timestamp) -> Timer {
        Timer {
            id: TimerId(Uuid::from_u128(7)),
            kind,
            conversation_id: ConversationId(Uuid::from_u128(100)),
            agent_id: agent_n.map(agent),
            due_at: due,
            generation: 1,
        }
    }

    #[test]
    fn firing_rechecks_at_every_boundary() {
        let r = rules(Some(5), Some(60), Some(120));
        let due = T.plus_minutes(5);
        let sla = timer(ReplySla, Some(1), due);
        let take = TimerEffect::TakeBack {
            from: agent(1),
            trigger: Trigger::ReplySla,
        };
        let waiting = conv(S::Open, Some(1), Some(0), None);
        let cases: Vec<(&str, &Timer, Conversation, Timestamp, TimerEffect)> = vec![
            (
                "1 ms early",
                &sla,
                waiting.clone(),
                due.plus_millis(-1),
                TimerEffect::NotDue,
            ),
            ("exactly due", &sla, waiting.clone(), due, take.clone()),
            (
                "long overdue (after a restart)",
                &sla,
                waiting.clone(),
                due.plus_hours(3),
                take,
            ),
            (
                "agent replied meanwhile",
                &sla,
                conv(S::Open, Some(1), Some(0), Some(MIN)),
                due,
                TimerEffect::Drop,
            ),
            (
                "someone else holds it",
                &sla,
                conv(S::Open, Some(2), Some(0), None),
                due,
                TimerEffect::Drop,
            ),
            (
                "back in the pool",
                &sla,
                conv(S::Pending, None, Some(0), None),
                due,
                TimerEffect::Drop,
            ),
            (
                "resolved",
                &sla,
                conv(S::Resolved, None, Some(0), None),
                due,
                TimerEffect::Drop,
            ),
        ];
        for (why, t, c, now, want) in cases {
            assert_eq!(on_fire(t, &c, &r, &facts(true), now), want, "{why}");
        }
        assert_eq!(
            on_fire(&sla, &waiting, &rules(None, None, None), &facts(true), due),
            TimerEffect::Drop,
            "SLA switched off"
        );

        let rel = timer(OfflineRelease, Some(1), due);
        assert_eq!(
            on_fire(&rel, &waiting, &r, &facts(false), due),
            TimerEffect::TakeBack {
                from: agent(1),
                trigger: Trigger::OfflineRelease
            }
        );
        assert_eq!(
            on_fire(&rel, &waiting, &r, &facts(true), due),
            TimerEffect::Drop,
            "back online"
        );

        // Customer silence: reply at +1 min, 60 minutes → due at +61 min.
        let answered = conv(S::Open, Some(1), Some(0), Some(MIN));
        let cs_due = T.plus_minutes(61);
        let cs = timer(CustomerSilence, None, cs_due);
        assert_eq!(
            on_fire(&cs, &answered, &r, &facts(true), cs_due),
            TimerEffect::Resolve {
                reason: CloseReason::CustomerSilence,
                closing_message: Some("Cảm ơn anh/chị".into())
            }
        );
        // The customer wrote at +30 min: the conversation awaits an agent now; customer silence drops.
        let wrote = conv(S::Open, Some(1), Some(30 * MIN), Some(MIN));
        assert_eq!(
            on_fire(&cs, &wrote, &r, &facts(true), cs_due),
            TimerEffect::Drop
        );
        // A later agent reply moved the deadline past now: this copy drops (the store holds the new one).
        let later = conv(S::Open, Some(1), Some(0), Some(2 * MIN));
        assert_eq!(
            on_fire(&cs, &later, &r, &facts(true), cs_due),
            TimerEffect::Drop
        );

        let as_due = T.plus_minutes(120);
        let agent_silence = timer(AgentSilence, None, as_due);
        let pool = conv(S::Pending, None, Some(0), None);
        assert_eq!(
            on_fire(&agent_silence, &pool, &r, &facts(true), as_due),
            TimerEffect::Resolve {
                reason: CloseReason::AgentSilence,
                closing_message: None
            }
        );
        assert_eq!(
            on_fire(&agent_silence, &answered, &r, &facts(true), as_due),
            TimerEffect::Drop,
            "answered"
        );
        assert_eq!(
            on_fire(
                &agent_silence,
                &conv(S::Resolved, None, Some(0), None),
                &r,
                &facts(true),
                as_due
            ),
            TimerEffect::Drop
        );
    }
}
