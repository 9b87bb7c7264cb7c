//! The connection loop. `axum::serve` has no header-read timeout and no connection cap: a few
//! thousand half-sent requests held their sockets forever and, past the open-file limit, made the
//! server unreachable. Here every connection is HTTP/1.1 (with upgrades, for WebSockets) under a
//! header-read timeout, at most `http.max_connections` are served at once (the rest get a 503 in
//! our JSON shape), and oversized request targets and header blocks get our JSON 414/431 from
//! [`limits`] — hyper's own limits sit above ours, so they only meet pathological requests.

use crate::config::HttpConfig;
use crate::error::ApiError;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_service::Service;

/// How long in-flight requests may take to finish after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let max = cfg.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    // Tells every open connection to finish its request in flight and close.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms.max(1)))
        // Above our own limits (see `limits`), so that the answer is ours.
        .max_headers(cfg.max_headers.saturating_mul(2).max(100))
        .max_buf_size(cfg.max_header_bytes.saturating_mul(4).max(1 << 20));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            // Errors here are the client's doing (reset, timeout, garbage): nothing to report.
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection gives its slot back as it closes.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some requests did not finish in time");
    }
}

/// Over the connection cap: a 503 in our error shape, then close.
async fn refuse(mut tcp: TcpStream) {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "the server is at its connection limit; retry shortly",
    }})
    .to_string();
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(reply.as_bytes())).await;
}

/// 414 for a request target over `max_uri_bytes`, 431 for more than `max_headers` headers or
/// over `max_header_bytes` of them — in our JSON shape, before any handler runs.
pub async fn limits(State(cfg): State<Arc<HttpConfig>>, req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > cfg.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("request targets are limited to {} bytes", cfg.max_uri_bytes),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > cfg.max_headers || bytes > cfg.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "requests may carry at most {} headers and {} bytes of them",
                cfg.max_headers, cfg.max_header_bytes
            ),
        )
        .into_response();
    }
    next.run(req).await
}
