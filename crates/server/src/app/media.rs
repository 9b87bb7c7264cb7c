//! Files on messages: where they live and how the API shows them.

use crate::error::ApiResult;
use crate::state::AppState;
use switchboard_core::media;
use switchboard_core::*;
use switchboard_store::Attachment;

pub fn media_path(st: &AppState, id: uuid::Uuid) -> std::path::PathBuf {
    st.config.data_dir.join("media").join(id.to_string())
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
    serde_json::json!({ "id": a.id, "filename": a.filename, "content_type": content_type, "size_bytes": a.size_bytes, "url": url })
}

/// Adds each message's attachments to its JSON.
pub async fn with_attachments(
    st: &AppState,
    messages: &[Message],
    for_visitor: bool,
    mut json: Vec<serde_json::Value>,
) -> ApiResult<Vec<serde_json::Value>> {
    let ids: Vec<MessageId> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Media)
        .map(|m| m.id)
        .collect();
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
