//! Files on messages: sending one (stored, then sent through the one `send` command), where they
//! live and how the API shows them.

use crate::app::send::SendRequest;
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::conversation as conv;
use switchboard_core::media;
use switchboard_core::outbound::{self, Author, Content, Media, MediaKind, MediaSource};
use switchboard_core::*;
use switchboard_store::Attachment;

/// A file's name as we keep it: its last path segment, no control characters or quotes, at most
/// 120 characters (`file` when nothing is left).
pub fn clean_filename(raw: &str) -> String {
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

/// What kind of media a stored file is, from the type derived from its bytes.
fn media_kind(content_type: &str) -> MediaKind {
    match content_type.split('/').next() {
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("audio") => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// An agent sends a file (with an optional caption) to the customer: checked before anything is
/// written (the channel carries uploads; the agent may reply), kept in the media store,
/// then sent as media through `send`. Returns the message with its attachment.
pub async fn upload(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    filename: &str,
    caption: Option<&str>,
    body: axum::body::Bytes,
) -> ApiResult<serde_json::Value> {
    let c = visible(st, me, id).await?;
    if body.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    may_send_file(st, me, &c).await?;
    let caption = parse_caption(caption)?;
    // What the file is comes from its bytes; the Content-Type the uploader sent is ignored.
    let att = Attachment {
        id: uuid::Uuid::now_v7(),
        conversation_id: id,
        message_id: MessageId(uuid::Uuid::now_v7()),
        filename: clean_filename(filename),
        content_type: media::sniff(&body).to_owned(),
        size_bytes: i64::try_from(body.len()).unwrap_or(i64::MAX),
        created_at: st.clock.now(),
        inbound: None,
    };
    store_bytes(st, att.id, body).await?;
    send_attachment(st, me, att, caption).await
}

/// Whether `me` may send a file on this conversation now, decided before anything is written:
/// the channel carries files, and only the holder (or a participant) may send to the customer.
pub async fn may_send_file(
    st: &AppState,
    me: &CurrentAgent,
    c: &switchboard_core::Conversation,
) -> ApiResult<()> {
    let channel = crate::app::inbox::channel_of(st, c).await?;
    if !outbound::capabilities(channel).uploaded_files {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "attachments_not_supported",
            "sending files on this channel is not supported yet; send a link instead",
        ));
    }
    conv::reply(c, me.actor(), st.clock.now())?;
    Ok(())
}

/// A caption as sent: trimmed, empty is none, checked like any message text.
pub fn parse_caption(caption: Option<&str>) -> ApiResult<Option<String>> {
    Ok(caption
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| validate::MessageText::parse(c).map(validate::MessageText::into_inner))
        .transpose()?)
}

/// Records a stored file as the attachment of a new message and sends that message through the
/// one `send` command. Returns the message with its attachment.
pub async fn send_attachment(
    st: &AppState,
    me: &CurrentAgent,
    att: Attachment,
    caption: Option<String>,
) -> ApiResult<serde_json::Value> {
    st.store.create_attachment(&att).await?;
    let content = Content::Media(Media {
        kind: media_kind(&att.content_type),
        source: MediaSource::Uploaded(att.id),
        caption,
        filename: Some(att.filename.clone()),
    });
    let author = Author::Agent {
        actor: me.actor(),
        automated: false,
    };
    let req = SendRequest {
        id: att.message_id,
        ..SendRequest::new(att.conversation_id, author, content)
    };
    let sent = match st.outgoing.send(req).await {
        Ok(s) => s,
        Err(e) => return Err(crate::app::conversation::name_holder(st, e).await),
    };
    let json = with_attachments(
        st,
        std::slice::from_ref(&sent.message),
        false,
        vec![sent.json],
    )
    .await?;
    Ok(json.into_iter().next().unwrap_or_default())
}

/// Keeps a file's bytes in the media store under its attachment id.
pub async fn store_bytes(st: &AppState, id: uuid::Uuid, body: axum::body::Bytes) -> ApiResult<()> {
    st.media.put(&id.to_string(), body).await.map_err(|e| {
        tracing::error!(error = %e, "could not store an attachment");
        ApiError::internal()
    })
}

/// JSON for an attachment, with the URL the given audience downloads it from.
pub fn attachment_json(a: &Attachment, for_visitor: bool) -> serde_json::Value {
    let url = if for_visitor {
        format!("/widget/v1/media/{}", a.id)
    } else {
        format!("/api/v1/media/{}", a.id)
    };
    // The type we serve it with, never the uploader's string (files stored before types were
    // derived may carry one).
    let content_type = media::served_type(&a.content_type);
    let mut v = serde_json::json!({ "id": a.id, "filename": a.filename, "content_type": content_type, "size_bytes": a.size_bytes, "url": url });
    crate::app::inbound_media::add_inbound_fields(&mut v, a, for_visitor);
    v
}

/// Adds each message's attachments to its JSON.
pub async fn with_attachments(
    st: &AppState,
    messages: &[Message],
    for_visitor: bool,
    mut json: Vec<serde_json::Value>,
) -> ApiResult<Vec<serde_json::Value>> {
    // Any message may carry files (a customer's text with a photo is a text message).
    let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
    let all = st.store.attachments_for_messages(&ids).await?;
    for (m, j) in messages.iter().zip(json.iter_mut()) {
        let mine: Vec<_> = all
            .iter()
            .filter(|a| a.message_id == m.id)
            .map(|a| attachment_json(a, for_visitor))
            .collect();
        // Provider attachments (from `meta`) may already be there; ours are added when present.
        if let Some(o) = j.as_object_mut()
            && (!mine.is_empty() || !o.contains_key("attachments"))
        {
            o.insert("attachments".into(), serde_json::json!(mine));
        }
    }
    Ok(json)
}
