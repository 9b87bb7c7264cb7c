//! Comment rules: `/inboxes/{id}/comment-rules` (the Page's), `/inboxes/{id}/posts` (recent
//! posts with counters) and `/inboxes/{id}/posts/{post_id}/comment-rules` (a post's override),
//! and `/messages/{id}/rule-actions` (what rules did to a comment).

use crate::app::comment_rules;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use switchboard_core::{InboxId, MessageId};

type Json = ApiResult<ApiJson<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    rules: Value,
    /// The version the editor read; absent: replace whatever is there.
    version: Option<u32>,
}

pub async fn get(State(st): State<AppState>, me: CurrentAgent, Path(id): Path<InboxId>) -> Json {
    Ok(ApiJson(comment_rules::get(&st, &me, id).await?))
}

pub async fn save(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
    ApiJson(b): ApiJson<RulesBody>,
) -> Json {
    Ok(ApiJson(
        comment_rules::save(&st, &me, id, None, &b.rules, b.version).await?,
    ))
}

pub async fn save_post(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path((id, post)): Path<(InboxId, String)>,
    ApiJson(b): ApiJson<RulesBody>,
) -> Json {
    Ok(ApiJson(
        comment_rules::save(&st, &me, id, Some(&post), &b.rules, b.version).await?,
    ))
}

pub async fn delete_post(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path((id, post)): Path<(InboxId, String)>,
) -> Json {
    Ok(ApiJson(comment_rules::delete(&st, &me, id, &post).await?))
}

pub async fn posts(State(st): State<AppState>, me: CurrentAgent, Path(id): Path<InboxId>) -> Json {
    Ok(ApiJson(comment_rules::posts(&st, &me, id).await?))
}

pub async fn of_comment(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<MessageId>,
) -> Json {
    Ok(ApiJson(comment_rules::of_comment(&st, &me, id).await?))
}
