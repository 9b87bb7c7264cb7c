//! `GET/POST /inboxes`, `GET/PATCH /inboxes/{id}`, `GET/PUT /inboxes/{id}/members`,
//! `POST /inboxes/{id}/check`.

use crate::app;
use crate::app::inbox::visible_inbox;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::{AgentId, ChannelKind, Inbox, InboxId};

/// Settings keys that hold secrets: shown to admins only, never logged.
const SECRET_KEYS: &[&str] = &[
    "identity_secret",
    "page_access_token",
    "app_secret",
    "access_token",
    "secret_token",
    "oa_secret_key",
];

pub fn inbox_json(st: &AppState, i: &Inbox, reveal_secrets: bool) -> serde_json::Value {
    let mut settings = if crate::inbox_settings::is_provider(i.channel) {
        crate::inbox_settings::public_settings(i.channel, &i.settings)
    } else {
        i.settings.clone()
    };
    if !reveal_secrets && let Some(o) = settings.as_object_mut() {
        o.retain(|k, _| !SECRET_KEYS.contains(&k.as_str()));
    }
    let mut v = serde_json::json!({
        "id": i.id,
        "name": i.name,
        "channel": i.channel,
        "settings": settings,
        "created_at": i.created_at,
    });
    if reveal_secrets && let (Some(setup), Some(o)) = (app::inbox::setup(st, i), v.as_object_mut())
    {
        o.insert("setup".into(), setup);
    }
    if i.channel == ChannelKind::Livechat
        && let Some(o) = v.as_object_mut()
    {
        let snippet = format!(
            "<script src=\"{}/widget.js\" data-inbox=\"{}\" async></script>",
            st.config.public_url(),
            i.id
        );
        o.insert("widget_snippet".into(), serde_json::json!(snippet));
    }
    v
}

pub async fn list(
    State(st): State<AppState>,
    me: CurrentAgent,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let admin = me.require_admin().is_ok();
    let items: Vec<_> = st
        .store
        .list_inboxes(st.workspace_id)
        .await?
        .iter()
        .filter(|i| st.access.can_see(&me.agent, i.id))
        .map(|i| inbox_json(&st, i, admin))
        .collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

pub async fn get(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let inbox = visible_inbox(&st, &me, id).await?;
    Ok(ApiJson(inbox_json(&st, &inbox, me.require_admin().is_ok())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInbox {
    name: String,
    channel: String,
    settings: Option<serde_json::Value>,
}

pub async fn create(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<NewInbox>,
) -> ApiResult<Response> {
    let inbox = app::inbox::create(&st, &me, &b.name, &b.channel, b.settings).await?;
    Ok(created(inbox_json(&st, &inbox, true)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxPatch {
    name: Option<String>,
    settings: Option<serde_json::Value>,
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
    ApiJson(b): ApiJson<InboxPatch>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let inbox = app::inbox::update(&st, &me, id, b.name, b.settings).await?;
    Ok(ApiJson(inbox_json(&st, &inbox, true)))
}

pub async fn members(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible_inbox(&st, &me, id).await?;
    let ids = st.store.inbox_members(id).await?;
    Ok(ApiJson(serde_json::json!({ "agent_ids": ids })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Members {
    agent_ids: Vec<AgentId>,
}

pub async fn set_members(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
    ApiJson(b): ApiJson<Members>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let agent_ids = app::inbox::set_members(&st, &me, id, &b.agent_ids).await?;
    Ok(ApiJson(serde_json::json!({ "agent_ids": agent_ids })))
}

/// `POST /inboxes/{id}/check` (admin): the connection test.
pub async fn check(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
) -> ApiResult<ApiJson<crate::provider_api::ConnectionCheck>> {
    Ok(ApiJson(app::inbox::check_connection(&st, &me, id).await?))
}
