//! The conversation state machine. Every transition takes the current state, who acts and `now`,
//! and returns either the new state with what to record, or a typed error. Nothing is persisted here.

use crate::ids::AgentId;
use crate::model::{Conversation, ConversationStatus as S, Role};
use crate::time::Timestamp;
use serde::Serialize;

/// The agent performing a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub agent_id: AgentId,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("this conversation is held by another agent")]
    Claimed { holder: AgentId },
    #[error("take this conversation before replying")]
    ClaimRequired,
    #[error("this conversation is resolved; reopen it first")]
    Resolved,
    #[error("this conversation is not resolved")]
    NotResolved,
    #[error("only a supervisor or admin may do this")]
    SupervisorRequired,
    #[error("only the agent holding this conversation (or a supervisor) may do this")]
    NotHolder,
    #[error("the agent already takes part in this conversation")]
    AlreadyParticipant,
    #[error("you are not a participant of this conversation")]
    NotParticipant,
    #[error("the conversation is already with that agent")]
    SameAgent,
    #[error("a bot is handling this conversation; take it over first")]
    BotActive,
    #[error("no bot is handling this conversation")]
    NotBot,
}

impl ConversationError {
    /// The stable API error code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Claimed { .. } => "conversation_claimed",
            Self::ClaimRequired => "claim_required",
            Self::Resolved => "conversation_resolved",
            Self::NotResolved => "conversation_not_resolved",
            Self::SupervisorRequired => "supervisor_required",
            Self::NotHolder => "not_holder",
            Self::AlreadyParticipant => "already_participant",
            Self::NotParticipant => "not_participant",
            Self::SameAgent => "same_agent",
            Self::BotActive => "bot_active",
            Self::NotBot => "not_bot",
        }
    }
}

/// What the action log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Created,
    Reopened,
    Claimed,
    Assigned,
    Transferred,
    ParticipantAdded,
    ParticipantLeft,
    Resolved,
    Tagged,
    Untagged,
    /// Routing gave a pool conversation to an agent (round-robin, least-busy, sticky, backlog).
    AutoAssigned,
    /// The holder lost it: missed reply SLA or offline too long.
    ReturnedToPool,
    /// Resolved for customer or agent silence.
    AutoResolved,
    /// An automatic reply was sent (outside business hours).
    AutoReplied,
    /// An automatic message (out-of-hours reply, closing message, ...) was refused by the
    /// messaging-window policy or the channel; it is in the thread, failed, with the reason.
    AutomaticMessageRefused,
    /// The reply deadline passed while nobody could message the customer (the channel's window
    /// closed): the holder keeps the conversation; the deadline is dropped.
    ReplyDeadlineLapsed,
    /// A flow started and holds the conversation (status `bot`).
    FlowStarted,
    /// What a running flow did (a step, an answer, a refusal...): `detail.event` says which.
    FlowStep,
    /// A flow's run ended; `detail.reason` says why.
    FlowEnded,
    /// The bot gave the conversation to humans; routing takes it from the pool.
    HandedOff,
    /// An agent took the conversation from the bot (the flow stopped).
    TakenOver,
    /// The per-conversation auto-reply switch was turned off or on (`detail.on`).
    AutoReplySwitched,
    /// Two conversations of one customer became this one (`detail.absorbed_conversation_id`,
    /// `detail.reason`: `private_reply`, `manual`, …).
    Merged,
    /// A comment rule acted on a customer's comment (`detail.action`, `detail.rule`,
    /// `detail.because`, `detail.result`).
    CommentRule,
}

impl ActionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Reopened => "reopened",
            Self::Claimed => "claimed",
            Self::Assigned => "assigned",
            Self::Transferred => "transferred",
            Self::ParticipantAdded => "participant_added",
            Self::ParticipantLeft => "participant_left",
            Self::Resolved => "resolved",
            Self::Tagged => "tagged",
            Self::Untagged => "untagged",
            Self::AutoAssigned => "auto_assigned",
            Self::ReturnedToPool => "returned_to_pool",
            Self::AutoResolved => "auto_resolved",
            Self::AutoReplied => "auto_replied",
            Self::AutomaticMessageRefused => "automatic_message_refused",
            Self::ReplyDeadlineLapsed => "reply_deadline_lapsed",
            Self::FlowStarted => "flow_started",
            Self::FlowStep => "flow_step",
            Self::FlowEnded => "flow_ended",
            Self::HandedOff => "handed_off",
            Self::TakenOver => "taken_over",
            Self::AutoReplySwitched => "auto_reply_switched",
            Self::Merged => "merged",
            Self::CommentRule => "comment_rule",
        }
    }
}

/// One action-log entry. `actor` is `None` for the customer or the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    pub actor: Option<AgentId>,
    pub detail: serde_json::Value,
}

/// The outcome of a transition: the new state and what to log. `changed == false` means the
/// request was already satisfied (e.g. claiming a conversation you already hold) and nothing is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub conversation: Conversation,
    pub actions: Vec<Action>,
    pub changed: bool,
}

impl Transition {
    fn unchanged(c: &Conversation) -> Self {
        Self {
            conversation: c.clone(),
            actions: Vec::new(),
            changed: false,
        }
    }
    fn changed(mut c: Conversation, actions: Vec<Action>) -> Self {
        c.version += 1;
        Self {
            conversation: c,
            actions,
            changed: true,
        }
    }
}

fn action(kind: ActionKind, actor: Option<AgentId>, detail: serde_json::Value) -> Action {
    Action {
        kind,
        actor,
        detail,
    }
}

fn ensure_not_resolved(c: &Conversation) -> Result<(), ConversationError> {
    if c.status == S::Resolved {
        Err(ConversationError::Resolved)
    } else {
        Ok(())
    }
}

/// A customer wrote at `at` (the provider's time). Creates (when `existing` is `None`), reopens a
/// resolved conversation into the pool, or moves the window and activity forward. Out-of-order
/// deliveries never move times backwards; a future provider time is clamped to `now`.
pub fn customer_message(
    existing: Option<&Conversation>,
    fresh: Conversation,
    at: Timestamp,
    now: Timestamp,
) -> Transition {
    let at = at.clamp_to(now);
    let bump = |c: &mut Conversation| {
        c.last_customer_message_at = Some(c.last_customer_message_at.map_or(at, |t| t.max(at)));
        c.last_activity_at = c.last_activity_at.max(at);
    };
    match existing {
        None => {
            let mut c = fresh;
            // A new conversation's activity is its first message's time (a late delivery of an old
            // message must not jump to the top of the list).
            c.last_activity_at = at;
            bump(&mut c);
            Transition::changed(
                c,
                vec![action(ActionKind::Created, None, serde_json::Value::Null)],
            )
        }
        Some(c) if c.status == S::Resolved => {
            let mut c = c.clone();
            c.status = S::Pending;
            c.assignee_id = None;
            c.participants.clear();
            bump(&mut c);
            Transition::changed(
                c,
                vec![action(
                    ActionKind::Reopened,
                    None,
                    serde_json::json!({"by": "customer"}),
                )],
            )
        }
        Some(c) => {
            let mut c = c.clone();
            bump(&mut c);
            // Activity and the window moved; nothing for the action log.
            Transition::changed(c, Vec::new())
        }
    }
}

/// "Tiếp nhận": take a pending conversation from the pool.
pub fn claim(c: &Conversation, actor: Actor) -> Result<Transition, ConversationError> {
    ensure_not_resolved(c)?;
    if c.status == S::Bot {
        return Err(ConversationError::BotActive);
    }
    match c.assignee_id {
        Some(holder) if holder == actor.agent_id => Ok(Transition::unchanged(c)),
        Some(holder) => Err(ConversationError::Claimed { holder }),
        None => {
            let mut n = c.clone();
            n.status = S::Open;
            n.assignee_id = Some(actor.agent_id);
            n.last_assignee_id = Some(actor.agent_id);
            n.participants.retain(|p| *p != actor.agent_id);
            Ok(Transition::changed(
                n,
                vec![action(
                    ActionKind::Claimed,
                    Some(actor.agent_id),
                    serde_json::Value::Null,
                )],
            ))
        }
    }
}

/// A supervisor or admin gives the conversation to `target` directly.
pub fn assign(
    c: &Conversation,
    actor: Actor,
    target: AgentId,
) -> Result<Transition, ConversationError> {
    if !actor.role.supervises() {
        return Err(ConversationError::SupervisorRequired);
    }
    ensure_not_resolved(c)?;
    if c.assignee_id == Some(target) {
        return Ok(Transition::unchanged(c));
    }
    let mut n = c.clone();
    n.status = S::Open;
    n.assignee_id = Some(target);
    n.last_assignee_id = Some(target);
    n.participants.retain(|p| *p != target);
    let detail = serde_json::json!({"from": c.assignee_id, "to": target});
    Ok(Transition::changed(
        n,
        vec![action(ActionKind::Assigned, Some(actor.agent_id), detail)],
    ))
}

/// Automation (a flow's or a comment rule's `assign` step) gives the conversation to `target`
/// when nobody holds it; a conversation someone holds, or a resolved one, is left as it is.
pub fn automation_assigns(c: &Conversation, target: AgentId, by: &str) -> Transition {
    if c.status == S::Resolved || c.assignee_id.is_some() {
        return Transition::unchanged(c);
    }
    let mut n = c.clone();
    n.status = S::Open;
    n.assignee_id = Some(target);
    n.last_assignee_id = Some(target);
    n.participants.retain(|p| *p != target);
    let detail = serde_json::json!({"from": null, "to": target, "by": by});
    Transition::changed(n, vec![action(ActionKind::Assigned, None, detail)])
}

/// The holder (or a supervisor) hands the conversation to `target`, with a message for them.
pub fn transfer(
    c: &Conversation,
    actor: Actor,
    target: AgentId,
    message: &str,
) -> Result<Transition, ConversationError> {
    ensure_not_resolved(c)?;
    let Some(holder) = c.assignee_id else {
        return Err(ConversationError::ClaimRequired);
    };
    if holder != actor.agent_id && !actor.role.supervises() {
        return Err(ConversationError::NotHolder);
    }
    if holder == target {
        return Err(ConversationError::SameAgent);
    }
    let mut n = c.clone();
    n.assignee_id = Some(target);
    n.last_assignee_id = Some(target);
    n.handed_over_by = Some(holder);
    n.participants.retain(|p| *p != target);
    let detail = serde_json::json!({"from": holder, "to": target, "message": message});
    Ok(Transition::changed(
        n,
        vec![action(
            ActionKind::Transferred,
            Some(actor.agent_id),
            detail,
        )],
    ))
}

/// Invite another agent to help on an open conversation.
pub fn add_participant(
    c: &Conversation,
    actor: Actor,
    target: AgentId,
) -> Result<Transition, ConversationError> {
    ensure_not_resolved(c)?;
    let Some(holder) = c.assignee_id else {
        return Err(ConversationError::ClaimRequired);
    };
    if holder != actor.agent_id && !c.is_participant(actor.agent_id) && !actor.role.supervises() {
        return Err(ConversationError::NotHolder);
    }
    if holder == target || c.is_participant(target) {
        return Err(ConversationError::AlreadyParticipant);
    }
    let mut n = c.clone();
    n.participants.push(target);
    let detail = serde_json::json!({"agent_id": target});
    Ok(Transition::changed(
        n,
        vec![action(
            ActionKind::ParticipantAdded,
            Some(actor.agent_id),
            detail,
        )],
    ))
}

/// A participant steps out. The holder cannot leave; they transfer or resolve instead.
pub fn leave(c: &Conversation, actor: Actor) -> Result<Transition, ConversationError> {
    if !c.is_participant(actor.agent_id) {
        return Err(ConversationError::NotParticipant);
    }
    let mut n = c.clone();
    n.participants.retain(|p| *p != actor.agent_id);
    Ok(Transition::changed(
        n,
        vec![action(
            ActionKind::ParticipantLeft,
            Some(actor.agent_id),
            serde_json::Value::Null,
        )],
    ))
}

/// An agent replies to the customer. Only the holder and participants may; a pending conversation
/// must be claimed first. Agent messages never move the customer's messaging window.
pub fn reply(
    c: &Conversation,
    actor: Actor,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    match c.status {
        S::Resolved => return Err(ConversationError::Resolved),
        S::Bot => return Err(ConversationError::BotActive),
        S::Pending => return Err(ConversationError::ClaimRequired),
        S::Open => {}
    }
    match c.assignee_id {
        None => return Err(ConversationError::ClaimRequired),
        Some(holder) if holder != actor.agent_id && !c.is_participant(actor.agent_id) => {
            return Err(ConversationError::Claimed { holder });
        }
        Some(_) => {}
    }
    let mut n = c.clone();
    n.last_agent_reply_at = Some(now);
    n.last_activity_at = n.last_activity_at.max(now);
    Ok(Transition::changed(n, Vec::new()))
}

/// End the consultation. The holder, a participant or a supervisor may resolve an open conversation;
/// anyone who can see a pending one may resolve it (spam, "thanks!" messages).
pub fn resolve(
    c: &Conversation,
    actor: Actor,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    ensure_not_resolved(c)?;
    if let Some(holder) = c.assignee_id
        && holder != actor.agent_id
        && !c.is_participant(actor.agent_id)
        && !actor.role.supervises()
    {
        return Err(ConversationError::Claimed { holder });
    }
    let mut n = c.clone();
    n.status = S::Resolved;
    n.assignee_id = None;
    n.handed_over_by = None;
    n.participants.clear();
    n.last_activity_at = n.last_activity_at.max(now);
    let detail = serde_json::json!({"previous_assignee": c.assignee_id});
    Ok(Transition::changed(
        n,
        vec![action(ActionKind::Resolved, Some(actor.agent_id), detail)],
    ))
}

/// Reopen a resolved conversation; the agent who reopens it holds it.
pub fn reopen(
    c: &Conversation,
    actor: Actor,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    if c.status != S::Resolved {
        return Err(ConversationError::NotResolved);
    }
    let mut n = c.clone();
    n.status = S::Open;
    n.assignee_id = Some(actor.agent_id);
    n.last_assignee_id = Some(actor.agent_id);
    n.last_activity_at = n.last_activity_at.max(now);
    Ok(Transition::changed(
        n,
        vec![action(
            ActionKind::Reopened,
            Some(actor.agent_id),
            serde_json::json!({"by": "agent"}),
        )],
    ))
}

/// Add a tag (already normalised). Adding a tag that is there already changes nothing.
pub fn tag(c: &Conversation, actor: Actor, name: &str) -> Transition {
    retag(c, Some(actor.agent_id), name, true)
}

/// Remove a tag. Removing a tag that is not there changes nothing.
pub fn untag(c: &Conversation, actor: Actor, name: &str) -> Transition {
    retag(c, Some(actor.agent_id), name, false)
}

/// Adds (`add`) or removes a tag, by an agent or (`None`) a flow.
fn retag(c: &Conversation, by: Option<AgentId>, name: &str, add: bool) -> Transition {
    if c.tags.iter().any(|t| t == name) == add {
        return Transition::unchanged(c);
    }
    let mut n = c.clone();
    if add {
        n.tags.push(name.to_owned());
        n.tags.sort();
    } else {
        n.tags.retain(|t| t != name);
    }
    let kind = if add {
        ActionKind::Tagged
    } else {
        ActionKind::Untagged
    };
    let detail = match by {
        Some(_) => serde_json::json!({ "tag": name }),
        None => serde_json::json!({ "tag": name, "by": "flow" }),
    };
    Transition::changed(n, vec![action(kind, by, detail)])
}

/// A flow starts and holds the conversation: status `bot`, out of the agents' pool, nobody
/// holding it (the last holder is kept for sticky routing when it comes back). From any status: a
/// scheduled flow may follow up on a resolved conversation, an agent may hand theirs to a flow.
pub fn bot_takes(c: &Conversation, flow: &str, by: Option<AgentId>, now: Timestamp) -> Transition {
    if c.status == S::Bot {
        return Transition::unchanged(c);
    }
    let mut n = c.clone();
    n.status = S::Bot;
    n.assignee_id = None;
    n.participants.clear();
    n.last_activity_at = n.last_activity_at.max(now);
    Transition::changed(
        n,
        vec![action(
            ActionKind::FlowStarted,
            by,
            serde_json::json!({"flow": flow, "previous_status": c.status, "previous_assignee": c.assignee_id}),
        )],
    )
}

/// The bot gives the conversation to humans: back to the pool (routing decides who gets it),
/// with why (`reason`: a handoff step, the customer asked, not understood, the flow ended) and the
/// flow's note.
pub fn hand_off(c: &Conversation, reason: &str, note: Option<&str>, now: Timestamp) -> Transition {
    if c.status != S::Bot {
        return Transition::unchanged(c);
    }
    let mut n = c.clone();
    n.status = S::Pending;
    n.assignee_id = None;
    n.last_activity_at = n.last_activity_at.max(now);
    Transition::changed(
        n,
        vec![action(
            ActionKind::HandedOff,
            None,
            serde_json::json!({"reason": reason, "note": note}),
        )],
    )
}

/// An agent takes the conversation from the bot and holds it (the server stops the flow).
pub fn take_over(
    c: &Conversation,
    actor: Actor,
    now: Timestamp,
) -> Result<Transition, ConversationError> {
    if c.status != S::Bot {
        return Err(ConversationError::NotBot);
    }
    let mut n = c.clone();
    n.status = S::Open;
    n.assignee_id = Some(actor.agent_id);
    n.last_assignee_id = Some(actor.agent_id);
    n.last_activity_at = n.last_activity_at.max(now);
    Ok(Transition::changed(
        n,
        vec![action(
            ActionKind::TakenOver,
            Some(actor.agent_id),
            serde_json::Value::Null,
        )],
    ))
}

/// Where a conversation goes back to when a flow ends without handing it off: the status and
/// holder it had when the flow took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Resume {
    pub status: S,
    pub assignee: Option<AgentId>,
}

impl Resume {
    pub fn of(c: &Conversation) -> Self {
        Self {
            status: c.status,
            assignee: c.assignee_id,
        }
    }
}

/// A flow ended without handing off (completed, stopped, no answer...): the conversation goes back
/// to where it was — resolved stays resolved, an agent's goes back to that agent, anything else
/// to the pool (`status` pending: the caller routes it).
pub fn bot_ends(c: &Conversation, resume: Resume, reason: &str, now: Timestamp) -> Transition {
    if c.status != S::Bot {
        return Transition::unchanged(c);
    }
    let mut n = c.clone();
    match (resume.status, resume.assignee) {
        (S::Resolved, _) => {
            n.status = S::Resolved;
            n.assignee_id = None;
        }
        (S::Open, Some(a)) => {
            n.status = S::Open;
            n.assignee_id = Some(a);
        }
        _ => {
            n.status = S::Pending;
            n.assignee_id = None;
        }
    }
    n.last_activity_at = n.last_activity_at.max(now);
    Transition::changed(
        n,
        vec![action(
            ActionKind::FlowEnded,
            None,
            serde_json::json!({"reason": reason, "back_to": resume.status}),
        )],
    )
}

/// A flow's `resolve` step.
pub fn bot_resolves(c: &Conversation, now: Timestamp) -> Transition {
    if c.status == S::Resolved {
        return Transition::unchanged(c);
    }
    let mut n = c.clone();
    n.status = S::Resolved;
    n.assignee_id = None;
    n.handed_over_by = None;
    n.participants.clear();
    n.last_activity_at = n.last_activity_at.max(now);
    Transition::changed(
        n,
        vec![action(
            ActionKind::AutoResolved,
            None,
            serde_json::json!({"by": "flow"}),
        )],
    )
}

/// A flow tags (`add`) or untags the conversation.
pub fn bot_tag(c: &Conversation, name: &str, add: bool) -> Transition {
    retag(c, None, name, add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use uuid::Uuid;

    fn agent(n: u128) -> AgentId {
        AgentId(Uuid::from_u128(n))
    }
    const A: u128 = 1;
    const B: u128 = 2;
    const C: u128 = 3;
    const SUP: u128 = 9;

    fn actor(n: u128) -> Actor {
        Actor {
            agent_id: agent(n),
            role: if n == SUP {
                Role::Supervisor
            } else {
                Role::Agent
            },
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    fn conv(status: S, assignee: Option<u128>, participants: &[u128]) -> Conversation {
        let mut c = Conversation::new_from_customer(
            ConversationId(Uuid::from_u128(100)),
            WorkspaceId(Uuid::from_u128(200)),
            InboxId(Uuid::from_u128(300)),
            ContactId(Uuid::from_u128(400)),
            t(1_000),
        );
        c.status = status;
        c.assignee_id = assignee.map(agent);
        c.participants = participants.iter().copied().map(agent).collect();
        c
    }

    #[test]
    fn customer_message_creates_reopens_and_never_moves_time_back() {
        let fresh = conv(S::Pending, None, &[]);
        let created = customer_message(None, fresh.clone(), t(5_000), t(6_000));
        assert!(created.changed);
        assert_eq!(created.actions[0].kind, ActionKind::Created);
        assert_eq!(
            created.conversation.last_customer_message_at,
            Some(t(5_000))
        );
        assert_eq!(created.conversation.version, 1);

        // Future provider time is clamped to now.
        let future = customer_message(None, fresh.clone(), t(99_000), t(6_000));
        assert_eq!(future.conversation.last_customer_message_at, Some(t(6_000)));

        // A late, older delivery does not move the window back.
        let late = customer_message(
            Some(&created.conversation),
            fresh.clone(),
            t(4_000),
            t(7_000),
        );
        assert_eq!(late.conversation.last_customer_message_at, Some(t(5_000)));
        assert!(late.actions.is_empty());

        // A resolved conversation reopens into the pool, remembering who held it.
        let mut resolved = conv(S::Resolved, None, &[]);
        resolved.last_assignee_id = Some(agent(A));
        let reopened = customer_message(Some(&resolved), fresh, t(8_000), t(8_000));
        assert_eq!(reopened.conversation.status, S::Pending);
        assert_eq!(reopened.conversation.assignee_id, None);
        assert_eq!(reopened.conversation.last_assignee_id, Some(agent(A)));
        assert_eq!(reopened.actions[0].kind, ActionKind::Reopened);
    }

    /// (case, status, assignee, participants, actor, expected outcome)
    type Case = (
        &'static str,
        S,
        Option<u128>,
        &'static [u128],
        u128,
        Result<bool, ConversationError>,
    );

    fn run(
        cases: &[Case],
        f: impl Fn(&Conversation, Actor) -> Result<Transition, ConversationError>,
    ) {
        for (name, status, assignee, parts, who, want) in cases {
            let c = conv(*status, *assignee, parts);
            let got = f(&c, actor(*who)).map(|tr| tr.changed);
            assert_eq!(&got, want, "case: {name}");
        }
    }

    #[test]
    fn claim_table() {
        run(
            &[
                ("pending claims", S::Pending, None, &[], A, Ok(true)),
                (
                    "claim own again is a no-op",
                    S::Open,
                    Some(A),
                    &[],
                    A,
                    Ok(false),
                ),
                (
                    "held by another",
                    S::Open,
                    Some(A),
                    &[],
                    B,
                    Err(ConversationError::Claimed { holder: agent(A) }),
                ),
                (
                    "supervisor cannot claim a held one",
                    S::Open,
                    Some(A),
                    &[],
                    SUP,
                    Err(ConversationError::Claimed { holder: agent(A) }),
                ),
                (
                    "resolved",
                    S::Resolved,
                    None,
                    &[],
                    A,
                    Err(ConversationError::Resolved),
                ),
            ],
            claim,
        );
        let c = claim(&conv(S::Pending, None, &[]), actor(A))
            .ok()
            .map(|t| t.conversation);
        assert_eq!(
            c.as_ref().map(|c| (c.status, c.assignee_id)),
            Some((S::Open, Some(agent(A))))
        );
    }

    #[test]
    fn assign_table() {
        let to_b = |c: &Conversation, a: Actor| assign(c, a, agent(B));
        run(
            &[
                (
                    "supervisor assigns pending",
                    S::Pending,
                    None,
                    &[],
                    SUP,
                    Ok(true),
                ),
                ("supervisor reassigns", S::Open, Some(A), &[], SUP, Ok(true)),
                ("already with target", S::Open, Some(B), &[], SUP, Ok(false)),
                (
                    "agent may not assign",
                    S::Pending,
                    None,
                    &[],
                    A,
                    Err(ConversationError::SupervisorRequired),
                ),
                (
                    "resolved",
                    S::Resolved,
                    None,
                    &[],
                    SUP,
                    Err(ConversationError::Resolved),
                ),
            ],
            to_b,
        );
    }

    #[test]
    fn transfer_table() {
        let to_b = |c: &Conversation, a: Actor| transfer(c, a, agent(B), "please take over");
        run(
            &[
                ("holder transfers", S::Open, Some(A), &[], A, Ok(true)),
                ("supervisor transfers", S::Open, Some(A), &[], SUP, Ok(true)),
                (
                    "non-holder may not",
                    S::Open,
                    Some(A),
                    &[],
                    C,
                    Err(ConversationError::NotHolder),
                ),
                (
                    "participant may not",
                    S::Open,
                    Some(A),
                    &[C],
                    C,
                    Err(ConversationError::NotHolder),
                ),
                (
                    "to the holder",
                    S::Open,
                    Some(B),
                    &[],
                    B,
                    Err(ConversationError::SameAgent),
                ),
                (
                    "unclaimed",
                    S::Pending,
                    None,
                    &[],
                    A,
                    Err(ConversationError::ClaimRequired),
                ),
                (
                    "resolved",
                    S::Resolved,
                    None,
                    &[],
                    A,
                    Err(ConversationError::Resolved),
                ),
            ],
            to_b,
        );
        let tr = transfer(&conv(S::Open, Some(A), &[B]), actor(A), agent(B), "vip").ok();
        let c = tr.as_ref().map(|t| &t.conversation);
        assert_eq!(
            c.map(|c| c.handed_over_by),
            Some(Some(agent(A))),
            "the holder who handed it over is remembered (routing never gives it back to them)"
        );
        let by_sup = transfer(&conv(S::Open, Some(A), &[]), actor(SUP), agent(B), "").ok();
        assert_eq!(
            by_sup.map(|t| t.conversation.handed_over_by),
            Some(Some(agent(A))),
            "a supervisor's transfer: the previous holder, not the supervisor"
        );
        let mut handed = conv(S::Open, Some(B), &[]);
        handed.handed_over_by = Some(agent(A));
        assert_eq!(
            resolve(&handed, actor(B), Timestamp(5))
                .ok()
                .map(|t| t.conversation.handed_over_by),
            Some(None),
            "resolving ends it: a returning customer starts afresh"
        );
        assert_eq!(
            c.map(|c| (c.assignee_id, c.participants.is_empty())),
            Some((Some(agent(B)), true))
        );
        assert_eq!(
            tr.map(|t| t.actions[0].detail["message"].clone()),
            Some(serde_json::json!("vip"))
        );
    }

    #[test]
    fn participants_table() {
        let add_c = |c: &Conversation, a: Actor| add_participant(c, a, agent(C));
        run(
            &[
                ("holder invites", S::Open, Some(A), &[], A, Ok(true)),
                ("participant invites", S::Open, Some(A), &[B], B, Ok(true)),
                ("supervisor invites", S::Open, Some(A), &[], SUP, Ok(true)),
                (
                    "outsider may not",
                    S::Open,
                    Some(A),
                    &[],
                    B,
                    Err(ConversationError::NotHolder),
                ),
                (
                    "already in",
                    S::Open,
                    Some(A),
                    &[C],
                    A,
                    Err(ConversationError::AlreadyParticipant),
                ),
                (
                    "the holder",
                    S::Open,
                    Some(C),
                    &[],
                    C,
                    Err(ConversationError::AlreadyParticipant),
                ),
                (
                    "unclaimed",
                    S::Pending,
                    None,
                    &[],
                    A,
                    Err(ConversationError::ClaimRequired),
                ),
                (
                    "resolved",
                    S::Resolved,
                    None,
                    &[],
                    A,
                    Err(ConversationError::Resolved),
                ),
            ],
            add_c,
        );
        run(
            &[
                ("participant leaves", S::Open, Some(A), &[B], B, Ok(true)),
                (
                    "holder cannot leave",
                    S::Open,
                    Some(A),
                    &[],
                    A,
                    Err(ConversationError::NotParticipant),
                ),
                (
                    "outsider",
                    S::Open,
                    Some(A),
                    &[],
                    C,
                    Err(ConversationError::NotParticipant),
                ),
            ],
            leave,
        );
    }

    #[test]
    fn reply_table() {
        let r = |c: &Conversation, a: Actor| reply(c, a, t(50_000));
        run(
            &[
                ("holder replies", S::Open, Some(A), &[], A, Ok(true)),
                ("participant replies", S::Open, Some(A), &[B], B, Ok(true)),
                (
                    "someone else's",
                    S::Open,
                    Some(A),
                    &[],
                    B,
                    Err(ConversationError::Claimed { holder: agent(A) }),
                ),
                (
                    "supervisor is no exception",
                    S::Open,
                    Some(A),
                    &[],
                    SUP,
                    Err(ConversationError::Claimed { holder: agent(A) }),
                ),
                (
                    "pending must be claimed",
                    S::Pending,
                    None,
                    &[],
                    A,
                    Err(ConversationError::ClaimRequired),
                ),
                (
                    "bot active",
                    S::Bot,
                    None,
                    &[],
                    A,
                    Err(ConversationError::BotActive),
                ),
                (
                    "resolved",
                    S::Resolved,
                    None,
                    &[],
                    A,
                    Err(ConversationError::Resolved),
                ),
            ],
            r,
        );
        let mut c = conv(S::Open, Some(A), &[]);
        c.last_customer_message_at = Some(t(10_000));
        let n = reply(&c, actor(A), t(50_000)).ok().map(|t| t.conversation);
        assert_eq!(
            n.as_ref().and_then(|c| c.last_agent_reply_at),
            Some(t(50_000))
        );
        assert_eq!(
            n.and_then(|c| c.last_customer_message_at),
            Some(t(10_000)),
            "agent replies never move the window"
        );
    }

    #[test]
    fn resolve_and_reopen_table() {
        let r = |c: &Conversation, a: Actor| resolve(c, a, t(60_000));
        run(
            &[
                ("holder resolves", S::Open, Some(A), &[], A, Ok(true)),
                ("participant resolves", S::Open, Some(A), &[B], B, Ok(true)),
                ("supervisor resolves", S::Open, Some(A), &[], SUP, Ok(true)),
                ("pending by anyone", S::Pending, None, &[], B, Ok(true)),
                (
                    "someone else's",
                    S::Open,
                    Some(A),
                    &[],
                    B,
                    Err(ConversationError::Claimed { holder: agent(A) }),
                ),
                (
                    "twice",
                    S::Resolved,
                    None,
                    &[],
                    A,
                    Err(ConversationError::Resolved),
                ),
            ],
            r,
        );
        let o = |c: &Conversation, a: Actor| reopen(c, a, t(70_000));
        run(
            &[
                ("reopen resolved", S::Resolved, None, &[], B, Ok(true)),
                (
                    "reopen open",
                    S::Open,
                    Some(A),
                    &[],
                    A,
                    Err(ConversationError::NotResolved),
                ),
                (
                    "reopen pending",
                    S::Pending,
                    None,
                    &[],
                    A,
                    Err(ConversationError::NotResolved),
                ),
            ],
            o,
        );
        let n = reopen(&conv(S::Resolved, None, &[]), actor(B), t(70_000))
            .ok()
            .map(|t| t.conversation);
        assert_eq!(
            n.map(|c| (c.status, c.assignee_id)),
            Some((S::Open, Some(agent(B))))
        );
    }

    #[test]
    fn tags_are_idempotent_and_sorted() {
        let c = conv(S::Open, Some(A), &[]);
        let t1 = tag(&c, actor(A), "vip");
        let t2 = tag(&t1.conversation, actor(A), "order");
        assert_eq!(
            t2.conversation.tags,
            vec!["order".to_owned(), "vip".to_owned()]
        );
        assert!(!tag(&t2.conversation, actor(B), "vip").changed);
        let t3 = untag(&t2.conversation, actor(A), "vip");
        assert_eq!(t3.conversation.tags, vec!["order".to_owned()]);
        assert!(!untag(&t3.conversation, actor(A), "vip").changed);
        assert_eq!(t3.conversation.version, 3);
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(
            ConversationError::Claimed { holder: agent(A) }.code(),
            "conversation_claimed"
        );
        assert_eq!(ConversationError::ClaimRequired.code(), "claim_required");
    }

    #[test]
    fn a_bot_holds_the_conversation_until_it_hands_off_or_an_agent_takes_over() {
        // From the pool, from an agent and from resolved: the bot holds it, nobody else does.
        for (from, holder) in [(S::Pending, None), (S::Open, Some(A)), (S::Resolved, None)] {
            let c = conv(from, holder, &[B]);
            let tr = bot_takes(&c, "Chào khách", None, t(9_000));
            assert!(tr.changed, "{from:?}");
            assert_eq!(tr.conversation.status, S::Bot);
            assert_eq!(tr.conversation.assignee_id, None);
            assert!(tr.conversation.participants.is_empty());
            assert_eq!(tr.actions[0].kind, ActionKind::FlowStarted);
            assert_eq!(
                tr.actions[0].detail["previous_status"],
                serde_json::json!(from)
            );
        }
        let bot = conv(S::Bot, None, &[]);
        assert!(!bot_takes(&bot, "x", None, t(9_000)).changed);
        // Agents cannot claim what the bot holds; they take it over.
        assert_eq!(
            claim(&bot, actor(A)).err(),
            Some(ConversationError::BotActive)
        );
        let taken = take_over(&bot, actor(A), t(9_500)).map(|t| t.conversation);
        assert_eq!(taken.as_ref().map(|c| c.status), Ok(S::Open));
        assert_eq!(taken.as_ref().map(|c| c.assignee_id), Ok(Some(agent(A))));
        assert_eq!(
            take_over(&conv(S::Pending, None, &[]), actor(A), t(9_500)).err(),
            Some(ConversationError::NotBot)
        );
        // Handing off puts it in the pool; only a bot's conversation can be handed off.
        let off = hand_off(&bot, "asked_for_human", Some("size M"), t(9_600));
        assert_eq!(off.conversation.status, S::Pending);
        assert_eq!(off.actions[0].kind, ActionKind::HandedOff);
        assert_eq!(off.actions[0].detail["note"], "size M");
        assert!(!hand_off(&conv(S::Open, Some(A), &[]), "step", None, t(9_600)).changed);
        let done = bot_resolves(&bot, t(9_700));
        assert_eq!(done.conversation.status, S::Resolved);
        assert_eq!(done.actions[0].detail["by"], "flow");
    }

    #[test]
    fn a_flow_that_ends_gives_the_conversation_back_where_it_was() {
        let bot = conv(S::Bot, None, &[]);
        let cases = [
            (S::Resolved, None, S::Resolved, None),
            (S::Open, Some(A), S::Open, Some(agent(A))),
            (S::Pending, None, S::Pending, None),
            (S::Bot, None, S::Pending, None),
        ];
        for (status, assignee, want, holder) in cases {
            let resume = Resume {
                status,
                assignee: assignee.map(agent),
            };
            let tr = bot_ends(&bot, resume, "completed", t(9_000));
            assert_eq!(
                (tr.conversation.status, tr.conversation.assignee_id),
                (want, holder),
                "{status:?}"
            );
            assert_eq!(tr.actions[0].kind, ActionKind::FlowEnded);
        }
        // An agent who took over meanwhile keeps it.
        let taken = conv(S::Open, Some(B), &[]);
        assert!(!bot_ends(&taken, Resume::of(&bot), "taken_over", t(9_000)).changed);
    }

    #[test]
    fn a_flow_tags_once_and_untags_what_is_there() {
        let c = conv(S::Bot, None, &[]);
        let tagged = bot_tag(&c, "khách tiềm năng", true);
        assert_eq!(tagged.conversation.tags, vec!["khách tiềm năng".to_owned()]);
        assert!(!bot_tag(&tagged.conversation, "khách tiềm năng", true).changed);
        assert!(!bot_tag(&c, "vip", false).changed);
        let untagged = bot_tag(&tagged.conversation, "khách tiềm năng", false);
        assert!(untagged.conversation.tags.is_empty());
        assert_eq!(untagged.actions[0].kind, ActionKind::Untagged);
    }
}
