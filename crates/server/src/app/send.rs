//! The one `send` command: everything that goes to a customer — text, files, WhatsApp templates,
//! buttons and lists, answers to comments (public and private) — typed by an agent, sent by their
//! bot or integration, or written by Switchboard itself (the out-of-hours reply, the closing
//! message), on every channel. One capability check (`outbound::fit`: what the channel carries,
//! buttons as a numbered list where it has none), one policy check (`outbound::decide`), one
//! refusal mapping ([`Outgoing::refuse`]), one queue, one renderer of the outbox row per channel
//! ([`render`]).
//!
//! A person's send that is refused is answered (422 mostly) and nothing is stored. An automatic
//! message that is refused is stored all the same, `failed` with the reason, and logged in the
//! conversation's history: it is never dropped in silence.

use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use switchboard_channels::provider::Rendering;
use switchboard_channels::whatsapp;
use switchboard_core::conversation::{self as conv, Action, ActionKind};
use switchboard_core::event::{self, EventDraft, EventKind};
use switchboard_core::outbound::{self, Author, Content, Fit, Unfit};
use switchboard_core::policy::{self, Decision, Facts, MessageTag, Requested};
use switchboard_core::*;
use switchboard_store::{
    Change, MessageMeta, Outbound, OutboundError, OutboxJob, Store, StoreError, StoredTemplate,
    message_with_meta,
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
    fn parse(&self) -> ApiResult<(policy::Content, Requested)> {
        let content = match self.content.as_deref() {
            None => policy::Content::Reply,
            Some(s) => policy::Content::parse(s).ok_or_else(|| {
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
    /// A flow's message (a bot, a scheduled flow).
    Flow,
    /// A comment rule's public or private reply.
    CommentRule,
}

impl Purpose {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::OutsideBusinessHours => "outside_business_hours",
            Self::ClosingMessage => "closing_message",
            Self::Flow => "flow",
            Self::CommentRule => "comment_rule",
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// The message's id (chosen ahead when something else points at it: an uploaded file).
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub author: Author,
    /// Texts already validated ([`validate::MessageText`]).
    pub content: Content,
    pub policy: PolicyRequest,
    pub purpose: Purpose,
    /// A bot's step that sends this message: saved with it (see [`RunRider`]).
    pub run: Option<RunRider>,
}

/// A flow run's step that sends one message, saved in the same transaction as the message when
/// it goes to a provider (one commit for the step and its reply), else just before it.
#[derive(Debug, Clone)]
pub struct RunRider {
    pub save: switchboard_store::RunSave,
    /// The step's history lines (a change of the history only: no conversation state).
    pub change: Option<Change>,
}

/// Why [`Outgoing::send_step`] wrote nothing.
#[derive(Debug)]
pub enum StepError {
    /// The run's step was saved by someone else first: read the run and step again.
    StaleRun,
    Api(ApiError),
}

impl From<ApiError> for StepError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::StaleRun => Self::StaleRun,
            e => Self::Api(e.into()),
        }
    }
}

impl SendRequest {
    /// A reply (no policy options) with a new id.
    pub fn new(conversation_id: ConversationId, author: Author, content: Content) -> Self {
        Self {
            id: MessageId(uuid::Uuid::now_v7()),
            conversation_id,
            author,
            content,
            policy: PolicyRequest::default(),
            purpose: Purpose::Reply,
            run: None,
        }
    }
}

/// A message written (or queued, or stored refused): the row and the API's JSON of it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: Message,
    pub json: serde_json::Value,
}

/// Why a send cannot go out: a person is answered with `status`/`api_code`; an automatic
/// message is stored `failed` with `code`.
pub(crate) struct Refusal {
    status: StatusCode,
    api_code: &'static str,
    code: &'static str,
    message: String,
    extra: serde_json::Value,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            api_code: code,
            code,
            message: message.into(),
            extra: serde_json::json!({}),
        }
    }
    fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = extra;
        self
    }
    /// Told to a person as a plain invalid input (the stored reason stays `code`).
    fn told_as_invalid_input(mut self) -> Self {
        self.api_code = "invalid_input";
        self
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::new(r.status, r.api_code, r.message).with_extra(r.extra)
    }
}

/// Content the channel cannot carry, in words.
fn unfit(channel: ChannelKind, u: Unfit) -> Refusal {
    match u {
        Unfit::TextTooLong(limit) => Refusal::new(
            "text_too_long",
            format!("text: {channel} messages must be {}", limit.describe()),
        )
        .with_extra(serde_json::json!({"field": "text"}))
        .told_as_invalid_input(),
        Unfit::NotSupported(what) => {
            Refusal::new("not_supported", format!("{channel} does not carry {what}"))
        }
        Unfit::TooManyChoices { max } => Refusal::new(
            "too_many_choices",
            format!("buttons: {channel} takes at most {max} choices in one message"),
        )
        .with_extra(serde_json::json!({"field": "buttons", "max": max})),
        Unfit::ChoiceTitleTooLong { max } => Refusal::new(
            "choice_title_too_long",
            format!("buttons: titles on {channel} are at most {max} characters"),
        )
        .with_extra(serde_json::json!({"field": "buttons", "max": max}))
        .told_as_invalid_input(),
        Unfit::ChoiceIdTooLong { max } => Refusal::new(
            "choice_id_too_long",
            format!("buttons: ids on {channel} are 1 to {max} bytes"),
        )
        .with_extra(serde_json::json!({"field": "buttons", "max": max}))
        .told_as_invalid_input(),
    }
}

/// Why buttons went out as a numbered list although the channel has buttons (kept in the
/// message's meta).
fn numbered_because(u: &Unfit) -> serde_json::Value {
    match u {
        Unfit::TooManyChoices { max } => {
            serde_json::json!({"reason": "too_many_choices", "max": max})
        }
        Unfit::ChoiceTitleTooLong { max } => {
            serde_json::json!({"reason": "choice_title_too_long", "max": max})
        }
        Unfit::ChoiceIdTooLong { max } => {
            serde_json::json!({"reason": "choice_id_too_long", "max": max})
        }
        Unfit::NotSupported(what) => serde_json::json!({"reason": "not_supported", "what": what}),
        Unfit::TextTooLong(_) => {
            serde_json::json!({"reason": "unfit"})
        }
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
    Some(Refusal::new(code, message).with_extra(extra))
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
    /// A provider: the outbox sends it to this recipient id (a comment id for comment replies).
    Provider { to: String },
}

/// The content made ready for the thread: its text, what the message's meta records about it,
/// and a template's Send API object (built, and its parameters checked, before the policy).
struct Prepared {
    text: String,
    meta: serde_json::Value,
    template: Option<serde_json::Value>,
    /// Buttons go out as `text` (the numbered list): the provider is handed that text.
    as_text: bool,
}

impl Outgoing {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, outbox: Arc<Notify>) -> Self {
        Self {
            store,
            clock,
            outbox,
        }
    }

    /// Sends `req` and returns the message. An automatic message that cannot go out comes back
    /// `failed` with the reason (and is stored so); a person's is an error and nothing is stored.
    pub async fn send(&self, req: SendRequest) -> ApiResult<Sent> {
        self.send_step(req).await.map_err(|e| match e {
            StepError::StaleRun => StoreError::VersionConflict.into(),
            StepError::Api(e) => e,
        })
    }

    /// Whether a person's send would be refused now (what the channel carries, the messaging
    /// window), without writing anything: a file is checked so before it is stored. The send
    /// itself decides again.
    pub async fn preflight(&self, req: &SendRequest) -> ApiResult<()> {
        let c = self.conversation(req.conversation_id).await?;
        let inbox = self
            .store
            .inbox(c.inbox_id)
            .await?
            .ok_or_else(|| ApiError::not_found("inbox"))?;
        let (purpose, requested) = req.policy.parse()?;
        if let Err(u) = outbound::fit(inbox.channel, &req.content) {
            return Err(unfit(inbox.channel, u).into());
        }
        let rules = policy::rules_for(inbox.channel);
        let now = self.clock.now();
        let facts = self.facts(inbox.channel, &c).await?;
        let decision = outbound::decide(
            &rules,
            facts,
            now,
            req.author,
            &req.content,
            purpose,
            requested,
            false,
        );
        if let Ok(d) = decision
            && let Some(r) = refusal(&d, &policy::summarize(&rules, facts, now), inbox.channel)
        {
            return Err(r.into());
        }
        Ok(())
    }

    /// [`Outgoing::send`] with the run's step of `req.run` saved with the message.
    pub async fn send_step(&self, mut req: SendRequest) -> Result<Sent, StepError> {
        let rider = req.run.take();
        let mut rider = rider;
        let c = self.conversation(req.conversation_id).await?;
        let inbox = self
            .store
            .inbox(c.inbox_id)
            .await?
            .ok_or_else(|| ApiError::not_found("inbox"))?;
        let (purpose, requested) = req.policy.parse()?;
        let summary = thread_text(&req.content);
        let fit = match outbound::fit(inbox.channel, &req.content) {
            Ok(f) => f,
            Err(u) => {
                return self
                    .refuse(&req, &summary, unfit(inbox.channel, u), rider)
                    .await;
            }
        };
        let prepared = match self.prepare(&inbox, &req.content, fit, purpose).await? {
            Ok(p) => p,
            Err(r) => return self.refuse(&req, &summary, r, rider).await,
        };
        let Some(route) = self.recipient(&inbox, &c, &req.content).await? else {
            let message = if crate::meta::is_meta(inbox.channel) {
                "this customer has only commented: answer their comment with a private reply first"
            } else {
                "this customer has no id on this channel to send to"
            };
            let r = Refusal::new("no_messaging_id", message);
            return self.refuse(&req, &prepared.text, r, rider.take()).await;
        };
        let private_reply_sent = match req.content.private_reply_to() {
            Some(r) => self
                .store
                .private_reply_of(inbox.id, &r.comment_id)
                .await?
                .is_some(),
            None => false,
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
            let facts = self.facts(inbox.channel, &current).await?;
            let decision = outbound::decide(
                &rules,
                facts,
                now,
                req.author,
                &req.content,
                purpose,
                requested,
                private_reply_sent,
            );
            // The private-reply rule is about the comment: it answers before the claim does.
            let decision = match decision {
                Ok(d) => d,
                Err(r) => {
                    let r = Refusal::new(r.code(), r.to_string());
                    return self.refuse(&req, &prepared.text, r, rider.take()).await;
                }
            };
            // A person must hold the conversation; automation writes beside whoever holds it.
            let transition = match req.author.actor() {
                Some(actor) => Some(conv::reply(&current, actor, now).map_err(ApiError::from)?),
                None => None,
            };
            if let Some(r) = refusal(
                &decision,
                &policy::summarize(&rules, facts, now),
                inbox.channel,
            ) {
                return self.refuse(&req, &prepared.text, r, rider.take()).await;
            }
            let Decision::Allowed {
                messaging_type,
                tag,
                paid,
            } = decision
            else {
                return Err(ApiError::internal().into());
            };
            let queued = matches!(route, Route::Provider { .. });
            let message = self.message(&current, &req, &prepared.text, now, queued, None);
            let mut meta = prepared.meta.clone();
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
                Route::Direct => {
                    if let Some(rd) = rider.take() {
                        self.save_rider(rd).await?;
                    }
                    self.store.apply(change).await.map(|_| ())
                }
                Route::Provider { to } => {
                    // The step's history rides with the message; its save too (one commit).
                    let run = rider.as_ref().map(|rd| {
                        if let Some(h) = &rd.change {
                            change.actions.extend(h.actions.iter().cloned());
                            change.events.extend(h.events.iter().cloned());
                        }
                        rd.save.clone()
                    });
                    let (job, request) =
                        render(inbox.channel, to, &req.content, &prepared, &message, &meta);
                    let out = Outbound {
                        change,
                        job,
                        request,
                        meta: meta.clone(),
                        private_reply_to: req
                            .content
                            .private_reply_to()
                            .map(|r| r.comment_id.clone()),
                        run,
                    };
                    match self.store.queue_outbound(out).await {
                        Ok(Ok(_)) => {
                            rider = None;
                            self.outbox.notify_one();
                            Ok(())
                        }
                        Ok(Err(OutboundError::PrivateReplyExists)) => {
                            let r = policy::PrivateReplyRefusal::AlreadySent;
                            let r = Refusal::new(r.code(), r.to_string());
                            return self.refuse(&req, &prepared.text, r, rider.take()).await;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match written {
                Ok(()) => {
                    let json = message_with_meta(&message, Some(&meta));
                    return Ok(Sent { message, json });
                }
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    /// Saves a run's step on its own (before a message that does not go through the outbox);
    /// a conflict on the run or on the conversation's history is a stale run: step again.
    async fn save_rider(&self, rd: RunRider) -> Result<(), StepError> {
        match self.store.save_run(rd.save, rd.change).await {
            Ok(()) => Ok(()),
            Err(StoreError::VersionConflict | StoreError::StaleRun) => Err(StepError::StaleRun),
            Err(e) => Err(e.into()),
        }
    }

    /// The one refusal mapping: a person is told; an automatic message is stored `failed` with
    /// the reason and the refusal is logged in the history.
    async fn refuse(
        &self,
        req: &SendRequest,
        text: &str,
        r: Refusal,
        rider: Option<RunRider>,
    ) -> Result<Sent, StepError> {
        if req.author.actor().is_some() {
            return Err(ApiError::from(r).into());
        }
        if let Some(rd) = rider {
            self.save_rider(rd).await?;
        }
        tracing::info!(conversation_id = %req.conversation_id, purpose = req.purpose.as_str(), reason = r.code, "automatic message refused");
        for _ in 0..5 {
            let current = self.conversation(req.conversation_id).await?;
            let now = self.clock.now();
            let message = self.message(&current, req, text, now, false, Some(r.code));
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
                Ok(_) => {
                    let json = message_with_meta(&message, Some(&meta));
                    return Ok(Sent { message, json });
                }
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    /// The thread's text and meta for the content; a template is looked up and its parameters
    /// checked here, so a wrong one never reaches the policy or the provider.
    async fn prepare(
        &self,
        inbox: &Inbox,
        content: &Content,
        fit: Fit,
        purpose: policy::Content,
    ) -> ApiResult<Result<Prepared, Refusal>> {
        let plain = |text: String, meta| Prepared {
            text,
            meta,
            template: None,
            as_text: false,
        };
        Ok(Ok(match content {
            Content::Text(t) => plain(t.clone(), serde_json::json!({"content": purpose})),
            Content::Interactive(i) => {
                let mut meta = serde_json::json!({"content": purpose, "interactive": i});
                match fit {
                    Fit::NumberedList { text, because } => {
                        meta["sent_as"] = serde_json::json!("numbered_list");
                        if let Some(u) = &because {
                            meta["numbered_because"] = numbered_because(u);
                        }
                        Prepared {
                            as_text: true,
                            ..plain(text, meta)
                        }
                    }
                    Fit::AsIs => plain(i.body.clone(), meta),
                }
            }
            Content::Media(m) => {
                let (link, media_id) = match &m.source {
                    outbound::MediaSource::Link(l) => (Some(l.as_str()), None),
                    outbound::MediaSource::Hosted(id) => (None, Some(id.as_str())),
                    // Our own files are listed from their attachment rows.
                    outbound::MediaSource::Uploaded(_) => {
                        return Ok(Ok(plain(
                            m.thread_text(),
                            serde_json::json!({"content": purpose}),
                        )));
                    }
                };
                let meta = serde_json::json!({"content": purpose, "attachments": [{"type": m.kind,
                    "link": link, "media_id": media_id, "caption": m.caption, "filename": m.filename}]});
                plain(m.thread_text(), meta)
            }
            Content::CommentReply(r) => {
                let key = if r.private {
                    "private_reply_to"
                } else {
                    "comment_reply_to"
                };
                let meta = serde_json::json!({ key: {"comment_id": r.comment_id, "message_id": r.message_id} });
                plain(r.text.clone(), meta)
            }
            Content::Template(r) => {
                let Some(stored) = self.store.template(inbox.id, &r.name, &r.language).await?
                else {
                    return Ok(Err(Refusal::new(
                        "template_not_found",
                        "no synced template with this name and language (sync the templates?)",
                    )));
                };
                let t = to_template(&stored);
                let object = match whatsapp::build_template(&t, &r.parameters) {
                    Ok(o) => o,
                    Err(e) => {
                        let extra = serde_json::json!({"field": "template.parameters", "expects": t.params()});
                        return Ok(Err(Refusal::new(
                            "template_parameters_invalid",
                            e.to_string(),
                        )
                        .with_extra(extra)));
                    }
                };
                let p = &r.parameters;
                let meta = serde_json::json!({"content": "template", "template": {
                    "name": t.name, "language": t.language, "category": t.category,
                    "parameters": {"header": p.header, "body": p.body,
                                   "header_media_link": p.header_media_link}}});
                Prepared {
                    text: t.render(p),
                    meta,
                    template: Some(object),
                    as_text: false,
                }
            }
        }))
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
        text: &str,
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
            id: req.id,
            conversation_id: c.id,
            inbox_id: c.inbox_id,
            direction: Direction::Outbound,
            sender_kind: req.author.sender_kind(),
            sender_agent_id: req.author.actor().map(|a| a.agent_id),
            kind: req.content.message_kind(),
            text: text.to_owned(),
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

    /// Who to send to on this inbox: the comment for a comment reply; nobody to look up for
    /// live chat; a messaging id on Meta (a commenter has none until a private reply); for
    /// WhatsApp the phone number (`wa_id`) when known, else the business-scoped user id.
    async fn recipient(
        &self,
        inbox: &Inbox,
        c: &Conversation,
        content: &Content,
    ) -> ApiResult<Option<Route>> {
        if let Content::CommentReply(r) = content {
            return Ok(Some(Route::Provider {
                to: r.comment_id.clone(),
            }));
        }
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
        Ok(window_facts(self.store.as_ref(), channel, c).await?)
    }
}

/// What the policy knows about `c` besides the clock (the send command's and the timer runner's).
pub async fn window_facts(
    store: &dyn Store,
    channel: ChannelKind,
    c: &Conversation,
) -> Result<Facts, StoreError> {
    let mut f = Facts::since(c.last_customer_message_at);
    if channel == ChannelKind::Zalo
        && let Some(last) = c.last_customer_message_at
    {
        f.sent_since = store.replies_since(c.id, last).await?;
    }
    Ok(f)
}

/// What the thread shows for content refused before it was prepared.
pub(crate) fn thread_text(content: &Content) -> String {
    match content {
        Content::Text(t) => t.clone(),
        Content::Media(m) => m.thread_text(),
        Content::Template(t) => format!("[template] {}", t.name),
        Content::Interactive(i) => i.body.clone(),
        Content::CommentReply(r) => r.text.clone(),
    }
}

/// A synced template as the WhatsApp module reads it.
pub fn to_template(t: &StoredTemplate) -> whatsapp::Template {
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

/// The one place content becomes an outbox row, rendered by the channel's provider: the job and
/// its request. Meta's rows carry the policy's parameters (the body is built at send time); the
/// others carry the provider's body, built by the channel's module. Content a channel cannot
/// carry never gets here (the capability table refused it); buttons that go out as a numbered
/// list are handed over as that text, so a provider renders only buttons it carries.
fn render(
    channel: ChannelKind,
    to: &str,
    content: &Content,
    prepared: &Prepared,
    message: &Message,
    meta: &MessageMeta,
) -> (OutboxJob, serde_json::Value) {
    let numbered;
    let content = if prepared.as_text {
        numbered = Content::Text(prepared.text.clone());
        &numbered
    } else {
        content
    };
    let r = Rendering {
        to,
        content,
        text: &prepared.text,
        template: prepared.template.as_ref(),
        message_id: message.id,
        messaging_type: meta.messaging_type.as_deref(),
        tag: meta.tag.as_deref(),
    };
    match switchboard_channels::for_channel(channel) {
        Some(p) => p.render(&r),
        // Live chat has no outbox: its messages are delivered over the widget's socket.
        None => (
            OutboxJob::Send,
            serde_json::json!({ "to_id": to, "text": r.text }),
        ),
    }
}
