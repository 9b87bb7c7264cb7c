//! What the route handlers share: 201 Created, request bodies within their limits, the webhook
//! answer when events could not be stored, and the sockets' buffers and ping interval. It lives
//! outside `routes/` so that no route file imports another (or the router).

use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// How often sockets (agents' and visitors') are pinged to keep them (and proxies) awake.
pub const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(25);

/// Sockets are many and mostly idle: small buffers instead of the library's 128 KiB each way keep
/// 10,000 connections in a few hundred MiB (see BENCHMARKS.md). Clients only send small frames.
pub fn small_buffers(
    ws: axum::extract::ws::WebSocketUpgrade,
) -> axum::extract::ws::WebSocketUpgrade {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
}

/// Reads a webhook body, answering 413 in our error shape when it is too large.
pub fn body_or_413(
    st: &AppState,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> crate::error::ApiResult<axum::body::Bytes> {
    body_within(
        body,
        "payload_too_large",
        "webhook bodies",
        st.config.webhooks.max_body_bytes,
    )
}

/// A raw body, or our JSON error: 413 `code` naming the `limit` when it is larger.
pub fn body_within(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    code: &'static str,
    what: &str,
    limit: usize,
) -> crate::error::ApiResult<axum::body::Bytes> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                format!("{what} are limited to {limit} bytes"),
            )
            .with_extra(serde_json::json!({ "max_bytes": limit }))
        } else {
            ApiError::bad_request("bad_body", "could not read the body")
        }
    })
}

/// A webhook whose events could not be stored: 503, the provider delivers it again.
pub fn unavailable(_: crate::ingest::IngestFailure) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "could not store the events; retry",
    )
}

/// 201 with the created object.
pub fn created(v: serde_json::Value) -> Response {
    (StatusCode::CREATED, ApiJson(v)).into_response()
}

/// A stored file's bytes as `served` (a type of our allowlist): never sniffed, sandboxed by `csp`
/// (so even a file a browser opens by itself cannot run script on our origin), cached privately
/// for a day (each file's URL names it).
pub fn stored_file(
    file: crate::media_store::Stored,
    served: &'static str,
    csp: &'static str,
) -> Response {
    use axum::http::{HeaderValue, header};
    // Streamed from the media store, part by part.
    let body = axum::body::Body::from_stream(file.stream);
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(served));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    resp
}
