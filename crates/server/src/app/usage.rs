//! WhatsApp conversation metering after a webhook's events are stored: each customer message and
//! each delivered business message is metered (`core::billing`, idempotent per event), in the
//! order they came, before the webhook is answered — so a failure makes Meta deliver again.

use crate::error::{ApiError, ApiResult};
use crate::inbox_settings::setting;
use crate::state::AppState;
use axum::http::StatusCode;
use switchboard_channels::provider::Usage;
use switchboard_core::billing::{self, Traffic};
use switchboard_core::*;
use switchboard_store::MeterEvent;

fn metering_failed() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "could not meter the events; retry",
    )
}

fn business(inbox: &Inbox) -> String {
    setting(inbox, "waba_id").unwrap_or("").to_owned()
}

/// The meterings of one webhook, in order. Customers' messages are metered together (one commit
/// for every webhook queued); a status is metered after everything before it, since a charge
/// depends on the earlier ones.
pub struct Meterings<'a> {
    st: &'a AppState,
    customers: Vec<MeterEvent>,
}

impl<'a> Meterings<'a> {
    pub fn new(st: &'a AppState) -> Self {
        Self {
            st,
            customers: Vec::new(),
        }
    }

    /// Meters one event of `inbox`; `stored` is the message the event was stored as, if any.
    pub async fn add(
        &mut self,
        inbox: &Inbox,
        usage: &Usage,
        stored: Option<MessageId>,
        now: Timestamp,
    ) -> ApiResult<()> {
        match usage {
            Usage::Customer {
                user,
                wamid,
                at,
                from_ad,
            } => {
                self.customers.push(MeterEvent {
                    inbox_id: inbox.id,
                    business_id: business(inbox),
                    market: billing::market_of(user),
                    user_id: user.clone(),
                    event_key: format!("in:{wamid}"),
                    message_id: stored,
                    traffic: Traffic::Customer {
                        at: at.clamp_to(now),
                        entry_point: *from_ad,
                    },
                    provider_pricing: None,
                });
                Ok(())
            }
            Usage::Status {
                provider_message_id,
                ours,
                status,
                recipient,
                at,
                pricing,
            } => {
                self.flush().await?;
                let s = Delivery {
                    provider_message_id,
                    ours: *ours,
                    status,
                    recipient: recipient.as_deref(),
                    at: *at,
                    pricing: pricing.as_ref(),
                };
                delivered(self.st, inbox, &s, now).await
            }
        }
    }

    /// Meters the customers' messages still waiting.
    pub async fn flush(&mut self) -> ApiResult<()> {
        let events = std::mem::take(&mut self.customers);
        if events.is_empty() {
            return Ok(());
        }
        self.st
            .meter
            .meter(events)
            .await
            .map(|_| ())
            .map_err(|_| metering_failed())
    }
}

/// A status of one of our messages, borrowed from its [`Usage::Status`].
struct Delivery<'a> {
    provider_message_id: &'a str,
    ours: Option<MessageId>,
    status: &'a str,
    recipient: Option<&'a str>,
    at: Timestamp,
    pricing: Option<&'a serde_json::Value>,
}

/// Meters a delivery status of one of our messages and notes its charge on the message.
async fn delivered(
    st: &AppState,
    inbox: &Inbox,
    s: &Delivery<'_>,
    now: Timestamp,
) -> ApiResult<()> {
    if !matches!(s.status, "delivered" | "read" | "played") {
        return Ok(());
    }
    let msg = match s.ours {
        Some(id) => st
            .store
            .message(id)
            .await?
            .filter(|m| m.inbox_id == inbox.id),
        None => None,
    };
    let msg = match msg {
        Some(m) => Some(m),
        None => {
            st.store
                .message_by_provider_id(inbox.id, s.provider_message_id)
                .await?
        }
    };
    let Some(msg) = msg.filter(|m| m.direction == Direction::Outbound) else {
        return Ok(());
    };
    let extras = st.store.message_meta(&[msg.id]).await?;
    let meta = extras.get(&msg.id);
    let user = match s.recipient {
        Some(u) => u.to_owned(),
        None => match st.store.conversation(msg.conversation_id).await? {
            Some(c) => st
                .store
                .identities_in(c.contact_id, inbox.id)
                .await?
                .into_iter()
                .next()
                .unwrap_or_default(),
            None => String::new(),
        },
    };
    let e = MeterEvent {
        inbox_id: inbox.id,
        business_id: business(inbox),
        market: billing::market_of(&user),
        user_id: user,
        event_key: format!("out:{}", msg.id),
        message_id: Some(msg.id),
        traffic: Traffic::Delivered {
            at: s.at.clamp_to(now),
            template: crate::metering::template_category(meta),
        },
        provider_pricing: s.pricing.cloned(),
    };
    let charge = st
        .store
        .meter_whatsapp(&e, &st.providers.tariff)
        .await
        .map_err(|_| metering_failed())?;
    let already = meta.is_some_and(|m| m.meta.get("billing").is_some());
    if !already {
        let patch = serde_json::json!({ "billing": {
            "model": charge.model, "kind": charge.kind, "category": charge.category,
            "billable": charge.billable, "free_reason": charge.free_reason,
            "cost_micros": charge.cost_micros, "unpriced": charge.unpriced,
            "market": charge.market,
        }});
        st.store.merge_message_meta(msg.id, patch, now).await?;
    }
    Ok(())
}
