//! The live-chat widget API (`/widget/v1`): a visitor gets a signed token that reaches only their
//! own conversation; messages go through the same ingest path as every channel; agent replies and
//! typing come back over `/widget/v1/ws`. Private messages (notes, agent-to-agent) never leave.

use crate::auth::{Visitor, visitor_from_token};
use crate::client::ClientIp;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::ingest::IngestFailure;
use crate::routes::{created, new_uuid};
use crate::state::AppState;
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use switchboard_channels::livechat::{self, NewSession, NewWidgetMessage, VisitorClaims};
use switchboard_core::event::EventKind;
use switchboard_core::validate::{Email, PersonName, Phone};
use switchboard_core::*;
use switchboard_store::{Inbound, InboundSender, MessageCursor};
use tokio::sync::broadcast::error::RecvError;

async fn livechat_inbox(st: &AppState, id: InboxId) -> ApiResult<Inbox> {
    st.store
        .inbox(id)
        .await?
        .filter(|i| i.channel == ChannelKind::Livechat)
        .ok_or_else(|| ApiError::not_found("inbox"))
}

pub async fn create_session(
    State(st): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(b): ApiJson<NewSession>,
) -> ApiResult<Response> {
    st.limits
        .widget_ip
        .check(&client.to_string())
        .map_err(ApiError::rate_limited)?;
    let inbox = livechat_inbox(&st, b.inbox_id).await?;
    let settings = &inbox.settings;
    let external_id = match b.identifier() {
        Some(user) => {
            let secret = settings
                .get("identity_secret")
                .and_then(|s| s.as_str())
                .unwrap_or("");
            if !b.identity_verified(secret) {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_identity",
                    "the identifier hash does not match",
                ));
            }
            livechat::external_id_for(Some(user), "")
        }
        None if settings
            .get("require_identity")
            .and_then(|v| v.as_bool())
            .unwrap_or(false) =>
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "identity_required",
                "this chat requires a signed-in user",
            ));
        }
        None => livechat::external_id_for(None, &new_uuid().to_string()),
    };
    let details = b.contact()?;
    let now = st.clock.now();
    let fresh = Contact {
        id: ContactId(new_uuid()),
        workspace_id: st.workspace_id,
        name: details.name.map(PersonName::into_inner),
        phone: details.phone.map(Phone::into_inner),
        email: details.email.map(Email::into_inner),
        notes: None,
        created_at: now,
        updated_at: now,
    };
    let contact = st
        .store
        .upsert_contact_identity(&fresh, inbox.id, &external_id)
        .await?;
    let token = livechat::sign_visitor_token(
        &st.visitor_key,
        &VisitorClaims {
            inbox_id: inbox.id,
            contact_id: contact.id,
            issued_at: now.millis(),
        },
    );
    Ok(created(serde_json::json!({
        "token": token,
        "inbox": { "id": inbox.id, "name": inbox.name, "greeting": settings.get("greeting"), "prechat_fields": settings.get("prechat_fields") },
    })))
}

pub async fn post_message(
    State(st): State<AppState>,
    ClientIp(client): ClientIp,
    Visitor(v): Visitor,
    ApiJson(b): ApiJson<NewWidgetMessage>,
) -> ApiResult<Response> {
    st.limits
        .widget_ip
        .check(&client.to_string())
        .map_err(ApiError::rate_limited)?;
    st.limits
        .widget_visitor
        .check(&v.contact_id.to_string())
        .map_err(ApiError::rate_limited)?;
    let checked = b.check()?;
    let text = checked.text.into_inner();
    let provider_id = match checked.client_message_id {
        Some(id) => format!("client:{}:{id}", v.contact_id),
        None => format!("server:{}", new_uuid()),
    };
    let now = st.clock.now();
    let item = Inbound {
        workspace_id: st.workspace_id,
        inbox_id: v.inbox_id,
        sender: InboundSender::Contact(v.contact_id),
        provider_message_id: provider_id,
        kind: MessageKind::Text,
        text: text.clone(),
        sent_at: now,
        message_id: MessageId(new_uuid()),
        new_conversation_id: ConversationId(new_uuid()),
        new_contact_id: v.contact_id,
    };
    let done = st.ingest.submit(item).await.map_err(|e| match e {
        IngestFailure::Rejected(_) => ApiError::unauthorized("this visitor no longer exists"),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "could not store the message; retry",
        ),
    })?;
    Ok(created(serde_json::json!({
        "message": { "id": done.message_id, "conversation_id": done.conversation_id, "text": text, "sender_kind": "customer", "created_at": now },
        "duplicate": done.duplicate,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadParams {
    before: Option<String>,
    limit: Option<u32>,
}

pub async fn list_messages(
    State(st): State<AppState>,
    Visitor(v): Visitor,
    ApiQuery(p): ApiQuery<ThreadParams>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let Some(c) = st.store.conversation_of(v.contact_id, v.inbox_id).await? else {
        return Ok(ApiJson(
            serde_json::json!({ "items": [], "next_cursor": null }),
        ));
    };
    let before = p
        .before
        .filter(|s| !s.is_empty())
        .map(|s| {
            MessageCursor::decode(&s)
                .ok_or_else(|| ApiError::bad_request("bad_query", "`before` is invalid"))
        })
        .transpose()?;
    let page = st
        .store
        .messages(c.id, before, p.limit.unwrap_or(50), true)
        .await?;
    let public: Vec<Message> = page.items.into_iter().filter(|m| !m.is_private()).collect();
    let json = public.iter().map(visitor_message_json).collect();
    let items = crate::app::media::with_attachments(&st, &public, true, json).await?;
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": page.next_cursor }),
    ))
}

/// What a visitor sees of a message: no agent ids, no internal fields.
fn visitor_message_json(m: &Message) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "sender_kind": m.sender_kind,
        "kind": m.kind,
        "text": m.text,
        "created_at": m.created_at,
    })
}

/// What the widget shows before a visitor has a session: name, greeting, pre-chat fields.
pub async fn inbox_config(
    State(st): State<AppState>,
    crate::error::ApiPath(id): crate::error::ApiPath<InboxId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let inbox = livechat_inbox(&st, id).await?;
    let s = &inbox.settings;
    Ok(ApiJson(serde_json::json!({
        "id": inbox.id,
        "name": inbox.name,
        "greeting": s.get("greeting"),
        "prechat_fields": s.get("prechat_fields").cloned().unwrap_or_else(|| serde_json::json!([])),
        "require_identity": s.get("require_identity").and_then(|v| v.as_bool()).unwrap_or(false),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsParams {
    token: String,
}

pub async fn visitor_ws(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<WsParams>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let claims = visitor_from_token(&st, &p.token)?;
    Ok(crate::routes::small_buffers(ws?).on_upgrade(move |socket| run(st, claims, socket)))
}

async fn run(st: AppState, v: VisitorClaims, socket: WebSocket) {
    let mut rx = st.bus.subscribe();
    let (mut sink, mut stream) = socket.split();
    let mut conversation = st
        .store
        .conversation_of(v.contact_id, v.inbox_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.id);
    let mut ping = tokio::time::interval(crate::routes::PING_EVERY);
    let mut alive = true;
    while alive {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if ev.inbox_id != Some(v.inbox_id) {
                        continue;
                    }
                    if conversation.is_none() {
                        conversation = st.store.conversation_of(v.contact_id, v.inbox_id).await.ok().flatten().map(|c| c.id);
                    }
                    if ev.conversation_id.is_none() || ev.conversation_id != conversation {
                        continue;
                    }
                    let frame = match (&ev.public_message, ev.kind, ev.typing_actor) {
                        (Some(m), EventKind::MessageCreated | EventKind::MessageUpdated, _) => serde_json::json!({
                            "type": ev.kind.as_str(),
                            "message": {"id": m["id"], "sender_kind": m["sender_kind"], "kind": m["kind"], "text": m["text"], "created_at": m["created_at"]},
                        }),
                        (_, EventKind::Typing, Some("agent")) => serde_json::json!({"type": "typing", "actor": "agent"}),
                        _ => continue,
                    };
                    alive = sink.send(WsMessage::Text(frame.to_string().into())).await.is_ok();
                }
                // The visitor's client refetches the thread on reconnect; a lagging widget just reconnects.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => alive = false,
            },
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Text(t))) => {
                    if t.as_str().contains("\"typing\"") && let Some(c) = conversation {
                        st.bus.publish_ephemeral(EventKind::Typing, Some(v.inbox_id), Some(c), Some("customer"), serde_json::json!({"actor": "customer"}));
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => alive = false,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => alive = sink.send(WsMessage::Ping(Vec::new().into())).await.is_ok(),
        }
    }
}
