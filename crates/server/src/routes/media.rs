//! Files on messages: agents upload (`POST /conversations/{id}/attachments`, raw body), agents and
//! the conversation's own visitor download. Files live under `<data_dir>/media/<id>`.

use crate::app::conversation::{Plan, outbound_message, transact_message};
use crate::app::media::{attachment_json, media_path, with_attachments};
use crate::app::visible;
use crate::auth::{CurrentAgent, Visitor};
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::routes::{body_within, created, new_uuid};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::conversation as conv;
use switchboard_core::event;
use switchboard_core::media;
use switchboard_core::*;
use switchboard_store::Attachment;

fn clean_filename(raw: &str) -> String {
    let name: String = raw
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(120)
        .collect();
    if name.trim().is_empty() {
        "file".into()
    } else {
        name.trim().to_owned()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    filename: String,
    caption: Option<String>,
}

pub async fn upload(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiQuery(p): ApiQuery<UploadParams>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_within(
        body,
        "file_too_large",
        "files",
        st.config.limits.max_upload_bytes,
    )?;
    let c = visible(&st, &me, id).await?;
    if body.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    // Sending files through providers (Messenger, WhatsApp, ...) goes through their outbox and
    // messaging-window policy, which do not carry attachments yet: refuse rather than pretend.
    let channel = st.store.inbox(c.inbox_id).await?.map(|i| i.channel);
    if channel != Some(ChannelKind::Livechat) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "attachments_not_supported",
            "sending files on this channel is not supported yet; send a link instead",
        ));
    }
    // Decide before writing anything: only the holder (or a participant) may send to the customer.
    conv::reply(&c, me.actor(), st.clock.now())?;
    let filename = clean_filename(&p.filename);
    // What the file is comes from its bytes; the Content-Type the uploader sent is ignored.
    let content_type = media::sniff(&body).to_owned();
    let caption = p
        .caption
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| validate::MessageText::parse(c).map(validate::MessageText::into_inner))
        .transpose()?;
    let now = st.clock.now();
    let att = Attachment {
        id: new_uuid(),
        conversation_id: id,
        message_id: MessageId(new_uuid()),
        filename: filename.clone(),
        content_type,
        size_bytes: i64::try_from(body.len()).unwrap_or(i64::MAX),
        created_at: now,
    };
    let path = media_path(&st, att.id);
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut f, &body)?;
        f.sync_all()
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "could not store an attachment");
        ApiError::internal()
    })?;
    st.store.create_attachment(&att).await?;
    let text = caption.unwrap_or(filename);
    let message_id = att.message_id;
    let message = transact_message(&st, &me, id, |c| {
        let mut m = outbound_message(c, &me, MessageKind::Media, text.clone(), now);
        m.id = message_id;
        Ok(Plan {
            transition: Some(conv::reply(c, me.actor(), now)?),
            message: Some(m),
        })
    })
    .await?;
    let json = with_attachments(
        &st,
        std::slice::from_ref(&message),
        false,
        vec![event::message_json(&message)],
    )
    .await?;
    Ok(created(json.into_iter().next().unwrap_or_default()))
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
    let bytes = tokio::fs::read(media_path(st, a.id))
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    let served = media::served_type(&a.content_type);
    let disposition = content_disposition(media::shows_inline(served), &a.filename);
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(served));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
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
