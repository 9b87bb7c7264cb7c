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

use crate::StoreError;
use crate::pool::{apply_timer_ops, load_rules, rules_row, saved_rules};
use crate::rows::*;
use crate::sql::{Db, RowRead, commit, conflict_on_deadlock, id_strings, json_text, q};
use crate::writes::{lock_conversation, write_change};
use switchboard_core::routing;
use switchboard_core::timers::{self, TimerKind};
use tracing::instrument;

async fn apply_routing_tx<D: Db>(d: &D, rc: RoutingChange) -> Result<RoutingOutcome> {
    let mut tx = d.begin().await?;
    // The conversation first, like every other write of it (ingest, commands): one lock order.
    lock_conversation(&mut *tx, rc.change.conversation_id).await?;
    if let Some((id, generation)) = rc.timer {
        let fired = q("DELETE FROM timers WHERE id = $1 AND generation = $2")
            .bind(id.to_string())
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        if fired.rows_affected() == 0 {
            // Fired by another runner, or rescheduled by a change: not ours to fire.
            return Ok(RoutingOutcome::TimerGone);
        }
    }
    if let Some(p) = rc.pointer {
        let moved = q(
                "UPDATE routing_rules SET rr_last_agent_id = $1, rr_version = rr_version + 1 WHERE inbox_id = $2 AND rr_version = $3",
            )
            .bind(p.agent_id.to_string())
            .bind(p.inbox_id.to_string())
            .bind(p.expected_version)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 0 {
            return Err(StoreError::VersionConflict);
        }
    }
    if let Some((agent, capacity)) = rc.capacity {
        // Two nodes giving this agent their last free slot at once: the second waits here and
        // then counts the first one's assignment.
        q("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE")
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        let open: i64 = q(
                "SELECT COUNT(*) FROM conversations WHERE assignee_id = $1 AND status = 'open' AND id != $2",
            )
            .bind(agent.to_string())
            .bind(rc.change.conversation_id.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if open >= i64::from(capacity) {
            return Err(StoreError::VersionConflict);
        }
    }
    let mut events = write_change(&mut *tx, rc.change).await?;
    commit(d, tx, &mut events).await?;
    Ok(RoutingOutcome::Applied(events))
}

#[async_trait]
impl<D: Db> RoutingStore for D {
    #[instrument(skip_all)]
    async fn routing_state(&self, inbox: InboxId) -> Result<RoutingState> {
        let row =
            q("SELECT rules, reply_sla_since, rr_last_agent_id, rr_version FROM routing_rules WHERE inbox_id = $1")
                .bind(inbox.to_string())
                .fetch_optional(&mut *self.read().await?)
                .await?;
        match row {
            None => Ok(RoutingState {
                rules: RoutingRules::default(),
                pointer: None,
                pointer_version: 0,
            }),
            Some(r) => Ok(RoutingState {
                rules: rules_row(&r)?,
                pointer: opt_uuid_of(&r, "rr_last_agent_id")?.map(AgentId),
                pointer_version: r.try_get("rr_version")?,
            }),
        }
    }

    #[instrument(skip_all)]
    async fn set_routing_rules(
        &self,
        inbox: InboxId,
        rules: &RoutingRules,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // Timers follow the rules: switching the reply SLA or auto-close on or off takes effect on
        // the conversations already running, not only on the next message. Their rows are locked
        // first (in id order, like every multi-row lock here, and before the rules row, which
        // routing takes after a conversation): nothing is ingested into them meanwhile.
        let active = q(
            "SELECT * FROM conversations WHERE inbox_id = $1 AND status IN ('bot', 'pending', 'open') ORDER BY id FOR UPDATE",
        )
        .bind(inbox.to_string())
        .all(&mut *tx, conversation_row)
            .await?;
        // The deadline counts from when it was switched on (kept across other changes).
        let previous = saved_rules(&mut *tx, inbox).await?;
        let rules = &RoutingRules {
            reply_sla_since: routing::reply_sla_since(previous.as_ref(), rules, now),
            ..rules.clone()
        };
        q(
            "INSERT INTO routing_rules (inbox_id, rules, strategy, reply_sla_since, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (inbox_id) DO UPDATE SET rules = excluded.rules, strategy = excluded.strategy, \
             reply_sla_since = excluded.reply_sla_since, updated_at = excluded.updated_at",
        )
        .bind(inbox.to_string())
        .bind(json_text(&rules.to_json()))
        .bind(rules.strategy.as_str())
        .bind(rules.reply_sla_since.map(Timestamp::millis))
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        for c in &active {
            let ops = timers::plan(Some(c), c, rules, now);
            apply_timer_ops(&mut *tx, c.id, &ops, now).await?;
        }
        commit(self, tx, &mut []).await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn open_counts(&self, agents: &[AgentId]) -> Result<HashMap<AgentId, u32>> {
        let rows = q("SELECT assignee_id, COUNT(*) AS n FROM conversations \
             WHERE status = 'open' AND assignee_id = ANY($1) GROUP BY assignee_id")
        .bind(id_strings(agents))
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((
                    AgentId(uuid_of(r, "assignee_id")?),
                    u32::try_from(n).unwrap_or(u32::MAX),
                ))
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn waiting(&self, inbox: InboxId, limit: u32) -> Result<Vec<Waiting>> {
        q(
            "SELECT c.*, p.waiting_since AS pool_since, p.excluded_agent_id AS pool_excluded \
             FROM routing_pool p JOIN conversations c ON c.id = p.conversation_id \
             WHERE p.inbox_id = $1 AND c.status = 'pending' AND c.assignee_id IS NULL \
             ORDER BY p.waiting_since, p.conversation_id LIMIT $2",
        )
        .bind(inbox.to_string())
        .bind(i64::from(limit))
        .read_all(self, |r| {
            Ok(Waiting {
                conversation: conversation_row(r)?,
                waiting_since: ts(r, "pool_since")?,
                excluded_agent_id: opt_uuid_of(r, "pool_excluded")?.map(AgentId),
            })
        })
        .await
    }

    #[instrument(skip_all)]
    async fn inboxes_with_backlog(&self) -> Result<Vec<InboxId>> {
        q(
            "SELECT DISTINCT p.inbox_id FROM routing_pool p JOIN routing_rules r ON r.inbox_id = p.inbox_id \
             WHERE r.strategy IN ('round_robin', 'least_busy') ORDER BY p.inbox_id",
        )
        .read_all(self, |r| uuid_of(r, "inbox_id").map(InboxId))
            .await
    }

    #[instrument(skip_all)]
    async fn agent_inboxes(&self, agent: AgentId) -> Result<Vec<InboxId>> {
        q("SELECT inbox_id FROM inbox_members WHERE agent_id = $1 ORDER BY inbox_id")
            .bind(agent.to_string())
            .read_all(self, |r| uuid_of(r, "inbox_id").map(InboxId))
            .await
    }

    #[instrument(skip_all)]
    async fn apply_routing(&self, rc: RoutingChange) -> Result<RoutingOutcome> {
        apply_routing_tx(self, rc)
            .await
            .map_err(conflict_on_deadlock)
    }

    #[instrument(skip_all)]
    async fn claim_due_timers(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<Timer>> {
        // Rows another runner is leasing right now are skipped, not waited for; a row leased and
        // committed meanwhile fails the re-checked lease condition. Either way one runner per row.
        let mut timers = q(
            "UPDATE timers SET locked_by = $1, locked_until = $2 WHERE id IN ( \
               SELECT id FROM timers WHERE due_at <= $3 AND (locked_until IS NULL OR locked_until <= $4) \
               ORDER BY due_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
             AND due_at <= $3 AND (locked_until IS NULL OR locked_until <= $4) \
             RETURNING id, kind, conversation_id, agent_id, due_at, generation",
        )
        .bind(node)
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .write_all(self, timer_row)
        .await?;
        timers.sort_by_key(|t| (t.due_at, t.id));
        Ok(timers)
    }

    #[instrument(skip_all)]
    async fn discard_timer(&self, id: TimerId, generation: i64) -> Result<bool> {
        Ok(q("DELETE FROM timers WHERE id = $1 AND generation = $2")
            .bind(id.to_string())
            .bind(generation)
            .write(self)
            .await?
            .rows_affected()
            > 0)
    }

    #[instrument(skip_all)]
    async fn conversation_timers(&self, conv: ConversationId) -> Result<Vec<Timer>> {
        q("SELECT * FROM timers WHERE conversation_id = $1 ORDER BY due_at, kind")
            .bind(conv.to_string())
            .read_all(self, timer_row)
            .await
    }

    #[instrument(skip_all)]
    async fn schedule_offline_release(&self, agent: AgentId, now: Timestamp) -> Result<u32> {
        let mut tx = self.begin().await?;
        let held =
            q("SELECT * FROM conversations WHERE assignee_id = $1 AND status = 'open' ORDER BY id FOR UPDATE")
                .bind(agent.to_string())
                .all(&mut *tx, conversation_row)
            .await?;
        let mut rules: HashMap<InboxId, RoutingRules> = HashMap::new();
        let mut scheduled = 0;
        for c in &held {
            let r = match rules.entry(c.inbox_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(load_rules(&mut *tx, c.inbox_id).await?)
                }
            };
            if let Some(op) = timers::offline_release(c, agent, r, now) {
                apply_timer_ops(&mut *tx, c.id, &[op], now).await?;
                scheduled += 1;
            }
        }
        commit(self, tx, &mut []).await?;
        Ok(scheduled)
    }

    #[instrument(skip_all)]
    async fn cancel_offline_release(&self, agent: AgentId) -> Result<()> {
        let mut tx = self.begin().await?;
        // The conversations first, as every timer change does.
        q(
            "SELECT 1 FROM conversations WHERE id IN \
             (SELECT conversation_id FROM timers WHERE agent_id = $1 AND kind = $2) ORDER BY id FOR UPDATE",
        )
        .bind(agent.to_string())
        .bind(TimerKind::OfflineRelease.as_str())
        .execute(&mut *tx)
        .await?;
        q("DELETE FROM timers WHERE agent_id = $1 AND kind = $2")
            .bind(agent.to_string())
            .bind(TimerKind::OfflineRelease.as_str())
            .execute(&mut *tx)
            .await?;
        commit(self, tx, &mut []).await?;
        Ok(())
    }
}
