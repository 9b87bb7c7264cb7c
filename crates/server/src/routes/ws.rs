//! `GET /api/v1/ws`: the agent's realtime stream. Pushes only events of inboxes the agent may see;
//! every stored event carries a cursor, and `?since=CURSOR` replays what a reconnecting client
//! missed from the store before going live (it also recovers from a slow socket falling behind).

use crate::app::publish_agent_typing;
use crate::auth::{self, CurrentAgent};
use crate::bus::{BusEvent, Control};
use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::responses::{PING_EVERY, small_buffers};
use crate::state::AppState;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use switchboard_core::{Agent, ConversationId};
use tokio::sync::broadcast::error::RecvError;

pub const CATCH_UP_PAGE: u32 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsParams {
    token: Option<String>,
    since: Option<i64>,
}

pub async fn agent_ws(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<WsParams>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let current = match p.token.as_deref().or_else(|| auth::bearer(&headers)) {
        Some(t) => auth::authenticate(&st, t).await?,
        None => {
            let token = auth::cookie(&headers, auth::SESSION_COOKIE)
                .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
            // Browsers send cookies on cross-site WebSocket handshakes: only our own pages may use them.
            if !same_origin(&headers) {
                return Err(ApiError::forbidden(
                    "cross-origin WebSocket with a cookie session",
                ));
            }
            auth::authenticate(&st, token).await?
        }
    };
    let CurrentAgent { agent, session } = current;
    Ok(small_buffers(ws?)
        .on_upgrade(move |socket| run(st, agent, session.token_hash, p.since, socket)))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (
        headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()),
        host,
    ) {
        (None, _) => true, // not a browser
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        _ => false,
    }
}

fn visible(st: &AppState, agent: &Agent, ev: &BusEvent) -> bool {
    ev.inbox_id.is_none_or(|i| st.access.can_see(agent, i))
}

/// Sends stored events after `*cursor` that the agent may see, advancing the cursor.
async fn catch_up(
    st: &AppState,
    agent: &Agent,
    cursor: &mut i64,
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
) -> bool {
    let visible = st.access.visible(agent);
    loop {
        let Ok(events) = st
            .store
            .events_since(*cursor, visible.as_deref(), CATCH_UP_PAGE)
            .await
        else {
            return false;
        };
        let n = events.len();
        for e in events {
            *cursor = e.seq;
            if sink
                .feed(WsMessage::Text(e.to_wire().to_string().into()))
                .await
                .is_err()
            {
                return false;
            }
        }
        if sink.flush().await.is_err() {
            return false;
        }
        if n < CATCH_UP_PAGE as usize {
            // Anything committed after this query is already queued on the bus receiver.
            return true;
        }
    }
}

#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    conversation_id: Option<ConversationId>,
}

async fn run(
    st: AppState,
    mut agent: Agent,
    session: String,
    since: Option<i64>,
    socket: WebSocket,
) {
    let mut rx = st.bus.subscribe();
    let mut control = st.bus.subscribe_control();
    let (mut sink, mut stream) = socket.split();
    st.routing.agent_connected(agent.id).await;
    let mut cursor = match since {
        Some(s) => s,
        None => st.store.last_event_seq().await.unwrap_or(0),
    };
    let mut alive = since.is_none() || catch_up(&st, &agent, &mut cursor, &mut sink).await;
    if alive {
        let hello = serde_json::json!({"type": "hello", "cursor": cursor, "agent_id": agent.id});
        alive = sink
            .send(WsMessage::Text(hello.to_string().into()))
            .await
            .is_ok();
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    while alive {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => alive = forward(&st, &agent, &mut cursor, &ev, &mut sink).await,
                Err(RecvError::Lagged(_)) => alive = catch_up(&st, &agent, &mut cursor, &mut sink).await,
                Err(RecvError::Closed) => alive = false,
            },
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Text(t))) => handle_frame(&st, &agent, t.as_str()).await,
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => alive = false,
                Some(Ok(_)) => {}
            },
            c = control.recv() => {
                let mine = match &c {
                    Ok(Control::SessionEnded(h)) => *h == session,
                    Ok(Control::AgentChanged(a)) => *a == agent.id,
                    Err(_) => true, // missed signals: check anyway
                };
                if mine {
                    alive = recheck(&st, &mut agent, &session, &mut sink).await;
                }
            }
            _ = ping.tick() => {
                alive = recheck(&st, &mut agent, &session, &mut sink).await
                    && sink.send(WsMessage::Ping(Vec::new().into())).await.is_ok();
            }
        }
    }
    st.routing.agent_disconnected(agent.id).await;
}

async fn forward(
    st: &AppState,
    agent: &Agent,
    cursor: &mut i64,
    ev: &Arc<BusEvent>,
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
) -> bool {
    if ev.seq > 0 {
        if ev.seq <= *cursor {
            return true; // already sent during catch-up
        }
        *cursor = ev.seq;
    }
    if !visible(st, agent, ev) {
        return true;
    }
    sink.send(WsMessage::Text(ev.json.clone())).await.is_ok()
}

/// Every frame the agent's app sends counts as activity (apps send `{"type":"activity"}` on user
/// input, so an open but unattended tab turns `away` after `idle_away_minutes`).
async fn handle_frame(st: &AppState, agent: &Agent, text: &str) {
    st.routing.agent_active(agent.id).await;
    let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
        return;
    };
    if frame.kind == "typing"
        && let Some(id) = frame.conversation_id
        && let Ok(Some(c)) = st.store.conversation(id).await
        && st.access.can_see(agent, c.inbox_id)
    {
        publish_agent_typing(st, agent, &c);
    }
}

/// A socket outlives the request that opened it: sign-out, deactivation or a role change must
/// reach it too. Returns false (after telling the client why) when the session is over.
async fn recheck(
    st: &AppState,
    agent: &mut Agent,
    session: &str,
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
) -> bool {
    match auth::authenticate_hash(st, session).await {
        Ok(current) => {
            *agent = current.agent;
            true
        }
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
            let bye = serde_json::json!({"type": "session.ended"});
            let _ = sink.send(WsMessage::Text(bye.to_string().into())).await;
            let _ = sink.send(WsMessage::Close(None)).await;
            false
        }
        Err(_) => true, // the store hiccupped; keep the socket and check again later
    }
}
