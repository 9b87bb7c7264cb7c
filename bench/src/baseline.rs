//! The bare baselines, measured in the same run as the real server, in a process of their own
//! like it:
//! - **webhooks** (`POST /webhooks/meta`, `/webhooks/whatsapp`): verify the HMAC over the raw body
//!   and parse the JSON, then answer 200 (as in shared/bench-limits/);
//! - **fan-out** (`GET /ws`, `POST /publish`): a WebSocket server that pushes each published
//!   event to every socket through a `tokio::sync::broadcast` (as bench-limits' `ws_fanout`);
//! - **list** (`GET /list`): answers with fixed bytes — the body of a real list view, read from a
//!   file — so a view's latency can be set against what just answering costs.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use std::path::PathBuf;
use tokio::sync::broadcast;

#[derive(Clone)]
struct Baseline {
    events: broadcast::Sender<axum::extract::ws::Utf8Bytes>,
    list: Bytes,
}

async fn webhook(headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="));
    let Some(sig) = sig else {
        return StatusCode::UNAUTHORIZED;
    };
    if !switchboard_channels::signing::verify_hex(crate::ingest::APP_SECRET.as_bytes(), &body, sig)
    {
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v["entry"].is_array() => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An event shaped like the server's `message.created` (about the same size).
async fn publish(State(b): State<Baseline>, body: Bytes) -> StatusCode {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let event = serde_json::json!({"type": "message.created", "seq": 0,
        "inbox_id": "019a0000-0000-7000-8000-000000000001",
        "conversation_id": "019a0000-0000-7000-8000-000000000002",
        "message": {"id": "019a0000-0000-7000-8000-000000000003", "direction": "inbound",
            "sender_kind": "customer", "kind": "text", "text": v["text"], "delivery_status": "delivered",
            "created_at": 0}});
    let _ = b.events.send(event.to_string().into());
    StatusCode::CREATED
}

async fn ws(State(b): State<Baseline>, upgrade: WebSocketUpgrade) -> Response {
    let rx = b.events.subscribe();
    upgrade.on_upgrade(move |socket| push(socket, rx))
}

async fn push(socket: WebSocket, mut rx: broadcast::Receiver<axum::extract::ws::Utf8Bytes>) {
    let (mut tx, mut incoming) = socket.split();
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(text) => {
                    // Everything queued, then one flush.
                    if tx.feed(Message::Text(text)).await.is_err() {
                        return;
                    }
                    while let Ok(more) = rx.try_recv() {
                        if tx.feed(Message::Text(more)).await.is_err() {
                            return;
                        }
                    }
                    if tx.flush().await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = incoming.next() => if !matches!(msg, Some(Ok(_))) { return },
        }
    }
}

async fn list(State(b): State<Baseline>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], b.list.clone()).into_response()
}

pub async fn serve(bind: std::net::SocketAddr, list_body: Option<PathBuf>) -> anyhow::Result<()> {
    let body = match list_body {
        Some(path) => std::fs::read(path)?,
        None => b"{\"items\":[]}".to_vec(),
    };
    let state = Baseline {
        events: broadcast::channel(1024).0,
        list: Bytes::from(body),
    };
    let app = axum::Router::new()
        .route("/webhooks/meta", post(webhook))
        .route("/webhooks/whatsapp", post(webhook))
        .route("/publish", post(publish))
        .route("/ws", get(ws))
        .route("/list", get(list))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A baseline server of this harness's own binary, stopped when dropped.
pub struct Process {
    child: tokio::process::Child,
    pub base: String,
}

impl Process {
    pub async fn start(list_body: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let port = crate::server::free_port()?;
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        cmd.args(["baseline-server", "--bind", &format!("127.0.0.1:{port}")]);
        if let Some(path) = list_body {
            cmd.arg("--list-body").arg(path);
        }
        let child = cmd.kill_on_drop(true).spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        crate::server::wait_healthy(&http, &base).await?;
        Ok(Self { child, base })
    }

    /// Resident memory of the baseline process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.child
            .id()
            .and_then(crate::server::rss_kib)
            .map(|k| k as f64 / 1024.0)
            .unwrap_or(f64::NAN)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
