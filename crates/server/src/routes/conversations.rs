//! Conversation routes: list, read, thread, and every transition (claim, assign, transfer,
//! participants, reply/note, resolve, reopen, tags). Each transition is: load what the agent may
//! see → ask the core → compare-and-set in the store → the store publishes the events.

use crate::app::conversation::{NewMessage, post, summary, to_json};
use crate::app::conversation_list::{self, ListParams};
use crate::app::{publish_agent_typing, transitions, visible};
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::*;
use switchboard_store::MessageCursor;

// ------------------------------------------------------------------ reads

fn bad_param(name: &str) -> ApiError {
    ApiError::bad_request("bad_query", format!("`{name}` has an invalid value"))
}

pub async fn list(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let page = conversation_list::list(&st, &me, p).await?;
    Ok(ApiJson(to_json(&page)?))
}

pub async fn get(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible(&st, &me, id).await?;
    Ok(ApiJson(to_json(&summary(&st, id).await?)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadParams {
    before: Option<String>,
    limit: Option<u32>,
}

pub async fn messages(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiQuery(p): ApiQuery<ThreadParams>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible(&st, &me, id).await?;
    let before = p
        .before
        .filter(|s| !s.is_empty())
        .map(|s| MessageCursor::decode(&s).ok_or_else(|| bad_param("before")))
        .transpose()?;
    let page = st
        .store
        .messages(id, before, p.limit.unwrap_or(50), false)
        .await?;
    let ids: Vec<MessageId> = page.items.iter().map(|m| m.id).collect();
    let extras = st.store.message_meta(&ids).await?;
    let json = page
        .items
        .iter()
        .map(|m| switchboard_store::message_with_meta(m, extras.get(&m.id)))
        .collect();
    let items = crate::app::media::with_attachments(&st, &page.items, false, json).await?;
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": page.next_cursor }),
    ))
}

pub async fn history(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible(&st, &me, id).await?;
    let items = st.store.history(id).await?;
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

pub async fn mark_read(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible(&st, &me, id).await?;
    st.store.mark_read(id).await?;
    Ok(ApiJson(serde_json::json!({ "ok": true })))
}

pub async fn typing(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let c = visible(&st, &me, id).await?;
    publish_agent_typing(&st, &me.agent, &c);
    Ok(ApiJson(serde_json::json!({ "ok": true })))
}

// ------------------------------------------------------------------ writes

/// `POST /conversations/{id}/messages`: a reply (text, or text with buttons), a note or a
/// message to another agent.
pub async fn post_message(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<NewMessage>,
) -> ApiResult<Response> {
    Ok(created(post(&st, &me, id, b).await?))
}

pub async fn claim(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::claim(&st, &me, id).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRef {
    agent_id: AgentId,
}

pub async fn assign(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<AgentRef>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::assign(&st, &me, id, b.agent_id).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    agent_id: AgentId,
    #[serde(default)]
    message: Option<String>,
}

pub async fn transfer(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<TransferBody>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let note = b.message.as_deref();
    summary_json(transitions::transfer(&st, &me, id, b.agent_id, note).await)
}

pub async fn add_participant(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<AgentRef>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::add_participant(&st, &me, id, b.agent_id).await)
}

pub async fn leave(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::leave(&st, &me, id).await)
}

pub async fn resolve(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::resolve(&st, &me, id).await)
}

pub async fn reopen(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::reopen(&st, &me, id).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagBody {
    name: String,
}

pub async fn add_tag(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<TagBody>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::tag(&st, &me, id, &b.name).await)
}

pub async fn remove_tag(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<TagBody>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    summary_json(transitions::untag(&st, &me, id, &b.name).await)
}

/// The conversation as the list shows it, after a transition.
fn summary_json(
    s: ApiResult<switchboard_store::ConversationSummary>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    Ok(ApiJson(to_json(&s?)?))
}
