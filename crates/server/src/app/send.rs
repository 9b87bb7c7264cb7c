//! The one `send` command: every text message to a customer — typed by an agent, sent by their
//! bot or integration, or written by Switchboard itself (the out-of-hours reply, the closing
//! message) — on every channel, decided by the same messaging-window policy.
//!
//! A person's send that the policy refuses is answered 422 and nothing is stored. An automatic
//! message that is refused is stored all the same, `failed` with the reason, and logged in the
//! conversation's history: it is never dropped in silence.

use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use serde::Deserialize;
use std::sync::Arc;
use switchboard_channels::{telegram, whatsapp, zalo};
use switchboard_core::conversation::{self as conv, Action, ActionKind};
use switchboard_core::event::{self, EventDraft, EventKind};
use switchboard_core::outbound::{self, Author};
use switchboard_core::policy::{self, Content, Decision, Facts, MessageTag, Requested};
use switchboard_core::*;
use switchboard_store::{
    Change, MessageMeta, Outbound, OutboundError, OutboxJob, Store, StoreError, message_with_meta,
};
use tokio::sync::Notify;

/// `"policy"` in a send request: what the sender asks of the messaging-window policy.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// "I am only replying to the customer; nothing promotional" (unlocks `HUMAN_AGENT`).
    #[serde(default)]
    pub human_agent_confirmed: bool,
    /// An explicit message tag, where the channel still has it.
    pub tag: Option<String>,
    /// What the message is for: `reply` (default), `event_reminder`, `order_status`, `account_alert`.
    pub content: Option<String>,
}

impl PolicyRequest {
    fn parse(&self) -> ApiResult<(Content, Requested)> {
        let content = match self.content.as_deref() {
            None => Content::Reply,
            Some(s) => Content::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "policy.content: must be reply, event_reminder, order_status or account_alert",
                )
            })?,
        };
        let tag = self
            .tag
            .as_deref()
            .map(|t| {
                MessageTag::parse(&t.to_uppercase())
                    .ok_or_else(|| ApiError::invalid("policy.tag: unknown message tag"))
            })
            .transpose()?;
        Ok((
            content,
            Requested {
                human_agent_confirmed: self.human_agent_confirmed,
                tag,
            },
        ))
    }
}

/// What an automatic message is for (kept in the history with a refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Written by a person (or their bot) through the API.
    Reply,
    OutsideBusinessHours,
    ClosingMessage,
}

impl Purpose {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::OutsideBusinessHours => "outside_business_hours",
            Self::ClosingMessage => "closing_message",
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub conversation_id: ConversationId,
    pub author: Author,
    /// Already validated ([`validate::MessageText`]).
    pub text: String,
    pub policy: PolicyRequest,
    pub purpose: Purpose,
}

/// Why a send cannot go out (a 422 for a person; a stored, failed message for automation).
pub(crate) struct Refusal {
    code: &'static str,
    message: String,
    extra: serde_json::Value,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            r.code,
            r.message,
        )
        .with_extra(r.extra)
    }
}

/// The messaging-window policy's answer in words, for every channel.
pub(crate) fn refusal(
    d: &Decision,
    summary: &policy::WindowSummary,
    channel: ChannelKind,
) -> Option<Refusal> {
    use policy::RefusalReason as R;
    let (code, message, mut extra) = match d {
        Decision::Allowed { .. } => return None,
        Decision::NeedsConfirmation {
            confirmation,
            until,
            ..
        } => (
            "human_agent_confirmation_required",
            "more than 24 hours since the customer's last message: confirm this is a personal, non-promotional reply (HUMAN_AGENT)",
            serde_json::json!({"confirmation": confirmation, "until": until}),
        ),
        Decision::Refused { reason, options } => {
            let templates = outbound::capabilities(channel).templates;
            let (code, message) = match reason {
                R::TagNotAvailable => {
                    ("tag_not_allowed", "this tag does not exist on this channel")
                }
                R::TagRetired => ("tag_not_allowed", "this tag is no longer accepted by Meta"),
                R::TagNotApplicable => (
                    "tag_not_allowed",
                    "this tag does not fit this message or this moment",
                ),
                R::TemplateRequired => (
                    "template_required",
                    "the customer-service window is closed: only an approved template can be sent now",
                ),
                R::HumanAgentOnly => (
                    "window_closed",
                    "the 24-hour window is closed; only a human agent may still reply (automation may not use HUMAN_AGENT)",
                ),
                R::NoCustomerMessage if templates => (
                    "window_closed",
                    "the customer has not written yet: only an approved template can open the conversation",
                ),
                R::NoCustomerMessage => (
                    "window_closed",
                    "the customer has not written to this account yet",
                ),
                R::WindowClosed => (
                    "window_closed",
                    "the messaging window is closed; wait for the customer to write again",
                ),
            };
            (
                code,
                message,
                serde_json::json!({"reason": reason, "options": options}),
            )
        }
    };
    if let Some(o) = extra.as_object_mut() {
        o.insert("policy".into(), serde_json::json!(summary));
    }
    Some(Refusal {
        code,
        message: message.to_owned(),
        extra,
    })
}

/// Sends messages: writes them (live chat) or queues them for the outbox (providers). Cheap to
/// clone; the service, the routing and the timers each hold one.
#[derive(Clone)]
pub struct Outgoing {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Wakes the outbox worker when something was queued.
    outbox: Arc<Notify>,
}

/// How the message goes out once allowed.
enum Route {
    /// Live chat: the row is the delivery (the widget reads it).
    Direct,
    /// A provider: the outbox sends it to this recipient id.
    Provider { to: String },
}

impl Outgoing {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, outbox: Arc<Notify>) -> Self {
        Self {
            store,
            clock,
            outbox,
        }
    }

    /// Sends `req` and returns the message as the API shows it (with its extras). An automatic
    /// message the policy refuses comes back `failed` with the reason (and is stored so).
    pub async fn send(&self, req: SendRequest) -> ApiResult<serde_json::Value> {
        let c = self.conversation(req.conversation_id).await?;
        let inbox = self
            .store
            .inbox(c.inbox_id)
            .await?
            .ok_or_else(|| ApiError::not_found("inbox"))?;
        let (content, requested) = req.policy.parse()?;
        let limit = outbound::capabilities(inbox.channel).text;
        if !limit.fits(&req.text) {
            let message = format!(
                "text: {} messages must be {}",
                inbox.channel,
                limit.describe()
            );
            return self
                .refuse_or_fail(
                    &req,
                    Refusal {
                        code: "text_too_long",
                        message,
                        extra: serde_json::json!({"field": "text"}),
                    },
                    |r| ApiError::invalid(r.message).with_extra(r.extra),
                )
                .await;
        }
        let route = match self.recipient(&inbox, &c).await? {
            Some(r) => r,
            None => {
                let message = if crate::meta::is_meta(inbox.channel) {
                    "this customer has only commented: answer their comment with a private reply first"
                } else {
                    "this customer has no id on this channel to send to"
                };
                let r = Refusal {
                    code: "no_messaging_id",
                    message: message.to_owned(),
                    extra: serde_json::json!({}),
                };
                return self.refuse_or_fail(&req, r, ApiError::from).await;
            }
        };
        let rules = policy::rules_for(inbox.channel);
        // Decided on the conversation just read; read again only after a concurrent change.
        let mut fresh = Some(c);
        for _ in 0..5 {
            let current = match fresh.take() {
                Some(c) => c,
                None => self.conversation(req.conversation_id).await?,
            };
            let now = self.clock.now();
            // A person must hold the conversation; automation writes beside whoever holds it.
            let transition = match req.author.actor() {
                Some(actor) => Some(conv::reply(&current, actor, now)?),
                None => None,
            };
            let facts = self.facts(inbox.channel, &current).await?;
            let decision = policy::decide(
                &rules,
                facts,
                now,
                req.author.policy_sender(),
                content,
                requested,
            );
            if let Some(r) = refusal(
                &decision,
                &policy::summarize(&rules, facts, now),
                inbox.channel,
            ) {
                return self.refuse_or_fail(&req, r, ApiError::from).await;
            }
            let Decision::Allowed {
                messaging_type,
                tag,
                paid,
            } = decision
            else {
                return Err(ApiError::internal());
            };
            let queued = matches!(route, Route::Provider { .. });
            let message = self.message(&current, &req, now, queued, None);
            let mut meta = serde_json::json!({"content": content});
            if inbox.channel == ChannelKind::Zalo {
                meta["quota"] = serde_json::json!(if paid { "paid" } else { "free" });
                meta["free_replies_used_before"] = serde_json::json!(facts.sent_since);
            }
            let meta = MessageMeta {
                meta,
                messaging_type: messaging_type.map(|m| m.as_str().to_owned()),
                tag: tag.map(|t| t.as_str().to_owned()),
            };
            let mut change = self.change(&current, transition, &message, &meta, now);
            if req.purpose == Purpose::OutsideBusinessHours {
                change.actions.push(Action {
                    kind: ActionKind::AutoReplied,
                    actor: None,
                    detail: serde_json::json!({"reason": "outside_business_hours"}),
                });
            }
            let written = match &route {
                Route::Direct => self.store.apply(change).await.map(|_| ()),
                Route::Provider { to } => {
                    let request = render(inbox.channel, to, &req.text, &message, &meta);
                    match self
                        .store
                        .queue_outbound(Outbound {
                            change,
                            job: OutboxJob::Send,
                            request,
                            meta: meta.clone(),
                            private_reply_to: None,
                        })
                        .await
                    {
                        Ok(Ok(_)) => {
                            self.outbox.notify_one();
                            Ok(())
                        }
                        Ok(Err(OutboundError::PrivateReplyExists)) => {
                            return Err(ApiError::internal());
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match written {
                Ok(()) => return Ok(message_with_meta(&message, Some(&meta))),
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    /// A person is told (`as_error`); an automatic message is stored `failed` with the reason
    /// and the refusal is logged in the history.
    async fn refuse_or_fail(
        &self,
        req: &SendRequest,
        r: Refusal,
        as_error: impl FnOnce(Refusal) -> ApiError,
    ) -> ApiResult<serde_json::Value> {
        if req.author != Author::Automation {
            return Err(as_error(r));
        }
        tracing::info!(conversation_id = %req.conversation_id, purpose = req.purpose.as_str(), reason = r.code, "automatic message refused");
        for _ in 0..5 {
            let current = self.conversation(req.conversation_id).await?;
            let now = self.clock.now();
            let message = self.message(&current, req, now, false, Some(r.code));
            let meta = MessageMeta {
                meta: serde_json::json!({"refused": {"reason": r.code, "message": r.message, "detail": r.extra}}),
                ..MessageMeta::default()
            };
            let mut change = self.change(&current, None, &message, &meta, now);
            change.actions.push(Action {
                kind: ActionKind::AutomaticMessageRefused,
                actor: None,
                detail: serde_json::json!({"purpose": req.purpose.as_str(), "reason": r.code}),
            });
            // The history lists it: tell the clients the conversation's log changed.
            change.events.push(EventDraft {
                inbox_id: Some(current.inbox_id),
                conversation_id: Some(current.id),
                kind: EventKind::ConversationUpdated,
                payload: serde_json::json!({
                    "conversation": event::conversation_json(&current),
                    "reason": "automatic_message_refused",
                }),
            });
            match self.store.apply(change).await {
                Ok(_) => return Ok(message_with_meta(&message, Some(&meta))),
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    async fn conversation(&self, id: ConversationId) -> ApiResult<Conversation> {
        self.store
            .conversation(id)
            .await?
            .ok_or_else(|| ApiError::not_found("conversation"))
    }

    fn message(
        &self,
        c: &Conversation,
        req: &SendRequest,
        now: Timestamp,
        queued: bool,
        refused: Option<&str>,
    ) -> Message {
        let delivery_status = match (refused, queued) {
            (Some(_), _) => DeliveryStatus::Failed,
            (None, true) => DeliveryStatus::Queued,
            // Live chat delivers over the visitor's socket as the row commits.
            (None, false) => DeliveryStatus::Sent,
        };
        Message {
            id: MessageId(uuid::Uuid::now_v7()),
            conversation_id: c.id,
            inbox_id: c.inbox_id,
            direction: Direction::Outbound,
            sender_kind: req.author.sender_kind(),
            sender_agent_id: req.author.actor().map(|a| a.agent_id),
            kind: MessageKind::Text,
            text: req.text.clone(),
            provider_message_id: None,
            delivery_status,
            failure_reason: refused.map(str::to_owned),
            created_at: now,
        }
    }

    /// The message (with the reply's transition, if a person sends) as one compare-and-set change.
    fn change(
        &self,
        current: &Conversation,
        transition: Option<Transition>,
        message: &Message,
        meta: &MessageMeta,
        now: Timestamp,
    ) -> Change {
        let transition = transition.filter(|t| t.changed);
        let mut events: Vec<EventDraft> = Vec::new();
        if let Some(t) = &transition
            && !t.actions.is_empty()
        {
            events.extend(event::for_transition(Some(current), t));
        }
        events.push(EventDraft {
            inbox_id: Some(message.inbox_id),
            conversation_id: Some(message.conversation_id),
            kind: EventKind::MessageCreated,
            payload: serde_json::json!({ "message": message_with_meta(message, Some(meta)) }),
        });
        Change {
            expected_version: current.version,
            conversation_id: current.id,
            workspace_id: current.workspace_id,
            actions: transition
                .as_ref()
                .map(|t| t.actions.clone())
                .unwrap_or_default(),
            conversation: transition.map(|t| t.conversation),
            message: Some(message.clone()),
            events,
            now,
        }
    }

    /// Who to send to on this inbox: nobody to look up for live chat; a messaging id on Meta
    /// (a commenter has none until a private reply); for WhatsApp the phone number (`wa_id`)
    /// when known, else the business-scoped user id.
    async fn recipient(&self, inbox: &Inbox, c: &Conversation) -> ApiResult<Option<Route>> {
        if inbox.channel == ChannelKind::Livechat {
            return Ok(Some(Route::Direct));
        }
        let to = if crate::meta::is_meta(inbox.channel) {
            self.store.messaging_id(c.contact_id, c.inbox_id).await?
        } else {
            let ids = self.store.identities_in(c.contact_id, inbox.id).await?;
            ids.iter()
                .find(|i| !i.contains('.'))
                .or(ids.first())
                .cloned()
        };
        Ok(to.map(|to| Route::Provider { to }))
    }

    /// What the policy knows besides the clock: Zalo counts the replies since the customer's
    /// last message (its free quota).
    pub async fn facts(&self, channel: ChannelKind, c: &Conversation) -> ApiResult<Facts> {
        let mut f = Facts::since(c.last_customer_message_at);
        if channel == ChannelKind::Zalo
            && let Some(last) = c.last_customer_message_at
        {
            f.sent_since = self.store.replies_since(c.id, last).await?;
        }
        Ok(f)
    }
}

/// The outbox row's request for a text on this channel: Meta's rows carry the policy's
/// parameters (the body is built at send time); the others carry the provider's body.
fn render(
    channel: ChannelKind,
    to: &str,
    text: &str,
    message: &Message,
    meta: &MessageMeta,
) -> serde_json::Value {
    match channel {
        ChannelKind::Messenger | ChannelKind::Instagram => serde_json::json!({
            "recipient_id": to,
            "messaging_type": meta.messaging_type,
            "tag": meta.tag,
            "text": text,
        }),
        ChannelKind::Whatsapp => {
            let marker = format!("{}{}", whatsapp::CALLBACK_PREFIX, message.id);
            serde_json::json!({ "body": whatsapp::text_body(to, text, Some(&marker)) })
        }
        ChannelKind::Zalo => {
            serde_json::json!({ "endpoint": "cs", "body": zalo::text_body(to, text, None) })
        }
        ChannelKind::Telegram => {
            serde_json::json!({ "body": telegram::send_message_body(to, text, None) })
        }
        ChannelKind::Shopee | ChannelKind::Livechat => {
            serde_json::json!({ "to_id": to, "text": text })
        }
    }
}
