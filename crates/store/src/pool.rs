//! What every conversation write keeps in step, inside its transaction: the inbox's durable timers
//! and the conversation's place in the routing pool (`after_write`), and the inbox's saved rules.

use crate::rows::*;
use crate::sql::{Conn, RowRead, q};
use crate::*;
use switchboard_core::routing::{PoolEntry, RoutingRules, pool_entry};
use switchboard_core::timers::{self, TimerOp};
use uuid::Uuid;

/// The rules as stored (JSON text).
pub(crate) fn rules_of(json: &str) -> Result<RoutingRules> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| corrupt("routing_rules.rules"))?;
    RoutingRules::from_json(&v).map_err(|e| StoreError::Corrupt(format!("routing_rules: {e}")))
}

/// The rules of a `routing_rules` row (its `rules` and `reply_sla_since` columns).
pub(crate) fn rules_row(r: &impl RowRead) -> Result<RoutingRules> {
    Ok(RoutingRules {
        reply_sla_since: opt_ts(r, "reply_sla_since")?,
        ..rules_of(&r.try_get::<String, _>("rules")?)?
    })
}

/// The inbox's saved rules; `None` if it never had any (then it has no timers either).
pub(crate) async fn saved_rules<C: Conn>(
    conn: &mut C,
    inbox: InboxId,
) -> Result<Option<RoutingRules>> {
    q("SELECT rules, reply_sla_since FROM routing_rules WHERE inbox_id = $1")
        .bind(inbox.to_string())
        .opt(conn, rules_row)
        .await
}

pub(crate) async fn load_rules<C: Conn>(conn: &mut C, inbox: InboxId) -> Result<RoutingRules> {
    Ok(saved_rules(conn, inbox).await?.unwrap_or_default())
}

/// Applies timer operations for one conversation. A reschedule bumps `generation` and drops any
/// runner's lease, so a runner holding the old copy cannot fire it.
pub(crate) async fn apply_timer_ops<C: Conn>(
    conn: &mut C,
    conv: ConversationId,
    ops: &[TimerOp],
    now: Timestamp,
) -> Result<()> {
    for op in ops {
        let (kind, due_at, agent_id, on_conflict) = match op {
            TimerOp::Clear(kind) => {
                q("DELETE FROM timers WHERE conversation_id = $1 AND kind = $2")
                    .bind(conv.to_string())
                    .bind(kind.as_str())
                    .execute(&mut *conn)
                    .await?;
                continue;
            }
            TimerOp::Set {
                kind,
                due_at,
                agent_id,
            } => (kind, due_at, agent_id, RESCHEDULE),
            TimerOp::Ensure {
                kind,
                due_at,
                agent_id,
            } => (
                kind,
                due_at,
                agent_id,
                "ON CONFLICT (conversation_id, kind) DO NOTHING",
            ),
        };
        conn.insert_rows(
            "INSERT INTO timers (id, kind, conversation_id, agent_id, due_at, generation, created_at)",
            on_conflict,
            vec![vec![
                Uuid::now_v7().to_string().into(),
                kind.as_str().into(),
                conv.to_string().into(),
                agent_id.map(|a| a.to_string()).into(),
                due_at.millis().into(),
                1.into(),
                now.millis().into(),
            ]],
        )
        .await?;
    }
    Ok(())
}

/// A timer set again: a new due time or agent bumps the generation and drops any lease.
const RESCHEDULE: &str = "ON CONFLICT (conversation_id, kind) DO UPDATE SET due_at = excluded.due_at, \
     agent_id = excluded.agent_id, generation = timers.generation + 1, locked_by = NULL, locked_until = NULL \
     WHERE timers.due_at != excluded.due_at OR timers.agent_id IS DISTINCT FROM excluded.agent_id";

/// Keeps a conversation's timers and pool entry in step with a change, inside the transaction that
/// writes it. Called by every conversation write (ingest, agent commands, routing, timers).
pub(crate) async fn after_write<C: Conn>(
    conn: &mut C,
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
    let (sql, excluded) = match pool_entry(before, after) {
        PoolEntry::Out => {
            q("DELETE FROM routing_pool WHERE conversation_id = $1")
                .bind(after.id.to_string())
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        PoolEntry::Keep => (
            "INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since, excluded_agent_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            None,
        ),
        PoolEntry::Enter { excluded } => (
            "INSERT INTO routing_pool (conversation_id, inbox_id, waiting_since, excluded_agent_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id) DO UPDATE SET \
             waiting_since = excluded.waiting_since, excluded_agent_id = excluded.excluded_agent_id",
            excluded,
        ),
    };
    q(sql)
        .bind(after.id.to_string())
        .bind(after.inbox_id.to_string())
        .bind(now.millis())
        .bind(excluded.map(|a| a.to_string()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
