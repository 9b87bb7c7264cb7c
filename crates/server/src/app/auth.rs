//! Signing in: rate limits per client and per account, the password check, a new session.

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use std::net::IpAddr;
use switchboard_core::Agent;
use switchboard_store::Session;

/// A new session: the bearer token, its CSRF token and how long it lasts.
pub struct SignedIn {
    pub agent: Agent,
    pub token: String,
    pub csrf: String,
    pub max_age_secs: i64,
}

/// Checks the email and password of an active agent and opens a session. A wrong password, an
/// unknown email and a deactivated agent are one answer (and take as long).
pub async fn login(
    st: &AppState,
    client: IpAddr,
    email: &str,
    password: String,
) -> ApiResult<SignedIn> {
    let email = email.trim().to_lowercase();
    st.limits
        .login_ip
        .check(&client.to_string())
        .map_err(ApiError::rate_limited)?;
    // Per account *and* client: guessing someone's password from elsewhere never locks them out.
    st.limits
        .login_email
        .check(&format!("{email} {client}"))
        .map_err(ApiError::rate_limited)?;
    let found = st.store.agent_credentials(&email).await?;
    let (agent, hash) = match found {
        Some((a, h)) if a.active => (Some(a), Some(h)),
        _ => (None, None),
    };
    let ok = auth::verify_password(password, hash).await;
    let Some(agent) = agent.filter(|_| ok) else {
        tracing::info!("failed login");
        return Err(ApiError::unauthorized("wrong email or password"));
    };
    let now = st.clock.now();
    let token = auth::random_token(32);
    let csrf = auth::random_token(16);
    let ttl_hours = i64::from(st.config.session_ttl_hours);
    st.store
        .create_session(&Session {
            token_hash: auth::token_hash(&token),
            agent_id: agent.id,
            csrf_token: csrf.clone(),
            created_at: now,
            expires_at: now.plus_hours(ttl_hours),
            revoked_at: None,
        })
        .await?;
    tracing::info!(agent_id = %agent.id, "signed in");
    Ok(SignedIn {
        agent,
        token,
        csrf,
        max_age_secs: ttl_hours * 3600,
    })
}

/// Ends a session here and, through the bus, on every node's open sockets.
pub async fn logout(st: &AppState, token_hash: &str) -> ApiResult<()> {
    st.store.revoke_session(token_hash, st.clock.now()).await?;
    st.bus
        .control(crate::bus::Control::SessionEnded(token_hash.to_owned()));
    Ok(())
}
