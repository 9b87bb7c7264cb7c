//! Customers' files: an agent retries a failed download (`POST /attachments/{id}/retry`) and
//! fetches a picture's thumbnail (`GET /media/{id}/thumbnail`).

use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;

pub async fn retry(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    Ok(ApiJson(
        crate::app::inbound_media::retry(&st, &me, id).await?,
    ))
}

pub async fn thumbnail(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Response> {
    crate::app::inbound_media::thumbnail(&st, &me, id).await
}
