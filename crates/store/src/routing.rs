//! What routing and the timer runner need from the store: rules and the shared rotation pointer,
//! open counts, the waiting pool, routing decisions applied with compare-and-set, and durable
//! timers (claimed by one runner, fired at most once, in the same transaction as their effect).

use crate::{Change, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use switchboard_core::event::Event;
use switchboard_core::routing::RoutingRules;
use switchboard_core::timers::Timer;
use switchboard_core::*;

/// An inbox's rules and the rotation pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingState {
    pub rules: RoutingRules,
    /// The last agent the rotation gave a conversation to.
    pub pointer: Option<AgentId>,
    /// Compare-and-set token for the pointer.
    pub pointer_version: i64,
}

/// Move the rotation pointer, only if nobody moved it since `expected_version` was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointerMove {
    pub inbox_id: InboxId,
    pub expected_version: i64,
    pub agent_id: AgentId,
}

/// A decision routing or a timer made, applied in one transaction.
#[derive(Debug, Clone)]
pub struct RoutingChange {
    /// The conversation change (compare-and-set on its version), with actions, message and events.
    pub change: Change,
    pub pointer: Option<PointerMove>,
    /// Refuse with `VersionConflict` if this agent already holds this many open conversations
    /// (capacity is checked inside the write, so concurrent decisions cannot overfill an agent).
    pub capacity: Option<(AgentId, u32)>,
    /// The timer being fired, by (id, generation): deleted in the same transaction. If it is gone or
    /// was rescheduled meanwhile, nothing is written ([`RoutingOutcome::TimerGone`]).
    pub timer: Option<(TimerId, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RoutingOutcome {
    Applied(Vec<Event>),
    TimerGone,
}

/// A conversation waiting in the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub conversation: Conversation,
    pub waiting_since: Timestamp,
    /// The agent who just lost it; routing does not hand it straight back to them.
    pub excluded_agent_id: Option<AgentId>,
}

#[async_trait]
pub trait RoutingStore: Send + Sync {
    /// The inbox's rules (defaults if none were saved) and rotation pointer.
    async fn routing_state(&self, inbox: InboxId) -> Result<RoutingState>;
    /// Saves rules and re-derives the timers of the inbox's active conversations in one transaction.
    async fn set_routing_rules(
        &self,
        inbox: InboxId,
        rules: &RoutingRules,
        now: Timestamp,
    ) -> Result<()>;
    /// Open conversations each agent holds (all inboxes). Agents with none are absent.
    async fn open_counts(&self, agents: &[AgentId]) -> Result<HashMap<AgentId, u32>>;
    /// The inbox's pool, longest waiting first.
    async fn waiting(&self, inbox: InboxId, limit: u32) -> Result<Vec<Waiting>>;
    /// Inboxes whose strategy assigns (round-robin, least-busy) and that have conversations waiting.
    async fn inboxes_with_backlog(&self) -> Result<Vec<InboxId>>;
    /// The inboxes an agent is a member of.
    async fn agent_inboxes(&self, agent: AgentId) -> Result<Vec<InboxId>>;
    async fn apply_routing(&self, change: RoutingChange) -> Result<RoutingOutcome>;

    /// Leases up to `limit` due timers to `node` until `lease_until`. A leased timer is skipped by
    /// other runners until the lease ends (a crashed runner's timers are picked up after it).
    async fn claim_due_timers(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<Timer>>;
    /// Deletes a timer that no longer applies, only if it was not rescheduled meanwhile.
    async fn discard_timer(&self, id: TimerId, generation: i64) -> Result<bool>;
    async fn conversation_timers(&self, conv: ConversationId) -> Result<Vec<Timer>>;
    /// Schedules offline-release timers for the open conversations `agent` holds that await a reply
    /// (in inboxes that release). Returns how many.
    async fn schedule_offline_release(&self, agent: AgentId, now: Timestamp) -> Result<u32>;
    async fn cancel_offline_release(&self, agent: AgentId) -> Result<()>;
}
