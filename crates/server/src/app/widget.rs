//! The live-chat visitor's commands: opening a session (who the visitor is, their contact) and
//! writing a message, which goes through the same ingest path as every channel.

use crate::error::{ApiError, ApiResult};
use crate::ingest::IngestFailure;
use crate::state::AppState;
use axum::http::StatusCode;
use std::net::IpAddr;
use switchboard_channels::livechat::{
    self, IdentityRefusal, NewSession, NewWidgetMessage, VisitorClaims,
};
use switchboard_core::validate::{Email, PersonName, Phone};
use switchboard_core::*;
use switchboard_store::{Inbound, InboundSender};

/// A live-chat inbox by id, or 404 (also for an inbox of another channel).
pub async fn livechat_inbox(st: &AppState, id: InboxId) -> ApiResult<Inbox> {
    st.store
        .inbox(id)
        .await?
        .filter(|i| i.channel == ChannelKind::Livechat)
        .ok_or_else(|| ApiError::not_found("inbox"))
}

/// A visitor's session: the signed token and the inbox it reaches.
pub struct Session {
    pub token: String,
    pub inbox: Inbox,
}

/// Opens a session: the client is rate-limited, the visitor's identity checked against the inbox's
/// settings, their contact found or created, and a token signed for that contact.
pub async fn open_session(st: &AppState, client: IpAddr, b: NewSession) -> ApiResult<Session> {
    st.limits
        .widget_ip
        .check(&client.to_string())
        .map_err(ApiError::rate_limited)?;
    let inbox = livechat_inbox(st, b.inbox_id).await?;
    let external_id = b
        .external_id(&inbox.settings, &uuid::Uuid::now_v7().to_string())
        .map_err(refused)?;
    let details = b.contact()?;
    let now = st.clock.now();
    let fresh = Contact {
        id: ContactId(uuid::Uuid::now_v7()),
        workspace_id: st.workspace_id,
        name: details.name.map(PersonName::into_inner),
        phone: details.phone.map(Phone::into_inner),
        email: details.email.map(Email::into_inner),
        notes: None,
        created_at: now,
        updated_at: now,
    };
    let contact = st
        .store
        .upsert_contact_identity(&fresh, inbox.id, &external_id)
        .await?;
    let token = livechat::sign_visitor_token(
        &st.visitor_key,
        &VisitorClaims {
            inbox_id: inbox.id,
            contact_id: contact.id,
            issued_at: now.millis(),
        },
    );
    Ok(Session { token, inbox })
}

fn refused(r: IdentityRefusal) -> ApiError {
    match r {
        IdentityRefusal::InvalidIdentity => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_identity",
            "the identifier hash does not match",
        ),
        IdentityRefusal::IdentityRequired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "identity_required",
            "this chat requires a signed-in user",
        ),
    }
}

/// A visitor's message as stored (or found again, for a retried `client_message_id`).
pub struct Written {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub text: String,
    pub created_at: Timestamp,
    pub duplicate: bool,
}

/// The visitor writes: rate-limited per client and per visitor, checked, then handed to the ingest
/// batcher like any channel's message; answered once it is durably stored.
pub async fn write(
    st: &AppState,
    client: IpAddr,
    v: &VisitorClaims,
    b: NewWidgetMessage,
) -> ApiResult<Written> {
    rate_limit(st, client, v)?;
    let checked = b.check()?;
    let text = checked.text.into_inner();
    let client_id = checked.client_message_id;
    ingest(st, v, MessageKind::Text, text, client_id.as_deref()).await
}

fn rate_limit(st: &AppState, client: IpAddr, v: &VisitorClaims) -> ApiResult<()> {
    st.limits
        .widget_ip
        .check(&client.to_string())
        .map_err(ApiError::rate_limited)?;
    st.limits
        .widget_visitor
        .check(&v.contact_id.to_string())
        .map_err(ApiError::rate_limited)?;
    Ok(())
}

/// What a visitor may send as a file: pictures, video, sound and PDF, by their bytes. Anything
/// else (an archive, an office document, a script in disguise) is refused rather than handed to
/// an agent to open.
fn visitor_may_send(content_type: &str) -> bool {
    content_type != switchboard_core::media::OPAQUE
}

/// The visitor sends a file: checked by its bytes, stored, then written as the visitor's media
/// message through the same ingest path. A retry with the same `client_message_id` stores the
/// message once, and gives it its file if an earlier try stopped before that.
pub async fn upload(
    st: &AppState,
    client: IpAddr,
    v: &VisitorClaims,
    filename: &str,
    client_message_id: Option<&str>,
    file: crate::responses::UploadedFile,
) -> ApiResult<(Written, switchboard_store::Attachment)> {
    rate_limit(st, client, v)?;
    if file.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    let content_type = file.content_type();
    if !visitor_may_send(content_type) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "file_type_not_supported",
            "only pictures, video, sound and PDF files can be sent here",
        )
        .with_extra(serde_json::json!({"field": "file", "reason": "type"})));
    }
    let client_id = livechat::client_message_id(client_message_id)?;
    let filename = crate::app::media::clean_filename(filename);
    let file_id = uuid::Uuid::now_v7();
    // The bytes first: a message is never without the file it names.
    let size = file.store(&st.media, &file_id.to_string()).await?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let written = match ingest(
        st,
        v,
        MessageKind::Media,
        filename.clone(),
        client_id.as_deref(),
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            let _ = st.media.delete(&file_id.to_string()).await;
            return Err(e);
        }
    };
    if written.duplicate
        && let Some(a) = st
            .store
            .attachments_for_messages(&[written.message_id])
            .await?
            .into_iter()
            .next()
    {
        let _ = st.media.delete(&file_id.to_string()).await;
        return Ok((written, a));
    }
    let att = switchboard_store::Attachment {
        id: file_id,
        conversation_id: written.conversation_id,
        message_id: written.message_id,
        filename,
        content_type: content_type.to_owned(),
        size_bytes: size,
        created_at: written.created_at,
        inbound: None,
    };
    st.store.create_attachment(&att).await?;
    // The message went out on the sockets before its file was recorded: `message.updated` makes
    // every open thread fetch it again, now with the file.
    st.store
        .merge_message_meta(
            written.message_id,
            serde_json::json!({"uploaded_by": "visitor"}),
            st.clock.now(),
        )
        .await?;
    Ok((written, att))
}

/// Hands the visitor's message to the ingest batcher; answered once it is durably stored.
async fn ingest(
    st: &AppState,
    v: &VisitorClaims,
    kind: MessageKind,
    text: String,
    client_id: Option<&str>,
) -> ApiResult<Written> {
    let provider_id = match client_id {
        Some(id) => format!("client:{}:{id}", v.contact_id),
        None => format!("server:{}", uuid::Uuid::now_v7()),
    };
    let now = st.clock.now();
    let item = Inbound {
        workspace_id: st.workspace_id,
        inbox_id: v.inbox_id,
        sender: InboundSender::Contact(v.contact_id),
        provider_message_id: provider_id,
        kind,
        text: text.clone(),
        sent_at: now,
        message_id: MessageId(uuid::Uuid::now_v7()),
        new_conversation_id: ConversationId(uuid::Uuid::now_v7()),
        new_contact_id: v.contact_id,
    };
    let done = st.ingest.submit(item).await.map_err(|e| match e {
        IngestFailure::Rejected(_) => ApiError::unauthorized("this visitor no longer exists"),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "could not store the message; retry",
        ),
    })?;
    Ok(Written {
        message_id: done.message_id,
        conversation_id: done.conversation_id,
        text,
        created_at: now,
        duplicate: done.duplicate,
    })
}
