//! What goes with sending on provider channels: the messaging-window policy answer, comment
//! actions (replies through the one `send` command, moderation), and manual contact merges.
//!
//! A reply the policy refuses gets 422 (`window_closed`, `private_reply_expired`, ...) and
//! nothing is stored or queued.

use crate::app::contacts;
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::*;

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
    let m = contacts::merge(&st, &me, id, b.into_contact_id).await?;
    Ok(created(serde_json::json!(m)))
}

pub async fn undo_merge(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let m = contacts::undo_merge(&st, &me, id).await?;
    Ok(ApiJson(serde_json::json!(m)))
}

pub async fn merges(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let items = contacts::merges(&st, &me, id).await?;
    Ok(ApiJson(
        serde_json::json!({"items": items, "next_cursor": null}),
    ))
}
