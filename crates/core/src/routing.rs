//! Routing: an inbox's rules, who is eligible, who gets the next conversation, and the transitions
//! routing makes on its own (auto-assign, take a conversation back, auto-resolve).
//!
//! The server gathers the facts (members, presence, open counts, the rotation pointer), asks
//! [`pick_agent`], and applies the transition with compare-and-set, moving the pointer with
//! compare-and-set in the same transaction so the rotation stays fair across several nodes.

use crate::business_hours::{BusinessHours, Date, Range, WEEKDAYS};
use crate::conversation::{Action, ActionKind, ConversationError, Transition};
use crate::ids::AgentId;
use crate::model::{Conversation, ConversationStatus as S, str_enum};
use crate::presence::PresenceStatus;
use crate::time::Timestamp;
use crate::validate::MAX_TEXT_CHARS;
use serde_json::{Map, Value, json};

str_enum!(
    /// How an inbox hands out new conversations.
    Strategy { RoundRobin = "round_robin", SelfClaim = "self_claim", LeastBusy = "least_busy" }
);

impl Strategy {
    /// Routing assigns conversations itself (and drains the backlog) rather than leaving them in the pool.
    pub const fn assigns(self) -> bool {
        !matches!(self, Strategy::SelfClaim)
    }
}

/// Longest timer an admin may set: 30 days.
pub const MAX_MINUTES: u32 = 30 * 24 * 60;
pub const MAX_CAPACITY: u32 = 10_000;
pub const MAX_AGENT_IDS: usize = 1_000;

/// Resolve conversations nobody needs any more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoClose {
    /// The agent had the last word and the customer has been silent this long → resolved.
    pub customer_silence_minutes: Option<u32>,
    /// The customer had the last word and no agent has written for this long → resolved.
    pub agent_silence_minutes: Option<u32>,
    /// Sent to the customer when a conversation closes for customer silence (where the channel allows).
    pub closing_message: Option<String>,
}

/// An inbox's routing rules. [`Default`] is what a new inbox starts with: `self_claim`, all else off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRules {
    pub strategy: Strategy,
    /// Route to agents who are away or offline too.
    pub include_offline: bool,
    /// A returning customer goes back to the agent who last held the conversation, if eligible.
    pub sticky: bool,
    /// Who may receive conversations; empty = every member of the inbox.
    pub agent_ids: Vec<AgentId>,
    /// Capacity for agents without their own.
    pub default_capacity: Option<u32>,
    /// "Chống giành khách": the holder must answer a customer message within this many minutes or
    /// the conversation is taken back.
    pub reply_sla_minutes: Option<u32>,
    /// When the reply deadline was switched on: it applies only to customer messages from then on
    /// (`None`: to all — rules saved before this was recorded). Kept by the store, derived with
    /// [`reply_sla_since`]; not part of the JSON an admin edits.
    pub reply_sla_since: Option<Timestamp>,
    pub auto_close: AutoClose,
    /// An agent offline this long loses the conversations they hold that await a reply.
    pub offline_release_minutes: Option<u32>,
    pub business_hours: Option<BusinessHours>,
}

impl Default for RoutingRules {
    fn default() -> Self {
        Self {
            strategy: Strategy::SelfClaim,
            include_offline: false,
            sticky: false,
            agent_ids: Vec::new(),
            default_capacity: None,
            reply_sla_minutes: None,
            reply_sla_since: None,
            auto_close: AutoClose::default(),
            offline_release_minutes: None,
            business_hours: None,
        }
    }
}

/// A rule that does not hold: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RulesError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> RulesError {
    RulesError {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads a JSON object, refusing keys not in `known` so a typo fails loudly.
fn object<'a>(
    v: &'a Value,
    field: &str,
    known: &[&str],
) -> Result<&'a Map<String, Value>, RulesError> {
    let obj = v
        .as_object()
        .ok_or_else(|| err(field, "must be an object"))?;
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        let path = if field.is_empty() {
            k.clone()
        } else {
            format!("{field}.{k}")
        };
        return Err(err(path, "is not a known setting"));
    }
    Ok(obj)
}

fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn bool_of(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    default: bool,
) -> Result<bool, RulesError> {
    match obj.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| err(path(prefix, key), "must be true or false")),
    }
}

fn number_of(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    max: u32,
    what: &str,
) -> Result<Option<u32>, RulesError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=u64::from(max)).contains(n))
            .map(|n| Some(n as u32))
            .ok_or_else(|| {
                err(
                    path(prefix, key),
                    format!("must be null or a whole number of {what} from 1 to {max}"),
                )
            }),
    }
}

fn text_of(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<Option<String>, RulesError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else if t.chars().count() > MAX_TEXT_CHARS {
                Err(err(
                    path(prefix, key),
                    format!("must be at most {MAX_TEXT_CHARS} characters"),
                ))
            } else {
                Ok(Some(t.to_owned()))
            }
        }
        Some(_) => Err(err(path(prefix, key), "must be text or null")),
    }
}

fn parse_business_hours(v: &Value) -> Result<Option<BusinessHours>, RulesError> {
    if v.is_null() {
        return Ok(None);
    }
    const P: &str = "business_hours";
    let obj = object(
        v,
        P,
        &[
            "utc_offset_minutes",
            "days",
            "holidays",
            "pause_routing",
            "auto_reply",
        ],
    )?;
    let utc_offset_minutes = match obj.get("utc_offset_minutes") {
        None => 0,
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                err(
                    path(P, "utc_offset_minutes"),
                    "must be a whole number of minutes",
                )
            })?,
    };
    let mut days: [Vec<Range>; 7] = Default::default();
    if let Some(d) = obj.get("days") {
        let dobj = object(d, "business_hours.days", &WEEKDAYS)?;
        for (i, name) in WEEKDAYS.iter().enumerate() {
            let field = format!("business_hours.days.{name}");
            let Some(list) = dobj.get(*name) else {
                continue;
            };
            let list = list.as_array().ok_or_else(|| {
                err(
                    &field,
                    "must be a list of {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}",
                )
            })?;
            for r in list {
                let ro = object(r, &field, &["start", "end"])?;
                let time = |k: &str| {
                    ro.get(k)
                        .and_then(Value::as_str)
                        .and_then(Range::parse_time)
                        .ok_or_else(|| err(&field, format!("`{k}` must be a time like \"08:30\"")))
                };
                days[i].push(Range {
                    start: time("start")?,
                    end: time("end")?,
                });
            }
            days[i].sort();
        }
    }
    let mut holidays = Vec::new();
    if let Some(h) = obj.get("holidays") {
        let list = h
            .as_array()
            .ok_or_else(|| err("business_hours.holidays", "must be a list of dates"))?;
        for d in list {
            holidays.push(d.as_str().and_then(Date::parse).ok_or_else(|| {
                err(
                    "business_hours.holidays",
                    "dates must look like \"2026-09-02\"",
                )
            })?);
        }
        holidays.sort();
        holidays.dedup();
    }
    let bh = BusinessHours {
        utc_offset_minutes,
        days,
        holidays,
        pause_routing: bool_of(obj, P, "pause_routing", true)?,
        auto_reply: text_of(obj, P, "auto_reply")?,
    };
    bh.check().map_err(|(f, m)| err(f, m))?;
    Ok(Some(bh))
}

impl RoutingRules {
    /// Parses and checks rules as the API takes them. Missing keys take their defaults; unknown keys
    /// are refused. Whether the listed agents are members of the inbox is the server's check.
    pub fn from_json(v: &Value) -> Result<Self, RulesError> {
        let obj = object(
            v,
            "",
            &[
                "strategy",
                "include_offline",
                "sticky",
                "agent_ids",
                "default_capacity",
                "reply_sla_minutes",
                "auto_close",
                "offline_release_minutes",
                "business_hours",
            ],
        )?;
        let d = Self::default();
        let strategy = match obj.get("strategy") {
            None => d.strategy,
            Some(s) => s
                .as_str()
                .and_then(Strategy::parse)
                .ok_or_else(|| err("strategy", "must be round_robin, self_claim or least_busy"))?,
        };
        let mut agent_ids = Vec::new();
        match obj.get("agent_ids") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for a in list {
                    let id = a
                        .as_str()
                        .and_then(|s| s.parse::<AgentId>().ok())
                        .ok_or_else(|| err("agent_ids", "must be a list of agent ids"))?;
                    if !agent_ids.contains(&id) {
                        agent_ids.push(id);
                    }
                }
                if agent_ids.len() > MAX_AGENT_IDS {
                    return Err(err("agent_ids", format!("at most {MAX_AGENT_IDS} agents")));
                }
            }
            Some(_) => return Err(err("agent_ids", "must be a list of agent ids")),
        }
        let auto_close = match obj.get("auto_close") {
            None | Some(Value::Null) => AutoClose::default(),
            Some(v) => {
                const P: &str = "auto_close";
                let o = object(
                    v,
                    P,
                    &[
                        "customer_silence_minutes",
                        "agent_silence_minutes",
                        "closing_message",
                    ],
                )?;
                AutoClose {
                    customer_silence_minutes: number_of(
                        o,
                        P,
                        "customer_silence_minutes",
                        MAX_MINUTES,
                        "minutes",
                    )?,
                    agent_silence_minutes: number_of(
                        o,
                        P,
                        "agent_silence_minutes",
                        MAX_MINUTES,
                        "minutes",
                    )?,
                    closing_message: text_of(o, P, "closing_message")?,
                }
            }
        };
        Ok(Self {
            strategy,
            include_offline: bool_of(obj, "", "include_offline", d.include_offline)?,
            sticky: bool_of(obj, "", "sticky", d.sticky)?,
            agent_ids,
            default_capacity: number_of(
                obj,
                "",
                "default_capacity",
                MAX_CAPACITY,
                "conversations",
            )?,
            reply_sla_minutes: number_of(obj, "", "reply_sla_minutes", MAX_MINUTES, "minutes")?,
            reply_sla_since: None,
            auto_close,
            offline_release_minutes: number_of(
                obj,
                "",
                "offline_release_minutes",
                MAX_MINUTES,
                "minutes",
            )?,
            business_hours: obj
                .get("business_hours")
                .map(parse_business_hours)
                .transpose()?
                .flatten(),
        })
    }

    /// The rules as the API shows them (and the store keeps them): every key present.
    pub fn to_json(&self) -> Value {
        let business_hours = self.business_hours.as_ref().map(|bh| {
            let mut days = Map::new();
            for (i, name) in WEEKDAYS.iter().enumerate() {
                let ranges: Vec<Value> = bh.days[i]
                    .iter()
                    .map(|r| json!({"start": Range::format_time(r.start), "end": Range::format_time(r.end)}))
                    .collect();
                days.insert((*name).to_owned(), Value::Array(ranges));
            }
            json!({
                "utc_offset_minutes": bh.utc_offset_minutes,
                "days": days,
                "holidays": bh.holidays.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "pause_routing": bh.pause_routing,
                "auto_reply": bh.auto_reply,
            })
        });
        json!({
            "strategy": self.strategy,
            "include_offline": self.include_offline,
            "sticky": self.sticky,
            "agent_ids": self.agent_ids,
            "default_capacity": self.default_capacity,
            "reply_sla_minutes": self.reply_sla_minutes,
            "auto_close": {
                "customer_silence_minutes": self.auto_close.customer_silence_minutes,
                "agent_silence_minutes": self.auto_close.agent_silence_minutes,
                "closing_message": self.auto_close.closing_message,
            },
            "offline_release_minutes": self.offline_release_minutes,
            "business_hours": business_hours,
        })
    }

    /// Whether the reply deadline watches this conversation's unanswered customer message: the
    /// deadline is on and the message arrived (provider time) at or after it was switched on.
    pub fn reply_sla_covers(&self, c: &Conversation) -> bool {
        self.reply_sla_minutes.is_some()
            && self
                .reply_sla_since
                .is_none_or(|since| c.last_customer_message_at.is_some_and(|t| t >= since))
    }

    /// Outside business hours (never, when the inbox has none).
    pub fn outside_hours(&self, now: Timestamp) -> bool {
        self.business_hours
            .as_ref()
            .is_some_and(|bh| !bh.is_open(now))
    }

    /// Routing waits until the inbox opens again.
    pub fn routing_paused(&self, now: Timestamp) -> bool {
        self.business_hours
            .as_ref()
            .is_some_and(|bh| bh.pause_routing && !bh.is_open(now))
    }

    /// The automatic reply for a conversation entering the pool now, if outside hours and set.
    pub fn outside_hours_reply(&self, now: Timestamp) -> Option<&str> {
        self.business_hours
            .as_ref()
            .filter(|bh| !bh.is_open(now))
            .and_then(|bh| bh.auto_reply.as_deref())
    }
}

/// When `next`'s reply deadline counts from, saved over `previous` at `now`: switching it on starts
/// it now (messages already waiting are not suddenly late); changing its minutes or any other rule
/// keeps the time it was switched on; switching it off forgets it.
pub fn reply_sla_since(
    previous: Option<&RoutingRules>,
    next: &RoutingRules,
    now: Timestamp,
) -> Option<Timestamp> {
    next.reply_sla_minutes?;
    match previous {
        Some(p) if p.reply_sla_minutes.is_some() => p.reply_sla_since,
        _ => Some(now),
    }
}

/// One agent routing may consider, with the facts routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub agent_id: AgentId,
    pub active: bool,
    pub presence: PresenceStatus,
    /// Open conversations the agent holds now (all inboxes).
    pub open: u32,
    /// The agent's own capacity, else the inbox default; `None` = no limit.
    pub capacity: Option<u32>,
}

impl Candidate {
    pub fn has_room(&self) -> bool {
        self.capacity.is_none_or(|c| self.open < c)
    }
}

/// May `c` receive a conversation now? Active, not excluded, online (or the inbox routes to
/// offline agents too), and under capacity.
pub fn eligible(rules: &RoutingRules, c: &Candidate, exclude: &[AgentId]) -> bool {
    c.active
        && !exclude.contains(&c.agent_id)
        && (rules.include_offline || c.presence == PresenceStatus::Online)
        && c.has_room()
}

str_enum!(
    /// Why routing chose an agent.
    PickReason { RoundRobin = "round_robin", LeastBusy = "least_busy", Sticky = "sticky" }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub agent_id: AgentId,
    pub reason: PickReason,
    /// The rotation pointer moves to this agent (round-robin and least-busy picks; sticky does not).
    pub moves_pointer: bool,
}

/// What routing knows when it picks.
#[derive(Debug, Clone, Copy)]
pub struct PickInput<'a> {
    pub candidates: &'a [Candidate],
    /// The last agent the rotation gave a conversation to (stored per inbox).
    pub pointer: Option<AgentId>,
    /// The agent a returning customer had; considered first when the inbox is sticky.
    pub previous: Option<AgentId>,
    /// Never these (e.g. the agent who just missed the reply SLA).
    pub exclude: &'a [AgentId],
}

/// The first eligible agent after `pointer` in id order, wrapping around: an even rotation that
/// survives agents joining and leaving (the pointer is an agent id, not an index).
fn next_in_rotation<'a>(
    sorted: &[&'a Candidate],
    pointer: Option<AgentId>,
) -> Option<&'a Candidate> {
    let after = pointer.and_then(|p| sorted.iter().find(|c| c.agent_id > p));
    after.or_else(|| sorted.first()).copied()
}

/// Who gets the conversation, or `None`: it stays in the pool (self-claim, routing paused outside
/// business hours, or nobody eligible).
pub fn pick_agent(rules: &RoutingRules, input: PickInput<'_>, now: Timestamp) -> Option<Pick> {
    if rules.routing_paused(now) {
        return None;
    }
    let mut pool: Vec<&Candidate> = input
        .candidates
        .iter()
        .filter(|c| eligible(rules, c, input.exclude))
        .collect();
    pool.sort_by_key(|c| c.agent_id);
    pool.dedup_by_key(|c| c.agent_id);
    if rules.sticky
        && let Some(prev) = input.previous
        && pool.iter().any(|c| c.agent_id == prev)
    {
        return Some(Pick {
            agent_id: prev,
            reason: PickReason::Sticky,
            moves_pointer: false,
        });
    }
    let (chosen, reason) = match rules.strategy {
        Strategy::SelfClaim => return None,
        Strategy::RoundRobin => (
            next_in_rotation(&pool, input.pointer)?,
            PickReason::RoundRobin,
        ),
        Strategy::LeastBusy => {
            let least = pool.iter().map(|c| c.open).min()?;
            let tied: Vec<&Candidate> = pool.into_iter().filter(|c| c.open == least).collect();
            // Ties go round the rotation so equal agents share evenly.
            (
                next_in_rotation(&tied, input.pointer)?,
                PickReason::LeastBusy,
            )
        }
    };
    Some(Pick {
        agent_id: chosen.agent_id,
        reason,
        moves_pointer: true,
    })
}

str_enum!(
    /// What made routing act.
    Trigger {
        Arrival = "arrival",
        Backlog = "backlog",
        ReplySla = "reply_sla",
        OfflineRelease = "offline_release",
    }
);

str_enum!(
    /// Why a conversation was resolved automatically.
    CloseReason { CustomerSilence = "customer_silence", AgentSilence = "agent_silence" }
);

fn action(kind: ActionKind, detail: Value) -> Action {
    Action {
        kind,
        actor: None,
        detail,
    }
}

fn changed(mut c: Conversation, actions: Vec<Action>) -> Transition {
    c.version += 1;
    Transition {
        conversation: c,
        actions,
        changed: true,
    }
}

/// Routing gives a conversation waiting in the pool to `pick`'s agent.
pub fn auto_assign(
    c: &Conversation,
    pick: Pick,
    trigger: Trigger,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    match (c.status, c.assignee_id) {
        (S::Resolved, _) => return Err(ConversationError::Resolved),
        (_, Some(holder)) => return Err(ConversationError::Claimed { holder }),
        (S::Bot, _) => return Err(ConversationError::BotActive),
        _ => {}
    }
    let mut n = c.clone();
    n.status = S::Open;
    n.assignee_id = Some(pick.agent_id);
    n.last_assignee_id = Some(pick.agent_id);
    n.participants.retain(|p| *p != pick.agent_id);
    n.last_activity_at = n.last_activity_at.max(now);
    Ok(changed(
        n,
        vec![action(
            ActionKind::AutoAssigned,
            json!({"to": pick.agent_id, "reason": pick.reason, "trigger": trigger}),
        )],
    ))
}

/// The holder loses the conversation (missed reply SLA, offline too long): to `to`, or back to the
/// pool. The action log names who lost it, why, and where it went.
pub fn take_back(
    c: &Conversation,
    to: Option<AgentId>,
    trigger: Trigger,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    if c.status == S::Resolved {
        return Err(ConversationError::Resolved);
    }
    let Some(from) = c.assignee_id else {
        return Err(ConversationError::ClaimRequired);
    };
    if to == Some(from) {
        return Err(ConversationError::SameAgent);
    }
    let mut n = c.clone();
    n.last_activity_at = n.last_activity_at.max(now);
    let mut actions = vec![action(
        ActionKind::ReturnedToPool,
        json!({"from": from, "reason": trigger, "to": to}),
    )];
    match to {
        Some(agent) => {
            n.status = S::Open;
            n.assignee_id = Some(agent);
            n.last_assignee_id = Some(agent);
            n.participants.retain(|p| *p != agent);
            actions.push(action(
                ActionKind::AutoAssigned,
                json!({"to": agent, "reason": "next_agent", "trigger": trigger}),
            ));
        }
        None => {
            n.status = S::Pending;
            n.assignee_id = None;
        }
    }
    Ok(changed(n, actions))
}

/// Whom routing must not give `c` to after `lost_by` lost it (missed the reply deadline, went
/// offline): that agent, and the agent who transferred it away (a hand-over is never undone by
/// routing).
pub fn never_back_to(c: &Conversation, lost_by: Option<AgentId>) -> Vec<AgentId> {
    let mut out: Vec<AgentId> = lost_by.into_iter().chain(c.handed_over_by).collect();
    out.dedup();
    out
}

/// Resolves a conversation nobody needs any more.
pub fn auto_resolve(
    c: &Conversation,
    reason: CloseReason,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    if c.status == S::Resolved {
        return Err(ConversationError::Resolved);
    }
    let mut n = c.clone();
    n.status = S::Resolved;
    n.assignee_id = None;
    n.handed_over_by = None;
    n.participants.clear();
    n.last_activity_at = n.last_activity_at.max(now);
    Ok(changed(
        n,
        vec![action(
            ActionKind::AutoResolved,
            json!({"reason": reason, "previous_assignee": c.assignee_id}),
        )],
    ))
}

/// Where a conversation stands with the waiting pool after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolEntry {
    /// Not waiting (claimed, assigned, resolved, with the bot): out of the pool.
    Out,
    /// Still waiting (e.g. the customer wrote again): it keeps its place in the queue.
    Keep,
    /// Entering the pool now. If someone held it, routing must not hand it straight back to them.
    Enter { excluded: Option<AgentId> },
}

/// Whether a conversation waits in the pool: pending and unassigned.
pub fn in_pool(c: &Conversation) -> bool {
    c.status == S::Pending && c.assignee_id.is_none()
}

/// The pool entry a change from `before` (`None`: new) to `after` leaves.
pub fn pool_entry(before: Option<&Conversation>, after: &Conversation) -> PoolEntry {
    if !in_pool(after) {
        PoolEntry::Out
    } else if before.is_some_and(in_pool) {
        PoolEntry::Keep
    } else {
        PoolEntry::Enter {
            excluded: before.and_then(|b| b.assignee_id),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::business_hours::timestamp_at;
    use crate::ids::*;
    use PresenceStatus::*;
    use uuid::Uuid;

    fn agent(n: u128) -> AgentId {
        AgentId(Uuid::from_u128(n))
    }

    fn cand(n: u128, presence: PresenceStatus, open: u32, capacity: Option<u32>) -> Candidate {
        Candidate {
            agent_id: agent(n),
            active: true,
            presence,
            open,
            capacity,
        }
    }

    fn rules(strategy: Strategy) -> RoutingRules {
        RoutingRules {
            strategy,
            ..RoutingRules::default()
        }
    }

    const NOW: Timestamp = Timestamp(1_790_000_000_000);

    fn pick(
        r: &RoutingRules,
        cs: &[Candidate],
        pointer: Option<u128>,
        previous: Option<u128>,
        exclude: &[u128],
    ) -> Option<(u128, PickReason)> {
        let exclude: Vec<AgentId> = exclude.iter().copied().map(agent).collect();
        pick_agent(
            r,
            PickInput {
                candidates: cs,
                pointer: pointer.map(agent),
                previous: previous.map(agent),
                exclude: &exclude,
            },
            NOW,
        )
        .map(|p| (p.agent_id.0.as_u128(), p.reason))
    }

    #[test]
    fn round_robin_is_fair_over_1000_arrivals() {
        for n_agents in [1u128, 2, 3, 7] {
            let r = rules(Strategy::RoundRobin);
            let cs: Vec<Candidate> = (1..=n_agents).map(|i| cand(i, Online, 0, None)).collect();
            let mut counts = vec![0u32; n_agents as usize];
            let mut pointer = None;
            for _ in 0..1000 {
                let p = pick_agent(
                    &r,
                    PickInput {
                        candidates: &cs,
                        pointer,
                        previous: None,
                        exclude: &[],
                    },
                    NOW,
                )
                .unwrap();
                assert!(p.moves_pointer);
                pointer = Some(p.agent_id);
                counts[(p.agent_id.0.as_u128() - 1) as usize] += 1;
            }
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(max - min <= 1, "{n_agents} agents: {counts:?}");
            assert_eq!(counts.iter().sum::<u32>(), 1000);
        }
    }

    #[test]
    fn round_robin_skips_the_ineligible_and_survives_the_pointer_leaving() {
        let r = rules(Strategy::RoundRobin);
        let cs = [
            cand(1, Online, 0, None),
            cand(2, Offline, 0, None),
            cand(3, Online, 2, Some(2)), // full
            cand(4, Online, 0, None),
        ];
        let rr = PickReason::RoundRobin;
        assert_eq!(pick(&r, &cs, None, None, &[]), Some((1, rr)));
        assert_eq!(
            pick(&r, &cs, Some(1), None, &[]),
            Some((4, rr)),
            "2 offline, 3 full"
        );
        assert_eq!(
            pick(&r, &cs, Some(4), None, &[]),
            Some((1, rr)),
            "wraps around"
        );
        // The pointer names an agent who is gone: carry on after their place.
        assert_eq!(pick(&r, &cs, Some(2), None, &[]), Some((4, rr)));
        assert_eq!(pick(&r, &cs, Some(99), None, &[]), Some((1, rr)));
        assert_eq!(
            pick(&r, &cs, Some(1), None, &[4]),
            Some((1, rr)),
            "exclusion"
        );
    }

    /// (why, candidates, pointer, expected pick)
    type LeastBusyCase = (
        &'static str,
        Vec<Candidate>,
        Option<u128>,
        Option<(u128, PickReason)>,
    );

    #[test]
    fn least_busy_respects_capacity_and_rotates_ties() {
        let r = rules(Strategy::LeastBusy);
        let lb = PickReason::LeastBusy;
        let cases: &[LeastBusyCase] = &[
            (
                "fewest open wins",
                vec![
                    cand(1, Online, 3, None),
                    cand(2, Online, 1, None),
                    cand(3, Online, 2, None),
                ],
                None,
                Some((2, lb)),
            ),
            (
                "the least busy is full: next least busy",
                vec![
                    cand(1, Online, 3, Some(5)),
                    cand(2, Online, 1, Some(1)),
                    cand(3, Online, 2, Some(5)),
                ],
                None,
                Some((3, lb)),
            ),
            (
                "everyone full",
                vec![cand(1, Online, 2, Some(2)), cand(2, Online, 1, Some(1))],
                None,
                None,
            ),
            (
                "capacity zero takes nothing",
                vec![cand(1, Online, 0, Some(0)), cand(2, Online, 4, None)],
                None,
                Some((2, lb)),
            ),
            (
                "ties rotate after the pointer",
                vec![
                    cand(1, Online, 1, None),
                    cand(2, Online, 1, None),
                    cand(3, Online, 1, None),
                ],
                Some(1),
                Some((2, lb)),
            ),
            (
                "ties wrap around",
                vec![
                    cand(1, Online, 1, None),
                    cand(2, Online, 1, None),
                    cand(3, Online, 5, None),
                ],
                Some(2),
                Some((1, lb)),
            ),
        ];
        for (why, cs, pointer, want) in cases {
            assert_eq!(pick(&r, cs, *pointer, None, &[]), *want, "{why}");
        }
    }

    #[test]
    fn least_busy_evens_out_loads() {
        let r = rules(Strategy::LeastBusy);
        let mut cs = vec![
            cand(1, Online, 4, Some(10)),
            cand(2, Online, 0, Some(10)),
            cand(3, Online, 1, Some(10)),
        ];
        let mut pointer = None;
        for _ in 0..25 {
            let Some(p) = pick_agent(
                &r,
                PickInput {
                    candidates: &cs,
                    pointer,
                    previous: None,
                    exclude: &[],
                },
                NOW,
            ) else {
                break;
            };
            pointer = Some(p.agent_id);
            if let Some(c) = cs.iter_mut().find(|c| c.agent_id == p.agent_id) {
                c.open += 1;
            }
        }
        // 5 + 25 = 30 conversations over capacity 3 × 10: everyone full, nobody over.
        assert_eq!(
            cs.iter().map(|c| c.open).collect::<Vec<_>>(),
            vec![10, 10, 10]
        );
    }

    #[test]
    fn offline_inclusion() {
        let cs = [cand(1, Offline, 0, None), cand(2, Away, 0, None)];
        let mut r = rules(Strategy::RoundRobin);
        assert_eq!(pick(&r, &cs, None, None, &[]), None, "nobody online");
        r.include_offline = true;
        assert_eq!(
            pick(&r, &cs, None, None, &[]),
            Some((1, PickReason::RoundRobin))
        );
        assert_eq!(
            pick(&r, &cs, Some(1), None, &[]),
            Some((2, PickReason::RoundRobin)),
            "away too"
        );
        let mut inactive = cand(3, Online, 0, None);
        inactive.active = false;
        assert_eq!(
            pick(&r, &[inactive], None, None, &[]),
            None,
            "deactivated agents never"
        );
    }

    #[test]
    fn sticky_goes_back_to_the_previous_agent_only_if_eligible() {
        let cs = [
            cand(1, Online, 0, None),
            cand(2, Online, 0, None),
            cand(3, Offline, 0, None),
            cand(4, Online, 1, Some(1)),
        ];
        let mut r = rules(Strategy::RoundRobin);
        r.sticky = true;
        let s = PickReason::Sticky;
        let rr = PickReason::RoundRobin;
        let cases = [
            ("previous is eligible", Some(2), Some(1), Some((2, s))),
            (
                "previous offline: rotation",
                Some(3),
                Some(1),
                Some((2, rr)),
            ),
            ("previous full: rotation", Some(4), Some(1), Some((2, rr))),
            ("previous unknown: rotation", Some(77), None, Some((1, rr))),
            ("no previous", None, Some(2), Some((1, rr))),
        ];
        for (why, prev, pointer, want) in cases {
            assert_eq!(pick(&r, &cs, pointer, prev, &[]), want, "{why}");
        }
        assert_eq!(
            pick(&r, &cs, None, Some(2), &[2]),
            Some((1, rr)),
            "excluded previous"
        );
        // A sticky pick leaves the rotation pointer where it was.
        let p = pick_agent(
            &r,
            PickInput {
                candidates: &cs,
                pointer: None,
                previous: Some(agent(2)),
                exclude: &[],
            },
            NOW,
        );
        assert_eq!(p.map(|p| p.moves_pointer), Some(false));
        // Sticky works in a self-claim inbox too; without a previous agent it stays in the pool.
        let mut sc = rules(Strategy::SelfClaim);
        sc.sticky = true;
        assert_eq!(pick(&sc, &cs, None, Some(1), &[]), Some((1, s)));
        assert_eq!(pick(&sc, &cs, None, None, &[]), None);
        sc.sticky = false;
        assert_eq!(pick(&sc, &cs, None, Some(1), &[]), None, "not sticky: pool");
        r.sticky = false;
        assert_eq!(
            pick(&r, &cs, Some(1), Some(1), &[]),
            Some((2, rr)),
            "sticky off"
        );
    }

    #[test]
    fn nobody_eligible_stays_in_the_pool() {
        for strategy in [
            Strategy::RoundRobin,
            Strategy::LeastBusy,
            Strategy::SelfClaim,
        ] {
            let r = rules(strategy);
            assert_eq!(
                pick(&r, &[], None, None, &[]),
                None,
                "{strategy}: no agents"
            );
            let cs = [
                cand(1, Offline, 0, None),
                cand(2, Online, 3, Some(3)),
                cand(3, Online, 0, None),
            ];
            assert_eq!(
                pick(&r, &cs, None, None, &[3]),
                None,
                "{strategy}: offline, full, excluded"
            );
        }
    }

    fn bh_rules() -> RoutingRules {
        RoutingRules::from_json(&json!({
            "strategy": "round_robin",
            "business_hours": {
                "utc_offset_minutes": 420,
                "days": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]},
                "holidays": ["2026-09-28"],
                "pause_routing": true,
                "auto_reply": "Shop nghỉ, sẽ trả lời sớm"
            }
        }))
        .unwrap()
    }

    #[test]
    fn business_hours_pause_routing_and_choose_the_auto_reply() {
        let r = bh_rules();
        let cs = [cand(1, Online, 0, None)];
        let monday = |time: u16| timestamp_at(Date::parse("2026-09-21").unwrap(), time, 420);
        let holiday = timestamp_at(Date::parse("2026-09-28").unwrap(), 600, 420);
        for (why, now, open) in [
            ("morning", monday(9 * 60), true),
            ("lunch", monday(12 * 60 + 30), false),
            ("afternoon", monday(14 * 60), true),
            ("holiday Monday", holiday, false),
        ] {
            let p = pick_agent(
                &r,
                PickInput {
                    candidates: &cs,
                    pointer: None,
                    previous: None,
                    exclude: &[],
                },
                now,
            );
            assert_eq!(p.is_some(), open, "{why}");
            assert_eq!(r.outside_hours_reply(now).is_some(), !open, "{why}");
        }
        let mut no_pause = r.clone();
        if let Some(bh) = no_pause.business_hours.as_mut() {
            bh.pause_routing = false;
        }
        assert!(no_pause.outside_hours(holiday));
        assert!(
            !no_pause.routing_paused(holiday),
            "auto-reply only, routing goes on"
        );
    }

    #[test]
    fn rules_parse_round_trip_and_name_the_bad_field() {
        let d = RoutingRules::from_json(&json!({})).unwrap();
        assert_eq!(d, RoutingRules::default());
        assert_eq!(d.to_json()["strategy"], "self_claim");
        let r = bh_rules();
        assert_eq!(
            RoutingRules::from_json(&r.to_json()).unwrap(),
            r,
            "round trip"
        );
        let full = json!({
            "strategy": "least_busy", "include_offline": true, "sticky": true,
            "agent_ids": ["01000000-0000-7000-8000-000000000001", "01000000-0000-7000-8000-000000000001"],
            "default_capacity": 5, "reply_sla_minutes": 10,
            "auto_close": {"customer_silence_minutes": 60, "agent_silence_minutes": 1440, "closing_message": " Bye "},
            "offline_release_minutes": 15, "business_hours": null
        });
        let f = RoutingRules::from_json(&full).unwrap();
        assert_eq!(f.agent_ids.len(), 1, "deduplicated");
        assert_eq!(f.auto_close.closing_message.as_deref(), Some("Bye"));
        assert_eq!(RoutingRules::from_json(&f.to_json()).unwrap(), f);

        let bad = [
            (json!([]), ""),
            (json!({"strategy": "random"}), "strategy"),
            (json!({"strategy": 3}), "strategy"),
            (json!({"stickyy": true}), "stickyy"),
            (json!({"sticky": "yes"}), "sticky"),
            (json!({"reply_sla_minutes": 0}), "reply_sla_minutes"),
            (json!({"reply_sla_minutes": 43_201}), "reply_sla_minutes"),
            (json!({"reply_sla_minutes": 2.5}), "reply_sla_minutes"),
            (json!({"default_capacity": -1}), "default_capacity"),
            (json!({"agent_ids": ["nope"]}), "agent_ids"),
            (json!({"agent_ids": "x"}), "agent_ids"),
            (
                json!({"auto_close": {"customer_silence_minutes": 0}}),
                "auto_close.customer_silence_minutes",
            ),
            (json!({"auto_close": {"after": 5}}), "auto_close.after"),
            (
                json!({"auto_close": {"closing_message": 5}}),
                "auto_close.closing_message",
            ),
            (
                json!({"business_hours": {"days": {"monday": []}}}),
                "business_hours.days.monday",
            ),
            (
                json!({"business_hours": {"days": {"mon": [{"start": "8:00", "end": "12:00"}]}}}),
                "business_hours.days.mon",
            ),
            (
                json!({"business_hours": {"days": {"tue": [{"start": "12:00", "end": "08:00"}]}}}),
                "business_hours.days.tue",
            ),
            (
                json!({"business_hours": {"days": {"wed": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}}}),
                "business_hours.days.wed",
            ),
            (
                json!({"business_hours": {"holidays": ["2026-02-30"]}}),
                "business_hours.holidays",
            ),
            (
                json!({"business_hours": {"utc_offset_minutes": 900}}),
                "business_hours.utc_offset_minutes",
            ),
            (
                json!({"business_hours": {"tz": "Asia/Ho_Chi_Minh"}}),
                "business_hours.tz",
            ),
        ];
        for (input, field) in bad {
            let got = RoutingRules::from_json(&input).map_err(|e| e.field);
            assert_eq!(got, Err(field.to_owned()), "{input}");
        }
    }

    fn conv(status: S, assignee: Option<u128>) -> Conversation {
        let mut c = Conversation::new_from_customer(
            ConversationId(Uuid::from_u128(100)),
            WorkspaceId(Uuid::from_u128(200)),
            InboxId(Uuid::from_u128(300)),
            ContactId(Uuid::from_u128(400)),
            Timestamp(1_000),
        );
        c.status = status;
        c.assignee_id = assignee.map(agent);
        c
    }

    #[test]
    fn reply_sla_since_table() {
        let earlier = Timestamp(NOW.0 - 3_600_000);
        let with = |sla: Option<u32>, since: Option<Timestamp>| RoutingRules {
            reply_sla_minutes: sla,
            reply_sla_since: since,
            ..RoutingRules::default()
        };
        let cases: Vec<(&str, Option<RoutingRules>, RoutingRules, Option<Timestamp>)> = vec![
            ("first rules, on", None, with(Some(5), None), Some(NOW)),
            ("first rules, off", None, with(None, None), None),
            (
                "switched on",
                Some(with(None, None)),
                with(Some(5), None),
                Some(NOW),
            ),
            (
                "minutes changed: still since it was switched on",
                Some(with(Some(5), Some(earlier))),
                with(Some(10), None),
                Some(earlier),
            ),
            (
                "on before this was recorded: stays unrestricted",
                Some(with(Some(5), None)),
                with(Some(5), None),
                None,
            ),
            (
                "switched off",
                Some(with(Some(5), Some(earlier))),
                with(None, None),
                None,
            ),
        ];
        for (why, previous, next, want) in cases {
            assert_eq!(
                reply_sla_since(previous.as_ref(), &next, NOW),
                want,
                "{why}"
            );
        }
        let r = with(Some(5), Some(NOW));
        let mut c = conv(S::Open, Some(1));
        assert!(!r.reply_sla_covers(&c), "no customer message");
        c.last_customer_message_at = Some(Timestamp(NOW.0 - 1));
        assert!(!r.reply_sla_covers(&c), "1 ms before it was switched on");
        c.last_customer_message_at = Some(NOW);
        assert!(r.reply_sla_covers(&c), "exactly when it was switched on");
        assert!(with(Some(5), None).reply_sla_covers(&c));
        assert!(!with(None, None).reply_sla_covers(&c), "off");
    }

    #[test]
    fn never_back_to_the_agent_who_lost_or_handed_it_over() {
        let mut c = conv(S::Open, Some(2));
        assert_eq!(never_back_to(&c, Some(agent(2))), vec![agent(2)]);
        assert_eq!(never_back_to(&c, None), Vec::<AgentId>::new());
        c.handed_over_by = Some(agent(1));
        assert_eq!(
            never_back_to(&c, Some(agent(2))),
            vec![agent(2), agent(1)],
            "1 transferred it to 2, 2 missed the deadline"
        );
        assert_eq!(
            never_back_to(&c, None),
            vec![agent(1)],
            "waiting in the pool"
        );
        c.handed_over_by = Some(agent(2));
        assert_eq!(never_back_to(&c, Some(agent(2))), vec![agent(2)]);
        // Round-robin over 1, 2, 3 with the pointer on 3: the rotation's next would be 1, who
        // handed it over; 2 missed the deadline; so 3.
        let cands = [
            cand(1, Online, 0, None),
            cand(2, Online, 0, None),
            cand(3, Online, 0, None),
        ];
        c.handed_over_by = Some(agent(1));
        let exclude = never_back_to(&c, Some(agent(2)));
        let input = PickInput {
            candidates: &cands,
            pointer: Some(agent(3)),
            previous: None,
            exclude: &exclude,
        };
        let pick = pick_agent(&rules(Strategy::RoundRobin), input, NOW);
        assert_eq!(pick.map(|p| p.agent_id), Some(agent(3)));
        let only_them = [cand(1, Online, 0, None), cand(2, Online, 0, None)];
        let input = PickInput {
            candidates: &only_them,
            ..input
        };
        assert_eq!(
            pick_agent(&rules(Strategy::RoundRobin), input, NOW),
            None,
            "nobody else: it waits in the pool"
        );
    }

    #[test]
    fn routing_transitions() {
        let p = Pick {
            agent_id: agent(1),
            reason: PickReason::RoundRobin,
            moves_pointer: true,
        };
        let t = auto_assign(&conv(S::Pending, None), p, Trigger::Arrival, NOW).unwrap();
        assert_eq!(
            (t.conversation.status, t.conversation.assignee_id),
            (S::Open, Some(agent(1)))
        );
        assert_eq!(t.conversation.last_assignee_id, Some(agent(1)));
        assert_eq!(t.conversation.version, 1);
        assert_eq!(t.actions[0].kind, ActionKind::AutoAssigned);
        assert_eq!(t.actions[0].actor, None);
        assert_eq!(t.actions[0].detail["reason"], "round_robin");
        assert_eq!(
            auto_assign(&conv(S::Open, Some(2)), p, Trigger::Arrival, NOW).map(|_| ()),
            Err(ConversationError::Claimed { holder: agent(2) }),
            "someone claimed it first"
        );
        assert_eq!(
            auto_assign(&conv(S::Resolved, None), p, Trigger::Backlog, NOW).map(|_| ()),
            Err(ConversationError::Resolved)
        );

        let pooled = take_back(&conv(S::Open, Some(1)), None, Trigger::ReplySla, NOW).unwrap();
        assert_eq!(
            (pooled.conversation.status, pooled.conversation.assignee_id),
            (S::Pending, None)
        );
        assert_eq!(pooled.actions.len(), 1);
        assert_eq!(pooled.actions[0].detail["from"], json!(agent(1)));
        assert_eq!(pooled.actions[0].detail["reason"], "reply_sla");
        let moved = take_back(
            &conv(S::Open, Some(1)),
            Some(agent(2)),
            Trigger::ReplySla,
            NOW,
        )
        .unwrap();
        assert_eq!(
            (moved.conversation.status, moved.conversation.assignee_id),
            (S::Open, Some(agent(2)))
        );
        assert_eq!(
            moved.actions.iter().map(|a| a.kind).collect::<Vec<_>>(),
            vec![ActionKind::ReturnedToPool, ActionKind::AutoAssigned]
        );
        assert_eq!(
            take_back(&conv(S::Pending, None), None, Trigger::ReplySla, NOW).map(|_| ()),
            Err(ConversationError::ClaimRequired)
        );
        assert_eq!(
            take_back(
                &conv(S::Open, Some(1)),
                Some(agent(1)),
                Trigger::ReplySla,
                NOW
            )
            .map(|_| ()),
            Err(ConversationError::SameAgent)
        );

        let closed =
            auto_resolve(&conv(S::Open, Some(1)), CloseReason::CustomerSilence, NOW).unwrap();
        assert_eq!(
            (closed.conversation.status, closed.conversation.assignee_id),
            (S::Resolved, None)
        );
        assert_eq!(closed.actions[0].detail["reason"], "customer_silence");
        assert_eq!(
            auto_resolve(&conv(S::Resolved, None), CloseReason::AgentSilence, NOW).map(|_| ()),
            Err(ConversationError::Resolved)
        );
    }

    #[test]
    fn the_pool_keeps_waiting_conversations_in_place_and_excludes_who_lost_one() {
        let cases: [(Option<Conversation>, Conversation, PoolEntry); 6] = [
            (
                None,
                conv(S::Pending, None),
                PoolEntry::Enter { excluded: None },
            ),
            (None, conv(S::Bot, None), PoolEntry::Out),
            (
                Some(conv(S::Pending, None)),
                conv(S::Pending, None),
                PoolEntry::Keep,
            ),
            (
                Some(conv(S::Open, Some(1))),
                conv(S::Pending, None),
                PoolEntry::Enter {
                    excluded: Some(agent(1)),
                },
            ),
            (
                Some(conv(S::Resolved, None)),
                conv(S::Pending, None),
                PoolEntry::Enter { excluded: None },
            ),
            (
                Some(conv(S::Pending, None)),
                conv(S::Open, Some(2)),
                PoolEntry::Out,
            ),
        ];
        for (before, after, want) in cases {
            assert_eq!(
                pool_entry(before.as_ref(), &after),
                want,
                "{before:?} -> {after:?}"
            );
        }
    }
}
