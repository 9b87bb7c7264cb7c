//! `GET /push/key`, `POST/DELETE /me/push-subscriptions`: Web Push for agents' browsers;
//! `GET/PUT /me/notification-preferences`: what each agent is notified of.

use crate::app::push;
use crate::auth::CurrentAgent;
use crate::error::{ApiJson, ApiQuery, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::notifications::NotificationPrefs;

/// The server's VAPID public key: what browsers subscribe with (`applicationServerKey`).
pub async fn key(
    State(st): State<AppState>,
    _me: CurrentAgent,
) -> ApiResult<ApiJson<serde_json::Value>> {
    Ok(ApiJson(
        serde_json::json!({ "public_key": st.push.public_key() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    p256dh: String,
    auth: String,
}

/// A browser's `PushSubscription.toJSON()` (its `expirationTime` is accepted and not used).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    endpoint: String,
    keys: Keys,
    #[serde(rename = "expirationTime")]
    _expiration_time: Option<serde_json::Value>,
}

pub async fn subscribe(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(b): ApiJson<Body>,
) -> ApiResult<Response> {
    push::subscribe(&st, &me, &b.endpoint, &b.keys.p256dh, &b.keys.auth).await?;
    Ok(created(serde_json::json!({ "endpoint": b.endpoint })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Which {
    endpoint: String,
}

pub async fn unsubscribe(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiQuery(w): ApiQuery<Which>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let removed = push::unsubscribe(&st, &me, &w.endpoint).await?;
    Ok(ApiJson(serde_json::json!({ "removed": removed })))
}

pub async fn preferences(
    State(st): State<AppState>,
    me: CurrentAgent,
) -> ApiResult<ApiJson<NotificationPrefs>> {
    Ok(ApiJson(st.store.notification_prefs(me.agent.id).await?))
}

/// Replaces the agent's choices (the whole object: every kind is named).
pub async fn set_preferences(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiJson(p): ApiJson<NotificationPrefs>,
) -> ApiResult<ApiJson<NotificationPrefs>> {
    st.store
        .set_notification_prefs(me.agent.id, &p, st.clock.now())
        .await?;
    Ok(ApiJson(p))
}
