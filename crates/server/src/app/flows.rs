//! Automation's commands: flows (saved as new versions, imported and exported as JSON), the FAQ
//! and handoff phrases, an agent taking a conversation over from the bot or starting a flow in it,
//! the per-conversation auto-reply switch, and scheduled flows per customer (attached with the
//! window's forecast at the send time, sent now, cancelled). Supervisors and admins change flows
//! and the FAQ; everyone reads them.

use crate::app::contacts::{latest_conversation, visible_contact};
use crate::app::conversation::visible;
use crate::auth::CurrentAgent;
use crate::automation::{NotStarted, TakeOverError, bot_decision, refusal_code};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::conversation::Actor;
use switchboard_core::flow::{self, Flow, FlowError, ImportError};
use switchboard_core::policy::{self, Decision};
use switchboard_core::*;
use switchboard_store::{FaqSettings, ScheduledFlow, ScheduledStatus, StoreError, StoredFlow};

fn require_supervisor(me: &CurrentAgent) -> ApiResult<()> {
    super::require_supervisor(me, "flows and the FAQ")
}

/// The secret HTTP steps sign their requests with (admins only: it verifies them).
pub fn signing_secret(st: &AppState, me: &CurrentAgent) -> ApiResult<serde_json::Value> {
    if me.agent.role != Role::Admin {
        return Err(ApiError::forbidden(
            "only an admin may read the signing secret",
        ));
    }
    let secret = String::from_utf8_lossy(st.automation.signing_key()).into_owned();
    Ok(serde_json::json!({
        "secret": secret,
        "header": "Switchboard-Signature",
        "scheme": "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>",
    }))
}

/// A flow that does not validate: every problem, each with its path.
fn invalid_flow(e: ImportError) -> ApiError {
    match e {
        ImportError::Json(m) => ApiError::invalid(format!("flow: {m}")),
        ImportError::Invalid(errors) => invalid_errors(&errors),
    }
}

fn invalid_errors(errors: &[FlowError]) -> ApiError {
    let first = errors
        .first()
        .map(|e| format!("{}: {}", e.path, e.message))
        .unwrap_or_default();
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_flow", first)
        .with_extra(serde_json::json!({"errors": errors}))
}

/// Reads and validates a flow from its JSON.
pub fn parse_flow(v: &serde_json::Value) -> ApiResult<Flow> {
    let flow: Flow = serde_json::from_value(v.clone())
        .map_err(|e| invalid_flow(ImportError::Json(e.to_string())))?;
    flow.validate().map_err(|e| invalid_errors(&e))?;
    Ok(flow)
}

fn flow_json(s: &StoredFlow) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "name": s.flow.name,
        "version": s.flow.version,
        "active": s.active,
        "flow": s.flow,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

pub async fn list(st: &AppState) -> ApiResult<serde_json::Value> {
    let items: Vec<_> = st
        .store
        .flows(st.workspace_id)
        .await?
        .iter()
        .map(flow_json)
        .collect();
    Ok(serde_json::json!({"items": items, "next_cursor": null}))
}

pub async fn get(st: &AppState, id: FlowId) -> ApiResult<serde_json::Value> {
    Ok(flow_json(&found(st, id).await?))
}

async fn found(st: &AppState, id: FlowId) -> ApiResult<StoredFlow> {
    st.store
        .flow(id)
        .await?
        .filter(|f| f.workspace_id == st.workspace_id)
        .ok_or_else(|| ApiError::not_found("flow"))
}

/// Checks a flow without saving it (the editor's per-step validation).
pub fn check(me: &CurrentAgent, flow: &serde_json::Value) -> ApiResult<serde_json::Value> {
    require_supervisor(me)?;
    let errors = match serde_json::from_value::<Flow>(flow.clone()) {
        Ok(f) => f.validate().err().unwrap_or_default(),
        Err(e) => {
            return Ok(
                serde_json::json!({"valid": false, "errors": [{"path": "flow", "message": e.to_string()}]}),
            );
        }
    };
    Ok(serde_json::json!({"valid": errors.is_empty(), "errors": errors}))
}

pub async fn create(
    st: &AppState,
    me: &CurrentAgent,
    flow: &serde_json::Value,
    active: bool,
) -> ApiResult<serde_json::Value> {
    require_supervisor(me)?;
    let flow = parse_flow(flow)?;
    let id = FlowId(crate::random::new_uuid());
    let saved = st
        .store
        .create_flow(st.workspace_id, id, &flow, active, st.clock.now())
        .await?;
    st.automation.forget();
    Ok(flow_json(&saved))
}

/// Saves a new version if `version` is still the current one (409 otherwise: someone else saved).
pub async fn update(
    st: &AppState,
    me: &CurrentAgent,
    id: FlowId,
    version: u32,
    flow: &serde_json::Value,
    active: bool,
) -> ApiResult<serde_json::Value> {
    require_supervisor(me)?;
    let flow = parse_flow(flow)?;
    found(st, id).await?;
    let saved = match st
        .store
        .update_flow(id, version, &flow, active, st.clock.now())
        .await
    {
        Ok(s) => s,
        Err(StoreError::VersionConflict) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "flow_changed",
                "someone saved this flow meanwhile: reload it and apply your change again",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    st.automation.forget();
    Ok(flow_json(&saved))
}

pub async fn delete(st: &AppState, me: &CurrentAgent, id: FlowId) -> ApiResult<()> {
    require_supervisor(me)?;
    if !st.store.delete_flow(st.workspace_id, id).await? {
        return Err(ApiError::not_found("flow"));
    }
    st.automation.forget();
    Ok(())
}

/// The FAQ and handoff phrases (`handoff_phrases: null`: the defaults).
pub async fn faq(st: &AppState) -> ApiResult<serde_json::Value> {
    let saved = st.store.faq(st.workspace_id).await?;
    let defaults: Vec<String> = flow::faq::DEFAULT_HANDOFF_PHRASES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    Ok(match saved {
        Some(s) => serde_json::json!({
            "entries": s.faq.entries, "threshold": s.faq.threshold,
            "handoff_phrases": s.handoff_phrases, "default_handoff_phrases": defaults,
            "updated_at": s.updated_at,
        }),
        None => serde_json::json!({
            "entries": [], "threshold": flow::faq::DEFAULT_THRESHOLD,
            "handoff_phrases": null, "default_handoff_phrases": defaults, "updated_at": null,
        }),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqBody {
    pub entries: Vec<flow::FaqEntry>,
    pub threshold: Option<f64>,
    pub handoff_phrases: Option<Vec<String>>,
}

pub async fn save_faq(
    st: &AppState,
    me: &CurrentAgent,
    body: FaqBody,
) -> ApiResult<serde_json::Value> {
    require_supervisor(me)?;
    let list = flow::FaqList {
        entries: body.entries,
        threshold: body.threshold.unwrap_or(flow::faq::DEFAULT_THRESHOLD),
    };
    if let Err(errors) = list.validate() {
        return Err(invalid_errors(&errors));
    }
    if let Some(p) = &body.handoff_phrases
        && let Err(errors) = flow::check::validate_phrases(p)
    {
        return Err(invalid_errors(&errors));
    }
    let settings = FaqSettings {
        faq: list,
        handoff_phrases: body.handoff_phrases,
        updated_at: st.clock.now(),
    };
    st.store.save_faq(st.workspace_id, &settings).await?;
    st.automation.forget();
    faq(st).await
}

// ------------------------------------------------------------------ conversations

/// The conversation's automation: the auto-reply switch, the run going and the latest runs.
pub async fn conversation_state(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
) -> ApiResult<serde_json::Value> {
    let c = visible(st, me, id).await?;
    let off = st.store.auto_reply_off(c.id).await?;
    let runs = st.store.conversation_runs(c.id, 20).await?;
    let fields = st.store.contact_fields(c.contact_id).await?;
    let runs: Vec<_> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "flow_id": r.flow_id, "version": r.state.flow_version,
                "started_at": r.started_at, "ended_at": r.ended_at, "state": r.state,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "auto_reply": !off,
        "running": runs.iter().find(|r| r["ended_at"].is_null()),
        "runs": runs,
        "fields": fields,
    }))
}

fn actor(me: &CurrentAgent) -> Actor {
    Actor {
        agent_id: me.agent.id,
        role: me.agent.role,
    }
}

/// "Tiếp quản": an agent takes the conversation from the bot; the flow stops.
pub async fn take_over(st: &AppState, me: &CurrentAgent, id: ConversationId) -> ApiResult<()> {
    let c = visible(st, me, id).await?;
    match st.automation.take_over(c.id, actor(me)).await {
        Ok(_) => Ok(()),
        Err(TakeOverError::Conversation(e)) => Err(e.into()),
        Err(TakeOverError::Store(e)) => Err(e.into()),
    }
}

pub async fn switch_auto_reply(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    on: bool,
) -> ApiResult<serde_json::Value> {
    let c = visible(st, me, id).await?;
    st.automation
        .switch_auto_reply(c.id, on, me.agent.id)
        .await?;
    conversation_state(st, me, id).await
}

/// An agent starts a flow in a conversation they hold or nobody holds; the bot takes it.
pub async fn start(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    flow: FlowId,
) -> ApiResult<serde_json::Value> {
    let c = visible(st, me, id).await?;
    if let Some(holder) = c.assignee_id
        && holder != me.agent.id
        && !me.agent.role.supervises()
    {
        return Err(ConversationError::Claimed { holder }.into());
    }
    found(st, flow).await?;
    st.automation
        .start(c.id, flow, Some(me.agent.id), "agent", 0)
        .await
        .map_err(not_started)?;
    conversation_state(st, me, id).await
}

fn not_started(e: NotStarted) -> ApiError {
    match e {
        NotStarted::NoFlow => ApiError::not_found("flow"),
        NotStarted::NotStartable => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "flow_not_startable",
            "this flow has no trigger for being started by an agent: add the agent_start trigger",
        ),
        NotStarted::Running => ApiError::new(
            StatusCode::CONFLICT,
            "flow_running",
            "a flow is already running in this conversation: take it over first",
        ),
        NotStarted::Busy => ApiError::new(
            StatusCode::CONFLICT,
            "conversation_busy",
            "the conversation changed meanwhile; try again",
        ),
        NotStarted::Store => ApiError::internal(),
    }
}

// ------------------------------------------------------------------ scheduled flows

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub flow_id: FlowId,
    /// The conversation to run it in (default: the contact's most recent one the agent sees).
    pub conversation_id: Option<ConversationId>,
    /// A date-time (ms since the epoch)...
    pub send_at: Option<i64>,
    /// ...or a delay from now, in seconds.
    pub delay_secs: Option<u64>,
    /// Only within these local hours (`{"from": "08:00", "to": "17:00"}`): moved to the next
    /// opening.
    pub within_hours: Option<flow::model::HoursSpec>,
    /// Only answer what would happen (the window's forecast); save nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn scheduled_json(s: &ScheduledFlow, flow_name: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["flow_name"] = serde_json::json!(flow_name);
    v
}

pub async fn contact_scheduled(
    st: &AppState,
    me: &CurrentAgent,
    contact: ContactId,
) -> ApiResult<serde_json::Value> {
    visible_contact(st, me, contact).await?;
    let names: std::collections::HashMap<FlowId, String> = st
        .store
        .flows(st.workspace_id)
        .await?
        .into_iter()
        .map(|f| (f.id, f.flow.name))
        .collect();
    let items: Vec<_> = st
        .store
        .contact_scheduled(contact)
        .await?
        .iter()
        .filter(|s| s.workspace_id == st.workspace_id)
        .map(|s| scheduled_json(s, names.get(&s.flow_id).map(String::as_str)))
        .collect();
    Ok(serde_json::json!({"items": items, "next_cursor": null}))
}

/// Attaches a scheduled flow, answering whether the platform will let the bot send at that time.
pub async fn attach(
    st: &AppState,
    me: &CurrentAgent,
    contact: ContactId,
    b: ScheduleBody,
) -> ApiResult<serde_json::Value> {
    let (_, identities) = visible_contact(st, me, contact).await?;
    let flow = found(st, b.flow_id).await?;
    if !crate::automation::startable(&flow.flow, "scheduled") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "flow_not_schedulable",
            "this flow has no trigger for being scheduled: add the scheduled_due trigger",
        ));
    }
    let c = match b.conversation_id {
        Some(id) => {
            let c = visible(st, me, id).await?;
            if c.contact_id != contact {
                return Err(ApiError::not_found("conversation"));
            }
            c
        }
        None => latest_conversation(st, Some(me), contact, &identities)
            .await?
            .ok_or_else(|| ApiError::not_found("conversation"))?,
    };
    let now = st.clock.now();
    let at = match (b.send_at, b.delay_secs) {
        (Some(t), None) => Timestamp(t),
        (None, Some(d)) if d <= 366 * 86_400 => now.plus_secs(i64::try_from(d).unwrap_or(0)),
        (None, None) => now,
        _ => {
            return Err(ApiError::invalid(
                "give send_at (a time) or delay_secs (at most a year), not both",
            ));
        }
    };
    if at.millis() < now.millis() - 60_000 || at.millis() > now.plus_secs(366 * 86_400).millis() {
        return Err(ApiError::invalid(
            "send_at: must be between now and a year from now",
        ));
    }
    if let Some(h) = &b.within_hours
        && !flow::check::hours_valid(h)
    {
        return Err(ApiError::invalid(
            "within_hours: from and to are HH:MM, from before to",
        ));
    }
    let hours = st
        .store
        .routing_state(c.inbox_id)
        .await?
        .rules
        .business_hours;
    let offset = hours.as_ref().map_or(420, |h| h.utc_offset_minutes);
    let send_at = match &b.within_hours {
        Some(h) => flow::engine::within(at, h, offset),
        None => at,
    };
    let forecast = forecast(st, &c, send_at).await?;
    let s = ScheduledFlow {
        id: ScheduledFlowId(crate::random::new_uuid()),
        workspace_id: st.workspace_id,
        contact_id: contact,
        conversation_id: c.id,
        flow_id: flow.id,
        attached_at: now,
        attached_by: Some(me.agent.id),
        send_at,
        within_hours: b
            .within_hours
            .as_ref()
            .map(|h| serde_json::json!({"from": h.from, "to": h.to})),
        status: ScheduledStatus::Scheduled,
        reason: None,
        done_at: None,
    };
    if !b.dry_run {
        st.store.attach_scheduled(&s).await?;
    }
    let mut v = scheduled_json(&s, Some(&flow.flow.name));
    v["window"] = forecast;
    v["saved"] = serde_json::json!(!b.dry_run);
    Ok(v)
}

/// Whether the platform lets the bot send a free-form message at `at`, as things stand now (the
/// customer writing again may open the window further): `open`, `template_required` or
/// `not_allowed`, with when the window ends.
async fn forecast(st: &AppState, c: &Conversation, at: Timestamp) -> ApiResult<serde_json::Value> {
    let inbox = st
        .store
        .inbox(c.inbox_id)
        .await?
        .ok_or_else(|| ApiError::not_found("inbox"))?;
    let facts = crate::app::send::window_facts(st.store.as_ref(), inbox.channel, c).await?;
    let decision = bot_decision(inbox.channel, facts, at);
    let open = matches!(decision, Decision::Allowed { .. });
    let (allowed, reason) = match &decision {
        Decision::Allowed { .. } => ("open", None),
        Decision::Refused { reason, .. } => (
            if refusal_code(*reason) == "template_required" {
                "template_required"
            } else {
                "not_allowed"
            },
            Some(refusal_code(*reason)),
        ),
        Decision::NeedsConfirmation { .. } => ("not_allowed", Some("window_closed")),
    };
    let summary = policy::summarize(&policy::rules_for(inbox.channel), facts, st.clock.now());
    Ok(serde_json::json!({
        "at": at, "allowed": allowed, "open": open, "reason": reason,
        "window_ends_at": summary.window_ends_at, "channel": inbox.channel,
    }))
}

async fn visible_scheduled(
    st: &AppState,
    me: &CurrentAgent,
    id: ScheduledFlowId,
) -> ApiResult<ScheduledFlow> {
    let s = st
        .store
        .scheduled(id)
        .await?
        .filter(|s| s.workspace_id == st.workspace_id)
        .ok_or_else(|| ApiError::not_found("scheduled flow"))?;
    visible(st, me, s.conversation_id)
        .await
        .map_err(|_| ApiError::not_found("scheduled flow"))?;
    Ok(s)
}

fn not_scheduled() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_scheduled",
        "this scheduled flow has already run or was cancelled",
    )
}

/// "Gửi ngay": due now; the runner's next tick (or this node's, at once) runs it.
pub async fn send_now(
    st: &AppState,
    me: &CurrentAgent,
    id: ScheduledFlowId,
) -> ApiResult<serde_json::Value> {
    visible_scheduled(st, me, id).await?;
    let now = st.clock.now();
    if !st.store.reschedule(id, now).await? {
        return Err(not_scheduled());
    }
    st.automation.run_due(now).await?;
    scheduled_now(st, me, id).await
}

pub async fn cancel(
    st: &AppState,
    me: &CurrentAgent,
    id: ScheduledFlowId,
) -> ApiResult<serde_json::Value> {
    visible_scheduled(st, me, id).await?;
    let reason = format!("cancelled by {}", me.agent.name);
    if !st
        .store
        .finish_scheduled(
            id,
            ScheduledStatus::Scheduled,
            ScheduledStatus::Cancelled,
            Some(&reason),
            st.clock.now(),
        )
        .await?
    {
        return Err(not_scheduled());
    }
    scheduled_now(st, me, id).await
}

async fn scheduled_now(
    st: &AppState,
    me: &CurrentAgent,
    id: ScheduledFlowId,
) -> ApiResult<serde_json::Value> {
    let s = visible_scheduled(st, me, id).await?;
    let name = st.store.flow(s.flow_id).await?.map(|f| f.flow.name);
    Ok(scheduled_json(&s, name.as_deref()))
}
