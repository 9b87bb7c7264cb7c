//! `POST /webhooks/zalo`: one callback URL for every connected Zalo Official Account
//! (channels.md §4.1).
//!
//! The OA the event is for is read first (`recipient.id`, or `sender.id` for OA echoes and
//! receipts), only to find whose OA secret key applies; then `X-ZEvent-Signature` must be
//! `mac=` + SHA-256(app_id + raw body + timestamp + OA secret key), and the body's `app_id` must
//! be the inbox's. Otherwise 401 and nothing is stored. Events go through the group-commit
//! writer; the webhook is answered 200 once they are stored.

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
use switchboard_channels::zalo::{self, ZaloEvent};
use switchboard_core::*;
use switchboard_store::{ChannelItem, Inbound, InboundSender};

fn attachments_json(a: &[zalo::Attachment]) -> serde_json::Value {
    serde_json::json!(
        a.iter()
            .map(|x| serde_json::json!({"type": x.kind, "url": x.url, "thumbnail": x.thumbnail,
                "name": x.name, "coordinates": x.coordinates.as_ref().map(|(la, lo)| serde_json::json!({"latitude": la, "longitude": lo}))}))
            .collect::<Vec<_>>()
    )
}

pub async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let raw = body_or_413(&st, body)?;
    let signature = headers
        .get("x-zevent-signature")
        .and_then(|v| v.to_str().ok());
    let oa = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|v| zalo::oa_of(&v));
    let inbox = match &oa {
        Some(oa) => st.store.inbox_for_account(ChannelKind::Zalo, oa).await?,
        None => None,
    };
    let trusted = inbox.filter(|i| {
        setting(i, "oa_secret_key").is_some_and(|k| zalo::verify_signature(&raw, signature, k))
            && zalo::signed_fields(&raw)
                .is_some_and(|(app, _)| Some(app.as_str()) == setting(i, "app_id"))
    });
    let Some(inbox) = trusted else {
        tracing::warn!(
            bytes = raw.len(),
            "zalo webhook refused: unknown OA or bad X-ZEvent-Signature"
        );
        return Err(ApiError::unauthorized("bad or missing X-ZEvent-Signature"));
    };
    let hook =
        zalo::parse(&raw).map_err(|e| ApiError::bad_request("bad_webhook", e.to_string()))?;
    let now = st.clock.now();
    let mut writer = None;
    let item = match hook.event {
        ZaloEvent::UserMessage {
            user_id,
            msg_id,
            kind,
            text,
            attachments,
            quote_msg_id,
            anonymous,
            at,
        } => {
            let media = !attachments.is_empty()
                && !matches!(
                    kind.as_str(),
                    "text" | "location" | "link" | "business_card"
                );
            let mut meta =
                serde_json::json!({"zalo_event": hook.event_name, "anonymous": anonymous});
            if !attachments.is_empty() {
                meta["attachments"] = attachments_json(&attachments);
            }
            if let Some(q) = &quote_msg_id {
                meta["reply_to"] = serde_json::json!(q);
            }
            writer = Some(user_id.clone());
            ChannelItem::Customer {
                inbound: Inbound {
                    workspace_id: st.workspace_id,
                    inbox_id: inbox.id,
                    sender: InboundSender::Identity {
                        external_id: user_id,
                        name: None,
                    },
                    provider_message_id: msg_id,
                    kind: if media {
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
                meta,
                replying_to: quote_msg_id,
                alias: None,
            }
        }
        ZaloEvent::Echo {
            user_id,
            msg_id,
            text,
            attachments,
            at,
        } => {
            // Zalo echoes carry no marker of ours: a send of ours still waiting for its answer
            // with exactly this text is taken to be it (so it is not stored twice).
            let ours = match st.store.contact_by_identity(inbox.id, &user_id).await? {
                Some(contact) => match st.store.conversation_of(contact, inbox.id).await? {
                    Some(c) => st.store.sending_message_like(c.id, &text).await?,
                    None => None,
                },
                None => None,
            };
            let mut meta = serde_json::json!({"echo": {"zalo_event": hook.event_name}});
            if !attachments.is_empty() {
                meta["attachments"] = attachments_json(&attachments);
            }
            ChannelItem::Echo {
                workspace_id: st.workspace_id,
                inbox_id: inbox.id,
                customer_external_id: user_id,
                provider_message_id: msg_id,
                ours,
                text,
                meta,
                sent_at: at,
                message_id: MessageId(new_uuid()),
                new_conversation_id: ConversationId(new_uuid()),
                new_contact_id: ContactId(new_uuid()),
            }
        }
        ZaloEvent::Received {
            user_id, msg_ids, ..
        } => ChannelItem::Receipt {
            inbox_id: inbox.id,
            customer_external_id: user_id,
            provider_message_ids: msg_ids,
            watermark: None,
            status: DeliveryStatus::Delivered,
        },
        ZaloEvent::Seen {
            user_id, msg_ids, ..
        } => ChannelItem::Receipt {
            inbox_id: inbox.id,
            customer_external_id: user_id,
            provider_message_ids: msg_ids,
            watermark: None,
            status: DeliveryStatus::Read,
        },
        ZaloEvent::Reaction {
            user_id,
            msg_id,
            reaction,
            at,
        } => ChannelItem::Reaction {
            inbox_id: inbox.id,
            customer_external_id: user_id,
            target_provider_id: msg_id,
            reaction: reaction.map(|r| serde_json::json!({"reaction": r, "at": at.clamp_to(now)})),
            at,
        },
        ZaloEvent::Follow {
            user_id, follow, ..
        } => {
            let reason = (!follow).then_some("unfollowed");
            st.store
                .set_reachability(inbox.id, &user_id, reason, now)
                .await?;
            return Ok(StatusCode::OK.into_response());
        }
        ZaloEvent::Ignored { .. } => return Ok(StatusCode::OK.into_response()),
    };
    st.channel_ingest
        .submit_all(vec![item])
        .await
        .map_err(unavailable)?;
    if let Some(u) = writer {
        st.store.set_reachability(inbox.id, &u, None, now).await?;
    }
    Ok(StatusCode::OK.into_response())
}
