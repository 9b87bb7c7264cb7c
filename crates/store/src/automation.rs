//! Automation's rows (docs/flows.md): flows and every saved version, runs (at most one going per
//! conversation), scheduled flows per customer, the workspace's FAQ and handoff phrases, contact
//! fields, and the per-conversation auto-reply switch. The core decides (`core::flow`); these
//! persist, with compare-and-set where two nodes may act at once (a run's `revision`, a scheduled
//! flow's status, leases on due rows).

use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use switchboard_core::flow::{Flow, RunState};
use switchboard_core::*;

/// A flow as stored: its definition at its current version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFlow {
    pub id: FlowId,
    pub workspace_id: WorkspaceId,
    /// Only active flows are started by triggers (agents and other flows may start any).
    pub active: bool,
    /// `flow.version` is the current version; `flow.name` the name.
    pub flow: Flow,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One run of a flow in one conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRun {
    pub id: FlowRunId,
    pub workspace_id: WorkspaceId,
    pub flow_id: FlowId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub state: RunState,
    /// Where the conversation goes back to when the run ends without a handoff.
    pub resume: switchboard_core::conversation::Resume,
    /// Bumped by every save; saves compare-and-set on it.
    pub revision: i64,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

/// Where a scheduled flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledStatus {
    Scheduled,
    Sent,
    Failed,
    BlockedByWindow,
    Cancelled,
}

impl ScheduledStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::BlockedByWindow => "blocked_by_window",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => Self::Scheduled,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "blocked_by_window" => Self::BlockedByWindow,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A flow attached to a customer, to run in their conversation at `send_at`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledFlow {
    pub id: ScheduledFlowId,
    pub workspace_id: WorkspaceId,
    pub contact_id: ContactId,
    pub conversation_id: ConversationId,
    pub flow_id: FlowId,
    pub attached_at: Timestamp,
    /// The agent who attached it (`None`: a flow step).
    pub attached_by: Option<AgentId>,
    pub send_at: Timestamp,
    /// `{"from": "08:00", "to": "17:00"}` when the send time was moved into hours.
    pub within_hours: Option<serde_json::Value>,
    pub status: ScheduledStatus,
    /// Why it failed or was blocked (the policy's words), or who cancelled it.
    pub reason: Option<String>,
    pub done_at: Option<Timestamp>,
}

/// A workspace's FAQ and handoff phrases as saved (`None`: the defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaqSettings {
    pub faq: switchboard_core::flow::FaqList,
    pub handoff_phrases: Option<Vec<String>>,
    pub updated_at: Timestamp,
}

/// A run's new state, saved if nobody saved it since `expected_revision` was read.
#[derive(Debug, Clone)]
pub struct RunSave {
    pub id: FlowRunId,
    pub expected_revision: i64,
    pub state: RunState,
    pub now: Timestamp,
}

/// Saves a run's step if nobody saved one since it was read ([`crate::StoreError::StaleRun`]
/// otherwise): inside the caller's transaction, so a step can be written with what it sends.
pub(crate) async fn write_run<C: Conn>(conn: &mut C, save: &RunSave) -> Result<()> {
    let ended = save.state.is_ended();
    q(
        "UPDATE flow_runs SET state = $1, revision = revision + 1, wakes_at = $2, \
         ended_at = $3, end_reason = $4, locked_by = NULL, locked_until = NULL \
       WHERE id = $5 AND revision = $6 AND ended_at IS NULL",
    )
    .bind(json_text(&save.state))
    .bind(wakes_of(&save.state))
    .bind(ended.then_some(save.now.millis()))
    .bind(end_reason_of(&save.state))
    .bind(save.id.to_string())
    .bind(save.expected_revision)
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_deadlock)?
    .or(crate::StoreError::StaleRun)
}

#[async_trait]
pub trait AutomationStore {
    // --- flows
    /// Creates the flow at version 1 (`flow.version` is set by the store).
    async fn create_flow(
        &self,
        ws: WorkspaceId,
        id: FlowId,
        flow: &Flow,
        active: bool,
        now: Timestamp,
    ) -> Result<StoredFlow>;
    /// Saves a new version (the stored one + 1) if the stored version is still `expected`
    /// (`VersionConflict` otherwise); runs keep the version they started with.
    async fn update_flow(
        &self,
        id: FlowId,
        expected: u32,
        flow: &Flow,
        active: bool,
        now: Timestamp,
    ) -> Result<StoredFlow>;
    async fn set_flow_active(&self, id: FlowId, active: bool, now: Timestamp) -> Result<bool>;
    async fn flow(&self, id: FlowId) -> Result<Option<StoredFlow>>;
    /// A version of a flow, even an old one or one of a deleted flow.
    async fn flow_version(&self, id: FlowId, version: u32) -> Result<Option<Flow>>;
    async fn flows(&self, ws: WorkspaceId) -> Result<Vec<StoredFlow>>;
    /// Every workspace's active flows (the trigger matcher's input), in name order.
    async fn active_flows(&self) -> Result<Vec<StoredFlow>>;
    /// Deletes the flow (its versions stay for runs still going). False if there was none.
    async fn delete_flow(&self, ws: WorkspaceId, id: FlowId) -> Result<bool>;

    // --- runs
    /// Starts a run: inserts it and applies `change` (the bot taking the conversation, with its
    /// history) in one transaction. `Conflict("flow_run")` if a run is already going there;
    /// `VersionConflict` if the conversation changed since it was read.
    async fn start_run(&self, run: &FlowRun, change: Option<crate::Change>) -> Result<()>;
    /// Saves a run's new state (an ended state ends it) and applies `change` (handoff, resolve,
    /// tags, the history) in one transaction. `VersionConflict`: someone saved the run or
    /// changed the conversation first; read again and decide again.
    async fn save_run(&self, save: RunSave, change: Option<crate::Change>) -> Result<()>;
    /// The run going in the conversation.
    async fn running_run(&self, conv: ConversationId) -> Result<Option<FlowRun>>;
    /// The conversation's runs, newest first.
    async fn conversation_runs(&self, conv: ConversationId, limit: u32) -> Result<Vec<FlowRun>>;
    /// When `flow` last started for the contact, and whether a run of it is going.
    async fn contact_runs(
        &self,
        contact: ContactId,
        flow: FlowId,
    ) -> Result<switchboard_core::flow::ContactRuns>;
    /// Leases up to `limit` runs whose wake time has come to `node` until `lease_until`.
    async fn claim_due_runs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<FlowRun>>;

    // --- scheduled flows
    async fn attach_scheduled(&self, s: &ScheduledFlow) -> Result<()>;
    async fn scheduled(&self, id: ScheduledFlowId) -> Result<Option<ScheduledFlow>>;
    /// The contact's scheduled flows, newest attached first.
    async fn contact_scheduled(&self, contact: ContactId) -> Result<Vec<ScheduledFlow>>;
    /// Moves one from `from` to `to` (with the reason); false if it was not `from` any more
    /// (fired elsewhere, cancelled) — exactly one caller wins.
    async fn finish_scheduled(
        &self,
        id: ScheduledFlowId,
        from: ScheduledStatus,
        to: ScheduledStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<bool>;
    /// "Send now": makes a `scheduled` one due at `now`. False if it is not `scheduled`.
    async fn reschedule(&self, id: ScheduledFlowId, send_at: Timestamp) -> Result<bool>;
    /// Cancels the contact's scheduled runs of `flow`; how many.
    async fn cancel_scheduled_of(
        &self,
        contact: ContactId,
        flow: FlowId,
        reason: &str,
        now: Timestamp,
    ) -> Result<u64>;
    /// Leases up to `limit` due scheduled flows to `node` until `lease_until`.
    async fn claim_due_scheduled(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<ScheduledFlow>>;

    /// Conversations started at or after `since` (newest first, at most `limit`) with their first
    /// customer message: what a dry run replays.
    async fn conversations_started_since(
        &self,
        ws: WorkspaceId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Conversation, Option<Message>)>>;

    // --- FAQ, contact fields, the auto-reply switch
    async fn faq(&self, ws: WorkspaceId) -> Result<Option<FaqSettings>>;
    async fn save_faq(&self, ws: WorkspaceId, faq: &FaqSettings) -> Result<()>;
    async fn contact_fields(&self, contact: ContactId) -> Result<BTreeMap<String, String>>;
    async fn set_contact_field(
        &self,
        contact: ContactId,
        name: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Whether the auto-reply switch is off for the conversation (flows do not start there).
    async fn auto_reply_off(&self, conv: ConversationId) -> Result<bool>;
    /// Turns the switch; false if it already was that way.
    async fn set_auto_reply(
        &self,
        conv: ConversationId,
        on: bool,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<bool>;
}

use crate::rows::{corrupt, enum_of, json_of, opt_ts, opt_uuid_of, ts, uuid_of};
use crate::sql::{
    Conn, Db, RowRead, commit, conflict_on_deadlock, conflict_on_unique, json_text, q,
};
use crate::writes::write_change;
use tracing::instrument;

fn version_of(r: &impl RowRead, col: &str) -> Result<u32> {
    u32::try_from(r.try_get::<i64, _>(col)?).map_err(|_| corrupt(col))
}

fn flow_row(r: &impl RowRead) -> Result<StoredFlow> {
    let mut flow: Flow = json_of(r, "definition")?;
    flow.version = version_of(r, "version")?;
    flow.name = r.try_get("name")?;
    Ok(StoredFlow {
        id: FlowId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        active: r.try_get::<i64, _>("active")? != 0,
        flow,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn run_row(r: &impl RowRead) -> Result<FlowRun> {
    Ok(FlowRun {
        id: FlowRunId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        flow_id: FlowId(uuid_of(r, "flow_id")?),
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        contact_id: ContactId(uuid_of(r, "contact_id")?),
        state: json_of(r, "state")?,
        resume: json_of(r, "resume")?,
        revision: r.try_get("revision")?,
        started_at: ts(r, "started_at")?,
        ended_at: opt_ts(r, "ended_at")?,
    })
}

fn scheduled_row(r: &impl RowRead) -> Result<ScheduledFlow> {
    let within: Option<String> = r.try_get("within_hours")?;
    Ok(ScheduledFlow {
        id: ScheduledFlowId(uuid_of(r, "id")?),
        workspace_id: WorkspaceId(uuid_of(r, "workspace_id")?),
        contact_id: ContactId(uuid_of(r, "contact_id")?),
        conversation_id: ConversationId(uuid_of(r, "conversation_id")?),
        flow_id: FlowId(uuid_of(r, "flow_id")?),
        attached_at: ts(r, "attached_at")?,
        attached_by: opt_uuid_of(r, "attached_by")?.map(AgentId),
        send_at: ts(r, "send_at")?,
        within_hours: within
            .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("within_hours")))
            .transpose()?,
        status: enum_of(r, "status", ScheduledStatus::parse)?,
        reason: r.try_get("reason")?,
        done_at: opt_ts(r, "done_at")?,
    })
}

const FLOW_COLUMNS: &str =
    "f.id, f.workspace_id, f.name, f.active, f.version, f.created_at, f.updated_at, v.definition";

/// The definition as kept: the flow's JSON at that version (the `flows` row has the current name).
fn definition(flow: &Flow) -> String {
    json_text(flow)
}

/// Applies the conversation change, if any, inside the transaction.
async fn apply_change<C: Conn>(
    conn: &mut C,
    change: Option<crate::Change>,
) -> Result<Vec<switchboard_core::event::Event>> {
    match change {
        Some(c) => write_change(conn, c).await,
        None => Ok(Vec::new()),
    }
}

fn wakes_of(state: &RunState) -> Option<i64> {
    if state.is_ended() {
        None
    } else {
        state.wakes_at().map(Timestamp::millis)
    }
}

fn end_reason_of(state: &RunState) -> Option<String> {
    state.ended.as_ref().map(|e| {
        serde_json::to_value(e)
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "ended".into())
    })
}

#[async_trait]
impl<D: Db> AutomationStore for D {
    #[instrument(skip_all)]
    async fn create_flow(
        &self,
        ws: WorkspaceId,
        id: FlowId,
        flow: &Flow,
        active: bool,
        now: Timestamp,
    ) -> Result<StoredFlow> {
        let mut flow = flow.clone();
        flow.version = 1;
        let mut tx = self.begin().await?;
        q(
            "INSERT INTO flows (id, workspace_id, name, active, version, created_at, updated_at) \
           VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(id.to_string())
        .bind(ws.to_string())
        .bind(&flow.name)
        .bind(i64::from(active))
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("flow"))?;
        q("INSERT INTO flow_versions (flow_id, version, definition, created_at) VALUES ($1, 1, $2, $3)")
            .bind(id.to_string())
            .bind(definition(&flow))
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        commit(self, tx, &mut []).await?;
        Ok(StoredFlow {
            id,
            workspace_id: ws,
            active,
            flow,
            created_at: now,
            updated_at: now,
        })
    }

    #[instrument(skip_all)]
    async fn update_flow(
        &self,
        id: FlowId,
        expected: u32,
        flow: &Flow,
        active: bool,
        now: Timestamp,
    ) -> Result<StoredFlow> {
        let mut flow = flow.clone();
        flow.version = expected.saturating_add(1);
        let mut tx = self.begin().await?;
        q(
            "UPDATE flows SET name = $1, active = $2, version = $3, updated_at = $4 \
           WHERE id = $5 AND version = $6",
        )
        .bind(&flow.name)
        .bind(i64::from(active))
        .bind(i64::from(flow.version))
        .bind(now.millis())
        .bind(id.to_string())
        .bind(i64::from(expected))
        .execute(&mut *tx)
        .await?
        .or(crate::StoreError::VersionConflict)?;
        q("INSERT INTO flow_versions (flow_id, version, definition, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.to_string())
            .bind(i64::from(flow.version))
            .bind(definition(&flow))
            .bind(now.millis())
            .execute(&mut *tx)
            .await
            .map_err(conflict_on_unique("flow version"))?;
        let stored = q_flow_by_id()
            .bind(id.to_string())
            .opt(&mut *tx, flow_row)
            .await?
            .ok_or(crate::StoreError::NotFound)?;
        commit(self, tx, &mut [])
            .await
            .map_err(conflict_on_deadlock)?;
        Ok(stored)
    }

    #[instrument(skip_all)]
    async fn set_flow_active(&self, id: FlowId, active: bool, now: Timestamp) -> Result<bool> {
        Ok(
            q("UPDATE flows SET active = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(active))
                .bind(now.millis())
                .bind(id.to_string())
                .write(self)
                .await?
                .rows_affected()
                > 0,
        )
    }

    #[instrument(skip_all)]
    async fn flow(&self, id: FlowId) -> Result<Option<StoredFlow>> {
        q_flow_by_id()
            .bind(id.to_string())
            .read_opt(self, flow_row)
            .await
    }

    #[instrument(skip_all)]
    async fn flow_version(&self, id: FlowId, version: u32) -> Result<Option<Flow>> {
        q("SELECT definition FROM flow_versions WHERE flow_id = $1 AND version = $2")
            .bind(id.to_string())
            .bind(i64::from(version))
            .read_opt(self, |r| json_of(r, "definition"))
            .await
    }

    #[instrument(skip_all)]
    async fn flows(&self, ws: WorkspaceId) -> Result<Vec<StoredFlow>> {
        q_owned_flows("WHERE f.workspace_id = $1")
            .bind(ws.to_string())
            .read_all(self, flow_row)
            .await
    }

    #[instrument(skip_all)]
    async fn active_flows(&self) -> Result<Vec<StoredFlow>> {
        q_owned_flows("WHERE f.active <> 0")
            .read_all(self, flow_row)
            .await
    }

    #[instrument(skip_all)]
    async fn delete_flow(&self, ws: WorkspaceId, id: FlowId) -> Result<bool> {
        Ok(q("DELETE FROM flows WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string())
            .bind(ws.to_string())
            .write(self)
            .await?
            .rows_affected()
            > 0)
    }

    #[instrument(skip_all)]
    async fn start_run(&self, run: &FlowRun, change: Option<crate::Change>) -> Result<()> {
        let mut tx = self.begin().await?;
        let mut events = apply_change(&mut *tx, change)
            .await
            .map_err(conflict_on_deadlock)?;
        q("INSERT INTO flow_runs (id, workspace_id, flow_id, flow_version, conversation_id, contact_id, \
             state, resume, revision, started_at, ended_at, end_reason, wakes_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
        .bind(run.id.to_string())
        .bind(run.workspace_id.to_string())
        .bind(run.flow_id.to_string())
        .bind(i64::from(run.state.flow_version))
        .bind(run.conversation_id.to_string())
        .bind(run.contact_id.to_string())
        .bind(json_text(&run.state))
        .bind(json_text(&run.resume))
        .bind(run.revision)
        .bind(run.started_at.millis())
        .bind(run.ended_at.map(Timestamp::millis))
        .bind(end_reason_of(&run.state))
        .bind(wakes_of(&run.state))
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("flow_run"))?;
        commit(self, tx, &mut events)
            .await
            .map_err(conflict_on_deadlock)
    }

    #[instrument(skip_all)]
    async fn save_run(&self, save: RunSave, change: Option<crate::Change>) -> Result<()> {
        let mut tx = self.begin().await?;
        write_run(&mut *tx, &save).await.map_err(|e| match e {
            crate::StoreError::StaleRun => crate::StoreError::VersionConflict,
            e => e,
        })?;
        let mut events = apply_change(&mut *tx, change)
            .await
            .map_err(conflict_on_deadlock)?;
        commit(self, tx, &mut events)
            .await
            .map_err(conflict_on_deadlock)
    }

    #[instrument(skip_all)]
    async fn running_run(&self, conv: ConversationId) -> Result<Option<FlowRun>> {
        q("SELECT * FROM flow_runs WHERE conversation_id = $1 AND ended_at IS NULL")
            .bind(conv.to_string())
            .read_opt(self, run_row)
            .await
    }

    #[instrument(skip_all)]
    async fn conversation_runs(&self, conv: ConversationId, limit: u32) -> Result<Vec<FlowRun>> {
        q("SELECT * FROM flow_runs WHERE conversation_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2")
            .bind(conv.to_string())
            .bind(i64::from(limit.clamp(1, 200)))
            .read_all(self, run_row)
            .await
    }

    #[instrument(skip_all)]
    async fn contact_runs(
        &self,
        contact: ContactId,
        flow: FlowId,
    ) -> Result<switchboard_core::flow::ContactRuns> {
        let row = q("SELECT MAX(started_at) AS last_started_at, \
               COUNT(CASE WHEN ended_at IS NULL THEN 1 END) AS going \
             FROM flow_runs WHERE contact_id = $1 AND flow_id = $2")
        .bind(contact.to_string())
        .bind(flow.to_string())
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(switchboard_core::flow::ContactRuns {
            last_started_at: opt_ts(&row, "last_started_at")?,
            running: row.try_get::<i64, _>("going")? > 0,
        })
    }

    #[instrument(skip_all)]
    async fn claim_due_runs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<FlowRun>> {
        // As the routing timers: rows another runner leases are skipped, not waited for.
        let mut runs = q(
            "UPDATE flow_runs SET locked_by = $1, locked_until = $2 WHERE id IN ( \
               SELECT id FROM flow_runs WHERE ended_at IS NULL AND wakes_at IS NOT NULL AND wakes_at <= $3 \
                 AND (locked_until IS NULL OR locked_until <= $3) \
               ORDER BY wakes_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             AND ended_at IS NULL AND wakes_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) \
             RETURNING *",
        )
        .bind(node)
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .write_all(self, run_row)
        .await?;
        runs.sort_by_key(|r| (r.state.wakes_at(), r.id));
        Ok(runs)
    }

    #[instrument(skip_all)]
    async fn attach_scheduled(&self, s: &ScheduledFlow) -> Result<()> {
        q("INSERT INTO scheduled_flows (id, workspace_id, contact_id, conversation_id, flow_id, attached_at, \
             attached_by, send_at, within_hours, status, reason, done_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .bind(s.id.to_string())
        .bind(s.workspace_id.to_string())
        .bind(s.contact_id.to_string())
        .bind(s.conversation_id.to_string())
        .bind(s.flow_id.to_string())
        .bind(s.attached_at.millis())
        .bind(s.attached_by.map(|a| a.to_string()))
        .bind(s.send_at.millis())
        .bind(s.within_hours.as_ref().map(json_text))
        .bind(s.status.as_str())
        .bind(s.reason.clone())
        .bind(s.done_at.map(Timestamp::millis))
        .write(self)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn scheduled(&self, id: ScheduledFlowId) -> Result<Option<ScheduledFlow>> {
        q("SELECT * FROM scheduled_flows WHERE id = $1")
            .bind(id.to_string())
            .read_opt(self, scheduled_row)
            .await
    }

    #[instrument(skip_all)]
    async fn contact_scheduled(&self, contact: ContactId) -> Result<Vec<ScheduledFlow>> {
        q("SELECT * FROM scheduled_flows WHERE contact_id = $1 ORDER BY attached_at DESC, id DESC LIMIT 200")
            .bind(contact.to_string())
            .read_all(self, scheduled_row)
            .await
    }

    #[instrument(skip_all)]
    async fn finish_scheduled(
        &self,
        id: ScheduledFlowId,
        from: ScheduledStatus,
        to: ScheduledStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        Ok(q("UPDATE scheduled_flows SET status = $1, reason = $2, \
                done_at = CASE WHEN $1 = 'scheduled' THEN NULL ELSE $3 END, locked_by = NULL, locked_until = NULL \
              WHERE id = $4 AND status = $5")
            .bind(to.as_str())
            .bind(reason)
            .bind(now.millis())
            .bind(id.to_string())
            .bind(from.as_str())
            .write(self)
            .await?
            .rows_affected()
            > 0)
    }

    #[instrument(skip_all)]
    async fn reschedule(&self, id: ScheduledFlowId, send_at: Timestamp) -> Result<bool> {
        Ok(
            q("UPDATE scheduled_flows SET send_at = $1 WHERE id = $2 AND status = 'scheduled'")
                .bind(send_at.millis())
                .bind(id.to_string())
                .write(self)
                .await?
                .rows_affected()
                > 0,
        )
    }

    #[instrument(skip_all)]
    async fn cancel_scheduled_of(
        &self,
        contact: ContactId,
        flow: FlowId,
        reason: &str,
        now: Timestamp,
    ) -> Result<u64> {
        Ok(q(
            "UPDATE scheduled_flows SET status = 'cancelled', reason = $1, done_at = $2 \
              WHERE contact_id = $3 AND flow_id = $4 AND status = 'scheduled'",
        )
        .bind(reason)
        .bind(now.millis())
        .bind(contact.to_string())
        .bind(flow.to_string())
        .write(self)
        .await?
        .rows_affected())
    }

    #[instrument(skip_all)]
    async fn claim_due_scheduled(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        node: &str,
        limit: u32,
    ) -> Result<Vec<ScheduledFlow>> {
        let mut due = q(
            "UPDATE scheduled_flows SET locked_by = $1, locked_until = $2 WHERE id IN ( \
               SELECT id FROM scheduled_flows WHERE status = 'scheduled' AND send_at <= $3 \
                 AND (locked_until IS NULL OR locked_until <= $3) \
               ORDER BY send_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             AND status = 'scheduled' AND send_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) \
             RETURNING *",
        )
        .bind(node)
        .bind(lease_until.millis())
        .bind(now.millis())
        .bind(i64::from(limit))
        .write_all(self, scheduled_row)
        .await?;
        due.sort_by_key(|s| (s.send_at, s.id));
        Ok(due)
    }

    #[instrument(skip_all)]
    async fn conversations_started_since(
        &self,
        ws: WorkspaceId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Conversation, Option<Message>)>> {
        let mut conn = self.read().await?;
        // Activity is never before creation: the list's index narrows, the creation time decides.
        let convs = q(
            "SELECT * FROM conversations WHERE workspace_id = $1 AND last_activity_at >= $2 \
                       AND created_at >= $3 ORDER BY last_activity_at DESC, id DESC LIMIT $4",
        )
        .bind(ws.to_string())
        .bind(since.millis())
        .bind(since.millis())
        .bind(i64::from(limit.clamp(1, 1000)))
        .all(&mut *conn, crate::rows::conversation_row)
        .await?;
        if convs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = convs.iter().map(|c| c.id.to_string()).collect();
        let firsts = q("SELECT m.* FROM messages m WHERE m.conversation_id = ANY($1) AND m.direction = 'inbound' \
                        AND m.created_at = (SELECT MIN(x.created_at) FROM messages x \
                          WHERE x.conversation_id = m.conversation_id AND x.direction = 'inbound') \
                        ORDER BY m.created_at, m.id")
        .bind(ids)
        .all(&mut *conn, crate::rows::message_row)
        .await?;
        let mut first: std::collections::HashMap<ConversationId, Message> =
            std::collections::HashMap::new();
        for m in firsts {
            first.entry(m.conversation_id).or_insert(m);
        }
        Ok(convs
            .into_iter()
            .map(|c| {
                let m = first.remove(&c.id);
                (c, m)
            })
            .collect())
    }

    #[instrument(skip_all)]
    async fn faq(&self, ws: WorkspaceId) -> Result<Option<FaqSettings>> {
        q("SELECT faq, handoff_phrases, updated_at FROM faqs WHERE workspace_id = $1")
            .bind(ws.to_string())
            .read_opt(self, |r| {
                let phrases: Option<String> = r.try_get("handoff_phrases")?;
                Ok(FaqSettings {
                    faq: json_of(r, "faq")?,
                    handoff_phrases: phrases
                        .map(|p| serde_json::from_str(&p).map_err(|_| corrupt("handoff_phrases")))
                        .transpose()?,
                    updated_at: ts(r, "updated_at")?,
                })
            })
            .await
    }

    #[instrument(skip_all)]
    async fn save_faq(&self, ws: WorkspaceId, faq: &FaqSettings) -> Result<()> {
        q("INSERT INTO faqs (workspace_id, faq, handoff_phrases, updated_at) VALUES ($1, $2, $3, $4) \
           ON CONFLICT (workspace_id) DO UPDATE SET faq = excluded.faq, \
             handoff_phrases = excluded.handoff_phrases, updated_at = excluded.updated_at")
        .bind(ws.to_string())
        .bind(json_text(&faq.faq))
        .bind(faq.handoff_phrases.as_ref().map(json_text))
        .bind(faq.updated_at.millis())
        .write(self)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn contact_fields(&self, contact: ContactId) -> Result<BTreeMap<String, String>> {
        let rows = q("SELECT name, value FROM contact_fields WHERE contact_id = $1 ORDER BY name")
            .bind(contact.to_string())
            .read_all(self, |r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .await?;
        Ok(rows.into_iter().collect())
    }

    #[instrument(skip_all)]
    async fn set_contact_field(
        &self,
        contact: ContactId,
        name: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<()> {
        q("INSERT INTO contact_fields (contact_id, name, value, updated_at) VALUES ($1, $2, $3, $4) \
           ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
        .bind(contact.to_string())
        .bind(name)
        .bind(value)
        .bind(now.millis())
        .write(self)
        .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn auto_reply_off(&self, conv: ConversationId) -> Result<bool> {
        Ok(
            q("SELECT 1 AS off FROM auto_reply_off WHERE conversation_id = $1")
                .bind(conv.to_string())
                .read_opt(self, |_| Ok(()))
                .await?
                .is_some(),
        )
    }

    #[instrument(skip_all)]
    async fn set_auto_reply(
        &self,
        conv: ConversationId,
        on: bool,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<bool> {
        let done = if on {
            q("DELETE FROM auto_reply_off WHERE conversation_id = $1")
                .bind(conv.to_string())
                .write(self)
                .await?
        } else {
            q("INSERT INTO auto_reply_off (conversation_id, agent_id, created_at) VALUES ($1, $2, $3) \
               ON CONFLICT (conversation_id) DO NOTHING")
            .bind(conv.to_string())
            .bind(by.map(|a| a.to_string()))
            .bind(now.millis())
            .write(self)
            .await?
        };
        Ok(done.rows_affected() > 0)
    }
}

fn q_flow_by_id() -> crate::sql::Q {
    q(
        "SELECT f.id, f.workspace_id, f.name, f.active, f.version, f.created_at, f.updated_at, v.definition \
       FROM flows f JOIN flow_versions v ON v.flow_id = f.id AND v.version = f.version WHERE f.id = $1",
    )
}

fn q_owned_flows(filter: &str) -> crate::sql::Q {
    crate::sql::q_owned(format!(
        "SELECT {FLOW_COLUMNS} FROM flows f JOIN flow_versions v ON v.flow_id = f.id AND v.version = f.version \
         {filter} ORDER BY f.name, f.id"
    ))
}
