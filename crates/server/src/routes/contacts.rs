//! `GET/PATCH /contacts/{id}`. The name comes from the channel and is read-only; phone, email and
//! notes are the agents' and are validated.

use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use switchboard_core::validate::{Email, Phone};
use switchboard_core::{Contact, ContactId};

/// A contact is visible to an agent who can see one of its identities' inboxes.
async fn visible_contact(
    st: &AppState,
    me: &CurrentAgent,
    id: ContactId,
) -> ApiResult<(Contact, Vec<switchboard_core::Identity>)> {
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

fn contact_json(c: &Contact, identities: &[switchboard_core::Identity]) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let ids: Vec<_> = identities
            .iter()
            .map(|i| serde_json::json!({"inbox_id": i.inbox_id, "external_id": i.external_id}))
            .collect();
        o.insert("identities".into(), serde_json::json!(ids));
    }
    v
}

pub async fn get(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let (c, ids) = visible_contact(&st, &me, id).await?;
    let mut v = contact_json(&c, &ids);
    if let Some(o) = v.as_object_mut() {
        // From the channel's profile API (Messenger / Instagram), when synced.
        o.insert(
            "avatar_url".into(),
            serde_json::json!(st.store.contact_avatar(id).await?),
        );
    }
    Ok(ApiJson(v))
}

/// Absent keys stay as they are; `null` or `""` clears a field.
pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let (mut c, ids) = visible_contact(&st, &me, id).await?;
    let text = |k: &str| -> ApiResult<Option<Option<String>>> {
        match body.get(k) {
            None => Ok(None),
            Some(serde_json::Value::Null) => Ok(Some(None)),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(Some(None)),
            Some(serde_json::Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(_) => Err(ApiError::invalid(format!("{k}: must be a string or null"))
                .with_extra(serde_json::json!({"field": k}))),
        }
    };
    for k in body.keys() {
        match k.as_str() {
            "phone" | "email" | "notes" => {}
            "name" => {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "read_only",
                    "name: comes from the channel and cannot be edited",
                )
                .with_extra(serde_json::json!({"field": "name"})));
            }
            other => return Err(ApiError::invalid(format!("{other}: unknown field"))),
        }
    }
    if let Some(p) = text("phone")? {
        c.phone = p
            .map(|p| Phone::parse(&p).map(Phone::into_inner))
            .transpose()?;
    }
    if let Some(e) = text("email")? {
        c.email = e
            .map(|e| Email::parse(&e).map(Email::into_inner))
            .transpose()?;
    }
    if let Some(n) = text("notes")? {
        if n.as_deref().is_some_and(|n| n.chars().count() > 10_000) {
            return Err(ApiError::invalid("notes: must be at most 10000 characters")
                .with_extra(serde_json::json!({"field": "notes"})));
        }
        c.notes = n;
    }
    c.updated_at = st.clock.now();
    st.store.update_contact(&c).await?;
    Ok(ApiJson(contact_json(&c, &ids)))
}
