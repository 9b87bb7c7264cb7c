//! The one trait every provider implements, and the registry of them.
//!
//! A webhook is handled the same way for every provider: the accounts the body names are read
//! first ([`Provider::claims`], bounded, before anything else of the body is trusted), their
//! inboxes are looked up, the request is checked against each inbox's secret
//! ([`Provider::verify`]), and only then is the body parsed into channel-neutral
//! [`InboundEvent`]s for the inboxes that verified ([`Provider::parse`]), each with what has to
//! happen around storing it ([`Effect`]). Everything here is pure: the server does the lookups,
//! the storing and the effects.

use serde_json::Value;
use std::collections::HashMap;
use switchboard_core::ingest::InboundEvent;
use switchboard_core::outbound::{Content, OutboxJob};
use switchboard_core::{ChannelKind, Inbox, InboxId, MessageId, Timestamp};

/// How a failed provider call should be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Try again later (rate limit, transient error, 5xx, timeout).
    pub retry: bool,
    /// A stable reason for the agent and the API: `window_closed`, `token_expired`, ...
    pub reason: &'static str,
    /// The provider's "come back after" in ms, when it said so.
    pub retry_after_ms: Option<i64>,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
}

/// A customer's name and picture, from a provider's profile API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub name: Option<String>,
    /// The customer's public handle (Instagram, Telegram): their profile's link.
    pub username: Option<String>,
    pub picture: Option<Picture>,
}

/// A customer's picture as the provider names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// What identifies the picture at the provider (Telegram's `file_unique_id`, else its URL): a
    /// picture we copied under the same key is not downloaded again.
    pub key: String,
    pub source: PictureSource,
    /// Whether the provider's policy lets us keep the bytes (Instagram's does not: its URL is
    /// shown as is).
    pub storable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PictureSource {
    /// Download it from here.
    Url(String),
    /// A file id: [`Provider::picture_call`] asks where to download it (Telegram's `getFile`).
    File(String),
}

/// The largest customer picture we copy (bytes); a provider's profile picture is far smaller.
pub const MAX_PICTURE_BYTES: usize = 5 * 1024 * 1024;

/// What a webhook event adds to conversation metering (WhatsApp's pricing).
#[derive(Debug, Clone, PartialEq)]
pub enum Usage {
    /// The customer wrote (or reacted): opens or extends the service window.
    Customer {
        user: String,
        /// The provider's message id (the event is metered once per id).
        wamid: String,
        at: Timestamp,
        /// From an ad or a Page's call to action (the free entry point applies).
        from_ad: bool,
    },
    /// A status of one of our messages: a delivered one may be charged.
    Status {
        provider_message_id: String,
        /// Our message, by the marker the provider echoed back.
        ours: Option<MessageId>,
        /// `sent`, `delivered`, `read`, `played`, `failed`.
        status: String,
        /// The customer it went to, when the status names them.
        recipient: Option<String>,
        at: Timestamp,
        /// The provider's own pricing object, kept for reconciliation.
        pricing: Option<Value>,
    },
}

/// A message template changed status or category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateChange {
    pub template_id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
}

/// An incoming webhook request, as the provider's checks need it.
pub struct WebhookRequest<'a> {
    pub body: &'a [u8],
    /// Header names in lower case.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The inbox named by the URL (Telegram: one URL per bot).
    pub inbox: Option<InboxId>,
    /// This server's public URL (Shopee signs pushes with the callback URL).
    pub public_url: &'a str,
}

impl WebhookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// What a webhook says it is for, read before it is verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Claim {
    /// A connected account: a Page, an Instagram account, a WhatsApp number, a Zalo OA, a shop.
    Account(ChannelKind, String),
    /// A WhatsApp business account (template updates name only that).
    Business(String),
    /// The inbox in the URL.
    Inbox(InboxId),
}

/// The accounts a body names: few enough to look up before verifying, or too many (then the
/// request is checked against every inbox of the provider first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claims {
    Named(Vec<Claim>),
    TooMany,
}

/// The inboxes whose secret verified the request, by the claims that found them.
#[derive(Debug, Default)]
pub struct Verified {
    by_claim: HashMap<Claim, Vec<Inbox>>,
}

impl Verified {
    pub fn add(&mut self, claim: Claim, inbox: Inbox) {
        let v = self.by_claim.entry(claim).or_default();
        if !v.iter().any(|i| i.id == inbox.id) {
            v.push(inbox);
        }
    }
    /// The one inbox for an account (or the URL's inbox).
    pub fn one(&self, claim: &Claim) -> Option<&Inbox> {
        self.by_claim.get(claim).and_then(|v| v.first())
    }
    /// Every inbox a claim found (a WhatsApp business account can have many numbers).
    pub fn all(&self, claim: &Claim) -> &[Inbox] {
        self.by_claim.get(claim).map_or(&[], Vec::as_slice)
    }
    /// A verified inbox by its id.
    pub fn by_id(&self, id: InboxId) -> Option<&Inbox> {
        self.by_claim.values().flatten().find(|i| i.id == id)
    }
    pub fn is_empty(&self) -> bool {
        self.by_claim.values().all(Vec::is_empty)
    }
}

/// What has to happen around storing an event, beside the event itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The customer's name and picture after their first message: the provider's profile API
    /// where it has one, else (and beside it) `name`, the name the event itself carries
    /// (WhatsApp's `contacts[].profile.name`, Telegram's `from`, Shopee's `from_user_name`).
    FetchProfile {
        customer: String,
        name: Option<String>,
    },
    /// The customer can be messaged again (`None`: they wrote, followed, unblocked) or cannot
    /// (the reason: `unfollowed`, `user_blocked`).
    Reachable {
        customer: String,
        unreachable: Option<&'static str>,
    },
    /// The customer shared a phone number or an email (kept unless one is set already).
    SharedDetail(String),
    /// An echo without a marker of ours: a send of ours still waiting for its answer with exactly
    /// this text is taken to be it (so it is not stored twice).
    EchoByText,
    /// Conversation metering (WhatsApp).
    Usage(Usage),
    /// A message template changed status or category (WhatsApp).
    Template(TemplateChange),
    /// The webhook is answered with this (Telegram: a method call in the answer).
    Respond(Value),
    /// Something the shop's owner should hear of, for the logs (never a customer's words).
    Warn { what: &'static str, detail: String },
}

/// One event (or only effects) for one inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub inbox: InboxId,
    /// The provider's time: events are applied in this order (providers do not guarantee one).
    pub at: Timestamp,
    pub event: Option<InboundEvent>,
    pub effects: Vec<Effect>,
}

impl Arrival {
    pub fn event(inbox: &Inbox, at: Timestamp, event: InboundEvent) -> Self {
        Self {
            inbox: inbox.id,
            at,
            event: Some(event),
            effects: Vec::new(),
        }
    }
    pub fn effect(inbox: &Inbox, at: Timestamp, effect: Effect) -> Self {
        Self {
            inbox: inbox.id,
            at,
            event: None,
            effects: vec![effect],
        }
    }
    #[must_use]
    pub fn with(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }
}

impl Arrival {
    /// Replaces every implausible provider time (a missing timestamp read as 0, a far-future
    /// one) by the receive time `now`: in the ordering time, the event and the metering
    /// (`core::ingest::plausible_time`). The server does this to every parsed arrival.
    pub fn settle_times(&mut self, now: Timestamp) {
        use switchboard_core::ingest::plausible_time;
        self.at = plausible_time(self.at, now);
        if let Some(e) = &mut self.event {
            e.settle_times(now);
        }
        for e in &mut self.effects {
            if let Effect::Usage(Usage::Customer { at, .. } | Usage::Status { at, .. }) = e {
                *at = plausible_time(*at, now);
            }
        }
    }
}

/// A verified webhook's arrivals as ingest takes them: parsed by `p`, with plausible times, in
/// provider time order (providers do not guarantee one, §1.3).
pub fn arrivals(
    p: &dyn Provider,
    req: &WebhookRequest<'_>,
    inboxes: &Verified,
    now: Timestamp,
) -> Result<Vec<Arrival>, BadWebhook> {
    let mut out = p.parse(req, inboxes, now)?;
    for a in &mut out {
        a.settle_times(now);
    }
    out.sort_by_key(|a| a.at);
    Ok(out)
}

/// How a stored webhook is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// 200 with this plain text (Meta's `EVENT_RECEIVED`).
    Text(&'static str),
    /// 200, empty.
    Empty,
    /// 200 with this JSON (Telegram: a method call in the answer).
    Json(Value),
}

/// A webhook body that verified but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadWebhook(pub String);

/// A call to a provider's API: built by the provider, made by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    pub method: &'static str,
    pub url: String,
    /// Values may be tokens: never logged.
    pub headers: Vec<(&'static str, String)>,
    pub body: ApiBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiBody {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
    /// `multipart/form-data`: these fields, then the outbox row's file (its bytes are read by
    /// the server, once, straight into the body) under `file_field`.
    Multipart {
        fields: Vec<(&'static str, String)>,
        file_field: &'static str,
    },
}

impl ApiCall {
    pub fn get(url: String) -> Self {
        Self {
            method: "GET",
            url,
            headers: Vec::new(),
            body: ApiBody::None,
        }
    }
    pub fn post(url: String, body: Value) -> Self {
        Self {
            method: "POST",
            url,
            headers: Vec::new(),
            body: ApiBody::Json(body),
        }
    }
    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A provider's answer to an [`ApiCall`].
#[derive(Debug, Clone, Copy)]
pub struct ApiAnswer<'a> {
    pub status: u16,
    pub body: &'a [u8],
    pub retry_after: Option<&'a str>,
    /// Meta's `X-Business-Use-Case-Usage` (how long to back off when throttled).
    pub usage: Option<&'a str>,
}

impl ApiAnswer<'_> {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(self.body).unwrap_or(Value::Null)
    }
}

/// What the `send` command hands a provider to render into an outbox row (after the policy
/// allowed it and the content was checked against the channel's capabilities).
#[derive(Debug, Clone, Copy)]
pub struct Rendering<'a> {
    /// The customer's id on the channel.
    pub to: &'a str,
    pub content: &'a Content,
    /// The text as the thread shows it (a text, a caption, buttons as a numbered list...).
    pub text: &'a str,
    /// A WhatsApp template's `template` object, filled and checked.
    pub template: Option<&'a Value>,
    /// Our message: carried as a marker where the provider echoes one back.
    pub message_id: MessageId,
    /// The policy's Send API parameters (Messenger, Instagram).
    pub messaging_type: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// One outbox row to deliver: what the `send` command queued.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub job: OutboxJob,
    /// What `send` rendered for the channel (recipient, body, text...).
    pub request: &'a Value,
    /// Our message: carried as a marker where the provider echoes one back.
    pub message_id: MessageId,
    /// The file the row sends, when it sends one uploaded to Switchboard.
    pub file: Option<&'a OutFile>,
    /// What the provider's upload answered ([`Provider::uploaded`]): its handle for the file.
    pub uploaded: Option<&'a Value>,
}

/// A file of ours an outbox row sends: a signed link to it (made at send time, so it is fresh
/// on every attempt) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub url: String,
    pub filename: String,
    /// Derived from its bytes (`core::media::sniff`).
    pub content_type: String,
    pub size: u64,
}

/// What a rendered request records of a file uploaded to Switchboard (`file` in the outbox
/// row): the server finds the stored file by its attachment id when the row is sent.
pub fn file_request(content: &Content) -> Option<Value> {
    let Content::Media(m) = content else {
        return None;
    };
    let switchboard_core::outbound::MediaSource::Uploaded(id) = &m.source else {
        return None;
    };
    Some(serde_json::json!({
        "attachment_id": id,
        "kind": m.kind,
        "caption": m.caption,
        "filename": m.filename,
    }))
}

/// The kind of a row's file (`image`, `video`, `audio`, `document`).
pub fn file_kind(request: &Value) -> Option<switchboard_core::outbound::MediaKind> {
    switchboard_core::outbound::MediaKind::parse(request["file"]["kind"].as_str()?)
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub provider_message_id: String,
    /// The customer's messaging id, when the answer names it (a private reply's PSID).
    pub recipient: Option<String>,
    /// Extras to keep on the message (Zalo's quota type).
    pub meta: Option<Value>,
}

/// Why the provider did not take it.
#[derive(Debug, Clone, PartialEq)]
pub enum NotSent {
    Failed(Failure),
    /// The access token expired: refresh it and try once more (providers with refresh tokens).
    TokenExpired,
}

/// What a connection check found: the account as the provider names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The Page's, bot's, OA's, number's or shop's own name (none when the provider gives none).
    pub name: Option<String>,
}

/// Why a connection check failed, as a stable code the workspace translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFailure {
    /// The provider refused the token or the signature (wrong, expired or revoked).
    CredentialsRefused,
    /// The credentials work but do not belong to the account this inbox names.
    AccountMismatch,
    /// Any other answer.
    ProviderError,
}

impl CheckFailure {
    pub fn code(self) -> &'static str {
        match self {
            Self::CredentialsRefused => "credentials_refused",
            Self::AccountMismatch => "account_mismatch",
            Self::ProviderError => "provider_error",
        }
    }
}

/// A provider would not say where a file is: a server error or a throttle may pass, anything
/// else (an unknown or expired id) will not.
pub fn media_unavailable(answer: &ApiAnswer<'_>) -> Failure {
    Failure {
        retry: answer.status == 429 || answer.status >= 500,
        reason: "media_unavailable",
        retry_after_ms: None,
        code: Some(i64::from(answer.status)),
        subcode: None,
    }
}

/// The largest customer file we download (the Bot API's own download limit is lower).
pub const MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024;

/// A failure decided before any call (nothing reached the provider).
pub fn refused(reason: &'static str) -> Failure {
    Failure {
        retry: false,
        reason,
        retry_after_ms: None,
        code: None,
        subcode: None,
    }
}

pub trait Provider: Send + Sync {
    /// The webhook path segment: `/webhooks/{name}`.
    fn name(&self) -> &'static str;
    /// The channels of this provider's inboxes.
    fn channels(&self) -> &'static [ChannelKind];
    /// The accounts a body names, at most `max` of them (read before verifying: nothing else of
    /// the body is used).
    fn claims(&self, req: &WebhookRequest<'_>, max: usize) -> Claims;
    /// What an inbox answers to (to find it among all of them).
    fn claims_of(&self, inbox: &Inbox) -> Vec<Claim>;
    /// What the verification of a request depends on for this inbox (a secret, with anything else
    /// it is checked with): inboxes with the same key verify alike, so each key is checked once.
    fn signing_key(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> Option<String>;
    /// Whether the request is signed for this inbox.
    fn verify(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> bool;
    /// The events of a verified request, for the inboxes that verified.
    fn parse(
        &self,
        req: &WebhookRequest<'_>,
        inboxes: &Verified,
        now: Timestamp,
    ) -> Result<Vec<Arrival>, BadWebhook>;
    /// The answer once everything is stored.
    fn ack(&self, arrivals: &[Arrival]) -> Ack;
    /// The message of a refused request (401), naming the header that was wrong.
    fn refused(&self) -> &'static str;
    /// One webhook URL per inbox (`/webhooks/{name}/{inbox}`) instead of one for all of them.
    fn per_inbox_url(&self) -> bool {
        false
    }
    /// Answers Meta's `hub.challenge` subscription handshake on `GET` (§1.1).
    fn handshake(&self) -> bool {
        false
    }

    // ---------------------------------------------------------------- inbox settings

    /// Checks and completes an inbox's settings for one of the provider's channels: unknown keys
    /// and bad values refused, naming the key; what is left out keeps its previous value or its
    /// default (the table in `settings.rs`).
    fn check_settings(
        &self,
        channel: ChannelKind,
        raw: Option<Value>,
        previous: Option<&Value>,
    ) -> Result<Value, crate::settings::SettingsError> {
        crate::settings::check(channel, raw, previous)
    }
    /// The settings that are secrets: stored and used, never returned or logged.
    fn secrets(&self, channel: ChannelKind) -> &'static [&'static str] {
        crate::settings::secrets(channel)
    }
    /// The setting webhooks find the inbox by (none when the URL names it).
    fn account_key(&self, channel: ChannelKind) -> Option<&'static str> {
        crate::settings::account_key(channel)
    }

    // ---------------------------------------------------------------- outbound

    /// The outbox row for a message: its job and the request [`Provider::send_call`] reads.
    fn render(&self, r: &Rendering<'_>) -> (OutboxJob, Value);
    /// The call that delivers an outbox row.
    fn send_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        now: Timestamp,
    ) -> Result<ApiCall, Failure>;
    /// What the provider's answer to [`Provider::send_call`] means.
    fn sent(&self, out: &Outgoing<'_>, answer: &ApiAnswer<'_>) -> Result<Sent, NotSent>;
    /// The upload a row's file needs before [`Provider::send_call`] (providers that take files
    /// by upload rather than fetching a link: Zalo, Shopee); `None`: no upload.
    fn upload_call(
        &self,
        _inbox: &Inbox,
        _out: &Outgoing<'_>,
        _now: Timestamp,
    ) -> Option<Result<ApiCall, Failure>> {
        None
    }
    /// The provider's handle for the uploaded file, from its answer to [`Provider::upload_call`].
    fn uploaded(&self, _answer: &ApiAnswer<'_>) -> Result<Value, NotSent> {
        Err(NotSent::Failed(refused("not_supported")))
    }

    /// Whether the inbox's access token expires and is refreshed with a single-use refresh token
    /// (kept in the `refresh_token` setting).
    fn refreshes_tokens(&self) -> bool {
        false
    }
    /// The access token a send uses (to tell a refreshed one from the one that was refused).
    fn access_token<'a>(&self, _inbox: &'a Inbox) -> Option<&'a str> {
        None
    }
    /// Whether the access token is known to have expired at `now`.
    fn token_expired(&self, _inbox: &Inbox, _now: Timestamp) -> bool {
        false
    }
    /// The call that exchanges the refresh token for new tokens.
    fn refresh_call(&self, _inbox: &Inbox) -> Option<ApiCall> {
        None
    }
    /// The inbox's settings with the new tokens of a refresh answer.
    fn refreshed(&self, _inbox: &Inbox, _answer: &ApiAnswer<'_>, _now: Timestamp) -> Option<Value> {
        None
    }

    /// The call that fetches a customer's name and picture, where the provider has one.
    fn profile_call(&self, _inbox: &Inbox, _customer: &str) -> Option<ApiCall> {
        None
    }
    fn profile(&self, _inbox: &Inbox, _answer: &ApiAnswer<'_>) -> Option<Profile> {
        None
    }
    /// The call that says where a picture named by a file id is downloaded from.
    fn picture_call(&self, _inbox: &Inbox, _file_id: &str) -> Option<ApiCall> {
        None
    }
    /// The download URL in the answer to [`Provider::picture_call`] (it may carry the token: it is
    /// never logged).
    fn picture_url(&self, _inbox: &Inbox, _answer: &ApiAnswer<'_>) -> Option<String> {
        None
    }

    /// The call that says where a customer's file named by a provider id is (WhatsApp's
    /// `GET /{media-id}`, Telegram's `getFile`); by default the picture's.
    fn media_call(&self, inbox: &Inbox, id: &str) -> Option<ApiCall> {
        self.picture_call(inbox, id)
    }
    /// The download of a customer's file, from the answer to [`Provider::media_call`] (its URL
    /// or headers may carry the token: never logged). A failure says whether to try again.
    fn media_download(&self, inbox: &Inbox, answer: &ApiAnswer<'_>) -> Result<ApiCall, Failure> {
        match self.picture_url(inbox, answer) {
            Some(url) => Ok(ApiCall::get(url)),
            None => Err(media_unavailable(answer)),
        }
    }

    /// A read-only call that proves the inbox's account and credentials work (the setup's
    /// connection test); `None` when the settings lack what it needs.
    fn check_call(&self, _inbox: &Inbox, _now: Timestamp) -> Option<ApiCall> {
        None
    }
    /// What the provider's answer to [`Provider::check_call`] says.
    fn checked(&self, _inbox: &Inbox, _answer: &ApiAnswer<'_>) -> Result<Account, CheckFailure> {
        Err(CheckFailure::ProviderError)
    }
}

/// A name from a provider's answer: trimmed, without control characters, at most 200 characters.
pub fn account_name(v: &Value) -> Option<String> {
    let s: String = v
        .as_str()?
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The inbox's API base URL setting, or the provider's default.
pub fn base_url<'a>(i: &'a Inbox, default: &'a str) -> &'a str {
    setting(i, "api_base_url").unwrap_or(default)
}

/// A setting of an inbox as text (empty counts as missing).
pub fn setting<'a>(i: &'a Inbox, key: &str) -> Option<&'a str> {
    i.settings
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
