//! The bare-handler baseline, measured in the same run: an axum server that only verifies the
//! HMAC over the raw body and parses the JSON, then answers 200 (as in shared/bench-limits/), on
//! both webhook paths of the ingest mix.
//! It runs as its own process, like the real server.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

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

pub async fn serve(bind: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .route("/webhooks/meta", post(webhook))
        .route("/webhooks/whatsapp", post(webhook))
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
