//! `GET/PUT /inboxes/{id}/routing` (routing rules), `GET/PUT /me/presence`, and
//! `GET /conversations/{id}/timers` (what is due on a conversation, for countdowns in the UI).

use crate::app;
use crate::app::inbox::visible_inbox;
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use serde::Deserialize;
use switchboard_core::{ConversationId, InboxId};

/// The inbox's rules; members may read them (the UI shows who gets what).
pub async fn get(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible_inbox(&st, &me, id).await?;
    Ok(ApiJson(st.store.routing_state(id).await?.rules.to_json()))
}

/// Replaces the inbox's rules (admin; see `app::inbox::set_routing_rules`).
pub async fn put(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let rules = app::inbox::set_routing_rules(&st, &me, id, &body).await?;
    Ok(ApiJson(rules.to_json()))
}

pub async fn my_presence(
    State(st): State<AppState>,
    me: CurrentAgent,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let status = st.presence.status(me.agent.id, st.clock.now());
    Ok(ApiJson(serde_json::json!({ "status": status })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    status: String,
}

/// Choose `away` (no new conversations are routed to you unless the inbox includes offline
/// agents) or `online` again. You are offline whatever you choose while no app is connected.
pub async fn set_presence(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<PresenceBody>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let away = match b.status.as_str() {
        "away" => true,
        "online" => false,
        _ => {
            return Err(ApiError::invalid("status: must be away or online")
                .with_extra(serde_json::json!({"field": "status"})));
        }
    };
    let status = st.routing.set_away(me.agent.id, away).await;
    Ok(ApiJson(serde_json::json!({ "status": status })))
}

pub async fn timers(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible(&st, &me, id).await?;
    let items: Vec<_> = st
        .store
        .conversation_timers(id)
        .await?
        .iter()
        .map(|t| serde_json::json!({"kind": t.kind, "due_at": t.due_at, "agent_id": t.agent_id}))
        .collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}
