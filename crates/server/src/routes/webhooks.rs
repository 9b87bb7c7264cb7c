//! `/webhooks/…`: one route shape for every provider of the registry
//! (`switchboard_channels::registry`): `POST /webhooks/{provider}` (Telegram:
//! `/webhooks/telegram/{inbox}`, one URL per bot), and for Meta's apps the `GET` subscription
//! handshake. What a webhook does is `app::webhook::receive`, the same for all of them.

use crate::error::ApiPath;
use crate::error::{ApiError, ApiResult};
use crate::inbox_settings::setting;
use crate::responses::body_or_413;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use switchboard_channels::meta;
use switchboard_channels::provider::{Ack, Provider, WebhookRequest};
use switchboard_core::InboxId;

/// §1.1: the challenge as plain text when the verify token is one of the provider's inboxes';
/// 403 otherwise.
pub async fn handshake(
    st: AppState,
    p: &'static dyn Provider,
    q: HashMap<String, String>,
) -> ApiResult<Response> {
    let inboxes = st.store.list_inboxes(st.workspace_id).await?;
    let tokens: Vec<&str> = inboxes
        .iter()
        .filter(|i| p.channels().contains(&i.channel))
        .filter_map(|i| setting(i, "verify_token"))
        .collect();
    let get = |k: &str| q.get(k).map(String::as_str);
    match meta::handshake(
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
        &tokens,
    ) {
        Some(c) => Ok(([(header::CONTENT_TYPE, "text/plain")], c.to_owned()).into_response()),
        None => Err(ApiError::forbidden("verification failed")),
    }
}

/// A webhook of provider `p` (for the URL's inbox, if it has one per inbox).
pub async fn receive(
    st: AppState,
    p: &'static dyn Provider,
    inbox: Option<InboxId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let raw = body_or_413(&st, body)?;
    let public_url = st.config.public_url();
    let req = WebhookRequest {
        body: &raw,
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect(),
        inbox,
        public_url: &public_url,
    };
    Ok(match crate::app::webhook::receive(&st, p, &req).await? {
        Ack::Text(t) => (StatusCode::OK, t).into_response(),
        Ack::Empty => StatusCode::OK.into_response(),
        Ack::Json(v) => crate::error::ApiJson(v).into_response(),
    })
}

/// The webhook routes of every provider.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{MethodRouter, post};
    let mut r = axum::Router::new();
    for p in switchboard_channels::registry() {
        if p.per_inbox_url() {
            let post_one = post(
                move |State(st): State<AppState>,
                      ApiPath(id): ApiPath<InboxId>,
                      h: HeaderMap,
                      b| { receive(st, p, Some(id), h, b) },
            );
            r = r.route(&format!("/{}/{{id}}", p.name()), post_one);
            continue;
        }
        let mut m: MethodRouter<AppState> =
            post(move |State(st): State<AppState>, h: HeaderMap, b| receive(st, p, None, h, b));
        if p.handshake() {
            m = m.get(move |State(st): State<AppState>, Query(q)| handshake(st, p, q));
        }
        r = r.route(&format!("/{}", p.name()), m);
    }
    r
}
