//! `POST /webhooks/telegram/{inbox_id}`: one URL per bot, registered with `setWebhook` when the
//! inbox is created (channels.md §5). The `X-Telegram-Bot-Api-Secret-Token` header must equal the
//! inbox's secret (compared in constant time); otherwise 401 and nothing is processed. Updates are
//! stored through the group-commit writer; a redelivered update changes nothing (messages are
//! unique per chat and id). Button taps are acknowledged in the webhook answer itself
//! (`answerCallbackQuery`, as the Bot API allows).

use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::inbox_settings::setting;
use crate::routes::new_uuid;
use crate::routes::{body_or_413, unavailable};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_channels::telegram::{self, TgEvent};
use switchboard_core::*;
use switchboard_store::{ChannelItem, Inbound, InboundSender};

/// What a chat said, before it becomes an [`Inbound`].
struct Said {
    chat: String,
    name: Option<String>,
    id: String,
    kind: MessageKind,
    text: String,
    at: Timestamp,
    meta: serde_json::Value,
    replying_to: Option<String>,
}

fn customer(st: &AppState, inbox: &Inbox, s: Said) -> ChannelItem {
    ChannelItem::Customer {
        inbound: Inbound {
            workspace_id: st.workspace_id,
            inbox_id: inbox.id,
            sender: InboundSender::Identity {
                external_id: s.chat,
                name: s.name,
            },
            provider_message_id: s.id,
            kind: s.kind,
            text: s.text,
            sent_at: s.at,
            message_id: MessageId(new_uuid()),
            new_conversation_id: ConversationId(new_uuid()),
            new_contact_id: ContactId(new_uuid()),
        },
        meta: s.meta,
        replying_to: s.replying_to,
        alias: None,
    }
}

pub async fn receive(
    State(st): State<AppState>,
    Path(inbox_id): Path<InboxId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let raw = body_or_413(&st, body)?;
    let header = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok());
    // An unknown inbox and a wrong secret look the same from outside.
    let inbox = st
        .store
        .inbox(inbox_id)
        .await?
        .filter(|i| i.channel == ChannelKind::Telegram)
        .filter(|i| setting(i, "secret_token").is_some_and(|s| telegram::verify_secret(s, header)));
    let Some(inbox) = inbox else {
        tracing::warn!("telegram webhook refused: unknown inbox or wrong secret token");
        return Err(ApiError::unauthorized(
            "bad or missing X-Telegram-Bot-Api-Secret-Token",
        ));
    };
    let update =
        telegram::parse(&raw).map_err(|e| ApiError::bad_request("bad_webhook", e.to_string()))?;
    let now = st.clock.now();
    let mut answer = None;
    let (item, writer) = match update.event {
        TgEvent::Message {
            chat_id,
            message_id,
            name,
            text,
            attachments,
            reply_to,
            chat_type,
            at,
        } => {
            let kind = if attachments.is_empty() {
                MessageKind::Text
            } else {
                MessageKind::Media
            };
            let atts: Vec<_> = attachments
                .iter()
                .map(|a| serde_json::json!({"type": a.kind, "file_id": a.file_id, "file_name": a.file_name, "mime_type": a.mime_type}))
                .collect();
            let mut meta =
                serde_json::json!({"chat_type": chat_type, "update_id": update.update_id});
            if !atts.is_empty() {
                meta["attachments"] = serde_json::json!(atts);
            }
            let replying = reply_to.map(|r| format!("{chat_id}:{r}"));
            if let Some(r) = &replying {
                meta["reply_to"] = serde_json::json!(r);
            }
            let id = format!("{chat_id}:{message_id}");
            let said = Said {
                chat: chat_id.clone(),
                name,
                id,
                kind,
                text,
                at,
                meta,
                replying_to: replying,
            };
            (customer(&st, &inbox, said), Some(chat_id))
        }
        TgEvent::Edited {
            chat_id,
            message_id,
            text,
            ..
        } => (
            ChannelItem::Edit {
                inbox_id: inbox.id,
                provider_message_id: format!("{chat_id}:{message_id}"),
                text,
                num_edit: 1,
            },
            None,
        ),
        TgEvent::Callback {
            id,
            chat_id,
            name,
            data,
            at,
        } => {
            answer =
                Some(serde_json::json!({"method": "answerCallbackQuery", "callback_query_id": id}));
            // A tap has no time of its own: the update's arrival.
            let at = if at.millis() == 0 { now } else { now.max(at) };
            let meta = serde_json::json!({"callback_data": data});
            let said = Said {
                chat: chat_id.clone(),
                name,
                id: format!("callback:{id}"),
                kind: MessageKind::Text,
                text: format!("[button] {data}"),
                at,
                meta,
                replying_to: None,
            };
            (customer(&st, &inbox, said), Some(chat_id))
        }
        TgEvent::Reachable {
            chat_id, reachable, ..
        } => {
            let reason = (!reachable).then_some("user_blocked");
            st.store
                .set_reachability(inbox.id, &chat_id, reason, now)
                .await?;
            return Ok(StatusCode::OK.into_response());
        }
        TgEvent::Ignored { .. } => return Ok(StatusCode::OK.into_response()),
    };
    st.channel_ingest
        .submit_all(vec![item])
        .await
        .map_err(unavailable)?;
    // The customer wrote: they can be reached again.
    if let Some(chat) = writer {
        st.store
            .set_reachability(inbox.id, &chat, None, now)
            .await?;
    }
    Ok(match answer {
        Some(a) => ApiJson(a).into_response(),
        None => StatusCode::OK.into_response(),
    })
}
