//! Files customers send, as agents see them: their download state in the attachment JSON, their
//! thumbnails, and an agent's retry of a failed download (`media_fetch` does the downloading).

use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use switchboard_store::Attachment;

/// The attachment JSON's inbound fields: `state` (`pending`, `ready`, `failed`, `remote`), `kind`
/// (`image`, `sticker`, `video`, `audio`, `file`), and per state the `thumbnail_url`, the
/// provider's `remote_url` (Instagram: shown from there while it lives; never downloaded) or the
/// `error`. A file without our bytes has no `url`. Our own files are `ready`.
pub fn add_inbound_fields(v: &mut serde_json::Value, a: &Attachment, for_visitor: bool) {
    let Some(o) = v.as_object_mut() else { return };
    let Some(i) = &a.inbound else {
        o.insert("state".into(), "ready".into());
        return;
    };
    o.insert("state".into(), i.state.clone().into());
    o.insert("kind".into(), i.kind.clone().into());
    if i.state != "ready" {
        o.insert("url".into(), serde_json::Value::Null);
    }
    if i.thumbnail_key.is_some() && !for_visitor {
        o.insert(
            "thumbnail_url".into(),
            format!("/api/v1/media/{}/thumbnail", a.id).into(),
        );
    }
    if i.state == "remote" && i.source_kind == "url" {
        o.insert("remote_url".into(), i.source.clone().into());
    }
    if i.state == "failed" {
        o.insert("error".into(), i.last_error.clone().into());
    }
}

async fn visible_file(st: &AppState, me: &CurrentAgent, id: uuid::Uuid) -> ApiResult<Attachment> {
    let a = st
        .store
        .attachment(id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    visible(st, me, a.conversation_id)
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    Ok(a)
}

/// An agent who sees the conversation tries a failed download again (now, from the first of its
/// attempts). Returns the file's JSON.
pub async fn retry(
    st: &AppState,
    me: &CurrentAgent,
    id: uuid::Uuid,
) -> ApiResult<serde_json::Value> {
    visible_file(st, me, id).await?;
    if !st.store.retry_file(id, st.clock.now()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            "only a file whose download failed can be retried",
        ));
    }
    st.media_fetch.wake();
    let a = visible_file(st, me, id).await?;
    Ok(crate::app::media::attachment_json(&a, false))
}

/// Our thumbnail of a customer's picture (a JPEG we made ourselves).
pub async fn thumbnail(st: &AppState, me: &CurrentAgent, id: uuid::Uuid) -> ApiResult<Response> {
    let a = visible_file(st, me, id).await?;
    let key = a
        .inbound
        .and_then(|i| i.thumbnail_key)
        .ok_or_else(|| ApiError::not_found("thumbnail"))?;
    let bytes = st
        .media
        .get(&key)
        .await
        .map_err(|_| ApiError::not_found("thumbnail"))?;
    Ok(crate::responses::stored_file(
        bytes,
        "image/jpeg",
        "sandbox; default-src 'none'",
    ))
}
