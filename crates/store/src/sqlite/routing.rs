//! Routing and timers on SQLite. Every write takes the single writer connection, so claims, pointer
//! moves, capacity checks and timer firings are serialised and never contend; events are published
//! after commit while the writer is still held, so they reach subscribers in `seq` order.

use super::*;
use crate::routing::*;
use std::collections::HashMap;
use switchboard_core::routing::RoutingRules;
use switchboard_core::timers::{self, Timer, TimerKind, TimerOp};

pub(super) fn rules_of(json: &str) -> Result<RoutingRules> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| corrupt("routing_rules.rules"))?;
    RoutingRules::from_json(&v).map_err(|e| StoreError::Corrupt(format!("routing_rules: {e}")))
}

/// The inbox's saved rules; `None` if it never had any (then it has no timers either).
async fn saved_rules(conn: &mut SqliteConnection, inbox: InboxId) -> Result<Option<RoutingRules>> {
    sqlx::query("SELECT rules FROM routing_rules WHERE inbox_id = ?")
        .bind(inbox.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| rules_of(&r.try_get::<String, _>("rules")?))
        .transpose()
}

async fn load_rules(conn: &mut SqliteConnection, inbox: InboxId) -> Result<RoutingRules> {
    Ok(saved_rules(conn, inbox).await?.unwrap_or_default())
}

fn timer_row(r: &SqliteRow) -> Result<Timer> {
    Ok(Timer {
        id: TimerId(uuid_of(r, "id")?),
        kind: enum_of(r, "kind", TimerKind::parse)?,
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        agent_id: opt_uuid_of(r, "agent_id")?.map(AgentId),
        due_at: ts(r, "due_at")?,
        generation: r.try_get("generation")?,
    })
}

/// Applies timer operations for one conversation. A reschedule bumps `generation` and drops any
/// runner's lease, so a runner holding the old copy cannot fire it.
async fn apply_timer_ops(
    conn: &mut SqliteConnection,
    conv: ConversationId,
    ops: &[TimerOp],
    now: Timestamp,
) -> Result<()> {
    for op in ops {
        match op {
            TimerOp::Set {
                kind,
                due_at,
                agent_id,
            } => {
                sqlx::query(
                    "INSERT INTO timers (id, kind, conversation_id, agent_id, due_at, generation, created_at) \
                     VALUES (?, ?, ?, ?, ?, 1, ?) \
                     ON CONFLICT (conversation_id, kind) DO UPDATE SET due_at = excluded.due_at, agent_id = excluded.agent_id, \
                     generation = timers.generation + 1, locked_by = NULL, locked_until = NULL \
                     WHERE timers.due_at != excluded.due_at OR timers.agent_id IS NOT excluded.agent_id",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(kind.as_str())
                .bind(conv.to_string())
                .bind(agent_id.map(|a| a.to_string()))
                .bind(due_at.millis())
                .bind(now.millis())
                .execute(&mut *conn)
                .await?;
            }
            TimerOp::Ensure {
                kind,
                due_at,
                agent_id,
            } => {
                sqlx::query(
                    "INSERT INTO timers (id, kind, conversation_id, agent_id, due_at, generation, created_at) \
                     VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (conversation_id, kind) DO NOTHING",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(kind.as_str())
                .bind(conv.to_string())
                .bind(agent_id.map(|a| a.to_string()))
                .bind(due_at.millis())
                .bind(now.millis())
                .execute(&mut *conn)
                .await?;
            }
            TimerOp::Clear(kind) => {
                sqlx::query("DELETE FROM timers WHERE conversation_id = ? AND kind = ?")
                    .bind(conv.to_string())
                    .bind(kind.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

fn in_pool(c: &Conversation) -> bool {
    c.status == ConversationStatus::Pending && c.assignee_id.is_none()
}

/// Keeps a conversation's timers and pool entry in step with a change, inside the transaction that
/// writes it. Called by every conversation write (ingest, agent commands, routing, timers).
pub(super) async fn after_write(
    conn: &mut SqliteConnection,
    before: Option<&Conversation>,
    after: &Conversation,
    now: Timestamp,
) -> Result<()> {
    // Timers exist only under saved rules: inboxes that never had any skip the plan (the hot path
    // of a plain self-claim inbox stays one indexed lookup).
    if let Some(rules) = saved_rules(conn, after.inbox_id).await? {
        let ops = timers::plan(before, after, &rules, now);
        apply_timer_ops(conn, after.id, &ops, now).await?;
    }
    if !in_pool(after) {
        sqlx::query("DELETE FROM routing_pool WHERE conversation_id = ?")
            .bind(after.id.to_string())
            .execute(&mut *conn)
            .await?;
    } else if before.is_some_and(in_pool) {
        // Still waiting (e.g. the customer wrote again): keep its place in the queue.
        sqlx::query("INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(after.id.to_string())
            .bind(after.inbox_id.to_string())
            .bind(now.millis())
            .execute(&mut *conn)
            .await?;
    } else {
        // Entering the pool. If someone held it, routing must not hand it straight back to them.
        sqlx::query(
            "INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since, excluded_agent_id) VALUES (?, ?, ?, ?) \
             ON CONFLICT (conversation_id) DO UPDATE SET waiting_since = excluded.waiting_since, excluded_agent_id = excluded.excluded_agent_id",
        )
        .bind(after.id.to_string())
        .bind(after.inbox_id.to_string())
        .bind(now.millis())
        .bind(before.and_then(|b| b.assignee_id).map(|a| a.to_string()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl RoutingStore for SqliteStore {
    #[instrument(skip_all)]
    async fn routing_state(&self, inbox: InboxId) -> Result<RoutingState> {
        let row = sqlx::query(
            "SELECT rules, rr_last_agent_id, rr_version FROM routing_rules WHERE inbox_id = ?",
        )
        .bind(inbox.to_string())
        .fetch_optional(&self.read)
        .await?;
        match row {
            None => Ok(RoutingState {
                rules: RoutingRules::default(),
                pointer: None,
                pointer_version: 0,
            }),
            Some(r) => Ok(RoutingState {
                rules: rules_of(&r.try_get::<String, _>("rules")?)?,
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
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO routing_rules (inbox_id, rules, strategy, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (inbox_id) DO UPDATE SET rules = excluded.rules, strategy = excluded.strategy, updated_at = excluded.updated_at",
        )
        .bind(inbox.to_string())
        .bind(json_text(&rules.to_json()))
        .bind(rules.strategy.as_str())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        // Timers follow the rules: switching the reply SLA or auto-close on or off takes effect on
        // the conversations already running, not only on the next message.
        let active = sqlx::query(
            "SELECT * FROM conversations WHERE inbox_id = ? AND status IN ('bot', 'pending', 'open')",
        )
        .bind(inbox.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(conversation_row)
        .collect::<Result<Vec<_>>>()?;
        for c in &active {
            let ops = timers::plan(Some(c), c, rules, now);
            apply_timer_ops(&mut tx, c.id, &ops, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn open_counts(&self, agents: &[AgentId]) -> Result<HashMap<AgentId, u32>> {
        let rows = sqlx::query(
            "SELECT assignee_id, COUNT(*) AS n FROM conversations \
             WHERE status = 'open' AND assignee_id IN (SELECT value FROM json_each(?)) GROUP BY assignee_id",
        )
        .bind(ids_json(agents))
        .fetch_all(&self.read)
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
        sqlx::query(
            "SELECT c.*, p.waiting_since AS pool_since, p.excluded_agent_id AS pool_excluded \
             FROM routing_pool p JOIN conversations c ON c.id = p.conversation_id \
             WHERE p.inbox_id = ? AND c.status = 'pending' AND c.assignee_id IS NULL \
             ORDER BY p.waiting_since, p.conversation_id LIMIT ?",
        )
        .bind(inbox.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(Waiting {
                conversation: conversation_row(r)?,
                waiting_since: ts(r, "pool_since")?,
                excluded_agent_id: opt_uuid_of(r, "pool_excluded")?.map(AgentId),
            })
        })
        .collect()
    }

    #[instrument(skip_all)]
    async fn inboxes_with_backlog(&self) -> Result<Vec<InboxId>> {
        sqlx::query(
            "SELECT DISTINCT p.inbox_id FROM routing_pool p JOIN routing_rules r ON r.inbox_id = p.inbox_id \
             WHERE r.strategy IN ('round_robin', 'least_busy') ORDER BY p.inbox_id",
        )
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| uuid_of(r, "inbox_id").map(InboxId))
        .collect()
    }

    #[instrument(skip_all)]
    async fn agent_inboxes(&self, agent: AgentId) -> Result<Vec<InboxId>> {
        sqlx::query("SELECT inbox_id FROM inbox_members WHERE agent_id = ? ORDER BY inbox_id")
            .bind(agent.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| uuid_of(r, "inbox_id").map(InboxId))
            .collect()
    }

    #[instrument(skip_all)]
    async fn apply_routing(&self, rc: RoutingChange) -> Result<RoutingOutcome> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        if let Some((id, generation)) = rc.timer {
            let fired = sqlx::query("DELETE FROM timers WHERE id = ? AND generation = ?")
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
            let moved = sqlx::query(
                "UPDATE routing_rules SET rr_last_agent_id = ?, rr_version = rr_version + 1 WHERE inbox_id = ? AND rr_version = ?",
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
            let open: i64 = sqlx::query(
                "SELECT COUNT(*) FROM conversations WHERE assignee_id = ? AND status = 'open' AND id != ?",
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
        let events = write_change(&mut tx, rc.change).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(RoutingOutcome::Applied(events))
    }

    #[instrument(skip_all)]
    async fn claim_due_timers(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<Timer>> {
        let mut conn = self.write.acquire().await?;
        // One statement on the single writer: two runners can never lease the same row.
        // PostgreSQL: the inner SELECT gets FOR UPDATE SKIP LOCKED.
        let mut timers = sqlx::query(
            "UPDATE timers SET locked_by = ?, locked_until = ? WHERE id IN ( \
               SELECT id FROM timers WHERE due_at <= ? AND (locked_until IS NULL OR locked_until <= ?) \
               ORDER BY due_at, id LIMIT ?) \
             RETURNING id, kind, conversation_id, agent_id, due_at, generation",
        )
        .bind(node)
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(timer_row)
        .collect::<Result<Vec<_>>>()?;
        timers.sort_by_key(|t| (t.due_at, t.id));
        Ok(timers)
    }

    #[instrument(skip_all)]
    async fn discard_timer(&self, id: TimerId, generation: i64) -> Result<bool> {
        let mut conn = self.write.acquire().await?;
        Ok(
            sqlx::query("DELETE FROM timers WHERE id = ? AND generation = ?")
                .bind(id.to_string())
                .bind(generation)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0,
        )
    }

    #[instrument(skip_all)]
    async fn conversation_timers(&self, conv: ConversationId) -> Result<Vec<Timer>> {
        sqlx::query("SELECT * FROM timers WHERE conversation_id = ? ORDER BY due_at, kind")
            .bind(conv.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(timer_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn schedule_offline_release(&self, agent: AgentId, now: Timestamp) -> Result<u32> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let held =
            sqlx::query("SELECT * FROM conversations WHERE assignee_id = ? AND status = 'open'")
                .bind(agent.to_string())
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(conversation_row)
                .collect::<Result<Vec<_>>>()?;
        let mut rules: HashMap<InboxId, RoutingRules> = HashMap::new();
        let mut scheduled = 0;
        for c in &held {
            let r = match rules.entry(c.inbox_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(load_rules(&mut tx, c.inbox_id).await?)
                }
            };
            if let Some(op) = timers::offline_release(c, agent, r, now) {
                apply_timer_ops(&mut tx, c.id, &[op], now).await?;
                scheduled += 1;
            }
        }
        tx.commit().await?;
        Ok(scheduled)
    }

    #[instrument(skip_all)]
    async fn cancel_offline_release(&self, agent: AgentId) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("DELETE FROM timers WHERE agent_id = ? AND kind = ?")
            .bind(agent.to_string())
            .bind(TimerKind::OfflineRelease.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
