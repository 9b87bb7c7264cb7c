//! `POST /auth/login`, `POST /auth/logout`, `GET /me`.

use crate::auth::{self, CSRF_COOKIE, CurrentAgent, SESSION_COOKIE};
use crate::client::ClientIp;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_store::Session;

#[derive(Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

pub async fn login(
    State(st): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Response> {
    let email = body.email.trim().to_lowercase();
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
    let ok = auth::verify_password(body.password, hash).await;
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
    let secure = if st.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let max_age = ttl_hours * 3600;
    let mut resp =
        ApiJson(serde_json::json!({ "token": token, "csrf_token": csrf, "agent": agent }))
            .into_response();
    for c in [
        format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Lax; Max-Age={max_age}{secure}"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

pub async fn logout(State(st): State<AppState>, me: CurrentAgent) -> ApiResult<Response> {
    st.store
        .revoke_session(&me.session.token_hash, st.clock.now())
        .await?;
    st.bus.control(crate::bus::Control::SessionEnded(
        me.session.token_hash.clone(),
    ));
    let mut resp = ApiJson(serde_json::json!({ "ok": true })).into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0")) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

pub async fn me(
    State(st): State<AppState>,
    me: CurrentAgent,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let inboxes = match st.access.visible(&me.agent) {
        Some(v) => v,
        None => st
            .store
            .list_inboxes(st.workspace_id)
            .await?
            .into_iter()
            .map(|i| i.id)
            .collect(),
    };
    let mut v = serde_json::to_value(&me.agent).map_err(|_| ApiError::internal())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("inbox_ids".into(), serde_json::json!(inboxes));
        o.insert(
            "csrf_token".into(),
            serde_json::json!(me.session.csrf_token),
        );
        o.insert(
            "limits".into(),
            serde_json::json!({ "max_upload_bytes": st.config.limits.max_upload_bytes }),
        );
    }
    Ok(ApiJson(v))
}
