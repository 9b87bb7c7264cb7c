//! The live-chat widget API (`/widget/v1`): a visitor gets a signed token that reaches only their
//! own conversation; messages go through the same ingest path as every channel; agent replies and
//! typing come back over `/widget/v1/ws`. Private messages (notes, agent-to-agent) never leave.

use crate::app::widget;
use crate::auth::{Visitor, visitor_from_token};
use crate::client::ClientIp;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use switchboard_channels::livechat::{NewSession, NewWidgetMessage, VisitorClaims};
use switchboard_core::event::EventKind;
use switchboard_core::*;
use switchboard_store::MessageCursor;
use tokio::sync::broadcast::error::RecvError;

pub async fn create_session(
    State(st): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(b): ApiJson<NewSession>,
) -> ApiResult<Response> {
    let session = widget::open_session(&st, client, b).await?;
    let (inbox, settings) = (&session.inbox, &session.inbox.settings);
    Ok(created(serde_json::json!({
        "token": session.token,
        "inbox": { "id": inbox.id, "name": inbox.name, "greeting": settings.get("greeting"), "prechat_fields": settings.get("prechat_fields") },
    })))
}

pub async fn post_message(
    State(st): State<AppState>,
    ClientIp(client): ClientIp,
    Visitor(v): Visitor,
    ApiJson(b): ApiJson<NewWidgetMessage>,
) -> ApiResult<Response> {
    let m = widget::write(&st, client, &v, b).await?;
    Ok(created(serde_json::json!({
        "message": { "id": m.message_id, "conversation_id": m.conversation_id, "text": m.text, "sender_kind": "customer", "created_at": m.created_at },
        "duplicate": m.duplicate,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    filename: String,
    client_message_id: Option<String>,
}

/// `POST /widget/v1/attachments?filename=…&client_message_id=…` with the file as the raw body.
pub async fn upload(
    State(st): State<AppState>,
    ClientIp(client): ClientIp,
    Visitor(v): Visitor,
    ApiQuery(p): ApiQuery<UploadParams>,
    body: crate::responses::UploadedFile,
) -> ApiResult<Response> {
    let id = p.client_message_id.as_deref();
    let (m, a) = widget::upload(&st, client, &v, &p.filename, id, body).await?;
    Ok(created(serde_json::json!({
        "message": { "id": m.message_id, "conversation_id": m.conversation_id, "text": m.text, "kind": "media", "sender_kind": "customer", "created_at": m.created_at,
                     "attachments": [crate::app::media::attachment_json(&a, true)] },
        "duplicate": m.duplicate,
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
    let inbox = widget::livechat_inbox(&st, id).await?;
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
    Ok(crate::responses::small_buffers(ws?).on_upgrade(move |socket| run(st, claims, socket)))
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
    let mut ping = tokio::time::interval(crate::responses::PING_EVERY);
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
