//! Files on messages: sending one (stored, then sent through the one `send` command), where they
//! live and how the API shows them.

use crate::app::send::{PolicyRequest, SendRequest};
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::responses::UploadedFile;
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::conversation as conv;
use switchboard_core::media;
use switchboard_core::media_limits::{self, MediaUnfit};
use switchboard_core::outbound::{Author, Content, Media, MediaKind, MediaSource};
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

/// A file the channel cannot send: 422 naming the limit (`field: file`, the `reason` and the
/// limit itself, so the composer can say it in the agent's language).
fn unfit_file(channel: ChannelKind, u: &MediaUnfit) -> ApiError {
    let mut extra = serde_json::json!({"field": "file", "reason": u.code(), "channel": channel});
    match u {
        MediaUnfit::TooLarge { kind, max_bytes } => {
            extra["kind"] = serde_json::json!(kind);
            extra["max_bytes"] = serde_json::json!(max_bytes);
        }
        MediaUnfit::TypeNotSupported { kind, allowed } => {
            extra["kind"] = serde_json::json!(kind);
            extra["allowed"] = serde_json::json!(allowed);
        }
        MediaUnfit::KindNotSupported { kind, .. } => extra["kind"] = serde_json::json!(kind),
        MediaUnfit::CaptionTooLong { max } => {
            extra["field"] = serde_json::json!("caption");
            extra["max"] = serde_json::json!(max);
        }
    }
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        u.code(),
        format!("file: {}", u.describe(channel)),
    )
    .with_extra(extra)
}

/// What a file checked for a conversation goes out as: its kind, the caption sent with it, and
/// the caption sent as a text right after it (where the channel's file message has none).
pub struct FilePlan {
    kind: MediaKind,
    caption: Option<String>,
    caption_after: Option<String>,
    /// What the sender asks of the window policy (a confirmed `HUMAN_AGENT` reply).
    policy: PolicyRequest,
}

/// An agent sends a file (with an optional caption) to the customer. Everything is decided
/// before anything is written ([`may_send_file`]); then the file is kept in the media store (the
/// request body is its one copy in memory) and sent as media through `send`. Returns the file's
/// message with its attachment.
pub async fn upload(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    (filename, caption, policy): (&str, Option<&str>, PolicyRequest),
    file: UploadedFile,
) -> ApiResult<serde_json::Value> {
    let c = visible(st, me, id).await?;
    if file.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    let caption = parse_caption(caption)?;
    // What the file is comes from its bytes; the Content-Type the uploader sent is ignored.
    let content_type = file.content_type().to_owned();
    let att_id = uuid::Uuid::now_v7();
    let key = att_id.to_string();
    // Decided before anything is kept when the size is announced (browsers and HTTP clients
    // announce it); otherwise kept (streamed, within the upload limit), decided, and removed if
    // refused.
    let (plan, size) = match file.known_size() {
        Some(size) => {
            let plan = may_send_file(st, me, &c, (&content_type, size), caption, policy).await?;
            (plan, file.store(&st.media, &key).await?)
        }
        None => {
            let size = file.store(&st.media, &key).await?;
            match may_send_file(st, me, &c, (&content_type, size), caption, policy).await {
                Ok(plan) => (plan, size),
                Err(e) => {
                    let _ = st.media.delete(&key).await;
                    return Err(e);
                }
            }
        }
    };
    let att = Attachment {
        id: att_id,
        conversation_id: id,
        message_id: MessageId(uuid::Uuid::now_v7()),
        filename: clean_filename(filename),
        content_type,
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        created_at: st.clock.now(),
        inbound: None,
    };
    send_attachment(st, me, att, plan).await
}

/// Whether `me` may send this file (its type derived from its bytes, its size, its caption) on
/// this conversation now, decided before anything is written: the channel's limits for it
/// (`core::media_limits`, 422 naming the limit), that only the holder (or a participant) sends
/// to the customer, and the messaging window (refused as a text is).
pub async fn may_send_file(
    st: &AppState,
    me: &CurrentAgent,
    c: &switchboard_core::Conversation,
    (content_type, size): (&str, u64),
    caption: Option<String>,
    policy: PolicyRequest,
) -> ApiResult<FilePlan> {
    let channel = crate::app::inbox::channel_of(st, c).await?;
    conv::reply(c, me.actor(), st.clock.now())?;
    let ours = u64::try_from(st.config.limits.max_upload_bytes).unwrap_or(u64::MAX);
    let kind = media_limits::check(channel, ours, content_type, size, caption.as_deref())
        .map_err(|u| unfit_file(channel, &u))?;
    // Where the file carries no caption, the caption goes as a text right after: it must fit.
    let plan = match media_limits::limits(channel, ours).caption {
        Some(_) => FilePlan {
            kind,
            caption,
            caption_after: None,
            policy,
        },
        None => FilePlan {
            kind,
            caption: None,
            caption_after: caption,
            policy,
        },
    };
    let file = plan.content(MediaSource::Uploaded(uuid::Uuid::nil()), None);
    st.outgoing.preflight(&plan.request(c.id, me, file)).await?;
    if let Some(t) = &plan.caption_after {
        let text = plan.request(c.id, me, Content::Text(t.clone()));
        st.outgoing.preflight(&text).await?;
    }
    Ok(plan)
}

impl FilePlan {
    /// The agent's send of `content` on conversation `id`, with the plan's policy request.
    fn request(&self, id: ConversationId, me: &CurrentAgent, content: Content) -> SendRequest {
        SendRequest {
            policy: self.policy.clone(),
            ..SendRequest::new(id, agent(me), content)
        }
    }

    fn content(&self, source: MediaSource, filename: Option<String>) -> Content {
        Content::Media(Media {
            kind: self.kind,
            source,
            caption: self.caption.clone(),
            filename,
        })
    }
}

fn agent(me: &CurrentAgent) -> Author {
    Author::Agent {
        actor: me.actor(),
        automated: false,
    }
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
/// one `send` command, then its caption where it goes after the file. Returns the file's message
/// with its attachment.
pub async fn send_attachment(
    st: &AppState,
    me: &CurrentAgent,
    att: Attachment,
    plan: FilePlan,
) -> ApiResult<serde_json::Value> {
    st.store.create_attachment(&att).await?;
    let content = plan.content(MediaSource::Uploaded(att.id), Some(att.filename.clone()));
    let req = SendRequest {
        id: att.message_id,
        ..plan.request(att.conversation_id, me, content)
    };
    let sent = match st.outgoing.send(req).await {
        Ok(s) => s,
        Err(e) => return Err(crate::app::conversation::name_holder(st, e).await),
    };
    if let Some(t) = plan.caption_after.clone() {
        let text = plan.request(att.conversation_id, me, Content::Text(t));
        if let Err(e) = st.outgoing.send(text).await {
            tracing::warn!(code = e.code, "a file's caption could not follow it");
        }
    }
    let json = with_attachments(
        st,
        std::slice::from_ref(&sent.message),
        false,
        vec![sent.json],
    )
    .await?;
    Ok(json.into_iter().next().unwrap_or_default())
}

/// What each channel sends, for the composer: per kind the largest file (within our own upload
/// limit) or `null` where the channel does not send that kind, and the longest caption (`null`:
/// the caption goes as a text after the file).
pub fn limits_json(ours: usize) -> serde_json::Value {
    use media_limits::KindRule;
    let ours = u64::try_from(ours).unwrap_or(u64::MAX);
    let max = |r: KindRule| match r {
        KindRule::Sends { max_bytes, .. } => serde_json::json!(max_bytes.min(ours)),
        KindRule::Refused { .. } => serde_json::Value::Null,
    };
    let mut out = serde_json::Map::new();
    for &channel in ChannelKind::ALL {
        let l = media_limits::limits(channel, ours);
        out.insert(
            channel.as_str().into(),
            serde_json::json!({"image": max(l.image), "video": max(l.video), "audio": max(l.audio),
                "document": max(l.document), "caption": l.caption}),
        );
    }
    serde_json::Value::Object(out)
}

/// The file a signed link names, if the link is genuine and unexpired: 403 `link_invalid` for a
/// bad signature, 404 `link_expired` once it has expired, 404 when the file is gone.
pub async fn by_link(st: &AppState, id: uuid::Uuid, exp: i64, sig: &str) -> ApiResult<Attachment> {
    use crate::media_links::LinkRefusal;
    match st.providers.links.verify(id, exp, sig, st.clock.now()) {
        Ok(()) => {}
        Err(LinkRefusal::BadSignature) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "link_invalid",
                "this link is not signed by this server",
            ));
        }
        Err(LinkRefusal::Expired) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "link_expired",
                "this link has expired",
            ));
        }
    }
    st.store
        .attachment(id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))
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
