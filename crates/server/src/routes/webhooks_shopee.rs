//! `POST /webhooks/shopee`: Shopee Open Platform pushes (channels.md §6). The shop is read first,
//! only to find whose partner key applies; then `Authorization` must be the hex HMAC-SHA256 of
//! `callback_url + "|" + raw body` under that key, with exactly the callback URL configured at
//! Shopee (`push_callback_url`, or this server's public URL + `/webhooks/shopee`). Otherwise 401.
//! Chat pushes (code 10) from buyers are stored; everything else is acknowledged. Shopee wants a
//! 2xx with an empty body.

use crate::error::{ApiError, ApiResult};
use crate::inbox_settings::setting;
use crate::routes::new_uuid;
use crate::routes::{body_or_413, unavailable};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_channels::shopee::{self, ShopeeEvent};
use switchboard_core::*;
use switchboard_store::{ChannelItem, Inbound, InboundSender};

/// The URL Shopee signs pushes with.
pub fn callback_url(st: &AppState, inbox: &Inbox) -> String {
    setting(inbox, "push_callback_url")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}/webhooks/shopee", st.config.public_url()))
}

pub async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let raw = body_or_413(&st, body)?;
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let inbox = match shopee::shop_id(&raw) {
        Some(shop) => {
            st.store
                .inbox_for_account(ChannelKind::Shopee, &shop)
                .await?
        }
        None => None,
    };
    let Some(inbox) = inbox.filter(|i| {
        setting(i, "partner_key")
            .is_some_and(|k| shopee::verify_push(k, &callback_url(&st, i), &raw, auth))
    }) else {
        tracing::warn!(
            bytes = raw.len(),
            "shopee push refused: unknown shop or bad Authorization"
        );
        return Err(ApiError::unauthorized("bad or missing Authorization"));
    };
    let push = shopee::parse_push(&raw)
        .map_err(|e| ApiError::bad_request("bad_webhook", e.to_string()))?;
    let ShopeeEvent::Message {
        conversation_id,
        from_id,
        from_name,
        to_id,
        message_id,
        message_type,
        text,
        at,
    } = push.event
    else {
        return Ok(StatusCode::OK.into_response());
    };
    // The seller's own messages (sent from Seller Centre, or ours) are not the customer writing.
    if Some(from_id.as_str()) == setting(&inbox, "shop_id") {
        return Ok(StatusCode::OK.into_response());
    }
    let item = ChannelItem::Customer {
        inbound: Inbound {
            workspace_id: st.workspace_id,
            inbox_id: inbox.id,
            sender: InboundSender::Identity {
                external_id: from_id,
                name: from_name,
            },
            provider_message_id: message_id,
            kind: if message_type == "image" {
                MessageKind::Media
            } else {
                MessageKind::Text
            },
            text,
            sent_at: at,
            message_id: MessageId(new_uuid()),
            new_conversation_id: ConversationId(new_uuid()),
            new_contact_id: ContactId(new_uuid()),
        },
        meta: serde_json::json!({"shopee": {"conversation_id": conversation_id, "message_type": message_type, "to_id": to_id}}),
        replying_to: None,
        alias: None,
    };
    st.channel_ingest
        .submit_all(vec![item])
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::OK.into_response())
}
