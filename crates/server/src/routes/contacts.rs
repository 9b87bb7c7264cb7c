//! `GET/PATCH /contacts/{id}`, its picture and "sync from channel". Name, phone, email and notes
//! are the agents' to edit (validated); a typed name is kept over the channel's until the agent
//! syncs from the channel.

use crate::app::contacts;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;

use axum::response::Response;
use switchboard_core::contact::NameSource;
use switchboard_core::{Contact, ContactId};

/// The contact with its identities, its picture and where its name came from.
async fn contact_json(
    st: &AppState,
    c: &Contact,
    identities: &[switchboard_core::Identity],
) -> ApiResult<serde_json::Value> {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    let profile = st.store.contact_profile(c.id).await?.unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let ids: Vec<_> = identities
            .iter()
            .map(|i| serde_json::json!({"inbox_id": i.inbox_id, "external_id": i.external_id}))
            .collect();
        o.insert("identities".into(), serde_json::json!(ids));
        o.insert(
            "avatar_url".into(),
            serde_json::json!(profile.avatar_shown(c.id)),
        );
        o.insert(
            "name_source".into(),
            serde_json::json!(
                c.name
                    .as_ref()
                    .map(|_| profile.name_source.unwrap_or(NameSource::Channel).as_str())
            ),
        );
    }
    Ok(v)
}

pub async fn get(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let (c, ids) = contacts::visible_contact(&st, &me, id).await?;
    let mut v = contact_json(&st, &c, &ids).await?;
    if let Some(o) = v.as_object_mut() {
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
    Ok(ApiJson(contact_json(&st, &c, &ids).await?))
}

/// `POST /contacts/{id}/sync-profile`: the name and picture from the channel, now.
pub async fn sync_profile(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let (c, ids) = contacts::sync_profile(&st, &me, id).await?;
    Ok(ApiJson(contact_json(&st, &c, &ids).await?))
}

/// `GET /contacts/{id}/avatar`: our copy of the customer's picture.
pub async fn avatar(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<Response> {
    contacts::avatar(&st, &me, id).await
}
