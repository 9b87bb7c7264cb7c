//! Inbox commands shared by several routes: who may see an inbox, connecting a provider account
//! (settings checked, one inbox per account, Telegram's webhook, the first template sync), and
//! what the policy answer adds per channel.

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::inbox_settings;
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::*;

pub async fn visible_inbox(st: &AppState, me: &CurrentAgent, id: InboxId) -> ApiResult<Inbox> {
    st.store
        .inbox(id)
        .await?
        .filter(|i| st.access.can_see(&me.agent, i.id))
        .ok_or_else(|| ApiError::not_found("inbox"))
}

/// An inbox only an admin may change: 404 for an inbox the caller may not see (whatever their
/// role, so nobody learns what exists), then 403 for a member who is not an admin.
pub async fn admin_inbox(st: &AppState, me: &CurrentAgent, id: InboxId) -> ApiResult<Inbox> {
    let inbox = visible_inbox(st, me, id).await?;
    me.require_admin()?;
    Ok(inbox)
}

/// Checks an inbox's settings; one inbox per number / OA / shop; Telegram's webhook is set
/// (again) when the bot, its secret or its API change.
pub async fn prepare_settings(
    st: &AppState,
    channel: ChannelKind,
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
    id: InboxId,
) -> ApiResult<serde_json::Value> {
    let s = inbox_settings::settings(channel, raw, previous)?;
    if let Some(key) = inbox_settings::account_key(channel) {
        let account = s[key].as_str().unwrap_or("");
        if let Some(other) = st.store.inbox_for_account(channel, account).await?
            && other.id != id
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("another inbox is connected to this {key}"),
            ));
        }
    }
    let telegram_changed = previous.is_none_or(|p| {
        inbox_settings::changed(p, &s, &["bot_token", "secret_token", "api_base_url"])
    });
    if channel == ChannelKind::Telegram && telegram_changed {
        st.providers.set_telegram_webhook(&s, id).await?;
    }
    Ok(s)
}

/// After a WhatsApp inbox is created: a first template sync (best effort; `POST
/// /inboxes/{id}/templates/sync` repeats it).
pub async fn after_create(st: &AppState, inbox: &Inbox) {
    if inbox.channel == ChannelKind::Whatsapp
        && let Err(e) = st.providers.sync_templates(inbox).await
    {
        tracing::warn!(inbox_id = %inbox.id, error = %e.message, "first template sync failed");
    }
}

/// The customer's id to send to: for WhatsApp the phone number (`wa_id`) when known, else the
/// business-scoped user id.
pub async fn recipient(
    st: &AppState,
    inbox: &Inbox,
    c: &Conversation,
) -> ApiResult<Option<String>> {
    let ids = st.store.identities_in(c.contact_id, inbox.id).await?;
    Ok(ids
        .iter()
        .find(|i| !i.contains('.'))
        .or(ids.first())
        .cloned())
}

/// Adds what these channels show in `GET /conversations/{id}/policy`: approved templates
/// (WhatsApp), whether the customer can be reached (blocked bot, unfollowed OA).
pub async fn policy_extras(
    st: &AppState,
    inbox: &Inbox,
    c: &Conversation,
    v: &mut serde_json::Map<String, serde_json::Value>,
) -> ApiResult<()> {
    if !inbox_settings::is_provider(inbox.channel) {
        return Ok(());
    }
    let to = recipient(st, inbox, c).await?;
    v.insert("can_message".into(), serde_json::json!(to.is_some()));
    let unreachable = match &to {
        Some(id) => st.store.reachability(inbox.id, id).await?,
        None => None,
    };
    v.insert("unreachable".into(), serde_json::json!(unreachable));
    if inbox.channel == ChannelKind::Whatsapp {
        let approved = st
            .store
            .templates(inbox.id)
            .await?
            .iter()
            .filter(|t| t.status.eq_ignore_ascii_case("APPROVED"))
            .count();
        v.insert(
            "templates".into(),
            serde_json::json!({ "approved": approved, "list": format!("/api/v1/inboxes/{}/templates", inbox.id) }),
        );
    }
    Ok(())
}
