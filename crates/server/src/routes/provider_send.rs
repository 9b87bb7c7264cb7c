//! WhatsApp's own sends: templates (list, sync) and `POST /conversations/{id}/whatsapp-messages`
//! (a template, an interactive message or media by link), which reads WhatsApp's message object
//! into the outbound model and sends it through the one `send` command (the policy, the queue
//! and the refusals every message has; template parameters are checked before the provider is
//! called).
//!
//! A send the policy refuses gets 422 (`template_required`, `window_closed`, ...) and nothing is
//! stored or queued.

use crate::app::inbox::visible_inbox;
use crate::app::send::{SendRequest, to_template};
use crate::app::visible;
use crate::auth::CurrentAgent;
use crate::error::ApiPath as Path;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::responses::created;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_channels::whatsapp;
use switchboard_core::outbound::{Author, Content, TemplateRef};
use switchboard_core::*;
use switchboard_store::StoredTemplate;

// ------------------------------------------------------------------ templates

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

fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).with_extra(serde_json::json!({ "field": field }))
}

impl RichMessage {
    /// The outbound model's content, checked against WhatsApp's limits.
    fn content(self) -> ApiResult<Content> {
        let kind = self.kind.as_str();
        let object = match kind {
            "template" => {
                let t = self.template.ok_or_else(|| {
                    invalid_field("template", "template: required for type template")
                })?;
                return Ok(Content::Template(t));
            }
            "interactive" => self.interactive,
            "image" => self.image,
            "video" => self.video,
            "audio" => self.audio,
            "document" => self.document,
            "sticker" => self.sticker,
            _ => {
                return Err(invalid_field(
                    "type",
                    "type: template, interactive, image, video, audio, document or sticker",
                ));
            }
        };
        let v = object.ok_or_else(|| invalid_field(kind, format!("{kind}: required")))?;
        if kind == "interactive" {
            let i = whatsapp::parse_interactive(&v).map_err(|e| invalid_field(kind, e))?;
            return Ok(Content::Interactive(i));
        }
        let m = whatsapp::parse_media(kind, &v).map_err(|e| invalid_field(kind, e))?;
        Ok(Content::Media(m))
    }
}

pub async fn whatsapp_message(
    State(st): State<AppState>,
    me: CurrentAgent,
    Path(id): Path<ConversationId>,
    ApiJson(b): ApiJson<RichMessage>,
) -> ApiResult<Response> {
    let c = visible(&st, &me, id).await?;
    if crate::app::inbox::channel_of(&st, &c).await? != ChannelKind::Whatsapp {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            "whatsapp-messages are for WhatsApp conversations",
        ));
    }
    let author = Author::Agent {
        actor: me.actor(),
        automated: b.automated,
    };
    let req = SendRequest::new(c.id, author, b.content()?);
    Ok(created(st.outgoing.send(req).await?.json))
}
