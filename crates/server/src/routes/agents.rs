//! `GET/POST /agents`, `PATCH /agents/{id}`.

use crate::app::agents::{self, AgentPatch};
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::{Agent, AgentId};

fn agent_json(st: &AppState, a: &Agent) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "online".into(),
            serde_json::json!(st.presence.is_online(a.id)),
        );
        o.insert(
            "presence".into(),
            serde_json::json!(st.presence.status(a.id, st.clock.now())),
        );
    }
    v
}

pub async fn list(
    State(st): State<AppState>,
    _me: CurrentAgent,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let agents = st.store.list_agents(st.workspace_id).await?;
    let items: Vec<_> = agents.iter().map(|a| agent_json(&st, a)).collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    email: String,
    name: String,
    role: String,
    password: String,
    capacity: Option<u32>,
}

pub async fn create(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<NewAgent>,
) -> ApiResult<Response> {
    me.require_admin()?;
    let agent = agents::create_agent(
        st.store.as_ref(),
        st.workspace_id,
        st.clock.now(),
        &b.email,
        &b.name,
        &b.role,
        b.capacity,
        b.password,
    )
    .await?;
    Ok(created(agent_json(&st, &agent)))
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<AgentId>,
    ApiJson(b): ApiJson<AgentPatch>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let agent = agents::update(&st, &me, id, b).await?;
    Ok(ApiJson(agent_json(&st, &agent)))
}
