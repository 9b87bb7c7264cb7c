//! `POST /auth/login`, `POST /auth/logout`, `GET /me`.

use crate::app;
use crate::auth::{CSRF_COOKIE, CurrentAgent, SESSION_COOKIE};
use crate::client::ClientIp;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

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
    let s = app::auth::login(&st, client, &body.email, body.password).await?;
    let secure = if st.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let max_age = s.max_age_secs;
    let (token, csrf) = (&s.token, &s.csrf);
    let resp = ApiJson(serde_json::json!({ "token": token, "csrf_token": csrf, "agent": s.agent }))
        .into_response();
    Ok(with_cookies(
        resp,
        [
            format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
            ),
            format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Lax; Max-Age={max_age}{secure}"),
        ],
    ))
}

pub async fn logout(State(st): State<AppState>, me: CurrentAgent) -> ApiResult<Response> {
    app::auth::logout(&st, &me.session.token_hash).await?;
    let resp = ApiJson(serde_json::json!({ "ok": true })).into_response();
    Ok(with_cookies(
        resp,
        [SESSION_COOKIE, CSRF_COOKIE].map(|name| format!("{name}=; Path=/; Max-Age=0")),
    ))
}

fn with_cookies(mut resp: Response, cookies: [String; 2]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
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
            serde_json::json!({ "max_upload_bytes": st.config.limits.max_upload_bytes,
                "media": crate::app::media::limits_json(st.config.limits.max_upload_bytes) }),
        );
    }
    Ok(ApiJson(v))
}
