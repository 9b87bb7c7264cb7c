//! Reports: a month's WhatsApp conversations / messages and their cost per category, with the free
//! tiers applied (`core::billing::report` over the charges metered as the events happened). Admins
//! see every inbox; supervisors the inboxes they are members of; agents none.

use crate::auth::CurrentAgent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use switchboard_core::billing::{self, UsageReport};
use switchboard_core::{ChannelKind, InboxId};

/// A month's report and the inboxes it covers.
pub struct Usage {
    pub report: UsageReport,
    pub inbox_ids: Vec<InboxId>,
}

/// `month` is `YYYY-MM` (this month when absent or empty); `inbox_id`, when given, narrows the
/// report to one WhatsApp inbox the caller can see.
pub async fn whatsapp_usage(
    st: &AppState,
    me: &CurrentAgent,
    month: Option<String>,
    inbox_id: Option<String>,
) -> ApiResult<Usage> {
    if !me.agent.role.supervises() {
        return Err(ApiError::forbidden(
            "reports are for supervisors and admins",
        ));
    }
    let month = month
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
    let inbox_ids: Vec<InboxId> = match inbox_id.filter(|s| !s.is_empty()) {
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
    let filter =
        (!me.agent.role.sees_all_inboxes() || inbox_ids.len() == 1).then_some(&inbox_ids[..]);
    let charges = st.store.whatsapp_usage(&month, filter).await?;
    let report = billing::report(&month, &st.providers.tariff.currency, &charges);
    Ok(Usage { report, inbox_ids })
}
