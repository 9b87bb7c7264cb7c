//! `GET/POST /agents`, `PATCH /agents/{id}`.

use crate::auth::{self, CurrentAgent};
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::{created, new_uuid};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::validate::{Email, PersonName};
use switchboard_core::{Agent, AgentId, Role, Timestamp, WorkspaceId};
use switchboard_store::Store;

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

fn parse_role(s: &str) -> ApiResult<Role> {
    Role::parse(s).ok_or_else(|| {
        ApiError::invalid("role: must be admin, supervisor or agent")
            .with_extra(serde_json::json!({"field": "role"}))
    })
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
    let agent = create_agent(
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

/// Validates and stores a new agent (the API and `switchboard user add` share this).
#[allow(clippy::too_many_arguments)]
pub async fn create_agent(
    store: &dyn Store,
    workspace_id: WorkspaceId,
    now: Timestamp,
    email: &str,
    name: &str,
    role: &str,
    capacity: Option<u32>,
    password: String,
) -> ApiResult<Agent> {
    let email = Email::parse(email)?;
    let name = PersonName::parse(name)?;
    let role = parse_role(role)?;
    auth::validate_password(&password)?;
    let agent = Agent {
        id: AgentId(new_uuid()),
        workspace_id,
        email: email.into_inner(),
        name: name.into_inner(),
        role,
        capacity,
        active: true,
        created_at: now,
    };
    let hash = auth::hash_password(password).await?;
    store.create_agent(&agent, &hash).await?;
    Ok(agent)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    email: Option<String>,
    name: Option<String>,
    role: Option<String>,
    capacity: Option<Option<u32>>,
    active: Option<bool>,
    password: Option<String>,
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<AgentId>,
    ApiJson(b): ApiJson<AgentPatch>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    me.require_admin()?;
    let mut agent = st
        .store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    if let Some(e) = b.email {
        agent.email = Email::parse(&e)?.into_inner();
    }
    if let Some(n) = b.name {
        agent.name = PersonName::parse(&n)?.into_inner();
    }
    if let Some(r) = b.role {
        agent.role = parse_role(&r)?;
    }
    if let Some(c) = b.capacity {
        agent.capacity = c;
    }
    if let Some(a) = b.active {
        if !a && agent.id == me.agent.id {
            return Err(ApiError::invalid("you cannot deactivate yourself"));
        }
        agent.active = a;
    }
    let hash = match b.password {
        Some(p) => {
            auth::validate_password(&p)?;
            Some(auth::hash_password(p).await?)
        }
        None => None,
    };
    st.store.update_agent(&agent, hash.as_deref()).await?;
    if !agent.active || hash.is_some() {
        st.store
            .revoke_agent_sessions(agent.id, st.clock.now())
            .await?;
    }
    st.bus.control(crate::bus::Control::AgentChanged(agent.id));
    Ok(ApiJson(agent_json(&st, &agent)))
}
