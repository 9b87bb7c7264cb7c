//! Contacts as agents see and edit them (`core::contact` decides what an edit may change).

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::contact::{self, EditError};
use switchboard_core::{Contact, ContactId, Identity};

/// A contact is visible to an agent who can see one of its identities' inboxes; otherwise 404.
pub async fn visible_contact(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
) -> ApiResult<(Contact, Vec<Identity>)> {
    let contact = st
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let identities = st.store.contact_identities(id).await?;
    if !identities
        .iter()
        .any(|i| st.access.can_see(&me.agent, i.inbox_id))
    {
        return Err(ApiError::not_found("contact"));
    }
    Ok((contact, identities))
}

/// Edits phone, email and notes (absent keys stay as they are; `null` or `""` clears a field).
pub async fn edit(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
    patch: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<(Contact, Vec<Identity>)> {
    let (mut c, ids) = visible_contact(st, me, id).await?;
    contact::edit(&mut c, patch, st.clock.now()).map_err(edit_error)?;
    st.store.update_contact(&c).await?;
    Ok((c, ids))
}

fn edit_error(e: EditError) -> ApiError {
    match e {
        EditError::ReadOnly(field) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "read_only", e.to_string())
                .with_extra(serde_json::json!({ "field": field }))
        }
        EditError::UnknownField(_) => ApiError::invalid(e.to_string()),
        EditError::Invalid(v) => v.into(),
    }
}
