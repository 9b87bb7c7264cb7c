//! The web UI, embedded in the binary: the agent app (a single-page app served for every path
//! that is not an API) and `/widget.js` for customers' sites.

use crate::error::ApiError;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist/"]
struct Assets;

/// The agent app's pages may load only our own scripts and talk only to us.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; \
                   media-src 'self' blob: https:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str, cache: &'static str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mut resp = (StatusCode::OK, file.data.into_owned()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    Some(resp)
}

/// `/widget-preview?inbox=ID`: a plain page with the widget on it, to try an inbox's chat.
pub async fn widget_preview(
    crate::error::ApiQuery(q): crate::error::ApiQuery<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(inbox) = q.get("inbox").and_then(|i| uuid::Uuid::parse_str(i).ok()) else {
        return ApiError::bad_request("bad_query", "pass ?inbox=<live-chat inbox id>")
            .into_response();
    };
    let lang = match q.get("lang").map(String::as_str) {
        Some("vi") => "vi",
        Some("en") => "en",
        _ => "",
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>Switchboard widget preview</title></head><body style=\"font-family:system-ui;margin:40px\">\
         <h1>Widget preview</h1><p>This page stands in for your website. Click the bubble at the bottom right.</p>\
         <script src=\"/widget.js\" data-inbox=\"{inbox}\" data-lang=\"{lang}\" async></script></body></html>"
    );
    let mut resp = (StatusCode::OK, page).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// `/widget.js`: cached briefly so sites pick up new versions within the hour.
pub async fn widget_js() -> Response {
    asset("widget.js", "public, max-age=3600")
        .unwrap_or_else(|| ApiError::not_found("widget.js").into_response())
}

/// Hashed build assets are immutable; every other path that looks like a page gets the app.
pub async fn app(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if let Some(resp) = path
        .strip_prefix("assets/")
        .and_then(|_| asset(path, "public, max-age=31536000, immutable"))
    {
        return resp;
    }
    // The service worker and the manifest are checked for updates on every visit.
    if matches!(path, "sw.js" | "manifest.webmanifest")
        && let Some(resp) = asset(path, "no-cache")
    {
        return resp;
    }
    if !path.is_empty()
        && let Some(resp) = asset(path, "public, max-age=3600")
    {
        return resp;
    }
    let looks_like_file = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    if looks_like_file || path.starts_with("api/") || path.starts_with("widget/") {
        return ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
            .into_response();
    }
    asset("index.html", "no-cache").unwrap_or_else(|| ApiError::not_found("page").into_response())
}
