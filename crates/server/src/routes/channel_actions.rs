//! Sending on provider channels and what goes with it: the messaging-window policy answer, the
//! policy-checked reply (queued in the outbox), comment actions, and manual contact merges.
//!
//! A reply the policy refuses gets 422 (`window_closed`, `human_agent_confirmation_required`, ...)
//! and nothing is stored or queued.

use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::{created, new_uuid};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_channels::meta::{self, CommentOp};
use switchboard_core::conversation as conv;
use switchboard_core::event::{EventDraft, EventKind};
use switchboard_core::policy::{self, Content, Requested, Sender};
use switchboard_core::*;
use switchboard_store::{
    Change, InboundEvent, MessageMeta, Outbound, OutboundError, OutboxJob, StoreError,
    message_with_meta,
};

/// The channel's text limit (the capability table).
fn check_length(channel: ChannelKind, text: &str) -> ApiResult<()> {
    let limit = switchboard_core::outbound::capabilities(channel).text;
    if limit.fits(text) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "text: {channel} messages must be {}",
        limit.describe()
    ))
    .with_extra(serde_json::json!({"field": "text"})))
}

async fn meta_inbox(st: &AppState, c: &Conversation) -> ApiResult<Inbox> {
    st.store
        .inbox(c.inbox_id)
        .await?
        .ok_or_else(|| ApiError::not_found("inbox"))
}

fn queued_message(
    c: &Conversation,
    me: &CurrentAgent,
    sender: SenderKind,
    kind: MessageKind,
    text: &str,
    now: Timestamp,
) -> Message {
    Message {
        id: MessageId(new_uuid()),
        conversation_id: c.id,
        inbox_id: c.inbox_id,
        direction: Direction::Outbound,
        sender_kind: sender,
        sender_agent_id: Some(me.agent.id),
        kind,
        text: text.to_owned(),
        provider_message_id: None,
        delivery_status: DeliveryStatus::Queued,
        failure_reason: None,
        created_at: now,
    }
}

/// Writes the message and its outbox row (compare-and-set on the conversation, decided again on
/// a concurrent change) and wakes the worker. `decide` returns what to queue, or refuses.
async fn queue(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    decide: impl Fn(
        &Conversation,
        Timestamp,
    ) -> ApiResult<(
        Message,
        OutboxJob,
        serde_json::Value,
        MessageMeta,
        Option<String>,
    )>,
) -> ApiResult<Response> {
    for _ in 0..5 {
        let current = visible(st, me, id).await?;
        let now = st.clock.now();
        let tr = conv::reply(&current, me.actor(), now)?;
        let (message, job, request, meta, private_reply_to) = decide(&current, now)?;
        let event = EventDraft {
            inbox_id: Some(message.inbox_id),
            conversation_id: Some(message.conversation_id),
            kind: EventKind::MessageCreated,
            payload: serde_json::json!({ "message": message_with_meta(&message, Some(&meta)) }),
        };
        let out = Outbound {
            change: Change {
                expected_version: current.version,
                conversation_id: id,
                workspace_id: current.workspace_id,
                actions: tr.actions.clone(),
                conversation: Some(tr.conversation),
                message: Some(message.clone()),
                events: vec![event],
                now,
            },
            job,
            request,
            meta: meta.clone(),
            private_reply_to,
        };
        match st.store.queue_outbound(out).await {
            Ok(Ok(_)) => {
                st.outbox.wake();
                return Ok(created(message_with_meta(&message, Some(&meta))));
            }
            Ok(Err(OutboundError::PrivateReplyExists)) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "private_reply_already_sent",
                    "this comment already has its private reply (one per comment)",
                ));
            }
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::VersionConflict.into())
}

/// `GET /conversations/{id}/policy`: what the composer may do now.
pub async fn get_policy(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let c = visible(&st, &me, id).await?;
    let inbox = meta_inbox(&st, &c).await?;
    let rules = policy::rules_for(inbox.channel);
    let now = st.clock.now();
    let facts = st.outgoing.facts(inbox.channel, &c).await?;
    let s = policy::summarize(&rules, facts, now);
    let automation = policy::decide(
        &rules,
        facts,
        now,
        Sender::Automation,
        Content::Reply,
        Requested::default(),
    );
    let messaging_id = if crate::meta::is_meta(inbox.channel) {
        st.store.messaging_id(c.contact_id, c.inbox_id).await?
    } else {
        None
    };
    let mut v = serde_json::to_value(&s).map_err(|_| ApiError::internal())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("channel".into(), serde_json::json!(inbox.channel));
        o.insert("now".into(), serde_json::json!(now));
        o.insert(
            "last_customer_message_at".into(),
            serde_json::json!(c.last_customer_message_at),
        );
        o.insert("automation".into(), serde_json::json!(automation));
        o.insert(
            "can_message".into(),
            serde_json::json!(!crate::meta::is_meta(inbox.channel) || messaging_id.is_some()),
        );
        if crate::meta::is_meta(inbox.channel) {
            o.insert(
                "open_in_provider_app_url".into(),
                serde_json::json!(crate::meta::account_id(&inbox).map(|p| format!(
                    "https://business.facebook.com/latest/inbox/all?asset_id={p}"
                ))),
            );
        }
        crate::app::inbox::policy_extras(&st, &inbox, &c, o).await?;
    }
    Ok(ApiJson(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentAction {
    /// `reply`, `private_reply`, `like`, `unlike`, `hide`, `unhide`, `delete`.
    action: String,
    text: Option<String>,
}

/// `POST /messages/{id}/comment-actions` on a customer's comment.
pub async fn comment_action(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<MessageId>,
    ApiJson(b): ApiJson<CommentAction>,
) -> ApiResult<Response> {
    let m = st
        .store
        .message(id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let c = visible(&st, &me, m.conversation_id).await?;
    let Some(comment_id) = m
        .provider_message_id
        .as_deref()
        .and_then(|p| p.strip_prefix("comment:"))
        .filter(|_| m.kind == MessageKind::Comment && m.direction == Direction::Inbound)
        .map(str::to_owned)
    else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_comment",
            "this message is not a customer's comment",
        ));
    };
    let inbox = meta_inbox(&st, &c).await?;
    let text = || -> ApiResult<String> {
        let t = b.text.as_deref().unwrap_or("");
        let t = validate::MessageText::parse(t)?.into_inner();
        check_length(inbox.channel, &t)?;
        Ok(t)
    };
    match b.action.as_str() {
        "private_reply" => {
            let text = text()?;
            let rules = policy::rules_for(inbox.channel);
            let already = st
                .store
                .private_reply_of(inbox.id, &comment_id)
                .await?
                .is_some();
            if let Err(r) = policy::may_private_reply(&rules, m.created_at, st.clock.now(), already)
            {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    r.code(),
                    r.to_string(),
                ));
            }
            queue(&st, &me, c.id, |current, now| {
                let msg = queued_message(current, &me, SenderKind::Agent, MessageKind::Text, &text, now);
                let request = serde_json::json!({"comment_id": comment_id, "text": text});
                let meta = MessageMeta {
                    meta: serde_json::json!({"private_reply_to": {"comment_id": comment_id, "message_id": m.id}}),
                    ..MessageMeta::default()
                };
                Ok((msg, OutboxJob::PrivateReply, request, meta, Some(comment_id.clone())))
            })
            .await
        }
        "reply" => {
            let text = text()?;
            queue(&st, &me, c.id, |current, now| {
                let msg = queued_message(current, &me, SenderKind::Agent, MessageKind::Comment, &text, now);
                let request = serde_json::json!({"comment_id": comment_id, "text": text});
                let meta = MessageMeta {
                    meta: serde_json::json!({"comment_reply_to": {"comment_id": comment_id, "message_id": m.id}}),
                    ..MessageMeta::default()
                };
                Ok((msg, OutboxJob::CommentReply, request, meta, None))
            })
            .await
        }
        other => {
            let op = CommentOp::parse(other).filter(|o| *o != CommentOp::Reply).ok_or_else(|| {
                ApiError::invalid("action: must be reply, private_reply, like, unlike, hide, unhide or delete")
            })?;
            if conv::reply(&c, me.actor(), st.clock.now()).is_err() && !me.agent.role.supervises() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "claim_required",
                    "take this conversation (or be a supervisor) to moderate its comments",
                ));
            }
            let Some((method, url, body)) = meta::comment_request(
                crate::meta::object(inbox.channel),
                crate::meta::api_base_url(&inbox),
                &comment_id,
                op,
                None,
            ) else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not_supported",
                    format!("{} does not support `{other}` on comments", inbox.channel),
                ));
            };
            match st
                .providers
                .graph(&inbox, method, &url, body.as_ref())
                .await
            {
                crate::provider_api::Answer::Ok(_) => {}
                crate::provider_api::Answer::Failed(f) => {
                    return Err(ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", format!("Meta refused: {}", f.reason))
                        .with_extra(serde_json::json!({"reason": f.reason, "code": f.code, "subcode": f.subcode})));
                }
            }
            let verb = match op {
                CommentOp::Like => "like",
                CommentOp::Unlike => "unlike",
                CommentOp::Hide => "hide",
                CommentOp::Unhide => "unhide",
                _ => "remove",
            };
            st.channel_ingest
                .submit_all(vec![crate::channel_ingest::stamp(
                    inbox.workspace_id,
                    inbox.id,
                    InboundEvent::CommentChange {
                        provider_message_id: format!("comment:{comment_id}"),
                        verb: verb.to_owned(),
                        text: None,
                    },
                )])
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "done at Meta, but not recorded here; retry",
                    )
                })?;
            let meta = st.store.message_meta(&[m.id]).await?;
            let fresh = st.store.message(m.id).await?.unwrap_or(m);
            Ok(crate::routes::created(message_with_meta(
                &fresh,
                meta.get(&fresh.id),
            )))
        }
    }
}

// ------------------------------------------------------------------ contact merges

async fn visible_contact(st: &AppState, me: &CurrentAgent, id: ContactId) -> ApiResult<Contact> {
    let c = st
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let ids = st.store.contact_identities(id).await?;
    if !ids.iter().any(|i| st.access.can_see(&me.agent, i.inbox_id)) {
        return Err(ApiError::not_found("contact"));
    }
    Ok(c)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    into_contact_id: ContactId,
}

/// `POST /contacts/{id}/merge {into_contact_id}`: this contact's identities and conversations move
/// into the other one (one customer, one history). Undo with `POST /contact-merges/{id}/undo`.
pub async fn merge(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
    ApiJson(b): ApiJson<MergeBody>,
) -> ApiResult<Response> {
    visible_contact(&st, &me, id).await?;
    visible_contact(&st, &me, b.into_contact_id).await?;
    if id == b.into_contact_id {
        return Err(ApiError::invalid(
            "into_contact_id: cannot merge a contact into itself",
        ));
    }
    let m = st
        .store
        .merge_contacts(
            id,
            b.into_contact_id,
            "manual",
            Some(me.agent.id),
            st.clock.now(),
        )
        .await?;
    Ok(created(serde_json::json!(m)))
}

pub async fn undo_merge(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    // Visible: the surviving contact must be visible to the agent.
    let merges = st
        .store
        .merge_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found("merge"))?;
    visible_contact(&st, &me, merges.into_contact_id).await?;
    let m = st
        .store
        .undo_merge(id, st.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "already_undone",
                "this merge was undone already",
            ),
            other => other.into(),
        })?;
    Ok(ApiJson(serde_json::json!(m)))
}

pub async fn merges(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ContactId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let c = st
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let items = st.store.merges_of(c.id).await?;
    // A merged-away contact has no identities left: check through the survivor.
    let survivor = items
        .iter()
        .rev()
        .find(|m| m.undone_at.is_none())
        .map(|m| m.into_contact_id)
        .unwrap_or(id);
    visible_contact(&st, &me, survivor).await?;
    Ok(ApiJson(
        serde_json::json!({"items": items, "next_cursor": null}),
    ))
}
