//! An agent's Web Push subscriptions: each of their browsers that should hear about new work
//! while the app is closed (the sending is `crate::push`).

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use switchboard_channels::webpush::{PushError, Subscription};
use switchboard_store::PushSubscription;

/// Saves this browser's subscription for the signed-in agent (the same browser subscribing again
/// replaces its keys; signed in as someone else, it moves to them).
pub async fn subscribe(
    st: &AppState,
    me: &CurrentAgent,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> ApiResult<()> {
    let sub = Subscription::parse(endpoint, p256dh, auth, st.config.push.allow_http_endpoints)
        .map_err(refused)?;
    st.store
        .save_push_subscription(&PushSubscription {
            endpoint: sub.endpoint,
            agent_id: me.agent.id,
            p256dh: p256dh.to_owned(),
            auth: auth.to_owned(),
            created_at: st.clock.now(),
        })
        .await?;
    Ok(())
}

/// Forgets one of the agent's own subscriptions (this browser stops hearing). True if it was there.
pub async fn unsubscribe(st: &AppState, me: &CurrentAgent, endpoint: &str) -> ApiResult<bool> {
    Ok(st
        .store
        .delete_push_subscription(endpoint, Some(me.agent.id))
        .await?)
}

fn refused(e: PushError) -> ApiError {
    let field = match e {
        PushError::BadEndpoint => "endpoint",
        PushError::BadAuth => "auth",
        _ => "p256dh",
    };
    ApiError::invalid(format!("{field}: {e}")).with_extra(serde_json::json!({ "field": field }))
}
