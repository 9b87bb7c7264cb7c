//! Sending on WhatsApp, Zalo OA, Telegram and Shopee: the policy-checked reply (queued in the
//! outbox), WhatsApp templates (list, sync, send with parameters checked before the provider is
//! called), interactive and media messages, what the policy answer adds for these channels, and
//! the inbox set-up (settings, Telegram's `setWebhook`, the first template sync).
//!
//! A send the policy refuses gets 422 (`template_required`, `window_closed`, ...) and nothing is
//! stored or queued.

use crate::app::inbox::{recipient, visible_inbox};
use crate::app::send;
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::created;
use crate::routes::new_uuid;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_channels::whatsapp;
use switchboard_core::conversation as conv;
use switchboard_core::event::{EventDraft, EventKind};
use switchboard_core::policy::{self, Content, Decision, Facts, MessagingType, Requested, Sender};
use switchboard_core::*;
use switchboard_store::{
    Change, MessageMeta, Outbound, OutboxJob, StoreError, StoredTemplate, message_with_meta,
};

// ------------------------------------------------------------------ queueing

/// What one send queues.
struct Planned {
    message: Message,
    request: serde_json::Value,
    meta: MessageMeta,
}

fn queued(
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

/// Decides on fresh state (the policy facts included) and writes the message with its outbox
/// row under compare-and-set on the conversation; a concurrent change means deciding again.
async fn queue(
    st: &AppState,
    me: &CurrentAgent,
    id: ConversationId,
    inbox: &Inbox,
    plan: impl Fn(&Conversation, Facts, Timestamp) -> ApiResult<Planned>,
) -> ApiResult<Response> {
    for _ in 0..5 {
        let current = visible(st, me, id).await?;
        let facts = st.outgoing.facts(inbox.channel, &current).await?;
        let now = st.clock.now();
        let tr = conv::reply(&current, me.actor(), now)?;
        let p = plan(&current, facts, now)?;
        let event = EventDraft {
            inbox_id: Some(p.message.inbox_id),
            conversation_id: Some(p.message.conversation_id),
            kind: EventKind::MessageCreated,
            payload: serde_json::json!({ "message": message_with_meta(&p.message, Some(&p.meta)) }),
        };
        let out = Outbound {
            change: Change {
                expected_version: current.version,
                conversation_id: id,
                workspace_id: current.workspace_id,
                actions: tr.actions.clone(),
                conversation: Some(tr.conversation),
                message: Some(p.message.clone()),
                events: vec![event],
                now,
            },
            job: OutboxJob::Send,
            request: p.request,
            meta: p.meta.clone(),
            private_reply_to: None,
        };
        match st.store.queue_outbound(out).await {
            Ok(Ok(_)) => {
                st.outbox.wake();
                return Ok(created(message_with_meta(&p.message, Some(&p.meta))));
            }
            Ok(Err(_)) => return Err(ApiError::internal()),
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::VersionConflict.into())
}

fn sender_of(automated: bool) -> (Sender, SenderKind) {
    if automated {
        (Sender::Automation, SenderKind::Bot)
    } else {
        (Sender::Human, SenderKind::Agent)
    }
}

/// Runs the policy for `content` and returns the grant, or the refusal.
fn allowed(
    inbox: &Inbox,
    facts: Facts,
    now: Timestamp,
    sender: Sender,
    content: Content,
) -> ApiResult<(Option<MessagingType>, bool)> {
    let rules = policy::rules_for(inbox.channel);
    let d = policy::decide(&rules, facts, now, sender, content, Requested::default());
    if let Some(err) = send::refusal(&d, &policy::summarize(&rules, facts, now), inbox.channel) {
        return Err(err.into());
    }
    match d {
        Decision::Allowed {
            messaging_type,
            paid,
            ..
        } => Ok((messaging_type, paid)),
        _ => Err(ApiError::internal()),
    }
}

fn no_recipient() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_messaging_id",
        "this customer has no id on this channel to send to",
    )
}

// ------------------------------------------------------------------ WhatsApp templates and rich messages

fn template_json(t: &StoredTemplate) -> serde_json::Value {
    let tpl = to_template(t);
    let text_of = |kind: &str| {
        t.components.as_array().and_then(|cs| {
            cs.iter()
                .find(|c| {
                    c["type"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case(kind))
                })
                .and_then(|c| c["text"].as_str().map(str::to_owned))
        })
    };
    serde_json::json!({
        "name": t.name, "language": t.language, "category": t.category, "status": t.status,
        "template_id": t.template_id, "parameters": tpl.params(),
        "header": text_of("header"), "body": text_of("body"), "footer": text_of("footer"),
        "components": t.components, "synced_at": t.synced_at,
    })
}

fn to_template(t: &StoredTemplate) -> whatsapp::Template {
    whatsapp::Template {
        id: t.template_id.clone(),
        name: t.name.clone(),
        language: t.language.clone(),
        status: t.status.clone(),
        category: t.category.clone(),
        components: t.components.clone(),
        parameter_format: t.parameter_format.clone(),
    }
}

async fn whatsapp_inbox(st: &AppState, me: &CurrentAgent, id: InboxId) -> ApiResult<Inbox> {
    let inbox = visible_inbox(st, me, id).await?;
    if inbox.channel != ChannelKind::Whatsapp {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            "templates exist on WhatsApp inboxes only",
        ));
    }
    Ok(inbox)
}

/// `GET /inboxes/{id}/templates`: the synced templates with what each needs filled in.
pub async fn list_templates(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let inbox = whatsapp_inbox(&st, &me, id).await?;
    let items: Vec<_> = st
        .store
        .templates(inbox.id)
        .await?
        .iter()
        .map(template_json)
        .collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

/// `POST /inboxes/{id}/templates/sync` (admin): fetches the templates from WhatsApp again.
pub async fn sync_templates(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<InboxId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let inbox = whatsapp_inbox(&st, &me, id).await?;
    me.require_admin()?;
    let all = st.providers.sync_templates(&inbox).await?;
    let items: Vec<_> = all.iter().map(template_json).collect();
    Ok(ApiJson(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

/// `POST /conversations/{id}/whatsapp-messages`: a template, an interactive message or media by
/// link. The body follows the Cloud API's message object without the recipient; templates take
/// `{"name", "language", "parameters": {"header", "header_media_link", "body", "buttons"}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RichMessage {
    #[serde(rename = "type")]
    kind: String,
    template: Option<TemplateRef>,
    interactive: Option<serde_json::Value>,
    image: Option<serde_json::Value>,
    video: Option<serde_json::Value>,
    audio: Option<serde_json::Value>,
    document: Option<serde_json::Value>,
    sticker: Option<serde_json::Value>,
    #[serde(default)]
    automated: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    name: String,
    language: String,
    #[serde(default)]
    parameters: whatsapp::TemplateArgs,
}

fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).with_extra(serde_json::json!({ "field": field }))
}

pub async fn whatsapp_message(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<RichMessage>,
) -> ApiResult<Response> {
    let c = visible(&st, &me, id).await?;
    let inbox = st
        .store
        .inbox(c.inbox_id)
        .await?
        .ok_or_else(|| ApiError::not_found("inbox"))?;
    if inbox.channel != ChannelKind::Whatsapp {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            "whatsapp-messages are for WhatsApp conversations",
        ));
    }
    // Everything is checked before the policy and before anything is queued.
    let (content, object, text, meta) = match b.kind.as_str() {
        "template" => {
            let r = b
                .template
                .as_ref()
                .ok_or_else(|| invalid_field("template", "template: required for type template"))?;
            let stored = st
                .store
                .template(inbox.id, &r.name, &r.language)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "template_not_found",
                        "no synced template with this name and language (sync the templates?)",
                    )
                })?;
            let t = to_template(&stored);
            let object = whatsapp::build_template(&t, &r.parameters).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "template_parameters_invalid",
                    e.to_string(),
                )
                .with_extra(
                    serde_json::json!({"field": "template.parameters", "expects": t.params()}),
                )
            })?;
            let meta = serde_json::json!({"content": "template", "template": {
                "name": t.name, "language": t.language, "category": t.category,
                "parameters": {"header": r.parameters.header, "body": r.parameters.body,
                               "header_media_link": r.parameters.header_media_link}}});
            (Content::Template, object, t.render(&r.parameters), meta)
        }
        "interactive" => {
            let v = b
                .interactive
                .clone()
                .ok_or_else(|| invalid_field("interactive", "interactive: required"))?;
            whatsapp::check_interactive(&v).map_err(|e| invalid_field("interactive", e))?;
            let text = v["body"]["text"].as_str().unwrap_or("").to_owned();
            let meta = serde_json::json!({"content": "reply", "interactive": v});
            (Content::Reply, v, text, meta)
        }
        kind @ ("image" | "video" | "audio" | "document" | "sticker") => {
            let v = match kind {
                "image" => b.image.clone(),
                "video" => b.video.clone(),
                "audio" => b.audio.clone(),
                "document" => b.document.clone(),
                _ => b.sticker.clone(),
            }
            .ok_or_else(|| invalid_field(kind, format!("{kind}: required")))?;
            whatsapp::check_media(kind, &v).map_err(|e| invalid_field(kind, e))?;
            let text = match v["caption"].as_str() {
                Some(c) => format!("[{kind}] {c}"),
                None => format!("[{kind}]"),
            };
            let meta = serde_json::json!({"content": "reply", "attachments": [{"type": kind, "link": v["link"], "media_id": v["id"], "caption": v["caption"], "filename": v["filename"]}]});
            (Content::Reply, v, text, meta)
        }
        _ => {
            return Err(invalid_field(
                "type",
                "type: template, interactive, image, video, audio, document or sticker",
            ));
        }
    };
    let to = recipient(&st, &inbox, &c).await?.ok_or_else(no_recipient)?;
    let (sender, sender_kind) = sender_of(b.automated);
    let kind = b.kind.clone();
    let message_kind = if matches!(
        kind.as_str(),
        "image" | "video" | "audio" | "document" | "sticker"
    ) {
        MessageKind::Media
    } else {
        MessageKind::Text
    };
    queue(&st, &me, c.id, &inbox, |current, facts, now| {
        let (messaging_type, _) = allowed(&inbox, facts, now, sender, content)?;
        let m = queued(current, &me, sender_kind, message_kind, &text, now);
        let marker = format!("{}{}", whatsapp::CALLBACK_PREFIX, m.id);
        let body = whatsapp::message_body(&to, &kind, object.clone(), Some(&marker), None);
        Ok(Planned {
            message: m,
            request: serde_json::json!({ "body": body }),
            meta: MessageMeta {
                meta: meta.clone(),
                messaging_type: messaging_type.map(|t| t.as_str().to_owned()),
                tag: None,
            },
        })
    })
    .await
}
