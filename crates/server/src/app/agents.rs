//! Agents: creating one (the API and `switchboard user add` share it) and changing one (admin).
//! A deactivated agent or a new password ends the agent's sessions; every node hears of the change.

use crate::auth::{self, CurrentAgent};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde::Deserialize;
use switchboard_core::validate::{Email, PersonName};
use switchboard_core::{Agent, AgentId, Role, Timestamp, WorkspaceId};
use switchboard_store::Store;

fn parse_role(s: &str) -> ApiResult<Role> {
    Role::parse(s).ok_or_else(|| {
        ApiError::invalid("role: must be admin, supervisor or agent")
            .with_extra(serde_json::json!({"field": "role"}))
    })
}

/// Validates and stores a new agent.
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
        id: AgentId(uuid::Uuid::now_v7()),
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

/// What an admin may change on an agent; absent fields stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub capacity: Option<Option<u32>>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

/// Changes an agent (admin only). Admins cannot deactivate themselves.
pub async fn update(
    st: &AppState,
    me: &CurrentAgent,
    id: AgentId,
    b: AgentPatch,
) -> ApiResult<Agent> {
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
    Ok(agent)
}
