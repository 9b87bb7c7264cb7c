//! `GET/PATCH /contacts/{id}`. The name comes from the channel and is read-only; phone, email and
//! notes are the agents' and are validated.

use crate::app::contacts;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use switchboard_core::{Contact, ContactId};

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
    let (c, ids) = contacts::visible_contact(&st, &me, id).await?;
    let mut v = contact_json(&c, &ids);
    if let Some(o) = v.as_object_mut() {
        // From the channel's profile API (Messenger / Instagram), when synced.
        o.insert(
            "avatar_url".into(),
            serde_json::json!(st.store.contact_avatar(id).await?),
        );
        o.insert("suggested".into(), contacts::suggestions(&st, &c).await?);
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
    let (c, ids) = contacts::edit(&st, &me, id, &body).await?;
    Ok(ApiJson(contact_json(&c, &ids)))
}
