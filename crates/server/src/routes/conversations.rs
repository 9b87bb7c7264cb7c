//! Conversation routes: list, read, thread, and every transition (claim, assign, transfer,
//! participants, reply/note, resolve, reopen, tags). Each transition is: load what the agent may
//! see → ask the core → compare-and-set in the store → the store publishes the events.

use crate::app::conversation::{NewMessage, post};
use crate::app::conversation::{Plan, eligible_agent, outbound_message, respond, summary, to_json};
use crate::app::{publish_agent_typing, visible};
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::routes::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::conversation as conv;
use switchboard_core::validate::{MessageText, TagName};
use switchboard_core::*;
use switchboard_store::{AssigneeFilter, ConversationQuery, ListCursor, MessageCursor};

// ------------------------------------------------------------------ reads

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    inbox_id: Option<String>,
    assignee: Option<String>,
    tag: Option<String>,
    q: Option<String>,
    contact_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

fn bad_param(name: &str) -> ApiError {
    ApiError::bad_request("bad_query", format!("`{name}` has an invalid value"))
}

pub async fn list(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let nonempty = |o: Option<String>| o.filter(|s| !s.trim().is_empty());
    let status = nonempty(p.status)
        .map(|s| ConversationStatus::parse(&s).ok_or_else(|| bad_param("status")))
        .transpose()?;
    let inbox_id = nonempty(p.inbox_id)
        .map(|s| s.parse::<InboxId>().map_err(|_| bad_param("inbox_id")))
        .transpose()?;
    if let Some(i) = inbox_id
        && !st.access.can_see(&me.agent, i)
    {
        return Err(ApiError::not_found("inbox"));
    }
    let assignee = match nonempty(p.assignee).as_deref() {
        None => None,
        Some("me") => Some(AssigneeFilter::Agent(me.agent.id)),
        Some("unassigned") => Some(AssigneeFilter::Unassigned),
        Some(other) => Some(AssigneeFilter::Agent(
            other.parse().map_err(|_| bad_param("assignee"))?,
        )),
    };
    let contact_id = nonempty(p.contact_id)
        .map(|s| s.parse::<ContactId>().map_err(|_| bad_param("contact_id")))
        .transpose()?;
    let cursor = nonempty(p.cursor)
        .map(|s| ListCursor::decode(&s).ok_or_else(|| bad_param("cursor")))
        .transpose()?;
    let tag = nonempty(p.tag)
        .map(|t| TagName::parse(&t).map(TagName::into_inner))
        .transpose()?;
    let page = st
        .store
        .list_conversations(&ConversationQuery {
            workspace_id: st.workspace_id,
            visible_inboxes: st.access.visible(&me.agent),
            status,
            inbox_id,
            assignee,
            tag,
            q: nonempty(p.q),
            contact_id,
            cursor,
            limit: p.limit.unwrap_or(50),
        })
        .await?;
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
    let actor = me.actor();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::claim(c, actor)?),
            message: None,
        })
    })
    .await
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
    let c = visible(&st, &me, id).await?;
    eligible_agent(&st, c.inbox_id, b.agent_id).await?;
    let actor = me.actor();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::assign(c, actor, b.agent_id)?),
            message: None,
        })
    })
    .await
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
    let c = visible(&st, &me, id).await?;
    eligible_agent(&st, c.inbox_id, b.agent_id).await?;
    let note = b
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| MessageText::parse(m).map(MessageText::into_inner))
        .transpose()?;
    let actor = me.actor();
    let now = st.clock.now();
    respond(&st, &me, id, |c| {
        let t = conv::transfer(c, actor, b.agent_id, note.as_deref().unwrap_or(""))?;
        // The hand-over message goes into the thread as an agent-to-agent message.
        let message = note
            .clone()
            .map(|text| outbound_message(c, &me, MessageKind::AgentToAgent, text, now));
        Ok(Plan {
            transition: Some(t),
            message,
        })
    })
    .await
}

pub async fn add_participant(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<AgentRef>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let c = visible(&st, &me, id).await?;
    eligible_agent(&st, c.inbox_id, b.agent_id).await?;
    let actor = me.actor();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::add_participant(c, actor, b.agent_id)?),
            message: None,
        })
    })
    .await
}

pub async fn leave(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let actor = me.actor();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::leave(c, actor)?),
            message: None,
        })
    })
    .await
}

pub async fn resolve(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let actor = me.actor();
    let now = st.clock.now();
    let holder = visible(&st, &me, id).await?.assignee_id;
    let resolved = respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::resolve(c, actor, now)?),
            message: None,
        })
    })
    .await?;
    // The holder has room again: the backlog of their inboxes moves to them (capacity permitting).
    if let Some(agent) = holder {
        st.routing.agent_freed(agent).await;
    }
    Ok(resolved)
}

pub async fn reopen(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let actor = me.actor();
    let now = st.clock.now();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::reopen(c, actor, now)?),
            message: None,
        })
    })
    .await
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
    let name = TagName::parse(&b.name)?.into_inner();
    let actor = me.actor();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::tag(c, actor, &name)),
            message: None,
        })
    })
    .await
}

pub async fn remove_tag(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<TagBody>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let name = TagName::parse(&b.name)?.into_inner();
    let actor = me.actor();
    respond(&st, &me, id, |c| {
        Ok(Plan {
            transition: Some(conv::untag(c, actor, &name)),
            message: None,
        })
    })
    .await
}
