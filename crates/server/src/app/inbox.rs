//! Inbox commands shared by several routes: who may see an inbox, connecting a provider account
//! (settings checked, one inbox per account, Telegram's webhook, the first template sync), and
//! what the policy answer adds per channel.

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::inbox_settings;
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::policy;
use switchboard_core::routing::{RoutingRules, RulesError};
use switchboard_core::validate::PersonName;
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

/// Checks a provider inbox's settings by its channel's rules (`switchboard_channels::settings`),
/// one inbox per connected account (webhooks are routed by it); Telegram's webhook is set (again)
/// when the bot, its secret or its API change.
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

/// Creates an inbox (admin): the name and channel checked, the channel's settings checked and
/// completed, one inbox per connected account; then the channel's first steps (`after_create`).
pub async fn create(
    st: &AppState,
    me: &CurrentAgent,
    name: &str,
    channel: &str,
    raw_settings: Option<serde_json::Value>,
) -> ApiResult<Inbox> {
    me.require_admin()?;
    let name = PersonName::parse(name)?.into_inner();
    let channel = ChannelKind::parse(channel)
        .ok_or_else(|| ApiError::invalid("channel: unknown channel kind"))?;
    let id = InboxId(uuid::Uuid::now_v7());
    let settings = checked_settings(st, channel, raw_settings, None, id).await?;
    let inbox = Inbox {
        id,
        workspace_id: st.workspace_id,
        name,
        channel,
        settings,
        created_at: st.clock.now(),
    };
    st.store.create_inbox(&inbox).await?;
    // Whoever connects a channel sees its customers from the first message on.
    store_members(st, inbox.id, &[me.agent.id]).await?;
    after_create(st, &inbox).await;
    Ok(inbox)
}

/// The setup's connection test (admin): one read-only call to the provider with the inbox's
/// settings (`POST /inboxes/{id}/check`).
pub async fn check_connection(
    st: &AppState,
    me: &CurrentAgent,
    id: InboxId,
) -> ApiResult<crate::provider_api::ConnectionCheck> {
    let inbox = admin_inbox(st, me, id).await?;
    if !inbox_settings::is_provider(inbox.channel) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            "a live-chat inbox has no provider to test",
        ));
    }
    Ok(st.providers.check(&inbox).await)
}

/// What an admin pastes into the provider's console to connect this inbox: the webhook URL,
/// the verify token of Meta's handshake, the events to subscribe to; `None` for the live chat
/// (its snippet says it all).
pub fn setup(st: &AppState, inbox: &Inbox) -> Option<serde_json::Value> {
    let p = switchboard_channels::for_channel(inbox.channel)?;
    let base = st.config.public_url();
    let url = match inbox.channel {
        ChannelKind::Shopee => inbox_settings::setting(inbox, "push_callback_url")
            .map_or_else(|| format!("{base}/webhooks/shopee"), str::to_owned),
        _ if p.per_inbox_url() => format!("{base}/webhooks/{}/{}", p.name(), inbox.id),
        _ => format!("{base}/webhooks/{}", p.name()),
    };
    let (events, automatic): (&[&str], bool) = match inbox.channel {
        // As docs/channels/messenger-instagram.md and whatsapp.md list them.
        ChannelKind::Messenger => (
            &[
                "messages",
                "messaging_postbacks",
                "message_reads",
                "message_deliveries",
                "message_echoes",
                "message_reactions",
                "message_edits",
                "messaging_referrals",
                "standby",
                "feed",
            ],
            false,
        ),
        ChannelKind::Instagram => (
            &[
                "messages",
                "messaging_seen",
                "messaging_postbacks",
                "message_reactions",
                "comments",
            ],
            false,
        ),
        ChannelKind::Whatsapp => (
            &[
                "messages",
                "message_template_status_update",
                "template_category_update",
            ],
            false,
        ),
        ChannelKind::Zalo => (
            &[
                "user_send_text",
                "user_send_image",
                "user_send_file",
                "follow",
                "unfollow",
                "oa_send_text",
            ],
            false,
        ),
        ChannelKind::Telegram => (switchboard_channels::telegram::ALLOWED_UPDATES, true),
        ChannelKind::Shopee => (&["webchat_push (10)"], false),
        ChannelKind::Livechat => return None,
    };
    let mut v = serde_json::json!({
        "webhook_url": url,
        "events": events,
        // Telegram's webhook is registered by Switchboard itself (setWebhook).
        "automatic": automatic,
    });
    if let Some(token) = inbox_settings::setting(inbox, "verify_token")
        && let Some(o) = v.as_object_mut()
    {
        o.insert("verify_token".into(), serde_json::json!(token));
    }
    Some(v)
}

/// Renames an inbox and/or replaces its settings (admin; secrets not sent are kept).
pub async fn update(
    st: &AppState,
    me: &CurrentAgent,
    id: InboxId,
    name: Option<String>,
    raw_settings: Option<serde_json::Value>,
) -> ApiResult<Inbox> {
    let mut inbox = admin_inbox(st, me, id).await?;
    if let Some(n) = name {
        inbox.name = PersonName::parse(&n)?.into_inner();
    }
    if raw_settings.is_some() {
        inbox.settings =
            checked_settings(st, inbox.channel, raw_settings, Some(&inbox.settings), id).await?;
    }
    st.store.update_inbox(&inbox).await?;
    Ok(inbox)
}

/// An inbox's settings, checked by its channel's rules against the previous ones.
async fn checked_settings(
    st: &AppState,
    channel: ChannelKind,
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
    id: InboxId,
) -> ApiResult<serde_json::Value> {
    match channel {
        ChannelKind::Livechat => livechat_settings(raw, previous),
        _ => prepare_settings(st, channel, raw, previous, id).await,
    }
}

/// Checks and completes a live-chat inbox's settings: a generated identity secret, booleans typed.
fn livechat_settings(
    raw: Option<serde_json::Value>,
    previous: Option<&serde_json::Value>,
) -> ApiResult<serde_json::Value> {
    let mut s = switchboard_channels::settings::check(ChannelKind::Livechat, raw, previous)?;
    if let Some(obj) = s.as_object_mut() {
        obj.entry("identity_secret")
            .or_insert_with(|| serde_json::json!(crate::auth::random_token(24)));
    }
    Ok(s)
}

/// Sets who belongs to an inbox (admin); every node reloads who may see what.
pub async fn set_members(
    st: &AppState,
    me: &CurrentAgent,
    id: InboxId,
    agent_ids: &[AgentId],
) -> ApiResult<Vec<AgentId>> {
    admin_inbox(st, me, id).await?;
    for a in agent_ids {
        if st.store.agent(*a).await?.is_none() {
            return Err(ApiError::invalid(format!("agent_ids: no agent {a}")));
        }
    }
    store_members(st, id, agent_ids).await?;
    Ok(st.store.inbox_members(id).await?)
}

/// Stores who belongs to an inbox; every node reloads who may see what.
async fn store_members(st: &AppState, id: InboxId, agent_ids: &[AgentId]) -> ApiResult<()> {
    st.store.set_inbox_members(id, agent_ids).await?;
    st.access.reload(st.store.as_ref()).await?;
    if let Some(link) = st.bus.cluster() {
        link.memberships_changed();
    }
    Ok(())
}

/// Replaces an inbox's routing rules (admin). Missing keys take their defaults; the eligible agents
/// must be members of the inbox. Timers of running conversations follow at once, and a round-robin
/// or least-busy inbox drains its waiting pool right away.
pub async fn set_routing_rules(
    st: &AppState,
    me: &CurrentAgent,
    id: InboxId,
    body: &serde_json::Value,
) -> ApiResult<RoutingRules> {
    visible_inbox(st, me, id).await?;
    me.require_admin()?;
    let invalid = |e: RulesError| {
        ApiError::invalid(e.to_string()).with_extra(serde_json::json!({ "field": e.field }))
    };
    let rules = RoutingRules::from_json(body).map_err(invalid)?;
    let members = st.store.inbox_members(id).await?;
    if let Some(outsider) = rules.agent_ids.iter().find(|a| !members.contains(a)) {
        return Err(invalid(RulesError {
            field: "agent_ids".into(),
            message: format!("agent {outsider} is not a member of this inbox"),
        }));
    }
    let now = st.clock.now();
    st.store.set_routing_rules(id, &rules, now).await?;
    if let Err(e) = st.routing.drain_inbox(id, now).await {
        tracing::warn!(error = %e, "backlog drain after a rules change failed");
    }
    Ok(rules)
}

/// The channel of a conversation's inbox.
pub async fn channel_of(st: &AppState, c: &Conversation) -> ApiResult<ChannelKind> {
    let inbox = st.store.inbox(c.inbox_id).await?;
    Ok(inbox.ok_or_else(|| ApiError::not_found("inbox"))?.channel)
}

/// The customer's id to send to: for WhatsApp the phone number (`wa_id`) when known, else the
/// business-scoped user id.
async fn recipient(st: &AppState, inbox: &Inbox, c: &Conversation) -> ApiResult<Option<String>> {
    let ids = st.store.identities_in(c.contact_id, inbox.id).await?;
    Ok(ids
        .iter()
        .find(|i| !i.contains('.'))
        .or(ids.first())
        .cloned())
}

/// The conversation's thread or customer profile in the provider's app, where the platform offers
/// a link (`switchboard_channels::links`): always offered, whatever the window.
async fn open_in_app(
    st: &AppState,
    inbox: &Inbox,
    c: &Conversation,
    messaging_id: Option<&str>,
) -> ApiResult<Option<String>> {
    let customer = match messaging_id {
        Some(id) => Some(id.to_owned()),
        None if inbox_settings::is_provider(inbox.channel) => recipient(st, inbox, c).await?,
        None => None,
    };
    let username = match &customer {
        Some(id)
            if matches!(
                inbox.channel,
                ChannelKind::Instagram | ChannelKind::Telegram
            ) =>
        {
            st.store.identity_username(inbox.id, id).await?
        }
        _ => None,
    };
    Ok(switchboard_channels::links::open_in_app(
        inbox.channel,
        crate::meta::account_id(inbox),
        customer.as_deref().unwrap_or(""),
        username.as_deref(),
    ))
}

/// What the composer may do now on `c` (`GET /conversations/{id}/policy`): the window for a
/// person, what automation may send, whether the customer can be reached, and the channel's
/// extras (Meta's inbox link, WhatsApp's templates).
pub async fn policy_answer(st: &AppState, c: &Conversation) -> ApiResult<serde_json::Value> {
    let inbox = st
        .store
        .inbox(c.inbox_id)
        .await?
        .ok_or_else(|| ApiError::not_found("inbox"))?;
    let rules = policy::rules_for(inbox.channel);
    let now = st.clock.now();
    let facts = st.outgoing.facts(inbox.channel, c).await?;
    let s = policy::summarize(&rules, facts, now);
    let automation = policy::decide(
        &rules,
        facts,
        now,
        policy::Sender::Automation,
        policy::Content::Reply,
        policy::Requested::default(),
    );
    let is_meta = crate::meta::is_meta(inbox.channel);
    let messaging_id = if is_meta {
        st.store.messaging_id(c.contact_id, c.inbox_id).await?
    } else {
        None
    };
    let mut v = serde_json::to_value(&s).map_err(|_| ApiError::internal())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("channel".into(), serde_json::json!(inbox.channel));
        o.insert("now".into(), serde_json::json!(now));
        o.insert(
            "last_customer_message_at".into(),
            serde_json::json!(c.last_customer_message_at),
        );
        o.insert("automation".into(), serde_json::json!(automation));
        o.insert(
            "can_message".into(),
            serde_json::json!(!is_meta || messaging_id.is_some()),
        );
        o.insert(
            "open_in_provider_app_url".into(),
            serde_json::json!(open_in_app(st, &inbox, c, messaging_id.as_deref()).await?),
        );
        policy_extras(st, &inbox, c, o).await?;
    }
    Ok(v)
}

/// Adds what these channels show in `GET /conversations/{id}/policy`: approved templates
/// (WhatsApp), whether the customer can be reached (blocked bot, unfollowed OA).
async fn policy_extras(
    st: &AppState,
    inbox: &Inbox,
    c: &Conversation,
    v: &mut serde_json::Map<String, serde_json::Value>,
) -> ApiResult<()> {
    // (Messenger and Instagram answer these in their own policy extras.)
    if !inbox_settings::is_provider(inbox.channel) || crate::meta::is_meta(inbox.channel) {
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
