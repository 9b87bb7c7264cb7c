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

/// A file sent as a request's raw body (agents' and visitors' uploads, the library). Only its first
/// bytes are read here (to tell its type); the rest streams into the media store when it is kept
/// ([`UploadedFile::store`]), so a large file is never whole in memory. Larger than
/// `limits.max_upload_bytes`: 413 `file_too_large` with `max_bytes` — said before reading when the
/// length is announced (`Content-Length`), else once the limit is passed while storing.
pub struct UploadedFile {
    head: axum::body::Bytes,
    rest: Option<axum::body::BodyDataStream>,
    announced: Option<u64>,
    limit: u64,
}

/// How many first bytes are read before the file is kept (what it is comes from them).
const HEAD_BYTES: usize = 512;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("files are limited to {limit} bytes"),
    )
    .with_extra(serde_json::json!({ "max_bytes": limit }))
}

fn unreadable() -> ApiError {
    ApiError::bad_request("bad_body", "could not read the body")
}

impl axum::extract::FromRequest<AppState> for UploadedFile {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, st: &AppState) -> Result<Self, ApiError> {
        use futures_util::StreamExt;
        let limit = u64::try_from(st.config.limits.max_upload_bytes).unwrap_or(u64::MAX);
        let announced = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let mut rest = req.into_body().into_data_stream();
        let mut head: Vec<u8> = Vec::new();
        let mut ended = false;
        while head.len() < HEAD_BYTES {
            match rest.next().await {
                Some(chunk) => head.extend_from_slice(&chunk.map_err(|_| unreadable())?),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if head.len() as u64 > limit {
            return Err(too_large(limit));
        }
        Ok(Self {
            head: head.into(),
            rest: (!ended).then_some(rest),
            announced,
            limit,
        })
    }
}

impl UploadedFile {
    pub fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// What the file is, from its first bytes.
    pub fn content_type(&self) -> &'static str {
        switchboard_core::media::sniff(&self.head)
    }

    /// Its size when known before storing it: announced, or read whole already.
    pub fn known_size(&self) -> Option<u64> {
        match &self.rest {
            None => Some(self.head.len() as u64),
            Some(_) => self.announced,
        }
    }

    /// Keeps the file in the media store under `key`, streaming what was not read yet; returns
    /// its size. Past the upload limit (or a body shorter or longer than announced) nothing is
    /// kept.
    pub async fn store(
        self,
        media: &crate::media_store::MediaStore,
        key: &str,
    ) -> Result<u64, ApiError> {
        use crate::media_store::MediaError;
        use futures_util::StreamExt;
        let first = futures_util::stream::once(async move { Ok::<_, axum::Error>(self.head) });
        let stream = match self.rest {
            Some(rest) => first.chain(rest).boxed(),
            None => first.boxed(),
        };
        let written = media
            .put_stream(key, stream, self.limit)
            .await
            .map_err(|e| match e {
                MediaError::TooLarge(_) => too_large(self.limit),
                MediaError::Source(_) => unreadable(),
                other => {
                    tracing::error!(error = %other, "could not store an uploaded file");
                    ApiError::internal()
                }
            })?;
        if self.announced.is_some_and(|n| n != written.size) {
            let _ = media.delete(key).await;
            return Err(unreadable());
        }
        Ok(written.size)
    }
}
