//! `GET /api/v1/reports/whatsapp-usage?month=YYYY-MM[&inbox_id=]` (see `app::reports`); money as
//! decimal strings beside the micro-units.

use crate::app::reports;
use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use serde::Deserialize;
use switchboard_core::billing;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    month: Option<String>,
    inbox_id: Option<String>,
}

pub async fn whatsapp_usage(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiQuery(p): ApiQuery<UsageParams>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let usage = reports::whatsapp_usage(&st, &me, p.month, p.inbox_id).await?;
    let mut v = serde_json::to_value(&usage.report).map_err(|_| ApiError::internal())?;
    if let Some(cats) = v["categories"].as_array_mut() {
        for c in cats {
            let cost = c["cost_micros"].as_i64().unwrap_or(0);
            c["cost"] = serde_json::json!(billing::decimal(cost));
        }
    }
    v["total_cost"] = serde_json::json!(billing::decimal(usage.report.total_cost_micros));
    v["inbox_ids"] = serde_json::json!(usage.inbox_ids);
    Ok(ApiJson(v))
}
