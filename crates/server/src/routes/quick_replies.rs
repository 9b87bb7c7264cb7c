//! `GET/POST /quick-replies`, `PATCH/DELETE /quick-replies/{id}`: canned answers typed as `/code`.

use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::routes::{created, new_uuid};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::validate::{MessageText, QuickReplyCode};
use switchboard_core::{QuickReply, QuickReplyId};

fn require_supervisor(me: &CurrentAgent) -> ApiResult<()> {
    if me.agent.role.supervises() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only a supervisor or admin may change quick replies",
        ))
    }
}

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
}

pub async fn create(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<Body>,
) -> ApiResult<Response> {
    require_supervisor(&me)?;
    let qr = QuickReply {
        id: QuickReplyId(new_uuid()),
        workspace_id: st.workspace_id,
        code: QuickReplyCode::parse(b.code.as_deref().unwrap_or(""))?.into_inner(),
        text: MessageText::parse(b.text.as_deref().unwrap_or(""))?.into_inner(),
    };
    st.store.save_quick_reply(&qr, st.clock.now(), true).await?;
    Ok(created(serde_json::to_value(&qr).unwrap_or_default()))
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<QuickReplyId>,
    ApiJson(b): ApiJson<Body>,
) -> ApiResult<ApiJson<QuickReply>> {
    require_supervisor(&me)?;
    let mut qr = st
        .store
        .quick_reply(id)
        .await?
        .filter(|q| q.workspace_id == st.workspace_id)
        .ok_or_else(|| ApiError::not_found("quick reply"))?;
    if let Some(c) = b.code {
        qr.code = QuickReplyCode::parse(&c)?.into_inner();
    }
    if let Some(t) = b.text {
        qr.text = MessageText::parse(&t)?.into_inner();
    }
    st.store
        .save_quick_reply(&qr, st.clock.now(), false)
        .await?;
    Ok(ApiJson(qr))
}

pub async fn delete(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<QuickReplyId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    require_supervisor(&me)?;
    if !st.store.delete_quick_reply(id).await? {
        return Err(ApiError::not_found("quick reply"));
    }
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
    require_supervisor(&me)?;
    let name = switchboard_core::validate::TagName::parse(&b.name)?.into_inner();
    let tag = st
        .store
        .create_tag(st.workspace_id, &name, st.clock.now())
        .await?;
    Ok(created(serde_json::to_value(&tag).unwrap_or_default()))
}

pub async fn delete_tag(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<switchboard_core::TagId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    require_supervisor(&me)?;
    if !st.store.delete_tag(st.workspace_id, id).await? {
        return Err(ApiError::not_found("tag"));
    }
    Ok(ApiJson(serde_json::json!({ "ok": true })))
}
