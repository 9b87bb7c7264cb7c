//! The saved-media library: `GET/POST /library`, `PATCH/DELETE /library/{id}`,
//! `GET /library/{id}/file`, and sending a library file: `POST /conversations/{id}/attachments/library`.

use crate::app::library;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiQuery, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::ConversationId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    q: Option<String>,
}

pub async fn list(
    State(st): State<AppState>,
    _me: CurrentAgent,
    ApiQuery(s): ApiQuery<Search>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let items: Vec<_> = library::list(&st, s.q.as_deref())
        .await?
        .iter()
        .map(library::json)
        .collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddParams {
    filename: String,
    name: Option<String>,
    /// Comma-separated.
    tags: Option<String>,
}

/// `POST /library?filename=…&name=…&tags=a,b` with the file as the raw body.
pub async fn add(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiQuery(p): ApiQuery<AddParams>,
    body: crate::responses::UploadedFile,
) -> ApiResult<Response> {
    let tags: Vec<String> = p
        .tags
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect();
    let m = library::add(&st, &me, &p.filename, p.name.as_deref(), &tags, body).await?;
    Ok(created(library::json(&m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    name: Option<String>,
    tags: Option<Vec<String>>,
}

pub async fn update(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
    ApiJson(b): ApiJson<Change>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let m = library::update(&st, &me, id, b.name.as_deref(), b.tags.as_deref()).await?;
    Ok(ApiJson(library::json(&m)))
}

pub async fn remove(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    library::remove(&st, &me, id).await?;
    Ok(ApiJson(serde_json::json!({ "ok": true })))
}

pub async fn file(
    State(st): State<AppState>,
    _me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Response> {
    library::file(&st, id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    library_id: uuid::Uuid,
    caption: Option<String>,
    /// As for a text (`human_agent_confirmed` for Messenger's and Instagram's `HUMAN_AGENT`).
    #[serde(default)]
    policy: crate::app::send::PolicyRequest,
}

/// `POST /conversations/{id}/attachments/library {library_id, caption?, policy?}`.
pub async fn send(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<SendBody>,
) -> ApiResult<Response> {
    let file = (b.library_id, b.caption.as_deref(), b.policy);
    let sent = library::send(&st, &me, id, file).await?;
    Ok(created(sent))
}
