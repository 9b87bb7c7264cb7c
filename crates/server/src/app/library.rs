//! The saved-media library: a workspace's files uploaded once (the price list, the size chart, the
//! shop's bank QR), named and tagged, found by search and picked into the composer or a quick
//! reply. Supervisors and admins keep it; every agent reads it and sends from it. Sending copies
//! the file into the conversation (inside the media store) and goes through the one `send`.

use crate::app::media::{clean_filename, may_send_file, parse_caption, send_attachment};
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use switchboard_core::media;
use switchboard_core::validate::{TagName, ValidationError};
use switchboard_core::*;
use switchboard_store::{Attachment, SavedMedia};

/// The most files a library lists (and searches).
const MAX_FILES: u32 = 1000;
const MAX_TAGS: usize = 20;

fn require_supervisor(me: &CurrentAgent) -> ApiResult<()> {
    super::require_supervisor(me, "the media library")
}

/// Where a library file's bytes are in the media store.
fn key(id: uuid::Uuid) -> String {
    format!("library/{id}")
}

/// A file's name in the library: 1 to 120 characters, no control characters.
fn parse_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::new("name", "must not be empty"));
    }
    if name.chars().count() > 120 || name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "at most 120 characters, without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Tags as tag names (lower case, no commas), each once, at most [`MAX_TAGS`].
fn parse_tags(raw: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut tags: Vec<String> = Vec::new();
    for t in raw.iter().filter(|t| !t.trim().is_empty()) {
        let t = TagName::parse(t)
            .map_err(|e| ValidationError::new("tags", e.message))?
            .into_inner();
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ValidationError::new("tags", "at most 20 tags"));
    }
    Ok(tags)
}

/// Whether a file matches a search: every word of it, without diacritics, in its name, tags or
/// file name ("bang gia" finds "Bảng giá").
fn matches(m: &SavedMedia, words: &[String]) -> bool {
    let hay = text::fold(&format!("{} {} {}", m.name, m.tags.join(" "), m.filename));
    words.iter().all(|w| hay.contains(w.as_str()))
}

pub fn json(m: &SavedMedia) -> serde_json::Value {
    serde_json::json!({
        "id": m.id, "name": m.name, "tags": m.tags, "filename": m.filename,
        "content_type": media::served_type(&m.content_type), "size_bytes": m.size_bytes,
        "url": format!("/api/v1/library/{}/file", m.id), "created_at": m.created_at,
    })
}

/// The workspace's library, newest first, narrowed by `q`.
pub async fn list(st: &AppState, q: Option<&str>) -> ApiResult<Vec<SavedMedia>> {
    let words = text::words(q.unwrap_or(""));
    let all = st
        .store
        .list_saved_media(st.workspace_id, MAX_FILES)
        .await?;
    Ok(all.into_iter().filter(|m| matches(m, &words)).collect())
}

/// One file of this workspace's library, or 404.
async fn get(st: &AppState, id: uuid::Uuid) -> ApiResult<SavedMedia> {
    st.store
        .saved_media(id)
        .await?
        .filter(|m| m.workspace_id == st.workspace_id)
        .ok_or_else(|| ApiError::not_found("file"))
}

/// Adds a file: its type from its bytes, its name (default: the file's name) and tags.
pub async fn add(
    st: &AppState,
    me: &CurrentAgent,
    filename: &str,
    name: Option<&str>,
    tags: &[String],
    file: crate::responses::UploadedFile,
) -> ApiResult<SavedMedia> {
    require_supervisor(me)?;
    if file.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    let filename = clean_filename(filename);
    let mut m = SavedMedia {
        id: uuid::Uuid::now_v7(),
        workspace_id: st.workspace_id,
        name: parse_name(name.unwrap_or(&filename))?,
        tags: parse_tags(tags)?,
        content_type: file.content_type().to_owned(),
        size_bytes: 0,
        filename,
        created_by: Some(me.agent.id),
        created_at: st.clock.now(),
    };
    let size = file.store(&st.media, &key(m.id)).await?;
    m.size_bytes = i64::try_from(size).unwrap_or(i64::MAX);
    st.store.create_saved_media(&m).await?;
    Ok(m)
}

/// Renames and retags a file.
pub async fn update(
    st: &AppState,
    me: &CurrentAgent,
    id: uuid::Uuid,
    name: Option<&str>,
    tags: Option<&[String]>,
) -> ApiResult<SavedMedia> {
    require_supervisor(me)?;
    let mut m = get(st, id).await?;
    if let Some(n) = name {
        m.name = parse_name(n)?;
    }
    if let Some(t) = tags {
        m.tags = parse_tags(t)?;
    }
    st.store.update_saved_media(m.id, &m.name, &m.tags).await?;
    Ok(m)
}

/// Removes a file from the library (what was already sent with it stays in its conversations;
/// quick replies that carried it send their text without it).
pub async fn remove(st: &AppState, me: &CurrentAgent, id: uuid::Uuid) -> ApiResult<()> {
    require_supervisor(me)?;
    let m = get(st, id).await?;
    st.store.delete_saved_media(m.id).await?;
    if let Err(e) = st.media.delete(&key(m.id)).await {
        tracing::warn!(error = %e, "a removed library file's bytes stay in the media store");
    }
    Ok(())
}

/// A library file's bytes, for its preview.
pub async fn file(st: &AppState, id: uuid::Uuid) -> ApiResult<axum::response::Response> {
    let m = get(st, id).await?;
    let stored = st
        .media
        .get(&key(m.id))
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    Ok(crate::responses::stored_file(
        stored,
        media::served_type(&m.content_type),
        "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
    ))
}

/// Sends a library file to the customer of `conv` (with an optional caption): checked as an
/// upload is, copied into the conversation, sent through `send`.
pub async fn send(
    st: &AppState,
    me: &CurrentAgent,
    conv: ConversationId,
    (id, caption, policy): (uuid::Uuid, Option<&str>, crate::app::send::PolicyRequest),
) -> ApiResult<serde_json::Value> {
    let c = visible(st, me, conv).await?;
    let m = get(st, id).await?;
    let caption = parse_caption(caption)?;
    let size = u64::try_from(m.size_bytes).unwrap_or(u64::MAX);
    let file = (m.content_type.as_str(), size);
    let plan = may_send_file(st, me, &c, file, caption, policy).await?;
    let att = Attachment {
        id: uuid::Uuid::now_v7(),
        conversation_id: conv,
        message_id: MessageId(uuid::Uuid::now_v7()),
        filename: m.filename.clone(),
        content_type: m.content_type.clone(),
        size_bytes: m.size_bytes,
        created_at: st.clock.now(),
        inbound: None,
    };
    st.media
        .copy(&key(m.id), &att.id.to_string())
        .await
        .map_err(|e| match e {
            crate::media_store::MediaError::NotFound => ApiError::not_found("file"),
            other => {
                tracing::error!(error = %other, "could not copy a library file");
                ApiError::internal()
            }
        })?;
    send_attachment(st, me, att, plan).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_are_checked_and_tags_kept_once() {
        assert_eq!(parse_name("  Bảng giá  ").as_deref(), Ok("Bảng giá"));
        assert!(parse_name(" ").is_err());
        assert!(parse_name("a\0b").is_err());
        assert!(parse_name(&"x".repeat(121)).is_err());
        let t = |v: &[&str]| parse_tags(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            t(&["Tết", "tết", " ", "Giá"]),
            Ok(vec!["tết".into(), "giá".into()])
        );
        assert_eq!(t(&["a,b"]).map_err(|e| e.field), Err("tags"));
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(parse_tags(&many).is_err());
    }

    #[test]
    fn search_ignores_case_and_diacritics_and_needs_every_word() {
        let m = SavedMedia {
            id: uuid::Uuid::nil(),
            workspace_id: WorkspaceId(uuid::Uuid::nil()),
            name: "Bảng giá tháng 12".into(),
            tags: vec!["tết".into()],
            filename: "price-list.jpg".into(),
            content_type: "image/jpeg".into(),
            size_bytes: 1,
            created_by: None,
            created_at: Timestamp::from_millis(0),
        };
        let w = text::words;
        assert!(matches(&m, &w("bang GIA")));
        assert!(matches(&m, &w("Tết price")));
        assert!(matches(&m, &w("")));
        assert!(!matches(&m, &w("bang size")));
    }
}
