//! `GET/POST /inboxes`, `GET/PATCH /inboxes/{id}`, `GET/PUT /inboxes/{id}/members`.

use crate::app::inbox::{admin_inbox, visible_inbox};
use crate::auth::{self, CurrentAgent};
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::{created, new_uuid};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::validate::PersonName;
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
    let mut settings = if crate::meta::is_meta(i.channel) {
        crate::meta::public_settings(&i.settings)
    } else if crate::inbox_settings::is_provider(i.channel) {
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

/// Checks and completes a live-chat inbox's settings: a generated identity secret, booleans typed.
fn livechat_settings(
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
) -> ApiResult<serde_json::Value> {
    let mut s = switchboard_channels::settings::check(ChannelKind::Livechat, raw, previous)?;
    if let Some(obj) = s.as_object_mut() {
        obj.entry("identity_secret")
            .or_insert_with(|| serde_json::json!(auth::random_token(24)));
    }
    Ok(s)
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
    me.require_admin()?;
    let name = PersonName::parse(&b.name)?.into_inner();
    let channel = ChannelKind::parse(&b.channel)
        .ok_or_else(|| ApiError::invalid("channel: unknown channel kind"))?;
    let id = InboxId(new_uuid());
    let settings = match channel {
        ChannelKind::Livechat => livechat_settings(b.settings, None)?,
        ChannelKind::Messenger | ChannelKind::Instagram => {
            let s = crate::meta::settings(channel, b.settings, None)?;
            ensure_account_free(&st, channel, &s, None).await?;
            s
        }
        ChannelKind::Whatsapp | ChannelKind::Zalo | ChannelKind::Telegram | ChannelKind::Shopee => {
            crate::app::inbox::prepare_settings(&st, channel, b.settings, None, id).await?
        }
    };
    let inbox = Inbox {
        id,
        workspace_id: st.workspace_id,
        name,
        channel,
        settings,
        created_at: st.clock.now(),
    };
    st.store.create_inbox(&inbox).await?;
    crate::app::inbox::after_create(&st, &inbox).await;
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
    let mut inbox = admin_inbox(&st, &me, id).await?;
    if let Some(n) = b.name {
        inbox.name = PersonName::parse(&n)?.into_inner();
    }
    if b.settings.is_some() && inbox.channel == ChannelKind::Livechat {
        inbox.settings = livechat_settings(b.settings, Some(&inbox.settings))?;
    } else if b.settings.is_some() && crate::meta::is_meta(inbox.channel) {
        let s = crate::meta::settings(inbox.channel, b.settings, Some(&inbox.settings))?;
        ensure_account_free(&st, inbox.channel, &s, Some(inbox.id)).await?;
        inbox.settings = s;
    } else if b.settings.is_some() && crate::inbox_settings::is_provider(inbox.channel) {
        inbox.settings = crate::app::inbox::prepare_settings(
            &st,
            inbox.channel,
            b.settings,
            Some(&inbox.settings),
            inbox.id,
        )
        .await?;
    }
    st.store.update_inbox(&inbox).await?;
    Ok(ApiJson(inbox_json(&st, &inbox, true)))
}

/// One inbox per Page / Instagram account: webhooks are routed by that id.
async fn ensure_account_free(
    st: &AppState,
    channel: ChannelKind,
    settings: &serde_json::Value,
    this: Option<InboxId>,
) -> ApiResult<()> {
    let key = crate::meta::account_key(channel).unwrap_or("page_id");
    let account = settings.get(key).and_then(|v| v.as_str()).unwrap_or("");
    match st.store.inbox_by_account(channel, account).await? {
        Some(other) if Some(other.id) != this => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "already_exists",
            format!("another inbox is connected to this {key}"),
        )),
        _ => Ok(()),
    }
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
    admin_inbox(&st, &me, id).await?;
    for a in &b.agent_ids {
        if st.store.agent(*a).await?.is_none() {
            return Err(ApiError::invalid(format!("agent_ids: no agent {a}")));
        }
    }
    st.store.set_inbox_members(id, &b.agent_ids).await?;
    st.access.reload(st.store.as_ref()).await?;
    if let Some(link) = st.bus.cluster() {
        link.memberships_changed();
    }
    Ok(ApiJson(
        serde_json::json!({ "agent_ids": st.store.inbox_members(id).await? }),
    ))
}
