//! `GET/POST /quick-replies`, `PATCH/DELETE /quick-replies/{id}`: canned answers typed as `/code`.

use crate::app::quick_replies;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiQuery, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::{QuickReply, QuickReplyId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    prefix: Option<String>,
}

pub async fn list(
    State(st): State<AppState>,
    _me: CurrentAgent,
    ApiQuery(f): ApiQuery<Filter>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let prefix = f
        .prefix
        .map(|p| p.trim().trim_start_matches('/').to_lowercase());
    let items = st
        .store
        .list_quick_replies(st.workspace_id, prefix.as_deref())
        .await?;
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    code: Option<String>,
    text: Option<String>,
    /// Files of the media library sent with the text.
    media: Option<Vec<uuid::Uuid>>,
}

pub async fn create(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<Body>,
) -> ApiResult<Response> {
    let qr = quick_replies::create(
        &st,
        &me,
        b.code.as_deref(),
        b.text.as_deref(),
        b.media.as_deref(),
    )
    .await?;
    Ok(created(serde_json::to_value(&qr).unwrap_or_default()))
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<QuickReplyId>,
    ApiJson(b): ApiJson<Body>,
) -> ApiResult<ApiJson<QuickReply>> {
    let qr = quick_replies::update(
        &st,
        &me,
        id,
        b.code.as_deref(),
        b.text.as_deref(),
        b.media.as_deref(),
    )
    .await?;
    Ok(ApiJson(qr))
}

pub async fn delete(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<QuickReplyId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    quick_replies::delete(&st, &me, id).await?;
    Ok(ApiJson(serde_json::json!({ "ok": true })))
}

pub async fn tags(
    State(st): State<AppState>,
    _me: CurrentAgent,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let items = st.store.list_tags(st.workspace_id).await?;
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    name: String,
}

pub async fn create_tag(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<NewTag>,
) -> ApiResult<Response> {
    let tag = quick_replies::create_tag(&st, &me, &b.name).await?;
    Ok(created(serde_json::to_value(&tag).unwrap_or_default()))
}

pub async fn delete_tag(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<switchboard_core::TagId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    quick_replies::delete_tag(&st, &me, id).await?;
    Ok(ApiJson(serde_json::json!({ "ok": true })))
}
