//! `GET/POST /webhooks/whatsapp`: one callback URL for every connected WhatsApp number
//! (channels.md §3.1).
//!
//! POST: the `X-Hub-Signature-256` HMAC is checked over the raw body before anything else of it is
//! used (only the phone-number and business ids are read first, to find whose app secret applies;
//! each change is then trusted only if it verifies with its own inbox's secret). Messages,
//! reactions and statuses are stored through the group-commit writer; then each customer message
//! and each delivered business message is metered (`core::billing`, idempotent per event); only
//! then is the webhook answered 200, so a failure makes Meta deliver again.

use crate::error::{ApiError, ApiResult};
use crate::inbox_settings::setting;
use crate::routes::new_uuid;
use crate::routes::{body_or_413, unavailable};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use switchboard_channels::whatsapp::{self, StatusUpdate, WaEvent};
use switchboard_core::billing::{self, Traffic};
use switchboard_core::*;
use switchboard_store::{
    ChannelItem, ChannelOutcome, Inbound, InboundSender, MeterEvent, TemplateUpdate,
};

/// How many numbers and business accounts a webhook may name before its signature is checked
/// against every WhatsApp inbox we hold first (bounded work before verification).
const LOOKUPS_BEFORE_VERIFYING: usize = 32;

/// §1.1 (the same handshake as Messenger's): the challenge as plain text for a known verify token.
pub async fn verify(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let inboxes = st.store.list_inboxes(st.workspace_id).await?;
    let tokens: Vec<&str> = inboxes
        .iter()
        .filter(|i| i.channel == ChannelKind::Whatsapp)
        .filter_map(|i| setting(i, "verify_token"))
        .collect();
    match whatsapp::handshake(
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token").map(String::as_str),
        q.get("hub.challenge").map(String::as_str),
        &tokens,
    ) {
        Some(challenge) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            challenge.to_owned(),
        )
            .into_response()),
        None => Err(ApiError::forbidden("verification failed")),
    }
}

/// After the ingest: what to meter for an item.
enum Meter {
    Customer {
        user: String,
        wamid: String,
        at: Timestamp,
        from_ad: bool,
    },
    Status(StatusUpdate),
}

pub async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let raw = body_or_413(&st, body)?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let (phones, wabas) = whatsapp::routing_ids(&raw);
    let verified = |i: &Inbox| {
        setting(i, "app_secret").is_some_and(|s| whatsapp::verify_signature(s, &raw, signature))
    };
    let mut by_phone: HashMap<String, Inbox> = HashMap::new();
    let mut by_waba: HashMap<String, Vec<Inbox>> = HashMap::new();
    // A few named numbers are looked up (and their business accounts only when no number's inbox
    // verifies: template updates name the account alone); messages and statuses, nearly every
    // webhook, are settled by their numbers.
    let few = phones.len() + wabas.len() <= LOOKUPS_BEFORE_VERIFYING;
    if few {
        for p in &phones {
            if let Some(i) = st.store.inbox_for_account(ChannelKind::Whatsapp, p).await? {
                by_phone.insert(p.clone(), i);
            }
        }
        if !by_phone.values().any(verified) {
            for w in &wabas {
                by_waba.insert(w.clone(), st.store.inboxes_for_business(w).await?);
            }
        }
    }
    if !by_phone
        .values()
        .chain(by_waba.values().flatten())
        .any(verified)
    {
        // Many ids, or none of ours verified: check against every WhatsApp inbox we hold first
        // (one query and one HMAC per app, whatever the body names). A webhook signed by our app
        // for a number we no longer hold is acknowledged and stores nothing.
        let all: Vec<Inbox> = st
            .store
            .list_inboxes(st.workspace_id)
            .await?
            .into_iter()
            .filter(|i| i.channel == ChannelKind::Whatsapp)
            .collect();
        if !all.iter().any(verified) {
            tracing::warn!(
                bytes = raw.len(),
                "whatsapp webhook refused: bad or missing signature"
            );
            return Err(ApiError::unauthorized("bad or missing X-Hub-Signature-256"));
        }
        let named: std::collections::HashSet<&str> = phones.iter().map(String::as_str).collect();
        for i in all {
            if let Some(w) = setting(&i, "waba_id").filter(|w| wabas.contains(&(*w).to_owned())) {
                by_waba.entry(w.to_owned()).or_default().push(i.clone());
            }
            if let Some(p) = setting(&i, "phone_number_id").filter(|p| named.contains(p)) {
                by_phone.insert(p.to_owned(), i);
            }
        }
    }
    let hook =
        whatsapp::parse(&raw).map_err(|e| ApiError::bad_request("bad_webhook", e.to_string()))?;
    let now = st.clock.now();
    let mut items: Vec<(Timestamp, ChannelItem, Inbox, Option<Meter>)> = Vec::new();
    for change in hook.changes {
        let Some(pnid) = &change.phone_number_id else {
            // Template updates name the business account only.
            if !by_waba.contains_key(&change.waba_id) {
                let found = st.store.inboxes_for_business(&change.waba_id).await?;
                by_waba.insert(change.waba_id.clone(), found);
            }
            let inboxes: Vec<InboxId> = by_waba
                .get(&change.waba_id)
                .into_iter()
                .flatten()
                .filter(|i| verified(i))
                .map(|i| i.id)
                .collect();
            for ev in change.events {
                template_event(&st, &inboxes, ev).await?;
            }
            continue;
        };
        let Some(inbox) = by_phone.get(pnid).filter(|i| verified(i)) else {
            tracing::warn!("whatsapp change for a number without a (verified) inbox; ignored");
            continue;
        };
        for ev in change.events {
            let at = ev.at();
            if let Some((item, meter)) = to_item(&st, inbox, ev, now) {
                items.push((at, item, inbox.clone(), meter));
            }
        }
    }
    // Order is not guaranteed (§1.3): apply in provider time order.
    items.sort_by_key(|(at, ..)| *at);
    let mut rest = Vec::with_capacity(items.len());
    let mut batch = Vec::with_capacity(items.len());
    for (_, item, inbox, meter) in items {
        batch.push(item);
        rest.push((inbox, meter));
    }
    let outcomes = st
        .channel_ingest
        .submit_all(batch)
        .await
        .map_err(unavailable)?;
    // Customers' messages are metered together (one commit for every webhook queued); a status is
    // metered after everything before it, in order, since a charge depends on the earlier ones.
    let mut customers = Vec::new();
    for (outcome, (inbox, meter)) in outcomes.iter().zip(rest) {
        match meter {
            Some(Meter::Customer {
                user,
                wamid,
                at,
                from_ad,
            }) => {
                customers.push(MeterEvent {
                    inbox_id: inbox.id,
                    business_id: business(&inbox),
                    market: billing::market_of(&user),
                    user_id: user,
                    event_key: format!("in:{wamid}"),
                    message_id: match outcome {
                        Ok(ChannelOutcome::Message(done)) => Some(done.message_id),
                        _ => None,
                    },
                    traffic: Traffic::Customer {
                        at: at.clamp_to(now),
                        entry_point: from_ad,
                    },
                    provider_pricing: None,
                });
            }
            Some(status) => {
                meter_customers(&st, std::mem::take(&mut customers)).await?;
                after(&st, &inbox, status, now).await?;
            }
            None => {}
        }
    }
    meter_customers(&st, customers).await?;
    Ok((StatusCode::OK, "EVENT_RECEIVED").into_response())
}

async fn template_event(st: &AppState, inboxes: &[InboxId], ev: WaEvent) -> ApiResult<()> {
    let update = match ev {
        WaEvent::TemplateStatus {
            template_id,
            name,
            language,
            status,
        } => TemplateUpdate {
            template_id,
            name,
            language,
            status: Some(status),
            category: None,
        },
        WaEvent::TemplateCategory {
            template_id,
            name,
            language,
            category,
        } => TemplateUpdate {
            template_id,
            name,
            language,
            status: None,
            category: Some(category),
        },
        _ => return Ok(()),
    };
    st.store.update_template(inboxes, &update).await?;
    Ok(())
}

fn business(inbox: &Inbox) -> String {
    setting(inbox, "waba_id").unwrap_or("").to_owned()
}

/// Links the business-scoped id, and meters the event (idempotent: redeliveries record nothing new).
fn metering_failed() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "could not meter the events; retry",
    )
}

async fn meter_customers(st: &AppState, events: Vec<MeterEvent>) -> ApiResult<()> {
    st.meter
        .meter(events)
        .await
        .map(|_| ())
        .map_err(|_| metering_failed())
}

/// Meters a delivery status of one of our messages and notes its charge on the message.
async fn after(st: &AppState, inbox: &Inbox, m: Meter, now: Timestamp) -> ApiResult<()> {
    match m {
        // Metered together by the caller.
        Meter::Customer { .. } => {}
        Meter::Status(s) => {
            if !matches!(s.status.as_str(), "delivered" | "read" | "played") {
                return Ok(());
            }
            let ours = ours(&s);
            let msg = match ours {
                Some(id) => st
                    .store
                    .message(id)
                    .await?
                    .filter(|m| m.inbox_id == inbox.id),
                None => None,
            };
            let msg = match msg {
                Some(m) => Some(m),
                None => st.store.message_by_provider_id(inbox.id, &s.id).await?,
            };
            let Some(msg) = msg.filter(|m| m.direction == Direction::Outbound) else {
                return Ok(());
            };
            let extras = st.store.message_meta(&[msg.id]).await?;
            let meta = extras.get(&msg.id);
            let user = match s.recipient.key() {
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
                provider_pricing: s.pricing.clone(),
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
        }
    }
    Ok(())
}

fn ours(s: &StatusUpdate) -> Option<MessageId> {
    s.callback
        .as_deref()
        .and_then(|c| c.strip_prefix(whatsapp::CALLBACK_PREFIX))
        .and_then(|id| id.parse().ok())
}

/// A normalised event → what to store, and what to meter afterwards.
fn to_item(
    st: &AppState,
    inbox: &Inbox,
    ev: WaEvent,
    now: Timestamp,
) -> Option<(ChannelItem, Option<Meter>)> {
    match ev {
        WaEvent::Message(m) => {
            let user = m.from.key()?.to_owned();
            if !m.opens_window {
                // `system` messages (e.g. "changed their number") are not the customer writing:
                // storing them as customer messages would reopen the window. Logged only.
                tracing::info!(inbox_id = %inbox.id, "whatsapp system message; not stored");
                return None;
            }
            // The business-scoped id next to the phone number is linked with the message.
            let alias = m.from.user_id.clone().filter(|_| m.from.wa_id.is_some());
            let item = ChannelItem::Customer {
                inbound: Inbound {
                    workspace_id: st.workspace_id,
                    inbox_id: inbox.id,
                    sender: InboundSender::Identity {
                        external_id: user.clone(),
                        name: m.from.name.clone(),
                    },
                    provider_message_id: m.id.clone(),
                    kind: if m.is_media {
                        MessageKind::Media
                    } else {
                        MessageKind::Text
                    },
                    text: m.text.clone(),
                    sent_at: m.at,
                    message_id: MessageId(new_uuid()),
                    new_conversation_id: ConversationId(new_uuid()),
                    new_contact_id: ContactId(new_uuid()),
                },
                meta: m.meta.clone(),
                replying_to: m.reply_to.clone(),
                alias,
            };
            Some((
                item,
                Some(Meter::Customer {
                    user,
                    wamid: m.id,
                    at: m.at,
                    from_ad: m.from_ad,
                }),
            ))
        }
        WaEvent::Reaction {
            from,
            id,
            target,
            emoji,
            at,
        } => {
            let user = from.key()?.to_owned();
            Some((
                ChannelItem::Reaction {
                    inbox_id: inbox.id,
                    customer_external_id: user.clone(),
                    target_provider_id: target,
                    reaction: emoji
                        .map(|e| serde_json::json!({"emoji": e, "at": at.clamp_to(now)})),
                    at,
                },
                // A reaction is a message from the customer: it opens the window (§3.3).
                Some(Meter::Customer {
                    user,
                    wamid: id,
                    at,
                    from_ad: false,
                }),
            ))
        }
        WaEvent::Status(s) => {
            let status = match s.status.as_str() {
                "sent" => DeliveryStatus::Sent,
                "delivered" => DeliveryStatus::Delivered,
                "read" | "played" => DeliveryStatus::Read,
                "failed" => DeliveryStatus::Failed,
                _ => return None,
            };
            let failure = (status == DeliveryStatus::Failed).then(|| {
                let e = s.errors.first();
                let code = e.and_then(|e| e.code);
                let reason = code.map_or("provider_error", |c| whatsapp::reason_for(c).1);
                (
                    reason.to_owned(),
                    serde_json::json!({
                        "code": code, "title": e.and_then(|e| e.title.clone()),
                        "message": e.and_then(|e| e.message.clone()),
                        "details": e.and_then(|e| e.details.clone()),
                    }),
                )
            });
            if let Some((reason, _)) = &failure {
                tracing::warn!(inbox_id = %inbox.id, reason = %reason, "whatsapp: message failed");
            }
            Some((
                ChannelItem::Status {
                    inbox_id: inbox.id,
                    provider_message_id: s.id.clone(),
                    ours: ours(&s),
                    status,
                    failure,
                },
                Some(Meter::Status(s)),
            ))
        }
        WaEvent::TemplateStatus { .. } | WaEvent::TemplateCategory { .. } => None,
        WaEvent::Ignored { .. } => None,
    }
}
