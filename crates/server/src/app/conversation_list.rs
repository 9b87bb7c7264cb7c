//! The conversation list an agent may see, filtered by the list's query parameters.

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde::Deserialize;
use switchboard_core::validate::TagName;
use switchboard_core::*;
use switchboard_store::{AssigneeFilter, ConversationQuery, ConversationSummary, ListCursor, Page};

/// `GET /conversations` filters, as sent; empty values count as absent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<String>,
    pub inbox_id: Option<String>,
    /// `me`, `unassigned` or an agent id.
    pub assignee: Option<String>,
    pub tag: Option<String>,
    pub q: Option<String>,
    pub contact_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

fn bad_param(name: &str) -> ApiError {
    ApiError::bad_request("bad_query", format!("`{name}` has an invalid value"))
}

/// One page of the conversations `me` may see, newest activity first. An inbox the agent may not
/// see is 404, as everywhere.
pub async fn list(
    st: &AppState,
    me: &CurrentAgent,
    p: ListParams,
) -> ApiResult<Page<ConversationSummary>> {
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
    Ok(st
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
        .await?)
}
