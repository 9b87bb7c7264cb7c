//! `GET /api/v1/reports/whatsapp-usage?month=YYYY-MM[&inbox_id=]`: a month's WhatsApp
//! conversations / messages and their cost per category, with the free tiers applied
//! (`core::billing::report` over the charges metered as the events happened). Admins see every
//! inbox; supervisors the inboxes they are members of; agents none.

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use serde::Deserialize;
use switchboard_core::billing;
use switchboard_core::{ChannelKind, InboxId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    month: Option<String>,
    inbox_id: Option<String>,
}

/// Money as a decimal string (no float rounding in the API).
fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

pub async fn whatsapp_usage(
    State(st): State<AppState>,
    me: CurrentAgent,
    ApiQuery(p): ApiQuery<UsageParams>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    if !me.agent.role.supervises() {
        return Err(ApiError::forbidden(
            "reports are for supervisors and admins",
        ));
    }
    let month = p
        .month
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| billing::month_of(st.clock.now()));
    if billing::month_bounds(&month).is_none() {
        return Err(ApiError::bad_request(
            "bad_query",
            "`month` must be YYYY-MM",
        ));
    }
    let whatsapp: Vec<InboxId> = st
        .store
        .list_inboxes(st.workspace_id)
        .await?
        .into_iter()
        .filter(|i| i.channel == ChannelKind::Whatsapp && st.access.can_see(&me.agent, i.id))
        .map(|i| i.id)
        .collect();
    let inboxes: Vec<InboxId> = match p.inbox_id.filter(|s| !s.is_empty()) {
        Some(s) => {
            let id: InboxId = s.parse().map_err(|_| {
                ApiError::bad_request("bad_query", "`inbox_id` has an invalid value")
            })?;
            if !whatsapp.contains(&id) {
                return Err(ApiError::not_found("inbox"));
            }
            vec![id]
        }
        None => whatsapp,
    };
    let filter = (!me.agent.role.sees_all_inboxes() || inboxes.len() == 1).then_some(&inboxes[..]);
    let charges = st.store.whatsapp_usage(&month, filter).await?;
    let r = billing::report(&month, &st.providers.tariff.currency, &charges);
    let mut v = serde_json::to_value(&r).map_err(|_| ApiError::internal())?;
    if let Some(cats) = v["categories"].as_array_mut() {
        for c in cats {
            let cost = c["cost_micros"].as_i64().unwrap_or(0);
            c["cost"] = serde_json::json!(money(cost));
        }
    }
    v["total_cost"] = serde_json::json!(money(r.total_cost_micros));
    v["inbox_ids"] = serde_json::json!(inboxes);
    Ok(ApiJson(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_is_exact() {
        assert_eq!(super::money(135_000), "0.135000");
        assert_eq!(super::money(12_000_001), "12.000001");
        assert_eq!(super::money(0), "0.000000");
    }
}
