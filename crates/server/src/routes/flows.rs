//! Automation: `/flows` (list, create, read, save a new version, delete, check), `/faq`, a
//! conversation's `/automation` (the auto-reply switch, runs, captured fields), `/take-over`,
//! `/flows` started by an agent in a conversation, and scheduled flows per contact.

use crate::app::{flow_tools, flows};
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{ContactId, ConversationId, FlowId, ScheduledFlowId};

type Json = ApiResult<ApiJson<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowBody {
    flow: Value,
    #[serde(default = "yes")]
    active: bool,
    /// The version the editor started from (a save on top of someone else's is refused).
    version: Option<u32>,
}

fn yes() -> bool {
    true
}

pub async fn list(State(st): State<AppState>, _me: CurrentAgent) -> Json {
    Ok(ApiJson(flows::list(&st).await?))
}

pub async fn create(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<FlowBody>,
) -> ApiResult<Response> {
    Ok(created(flows::create(&st, &me, &b.flow, b.active).await?))
}

pub async fn get(State(st): State<AppState>, _me: CurrentAgent, Path(id): Path<FlowId>) -> Json {
    Ok(ApiJson(flows::get(&st, id).await?))
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<FlowId>,
    ApiJson(b): ApiJson<FlowBody>,
) -> Json {
    let version = match b.version {
        Some(v) => v,
        None => {
            return Err(crate::error::ApiError::invalid(
                "version: the version you edited is required",
            ));
        }
    };
    Ok(ApiJson(
        flows::update(&st, &me, id, version, &b.flow, b.active).await?,
    ))
}

pub async fn delete(State(st): State<AppState>, me: CurrentAgent, Path(id): Path<FlowId>) -> Json {
    flows::delete(&st, &me, id).await?;
    Ok(ApiJson(json!({"ok": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    flow: Value,
}

pub async fn check(me: CurrentAgent, ApiJson(b): ApiJson<CheckBody>) -> Json {
    Ok(ApiJson(flows::check(&me, &b.flow)?))
}

pub async fn signing_secret(State(st): State<AppState>, me: CurrentAgent) -> Json {
    Ok(ApiJson(flows::signing_secret(&st, &me)?))
}

pub async fn faq(State(st): State<AppState>, _me: CurrentAgent) -> Json {
    Ok(ApiJson(flows::faq(&st).await?))
}

pub async fn save_faq(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<flows::FaqBody>,
) -> Json {
    Ok(ApiJson(flows::save_faq(&st, &me, b).await?))
}

pub async fn automation(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> Json {
    Ok(ApiJson(flows::conversation_state(&st, &me, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchBody {
    on: bool,
}

pub async fn auto_reply(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<SwitchBody>,
) -> Json {
    Ok(ApiJson(flows::switch_auto_reply(&st, &me, id, b.on).await?))
}

pub async fn take_over(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> Json {
    flows::take_over(&st, &me, id).await?;
    Ok(ApiJson(flows::conversation_state(&st, &me, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    flow_id: FlowId,
}

pub async fn start(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<StartBody>,
) -> Json {
    Ok(ApiJson(flows::start(&st, &me, id, b.flow_id).await?))
}

pub async fn scheduled(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> Json {
    Ok(ApiJson(flows::contact_scheduled(&st, &me, id).await?))
}

pub async fn schedule(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
    ApiJson(b): ApiJson<flows::ScheduleBody>,
) -> ApiResult<Response> {
    Ok(created(flows::attach(&st, &me, id, b).await?))
}

pub async fn send_now(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ScheduledFlowId>,
) -> Json {
    Ok(ApiJson(flows::send_now(&st, &me, id).await?))
}

pub async fn cancel(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ScheduledFlowId>,
) -> Json {
    Ok(ApiJson(flows::cancel(&st, &me, id).await?))
}

pub async fn simulate(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<flow_tools::SimulateBody>,
) -> Json {
    Ok(ApiJson(flow_tools::simulate(&st, &me, b).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunBody {
    /// The last this many days (1–90, default 7).
    days: Option<u32>,
    /// At most this many conversations looked at (default and most: 500).
    limit: Option<u32>,
}

pub async fn dry_run(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<FlowId>,
    ApiJson(b): ApiJson<DryRunBody>,
) -> Json {
    let (days, limit) = (
        b.days.unwrap_or(7),
        b.limit.unwrap_or(flow_tools::MAX_DRY_RUN),
    );
    Ok(ApiJson(
        flow_tools::dry_run(&st, &me, id, days, limit).await?,
    ))
}
