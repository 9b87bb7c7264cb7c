//! Contacts as agents see and edit them (`core::contact` decides what an edit may change).

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_core::contact::{self, EditError};
use switchboard_core::{Contact, ContactId, Identity};
use switchboard_store::{ContactMerge, StoreError};

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

/// Edits name, phone, email and notes (absent keys stay as they are; `null` or `""` clears a field).
pub async fn edit(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
    patch: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<(Contact, Vec<Identity>)> {
    let (mut c, ids) = visible_contact(st, me, id).await?;
    let before = c.clone();
    contact::edit(&mut c, patch, st.clock.now()).map_err(edit_error)?;
    st.store.update_contact(&c).await?;
    if patch.contains_key("name") {
        // A typed name (even the one it was) is the agent's: a synced one never replaces it
        // unless they ask; a cleared one may be filled by the channel again.
        let source = c.name.as_ref().map(|_| contact::NameSource::Agent);
        st.store
            .set_contact_name(c.id, c.name.as_deref(), source, c.updated_at)
            .await?;
    }
    // A changed field may start a flow in the customer's latest conversation.
    let changed: Vec<&str> = [
        ("phone", before.phone != c.phone),
        ("email", before.email != c.email),
        ("notes", before.notes != c.notes),
    ]
    .into_iter()
    .filter_map(|(f, ch)| ch.then_some(f))
    .collect();
    if !changed.is_empty()
        && let Some(conv) = latest_conversation(st, None, c.id, &ids).await?
    {
        for f in changed {
            st.automation
                .on_event(
                    conv.id,
                    crate::automation::ConversationEvent::FieldChanged(f),
                )
                .await;
        }
    }
    Ok((c, ids))
}

/// "Sync from channel": fetches the contact's name and picture from each channel it has an
/// identity on that the agent may see, now. The channel's name replaces even a typed one (the
/// agent asked). 404 when the agent sees none of the contact's conversations; 422
/// `profile_unavailable` when no channel of theirs could give a profile.
pub async fn sync_profile(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
) -> ApiResult<(Contact, Vec<Identity>)> {
    let (_, ids) = visible_contact(st, me, id).await?;
    let mut synced = false;
    let mut reason = "not_supported";
    for i in ids
        .iter()
        .filter(|i| st.access.can_see(&me.agent, i.inbox_id))
    {
        if i.external_id
            .starts_with(switchboard_store::COMMENTER_PREFIX)
        {
            continue;
        }
        let job = crate::profiles::ProfileJob {
            inbox_id: i.inbox_id,
            contact_id: id,
            external_id: i.external_id.clone(),
            name: None,
            forced: true,
        };
        match st.outbox.sync_profile_now(&job).await {
            Ok(_) => synced = true,
            Err(f) => {
                tracing::info!(reason = f.reason, "sync from channel failed");
                reason = f.reason;
            }
        }
    }
    if !synced {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "profile_unavailable",
            format!("the channel gave no profile ({reason})"),
        ));
    }
    let (c, ids) = visible_contact(st, me, id).await?;
    Ok((c, ids))
}

/// Our copy of the contact's picture, served as inert as any file of ours (a type from its bytes,
/// `nosniff`, a sandboxing CSP); 404 when there is none or the agent may not see the contact.
pub async fn avatar(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
) -> ApiResult<axum::response::Response> {
    visible_contact(st, me, id).await?;
    let p = st.store.contact_profile(id).await?.unwrap_or_default();
    let key = p
        .avatar_file
        .as_deref()
        .map(crate::profiles::avatar_key)
        .ok_or_else(|| ApiError::not_found("picture"))?;
    let file = st
        .media
        .get(&key)
        .await
        .map_err(|_| ApiError::not_found("picture"))?;
    let served = switchboard_core::media::served_type(p.avatar_type.as_deref().unwrap_or(""));
    // The URL names the picture (`?v=<file>`): a new picture has a new URL.
    Ok(crate::responses::stored_file(
        file,
        served,
        "sandbox; default-src 'none'",
    ))
}

/// The contact's most recently active conversation (among those `me` may see, when given).
pub async fn latest_conversation(
    st: &AppState,
    me: Option<&CurrentAgent>,
    contact: ContactId,
    identities: &[Identity],
) -> ApiResult<Option<switchboard_core::Conversation>> {
    let mut best: Option<switchboard_core::Conversation> = None;
    for i in identities {
        if me.is_some_and(|me| !st.access.can_see(&me.agent, i.inbox_id)) {
            continue;
        }
        if let Some(c) = st.store.conversation_of(contact, i.inbox_id).await?
            && best
                .as_ref()
                .is_none_or(|b| c.last_activity_at > b.last_activity_at)
        {
            best = Some(c);
        }
    }
    Ok(best)
}

fn edit_error(e: EditError) -> ApiError {
    match e {
        EditError::UnknownField(_) => ApiError::invalid(e.to_string()),
        EditError::Invalid(v) => v.into(),
    }
}

/// Merges a contact into another (both visible to the agent): identities and conversations move,
/// one customer, one history; undoable.
pub async fn merge(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
    into: ContactId,
) -> ApiResult<ContactMerge> {
    visible_contact(st, me, id).await?;
    visible_contact(st, me, into).await?;
    if id == into {
        return Err(ApiError::invalid(
            "into_contact_id: cannot merge a contact into itself",
        ));
    }
    let now = st.clock.now();
    Ok(st
        .store
        .merge_contacts(id, into, "manual", Some(me.agent.id), now)
        .await?)
}

/// Undoes a merge whose surviving contact the agent may see.
pub async fn undo_merge(
    st: &AppState,
    me: &CurrentAgent,
    id: uuid::Uuid,
) -> ApiResult<ContactMerge> {
    let record = st
        .store
        .merge_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found("merge"))?;
    visible_contact(st, me, record.into_contact_id).await?;
    st.store
        .undo_merge(id, st.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "already_undone",
                "this merge was undone already",
            ),
            other => other.into(),
        })
}

/// A contact's merges, checked through the contact that survived them.
pub async fn merges(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
) -> ApiResult<Vec<ContactMerge>> {
    let c = st
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let items = st.store.merges_of(c.id).await?;
    // A merged-away contact has no identities left: check through the survivor.
    let survivor = items
        .iter()
        .rev()
        .find(|m| m.undone_at.is_none())
        .map(|m| m.into_contact_id)
        .unwrap_or(id);
    visible_contact(st, me, survivor).await?;
    Ok(items)
}

/// A phone number or email the customer wrote that differs from the profile's (comment rules
/// keep them as `suggested_phone` / `suggested_email`): the agent accepts one with a click.
pub async fn suggestions(st: &AppState, c: &Contact) -> ApiResult<serde_json::Value> {
    let fields = st.store.contact_fields(c.id).await?;
    let mut out = serde_json::Map::new();
    for (field, current) in [("phone", c.phone.as_deref()), ("email", c.email.as_deref())] {
        if let Some(v) = fields.get(&format!("suggested_{field}"))
            && !current.is_some_and(|x| x.eq_ignore_ascii_case(v))
        {
            out.insert(field.into(), serde_json::json!(v));
        }
    }
    Ok(serde_json::Value::Object(out))
}
