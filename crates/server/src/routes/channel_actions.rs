//! What goes with sending on provider channels: the messaging-window policy answer, comment
//! actions (replies through the one `send` command, moderation), and manual contact merges.
//!
//! A reply the policy refuses gets 422 (`window_closed`, `private_reply_expired`, ...) and
//! nothing is stored or queued.

use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::*;
use switchboard_store::StoreError;

/// `GET /conversations/{id}/policy`: what the composer may do now.
pub async fn get_policy(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let c = visible(&st, &me, id).await?;
    Ok(ApiJson(crate::app::inbox::policy_answer(&st, &c).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentAction {
    /// `reply`, `private_reply`, `like`, `unlike`, `hide`, `unhide`, `delete`.
    action: String,
    text: Option<String>,
    /// Answered by a bot or an integration, not typed by a person (shown as a bot).
    #[serde(default)]
    automated: bool,
}

/// `POST /messages/{id}/comment-actions` on a customer's comment.
pub async fn comment_action(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<MessageId>,
    ApiJson(b): ApiJson<CommentAction>,
) -> ApiResult<Response> {
    let text = b.text.as_deref();
    let done = crate::app::comments::act(&st, &me, id, &b.action, text, b.automated).await?;
    Ok(created(done))
}

// ------------------------------------------------------------------ contact merges

async fn visible_contact(st: &AppState, me: &CurrentAgent, id: ContactId) -> ApiResult<Contact> {
    let c = st
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let ids = st.store.contact_identities(id).await?;
    if !ids.iter().any(|i| st.access.can_see(&me.agent, i.inbox_id)) {
        return Err(ApiError::not_found("contact"));
    }
    Ok(c)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    into_contact_id: ContactId,
}

/// `POST /contacts/{id}/merge {into_contact_id}`: this contact's identities and conversations move
/// into the other one (one customer, one history). Undo with `POST /contact-merges/{id}/undo`.
pub async fn merge(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
    ApiJson(b): ApiJson<MergeBody>,
) -> ApiResult<Response> {
    visible_contact(&st, &me, id).await?;
    visible_contact(&st, &me, b.into_contact_id).await?;
    if id == b.into_contact_id {
        return Err(ApiError::invalid(
            "into_contact_id: cannot merge a contact into itself",
        ));
    }
    let m = st
        .store
        .merge_contacts(
            id,
            b.into_contact_id,
            "manual",
            Some(me.agent.id),
            st.clock.now(),
        )
        .await?;
    Ok(created(serde_json::json!(m)))
}

pub async fn undo_merge(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    // Visible: the surviving contact must be visible to the agent.
    let merges = st
        .store
        .merge_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found("merge"))?;
    visible_contact(&st, &me, merges.into_contact_id).await?;
    let m = st
        .store
        .undo_merge(id, st.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "already_undone",
                "this merge was undone already",
            ),
            other => other.into(),
        })?;
    Ok(ApiJson(serde_json::json!(m)))
}

pub async fn merges(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let c = st
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let items = st.store.merges_of(c.id).await?;
    // A merged-away contact has no identities left: check through the survivor.
    let survivor = items
        .iter()
        .rev()
        .find(|m| m.undone_at.is_none())
        .map(|m| m.into_contact_id)
        .unwrap_or(id);
    visible_contact(&st, &me, survivor).await?;
    Ok(ApiJson(
        serde_json::json!({"items": items, "next_cursor": null}),
    ))
}
