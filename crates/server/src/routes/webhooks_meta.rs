//! `GET/POST /webhooks/meta`: one callback URL for every connected Facebook Page and Instagram
//! account (channels.md §1.1–§1.4, §1.9, §2).
//!
//! POST: the `X-Hub-Signature-256` HMAC is checked over the raw body bytes before anything of the
//! body is used (only `entry[].id` is read first, to find the inboxes whose app secret applies);
//! a bad or missing signature gets 401 and nothing is stored. Items are sorted by the provider's
//! timestamp, stored through the group-commit writer, and only then is the webhook answered 200.

use crate::error::{ApiError, ApiResult};
use crate::ingest::IngestFailure;
use crate::outbox::ProfileJob;
use crate::routes::{body_or_413, new_uuid};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use switchboard_channels::meta::{self, CommentVerb, MetaEvent, Object};
use switchboard_core::*;
use switchboard_store::{COMMENTER_PREFIX, ChannelItem, ChannelOutcome, Inbound, InboundSender};

/// §1.1: answer the challenge as plain text when the verify token is one of ours; 403 otherwise.
pub async fn verify(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let inboxes = st.store.list_inboxes(st.workspace_id).await?;
    let tokens: Vec<&str> = inboxes
        .iter()
        .filter(|i| crate::meta::is_meta(i.channel))
        .filter_map(crate::meta::verify_token)
        .collect();
    match meta::handshake(
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

/// How many distinct accounts a webhook may name before its signature is checked against every
/// Meta app we hold first (bounded work before verification, whatever the body says).
const LOOKUPS_BEFORE_VERIFYING: usize = 32;

fn signed_by_one_of<'a>(
    inboxes: impl IntoIterator<Item = &'a Inbox>,
    raw: &[u8],
    signature: Option<&str>,
) -> bool {
    let mut secrets: Vec<&str> = inboxes
        .into_iter()
        .filter_map(crate::meta::app_secret)
        .collect();
    secrets.sort_unstable();
    secrets.dedup();
    secrets
        .iter()
        .any(|s| meta::verify_signature(s, raw, signature))
}

/// The inboxes (by `channel:account`) of a webhook signed by one of our Meta apps; `Err` (401)
/// when no app of ours signed it. A few named accounts are looked up (remembered on SQLite) and
/// their secrets tried; a webhook naming many accounts, or none of ours, is checked against every
/// Meta app we hold first — so a large unsigned body costs one query and one HMAC, and a signed
/// webhook for a Page we no longer hold is recognised as Meta's and answered 200.
async fn verified_inboxes(
    st: &AppState,
    raw: &[u8],
    signature: Option<&str>,
) -> ApiResult<HashMap<String, Inbox>> {
    let few = meta::entry_ids_at_most(raw, LOOKUPS_BEFORE_VERIFYING);
    if let Some(ids) = &few {
        let mut found = HashMap::new();
        for id in ids {
            for ch in [ChannelKind::Messenger, ChannelKind::Instagram] {
                if let Some(i) = st.store.inbox_by_account(ch, id).await? {
                    found.insert(format!("{}:{id}", ch.as_str()), i);
                }
            }
        }
        if signed_by_one_of(found.values(), raw, signature) {
            return Ok(found);
        }
    }
    let all: Vec<Inbox> = st
        .store
        .list_inboxes(st.workspace_id)
        .await?
        .into_iter()
        .filter(|i| crate::meta::is_meta(i.channel))
        .collect();
    if !signed_by_one_of(&all, raw, signature) {
        tracing::warn!(
            bytes = raw.len(),
            "meta webhook refused: bad or missing signature"
        );
        return Err(ApiError::unauthorized("bad or missing X-Hub-Signature-256"));
    }
    // Signed by one of our apps: now its accounts may be read in full.
    let ids = few.unwrap_or_else(|| meta::entry_ids(raw));
    let named: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    Ok(all
        .into_iter()
        .filter_map(|i| {
            let account = crate::meta::account_id(&i)?.to_owned();
            named
                .contains(account.as_str())
                .then(|| (format!("{}:{account}", i.channel.as_str()), i))
        })
        .collect())
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
    let candidates = verified_inboxes(&st, &raw, signature).await?;
    let hook =
        meta::parse(&raw).map_err(|e| ApiError::bad_request("bad_webhook", e.to_string()))?;
    let channel = match hook.object {
        Object::Page => ChannelKind::Messenger,
        Object::Instagram => ChannelKind::Instagram,
    };
    let now = st.clock.now();
    let mut items: Vec<(Timestamp, ChannelItem, Option<ProfileJob>)> = Vec::new();
    // What a customer shared by tapping a phone/email quick reply, in step with `items`.
    let mut shares: Vec<Option<String>> = Vec::new();
    for entry in hook.entries {
        let Some(inbox) = candidates.get(&format!("{}:{}", channel.as_str(), entry.id)) else {
            // A Page or account removed from Switchboard: acknowledged, nothing stored (a failure
            // would make Meta retry, then disable the app's webhook for every Page).
            tracing::info!("meta webhook entry for an account without an inbox; ignored");
            continue;
        };
        // Each entry is checked against its own inbox's secret: one app can serve many Pages,
        // but an entry must never be trusted on another app's signature.
        if !crate::meta::app_secret(inbox)
            .is_some_and(|s| meta::verify_signature(s, &raw, signature))
        {
            continue;
        }
        for ev in entry.events {
            let at = ev.at();
            let shared = shared_contact_detail(&ev);
            if let Some((item, profile)) = to_item(&st, inbox, ev, now) {
                items.push((at, item, profile));
                shares.push(shared);
            }
        }
    }
    // Meta does not guarantee order (§1.3): apply in provider time order.
    let mut items: Vec<_> = items.into_iter().zip(shares).collect();
    items.sort_by_key(|((at, _, _), _)| *at);
    let (items, shares): (Vec<_>, Vec<Option<String>>) = items.into_iter().unzip();
    let (items, profiles): (Vec<ChannelItem>, Vec<Option<ProfileJob>>) =
        items.into_iter().map(|(_, i, p)| (i, p)).unzip();
    let outcomes = st
        .channel_ingest
        .submit_all(items)
        .await
        .map_err(|e| match e {
            IngestFailure::Rejected(_) | IngestFailure::Store | IngestFailure::Stopped => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "could not store the events; retry",
                )
            }
        })?;
    for (outcome, shared) in outcomes.iter().zip(&shares) {
        if let (Ok(ChannelOutcome::Message(m)), Some(value)) = (outcome, shared)
            && !m.duplicate
        {
            remember_shared_detail(&st, m.contact_id, value).await;
        }
    }
    if st.config.webhooks.profile_sync {
        for (outcome, job) in outcomes.iter().zip(profiles) {
            if let (Ok(ChannelOutcome::Message(m)), Some(mut job)) = (outcome, job)
                && !m.duplicate
                && st
                    .store
                    .contact(m.contact_id)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.name.is_none())
            {
                job.contact_id = m.contact_id;
                st.outbox.want_profile(job);
            }
        }
    }
    Ok((StatusCode::OK, "EVENT_RECEIVED").into_response())
}

fn attachments_json(a: &[meta::Attachment]) -> serde_json::Value {
    serde_json::json!(
        a.iter()
            .map(|x| serde_json::json!({"type": x.kind, "url": x.url, "sticker_id": x.sticker_id}))
            .collect::<Vec<_>>()
    )
}

/// A customer's message or comment, before it becomes an [`Inbound`].
struct Said {
    from: String,
    name: Option<String>,
    id: String,
    kind: MessageKind,
    text: String,
    at: Timestamp,
    meta: serde_json::Value,
    replying_to: Option<String>,
}

fn customer(st: &AppState, inbox: &Inbox, s: Said) -> ChannelItem {
    ChannelItem::Customer {
        inbound: Inbound {
            workspace_id: st.workspace_id,
            inbox_id: inbox.id,
            sender: InboundSender::Identity {
                external_id: s.from,
                name: s.name,
            },
            provider_message_id: s.id,
            kind: s.kind,
            text: s.text,
            sent_at: s.at,
            message_id: MessageId(new_uuid()),
            new_conversation_id: ConversationId(new_uuid()),
            new_contact_id: ContactId(new_uuid()),
        },
        meta: s.meta,
        replying_to: s.replying_to,
        alias: None,
    }
}

/// A normalised event → what to store (and whose profile to fetch).
fn to_item(
    st: &AppState,
    inbox: &Inbox,
    ev: MetaEvent,
    now: Timestamp,
) -> Option<(ChannelItem, Option<ProfileJob>)> {
    let account = crate::meta::account_id(inbox).unwrap_or("");
    let profile = |ext: &str| ProfileJob {
        inbox_id: inbox.id,
        contact_id: ContactId(uuid::Uuid::nil()),
        external_id: ext.to_owned(),
    };
    let item = match ev {
        MetaEvent::Message {
            from,
            mid,
            text,
            attachments,
            quick_reply_payload,
            reply_to_mid,
            referral,
            unsupported,
            standby,
            at,
        } => {
            if from.is_empty() {
                return None;
            }
            let kind = if text.is_none() && !attachments.is_empty() {
                MessageKind::Media
            } else {
                MessageKind::Text
            };
            let shown = if unsupported {
                "[unsupported message]".to_owned()
            } else {
                meta::describe(text.as_deref(), &attachments)
            };
            let mut m = serde_json::Map::new();
            if !attachments.is_empty() {
                m.insert("attachments".into(), attachments_json(&attachments));
            }
            if let Some(p) = quick_reply_payload {
                m.insert("quick_reply_payload".into(), serde_json::json!(p));
            }
            if let Some(r) = &reply_to_mid {
                m.insert("reply_to".into(), serde_json::json!(r));
            }
            if let Some(r) = referral {
                m.insert("referral".into(), r);
            }
            if standby {
                m.insert("standby".into(), serde_json::json!(true));
            }
            let job = profile(&from);
            return Some((
                customer(st, inbox, Said { from, name: None, id: mid, kind, text: shown, at, meta: m.into(), replying_to: reply_to_mid }),
                Some(job),
            ));
        }
        MetaEvent::Postback {
            from,
            mid,
            title,
            payload,
            referral,
            standby,
            at,
        } => {
            let id = mid.unwrap_or_else(|| format!("postback:{from}:{}", at.millis()));
            let text = title
                .clone()
                .or_else(|| payload.clone())
                .unwrap_or_else(|| "[button]".into());
            let m = serde_json::json!({"postback": {"title": title, "payload": payload, "referral": referral, "standby": standby}});
            let job = profile(&from);
            return Some((
                customer(st, inbox, Said { from, name: None, id, kind: MessageKind::Text, text, at, meta: m, replying_to: None }),
                Some(job),
            ));
        }
        MetaEvent::Referral { from, referral, at } => {
            let id = format!("referral:{from}:{}", at.millis());
            let text = format!(
                "Opened the conversation from {} (ref {})",
                referral["source"].as_str().unwrap_or("a link"),
                referral["ref"].as_str().unwrap_or("-")
            );
            let m = serde_json::json!({ "referral": referral });
            let job = profile(&from);
            return Some((
                customer(st, inbox, Said { from, name: None, id, kind: MessageKind::System, text, at, meta: m, replying_to: None }),
                Some(job),
            ));
        }
        MetaEvent::Comment {
            comment_id,
            post_id,
            parent_id,
            from_id,
            from_name,
            text,
            verb,
            at,
        } => {
            let from_id = from_id.unwrap_or_default();
            let provider_id = format!("comment:{comment_id}");
            if verb != CommentVerb::Add {
                return Some((
                    ChannelItem::CommentChange {
                        inbox_id: inbox.id,
                        provider_message_id: provider_id,
                        verb: verb.as_str().to_owned(),
                        text,
                    },
                    None,
                ));
            }
            // The Page's own comments (our public replies among them) would loop: drop them.
            if from_id.is_empty() || from_id == account || Some(from_id.as_str()) == crate::meta::sender_id(inbox) {
                return None;
            }
            // A Facebook commenter id is not a PSID; an Instagram commenter id is the IGSID.
            let external = if inbox.channel == ChannelKind::Messenger {
                format!("{COMMENTER_PREFIX}{from_id}")
            } else {
                from_id
            };
            let link = (inbox.channel == ChannelKind::Messenger)
                .then(|| post_id.as_ref().map(|p| format!("https://www.facebook.com/{p}")))
                .flatten();
            let m = serde_json::json!({"comment": {
                "id": comment_id, "post_id": post_id, "parent_id": parent_id, "post_link": link,
                "created_time": at, "from_name": from_name,
            }});
            let job = (inbox.channel == ChannelKind::Instagram).then(|| profile(&external));
            let text = text.unwrap_or_default();
            return Some((
                customer(st, inbox, Said { from: external, name: from_name, id: provider_id, kind: MessageKind::Comment, text, at, meta: m, replying_to: None }),
                job,
            ));
        }
        MetaEvent::Echo {
            to,
            mid,
            text,
            attachments,
            app_id,
            metadata,
            at,
        } => {
            let ours = metadata
                .as_deref()
                .and_then(|m| m.strip_prefix(meta::METADATA_PREFIX))
                .and_then(|id| id.parse::<MessageId>().ok());
            let from_page_inbox = app_id.as_deref() == Some(meta::PAGE_INBOX_APP_ID);
            let mut m = serde_json::Map::new();
            m.insert("echo".into(), serde_json::json!({"app_id": app_id, "from_page_inbox": from_page_inbox}));
            if !attachments.is_empty() {
                m.insert("attachments".into(), attachments_json(&attachments));
            }
            ChannelItem::Echo {
                workspace_id: st.workspace_id,
                inbox_id: inbox.id,
                customer_external_id: to,
                provider_message_id: mid,
                ours,
                text: meta::describe(text.as_deref(), &attachments),
                meta: m.into(),
                sent_at: at,
                message_id: MessageId(new_uuid()),
                new_conversation_id: ConversationId(new_uuid()),
                new_contact_id: ContactId(new_uuid()),
            }
        }
        MetaEvent::Read { from, watermark, mid, .. } => ChannelItem::Receipt {
            inbox_id: inbox.id,
            customer_external_id: from,
            provider_message_ids: mid.into_iter().collect(),
            watermark,
            status: DeliveryStatus::Read,
        },
        MetaEvent::Delivery { from, mids, watermark, .. } => ChannelItem::Receipt {
            inbox_id: inbox.id,
            customer_external_id: from,
            provider_message_ids: mids,
            watermark,
            status: DeliveryStatus::Delivered,
        },
        MetaEvent::Reaction {
            from,
            mid,
            react,
            reaction,
            emoji,
            at,
        } => ChannelItem::Reaction {
            inbox_id: inbox.id,
            customer_external_id: from,
            target_provider_id: mid,
            reaction: react.then(|| serde_json::json!({"reaction": reaction, "emoji": emoji, "at": at.clamp_to(now)})),
            at,
        },
        MetaEvent::Edit { mid, text, num_edit, .. } => ChannelItem::Edit {
            inbox_id: inbox.id,
            provider_message_id: mid,
            text,
            num_edit,
        },
        MetaEvent::Deleted { mid, .. } => ChannelItem::Unsent {
            inbox_id: inbox.id,
            provider_message_id: mid,
        },
        MetaEvent::PolicyEnforcement { action, .. } => {
            tracing::warn!(inbox_id = %inbox.id, action = %action, "Meta policy enforcement on this page");
            return None;
        }
        MetaEvent::Ignored { .. } => return None,
    };
    Some((item, None))
}

/// A phone number or email the customer shared with Messenger's `user_phone_number` /
/// `user_email` quick replies arrives as the quick reply's payload.
fn shared_contact_detail(ev: &MetaEvent) -> Option<String> {
    match ev {
        MetaEvent::Message {
            quick_reply_payload: Some(p),
            ..
        } if validate::Email::parse(p).is_ok() || validate::Phone::parse(p).is_ok() => {
            Some(p.clone())
        }
        _ => None,
    }
}

/// Fills the contact's email or phone from what they shared, unless an agent already set one.
async fn remember_shared_detail(st: &AppState, contact: ContactId, value: &str) {
    let Ok(Some(mut c)) = st.store.contact(contact).await else {
        return;
    };
    if let Ok(e) = validate::Email::parse(value) {
        if c.email.is_some() {
            return;
        }
        c.email = Some(e.into_inner());
    } else if let Ok(p) = validate::Phone::parse(value) {
        if c.phone.is_some() {
            return;
        }
        c.phone = Some(p.into_inner());
    } else {
        return;
    }
    c.updated_at = st.clock.now();
    if let Err(e) = st.store.update_contact(&c).await {
        tracing::warn!(error = %e, "could not save a shared contact detail");
    }
}
