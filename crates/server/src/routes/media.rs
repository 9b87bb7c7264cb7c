//! Files on messages: agents upload (`POST /conversations/{id}/attachments`, raw body), agents and
//! the conversation's own visitor download. Files live in the media store under their id.

use crate::app::media::attachment_json;
use crate::app::visible;
use crate::auth::{CurrentAgent, Visitor};
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::media;
use switchboard_core::*;
use switchboard_store::Attachment;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    filename: String,
    caption: Option<String>,
    /// "I am only replying; nothing promotional" (Messenger's and Instagram's `HUMAN_AGENT`).
    #[serde(default)]
    human_agent_confirmed: bool,
}

/// `POST /conversations/{id}/attachments?filename=…&caption=…[&human_agent_confirmed=true]` with
/// the file as the raw body.
pub async fn upload(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiQuery(p): ApiQuery<UploadParams>,
    body: crate::responses::UploadedFile,
) -> ApiResult<Response> {
    let policy = crate::app::send::PolicyRequest {
        human_agent_confirmed: p.human_agent_confirmed,
        ..Default::default()
    };
    let file = (p.filename.as_str(), p.caption.as_deref(), policy);
    let sent = crate::app::media::upload(&st, &me, id, file, body).await?;
    Ok(created(sent))
}

pub async fn gallery(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    visible(&st, &me, id).await?;
    let items: Vec<_> = st
        .store
        .conversation_attachments(id, 200)
        .await?
        .iter()
        .map(|a| attachment_json(a, false))
        .collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

pub async fn download(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Response> {
    let a = st
        .store
        .attachment(id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    visible(&st, &me, a.conversation_id)
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    serve(&st, &a).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkParams {
    exp: i64,
    sig: String,
}

/// `GET /media/s/{id}?exp=…&sig=…`: a file by its signed link (a provider fetching what we
/// send); no session.
pub async fn signed_download(
    State(st): State<AppState>,
    Path(id): Path<uuid::Uuid>,
    ApiQuery(p): ApiQuery<LinkParams>,
) -> ApiResult<Response> {
    let a = crate::app::media::by_link(&st, id, p.exp, &p.sig).await?;
    serve(&st, &a).await
}

pub async fn visitor_download(
    State(st): State<AppState>,
    Visitor(v): Visitor,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Response> {
    let a = st
        .store
        .attachment(id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let mine = st
        .store
        .conversation_of(v.contact_id, v.inbox_id)
        .await?
        .is_some_and(|c| c.id == a.conversation_id);
    if !mine {
        return Err(ApiError::not_found("file"));
    }
    serve(&st, &a).await
}

/// Pictures, video and sound in a type of our allowlist show inline; everything else downloads as
/// bytes. Every answer forbids sniffing and sandboxes the document, so even a file a browser
/// opens by itself cannot run script on our origin.
async fn serve(st: &AppState, a: &Attachment) -> ApiResult<Response> {
    let file = st
        .media
        .get(&a.id.to_string())
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    let served = media::served_type(&a.content_type);
    let disposition = content_disposition(media::shows_inline(served), &a.filename);
    let mut resp = crate::responses::stored_file(
        file,
        served,
        "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `inline`/`attachment` with the file's name: an ASCII stand-in for old clients and the real
/// name (Vietnamese included) percent-encoded as RFC 6266 `filename*`.
fn content_disposition(inline: bool, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}
