//! Quick replies (canned answers typed as `/code`) and the workspace's tags: supervisors and
//! admins change them; everyone reads them.

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use switchboard_core::validate::{MessageText, QuickReplyCode, TagName, ValidationError};
use switchboard_core::{QuickReply, QuickReplyId, Tag, TagId};

fn require_supervisor(me: &CurrentAgent) -> ApiResult<()> {
    super::require_supervisor(me, "quick replies")
}

/// The most library files one quick reply carries.
const MAX_FILES: usize = 10;

/// Library files for a quick reply: each of this workspace's library, each once, at most
/// [`MAX_FILES`], in the order given.
async fn check_media(st: &AppState, ids: &[uuid::Uuid]) -> ApiResult<Vec<uuid::Uuid>> {
    let mut out: Vec<uuid::Uuid> = Vec::new();
    for id in ids {
        if out.contains(id) {
            continue;
        }
        let known = st
            .store
            .saved_media(*id)
            .await?
            .is_some_and(|m| m.workspace_id == st.workspace_id);
        if !known {
            return Err(ApiError::from(ValidationError::new(
                "media",
                "names a file that is not in the media library",
            )));
        }
        out.push(*id);
    }
    if out.len() > MAX_FILES {
        return Err(ApiError::from(ValidationError::new(
            "media",
            "at most 10 files",
        )));
    }
    Ok(out)
}

/// Creates a quick reply; a missing code or text is refused like an empty one.
pub async fn create(
    st: &AppState,
    me: &CurrentAgent,
    code: Option<&str>,
    text: Option<&str>,
    media: Option<&[uuid::Uuid]>,
) -> ApiResult<QuickReply> {
    require_supervisor(me)?;
    let qr = QuickReply {
        id: QuickReplyId(crate::random::new_uuid()),
        workspace_id: st.workspace_id,
        code: QuickReplyCode::parse(code.unwrap_or(""))?.into_inner(),
        text: MessageText::parse(text.unwrap_or(""))?.into_inner(),
        media: check_media(st, media.unwrap_or(&[])).await?,
    };
    st.store.save_quick_reply(&qr, st.clock.now(), true).await?;
    Ok(qr)
}

/// Changes a quick reply's code, text and/or files.
pub async fn update(
    st: &AppState,
    me: &CurrentAgent,
    id: QuickReplyId,
    code: Option<&str>,
    text: Option<&str>,
    media: Option<&[uuid::Uuid]>,
) -> ApiResult<QuickReply> {
    require_supervisor(me)?;
    let mut qr = st
        .store
        .quick_reply(id)
        .await?
        .filter(|q| q.workspace_id == st.workspace_id)
        .ok_or_else(|| ApiError::not_found("quick reply"))?;
    if let Some(c) = code {
        qr.code = QuickReplyCode::parse(c)?.into_inner();
    }
    if let Some(t) = text {
        qr.text = MessageText::parse(t)?.into_inner();
    }
    if let Some(m) = media {
        qr.media = check_media(st, m).await?;
    }
    st.store
        .save_quick_reply(&qr, st.clock.now(), false)
        .await?;
    Ok(qr)
}

pub async fn delete(st: &AppState, me: &CurrentAgent, id: QuickReplyId) -> ApiResult<()> {
    require_supervisor(me)?;
    if !st.store.delete_quick_reply(id).await? {
        return Err(ApiError::not_found("quick reply"));
    }
    Ok(())
}

/// Creates a tag (conversations also create tags as they are tagged).
pub async fn create_tag(st: &AppState, me: &CurrentAgent, name: &str) -> ApiResult<Tag> {
    require_supervisor(me)?;
    let name = TagName::parse(name)?.into_inner();
    Ok(st
        .store
        .create_tag(st.workspace_id, &name, st.clock.now())
        .await?)
}

/// Deletes a tag everywhere.
pub async fn delete_tag(st: &AppState, me: &CurrentAgent, id: TagId) -> ApiResult<()> {
    require_supervisor(me)?;
    if !st.store.delete_tag(st.workspace_id, id).await? {
        return Err(ApiError::not_found("tag"));
    }
    Ok(())
}
