//! Zalo Official Account API, as `shared/channels.md` §4 describes it: the `X-ZEvent-Signature`
//! check (a plain SHA-256 of `app_id + raw body + timestamp + OA secret key`, not an HMAC), event
//! parsing (user messages of every kind, OA echoes, received / seen receipts, follow / unfollow,
//! reactions), the consultation (`cs`) Send API, the access-token refresh and the mapping of Zalo
//! error codes (which arrive with HTTP 200) to stable reasons. No I/O here.

use crate::meta::Failure;
use crate::signing;
use serde_json::{Value, json};
use switchboard_core::Timestamp;
use switchboard_core::outbound::MediaKind;

pub use crate::settings::{
    ZALO_API_BASE_URL as DEFAULT_API_BASE_URL, ZALO_OAUTH_BASE_URL as DEFAULT_OAUTH_BASE_URL,
};

fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Zalo times are strings of milliseconds.
fn ms(v: &Value) -> Option<Timestamp> {
    crate::wire::millis(v)
}

/// The header value Zalo sends: `mac=<hex SHA-256(app_id + body + timestamp + OA secret key)>`.
pub fn signature_header(
    app_id: &str,
    raw_body: &[u8],
    timestamp: &str,
    oa_secret_key: &str,
) -> String {
    let mut data =
        Vec::with_capacity(app_id.len() + raw_body.len() + timestamp.len() + oa_secret_key.len());
    data.extend_from_slice(app_id.as_bytes());
    data.extend_from_slice(raw_body);
    data.extend_from_slice(timestamp.as_bytes());
    data.extend_from_slice(oa_secret_key.as_bytes());
    format!("mac={}", signing::sha256_hex(&data))
}

/// The body's own `app_id` and `timestamp` (strings in the body; numbers accepted), which the
/// signature covers.
pub fn signed_fields(raw_body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(raw_body).ok()?;
    Some((id_str(&v["app_id"])?, id_str(&v["timestamp"])?))
}

/// §4.1: checks `X-ZEvent-Signature` against the OA secret key, in constant time. A header
/// without the `mac=` prefix is refused.
pub fn verify_signature(raw_body: &[u8], header: Option<&str>, oa_secret_key: &str) -> bool {
    let (Some(h), Some((app_id, ts))) = (header.map(str::trim), signed_fields(raw_body)) else {
        return false;
    };
    let Some(given) = h.strip_prefix("mac=") else {
        return false;
    };
    let want = signature_header(&app_id, raw_body, &ts, oa_secret_key);
    let want = want.trim_start_matches("mac=");
    given.len() == want.len()
        && subtle::ConstantTimeEq::ct_eq(given.to_ascii_lowercase().as_bytes(), want.as_bytes())
            .into()
}

// ------------------------------------------------------------------ events

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub kind: String,
    pub url: Option<String>,
    pub thumbnail: Option<String>,
    pub name: Option<String>,
    pub coordinates: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZaloEvent {
    /// `user_send_*` (and `anonymous_send_*`, `user_submit_info`): the customer wrote.
    UserMessage {
        user_id: String,
        msg_id: String,
        kind: String,
        text: String,
        attachments: Vec<Attachment>,
        quote_msg_id: Option<String>,
        anonymous: bool,
        at: Timestamp,
    },
    /// `oa_send_*`: the OA sent a message (from Zalo's own app, or our send coming back).
    Echo {
        user_id: String,
        msg_id: String,
        text: String,
        attachments: Vec<Attachment>,
        at: Timestamp,
    },
    /// `user_received_message`.
    Received {
        user_id: String,
        msg_ids: Vec<String>,
        at: Timestamp,
    },
    /// `user_seen_message`.
    Seen {
        user_id: String,
        msg_ids: Vec<String>,
        at: Timestamp,
    },
    Follow {
        user_id: String,
        follow: bool,
        at: Timestamp,
    },
    /// `user_reacted_message` (`reaction: None` removes it).
    Reaction {
        user_id: String,
        msg_id: String,
        reaction: Option<String>,
        at: Timestamp,
    },
    Ignored {
        what: String,
    },
}

/// A verified webhook: the event, the OA it is for and the app that sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub app_id: String,
    pub oa_id: String,
    pub event_name: String,
    pub event: ZaloEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("no event_name")]
    NoEvent,
    #[error("cannot tell which Official Account this event is for")]
    NoAccount,
}

/// Which OA an event is for (§4.1 test vectors): `recipient.id` for `user_*` messages, `sender.id`
/// for `oa_*` echoes and for `user_received_message` / `user_seen_message`; `oa_id` for follows.
pub fn oa_of(v: &Value) -> Option<String> {
    let name = v["event_name"].as_str().unwrap_or("");
    if name == "follow" || name == "unfollow" {
        return id_str(&v["oa_id"]).or_else(|| id_str(&v["recipient"]["id"]));
    }
    if name.starts_with("oa_") || name == "user_received_message" || name == "user_seen_message" {
        id_str(&v["sender"]["id"])
    } else {
        id_str(&v["recipient"]["id"])
    }
}

fn attachments(v: &Value) -> Vec<Attachment> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let p = &a["payload"];
            Attachment {
                kind: text(&a["type"]).unwrap_or_else(|| "file".into()),
                url: text(&p["url"]),
                thumbnail: text(&p["thumbnail"]),
                name: text(&p["name"]),
                coordinates: p.get("coordinates").filter(|c| c.is_object()).map(|c| {
                    (
                        c["latitude"].to_string().trim_matches('"').to_owned(),
                        c["longitude"].to_string().trim_matches('"').to_owned(),
                    )
                }),
            }
        })
        .collect()
}

/// A one-line text for the thread.
pub fn describe(text: Option<&str>, attachments: &[Attachment]) -> String {
    let mut parts: Vec<String> = text
        .filter(|t| !t.trim().is_empty())
        .map(|t| vec![t.to_owned()])
        .unwrap_or_default();
    for a in attachments {
        match (&a.kind[..], &a.coordinates, &a.name) {
            ("location", Some((lat, lon)), _) => parts.push(format!("[location] {lat}, {lon}")),
            ("business_card", _, n) => parts.push(
                format!("[business card] {}", n.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_owned(),
            ),
            (_, _, Some(n)) => parts.push(format!("[{}] {n}", a.kind)),
            _ => parts.push(format!("[{}]", a.kind)),
        }
    }
    if parts.is_empty() {
        "[message]".into()
    } else {
        parts.join(" ")
    }
}

/// Parses a (verified) webhook body.
pub fn parse(raw_body: &[u8]) -> Result<Webhook, ParseError> {
    let v: Value = serde_json::from_slice(raw_body).map_err(|_| ParseError::NotJson)?;
    let name = text(&v["event_name"]).ok_or(ParseError::NoEvent)?;
    let oa_id = oa_of(&v).ok_or(ParseError::NoAccount)?;
    let at = ms(&v["timestamp"]).unwrap_or(Timestamp(0));
    let msg = &v["message"];
    let atts = attachments(&msg["attachments"]);
    let sender = id_str(&v["sender"]["id"]).unwrap_or_default();
    let recipient = id_str(&v["recipient"]["id"]).unwrap_or_default();
    let event = if let Some(kind) = name
        .strip_prefix("user_send_")
        .or_else(|| name.strip_prefix("anonymous_send_"))
        .or_else(|| (name == "user_submit_info").then_some("submit_info"))
    {
        let Some(msg_id) = id_str(&msg["msg_id"]) else {
            return Ok(Webhook {
                app_id: id_str(&v["app_id"]).unwrap_or_default(),
                oa_id,
                event_name: name,
                event: ZaloEvent::Ignored {
                    what: "message without msg_id".into(),
                },
            });
        };
        let shown = if kind == "submit_info" {
            format!("[submitted info] {}", v["info"])
        } else if kind == "business_card" && atts.iter().any(|a| a.kind == "business_card") {
            describe(text(&msg["text"]).as_deref(), &atts)
        } else if kind == "business_card" {
            describe(
                text(&msg["text"]).as_deref().or(Some("[business card]")),
                &atts,
            )
        } else {
            describe(text(&msg["text"]).as_deref(), &atts)
        };
        ZaloEvent::UserMessage {
            user_id: sender,
            msg_id,
            kind: kind.to_owned(),
            text: shown,
            attachments: atts,
            quote_msg_id: id_str(&msg["quote_msg_id"]),
            anonymous: name.starts_with("anonymous_"),
            at,
        }
    } else if name.starts_with("oa_send_") {
        match id_str(&msg["msg_id"]) {
            Some(msg_id) => ZaloEvent::Echo {
                user_id: recipient,
                msg_id,
                text: describe(text(&msg["text"]).as_deref(), &atts),
                attachments: atts,
                at,
            },
            None => ZaloEvent::Ignored {
                what: "echo without msg_id".into(),
            },
        }
    } else {
        match name.as_str() {
            "user_received_message" => ZaloEvent::Received {
                user_id: recipient,
                msg_ids: id_str(&msg["msg_id"]).into_iter().collect(),
                at,
            },
            "user_seen_message" => ZaloEvent::Seen {
                user_id: recipient,
                msg_ids: msg["msg_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(id_str)
                    .chain(id_str(&msg["msg_id"]))
                    .collect(),
                at,
            },
            "follow" | "unfollow" => ZaloEvent::Follow {
                user_id: id_str(&v["follower"]["id"]).unwrap_or(sender),
                follow: name == "follow",
                at,
            },
            "user_reacted_message" => ZaloEvent::Reaction {
                user_id: sender,
                msg_id: id_str(&msg["msg_id"]).unwrap_or_default(),
                reaction: text(&msg["react_icon"]).filter(|r| r != "/-remove"),
                at,
            },
            other => ZaloEvent::Ignored {
                what: format!("event {other}"),
            },
        }
    };
    Ok(Webhook {
        app_id: id_str(&v["app_id"]).unwrap_or_default(),
        oa_id,
        event_name: name,
        event,
    })
}

// ------------------------------------------------------------------ sending

/// `https://openapi.zalo.me/v3.0/oa/message/{cs|transaction|promotion}` (§4.2).
pub fn message_url(base: &str, kind: &str) -> String {
    format!("{}/v3.0/oa/message/{kind}", base.trim_end_matches('/'))
}

/// Where a file is uploaded before it is sent (§4.2): images to `/v2.0/oa/upload/image`
/// (answering an `attachment_id`), other files to `/v2.0/oa/upload/file` (answering a `token`).
pub fn upload_url(base: &str, kind: MediaKind) -> String {
    let what = if kind == MediaKind::Image {
        "image"
    } else {
        "file"
    };
    format!("{}/v2.0/oa/upload/{what}", base.trim_end_matches('/'))
}

/// The upload's answer: `{"error":0,"data":{"attachment_id"|"token"}}`; errors as for sends.
pub fn parse_upload(status: u16, body: &[u8]) -> Result<Value, NotSent> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match v["error"].as_i64() {
        Some(0) => {
            let handle = |k: &str| id_str(&v["data"][k]).map(|id| json!({ k: id }));
            handle("attachment_id")
                .or_else(|| handle("token"))
                .ok_or(NotSent::Failed(failure(false, "provider_error", Some(0))))
        }
        _ => match classify(status, body) {
            Answer::TokenExpired => Err(NotSent::TokenExpired),
            Answer::Failed(f) => Err(NotSent::Failed(f)),
            Answer::Sent(_) => Err(NotSent::Failed(failure(false, "provider_error", None))),
        },
    }
}

/// A consultation message carrying an uploaded file (§4.2): an image as the `media` template
/// with its `attachment_id`, any other file as `attachment{type:"file",payload:{token}}`. Zalo's
/// file message has no caption: a caption goes as a text message right after.
pub fn file_message(kind: MediaKind, handle: &Value) -> Value {
    if kind == MediaKind::Image {
        json!({"attachment": {"type": "template", "payload": {"template_type": "media",
            "elements": [{"media_type": "image", "attachment_id": handle["attachment_id"]}]}}})
    } else {
        json!({"attachment": {"type": "file", "payload": {"token": handle["token"]}}})
    }
}

/// A consultation text message, quoting the customer's message when given.
pub fn text_body(user_id: &str, text: &str, quote_message_id: Option<&str>) -> Value {
    let mut b = json!({"recipient": {"user_id": user_id}, "message": {"text": text}});
    if let Some(q) = quote_message_id {
        b["message"]["quote_message_id"] = json!(q);
    }
    b
}

/// An accepted send: the message id and the quota it used (`reply`, `sub_quota`,
/// `purchase_quota`, `reward_quota`), when Zalo says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    pub quota_type: Option<String>,
}

/// What a call's answer means. Zalo answers errors with HTTP 200 and `error` ≠ 0 (§4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Sent(Sent),
    /// -216: the access token is invalid or expired: refresh once, then retry once.
    TokenExpired,
    Failed(Failure),
}

fn failure(retry: bool, reason: &'static str, code: Option<i64>) -> Failure {
    Failure {
        retry,
        reason,
        retry_after_ms: None,
        code,
        subcode: None,
    }
}

pub fn classify(status: u16, body: &[u8]) -> Answer {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error"].as_i64();
    match code {
        Some(0) => match id_str(&v["data"]["message_id"]) {
            Some(message_id) => Answer::Sent(Sent {
                message_id,
                quota_type: text(&v["data"]["quota"]["quota_type"]),
            }),
            None => Answer::Failed(failure(false, "provider_error", Some(0))),
        },
        Some(-216) => Answer::TokenExpired,
        Some(c) => {
            let (retry, reason) = match c {
                -201 => (false, "invalid_request"),
                -213 => (false, "user_unavailable"),
                -230 | -232 => (false, "interaction_expired"),
                -124 | -240 => (false, "wrong_api_version"),
                _ if status >= 500 => (true, "provider_unavailable"),
                _ => (false, "provider_error"),
            };
            Answer::Failed(failure(retry, reason, Some(c)))
        }
        None if status == 429 => Answer::Failed(failure(true, "rate_limited", None)),
        None if status >= 500 => Answer::Failed(failure(true, "provider_unavailable", None)),
        None => Answer::Failed(failure(false, "provider_error", None)),
    }
}

/// The OA's user profile API (not in channels.md; Zalo's OA API v3 "user detail"):
/// `GET <api>/v3.0/oa/user/detail?data={"user_id":"…"}` with the `access_token` header. Zalo user
/// ids are digits: anything else gets no call.
pub fn profile_url(base: &str, user_id: &str) -> Option<String> {
    if user_id.is_empty() || user_id.len() > 32 || !user_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `{"user_id":"<digits>"}`, percent-encoded.
    Some(format!(
        "{}/v3.0/oa/user/detail?data=%7B%22user_id%22%3A%22{user_id}%22%7D",
        base.trim_end_matches('/')
    ))
}

/// The user detail answer `{"error":0,"data":{"user_id","display_name","avatar","avatars":{"120",
/// "240"}}}` (errors come back as HTTP 200 with `error` ≠ 0): the name, and the larger picture.
pub fn parse_profile(v: &Value) -> Option<crate::provider::Profile> {
    use crate::provider::{Picture, PictureSource, Profile};
    if v["error"].as_i64() != Some(0) {
        return None;
    }
    let d = &v["data"];
    let url = [&d["avatars"]["240"], &d["avatar"], &d["avatars"]["120"]]
        .into_iter()
        .filter_map(|u| u.as_str())
        .find(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned);
    Some(Profile {
        name: crate::provider::account_name(&d["display_name"]),
        username: None,
        picture: url.map(|url| Picture {
            key: url.clone(),
            source: PictureSource::Url(url),
            storable: true,
        }),
    })
}

/// The token refresh call: `POST <oauth>/v4/oa/access_token` with form fields and the app
/// secret in the `secret_key` header (§4.2).
pub fn refresh_url(oauth_base: &str) -> String {
    format!("{}/v4/oa/access_token", oauth_base.trim_end_matches('/'))
}

pub fn refresh_form<'a>(app_id: &'a str, refresh_token: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("refresh_token", refresh_token),
        ("app_id", app_id),
        ("grant_type", "refresh_token"),
    ]
}

/// New tokens: (access token, refresh token — single use, rotated —, seconds the access token lasts).
pub fn parse_refresh(v: &Value) -> Option<(String, String, i64)> {
    let expires = v["expires_in"]
        .as_i64()
        .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(25 * 3600);
    Some((
        text(&v["access_token"])?,
        text(&v["refresh_token"])?,
        expires,
    ))
}

// ------------------------------------------------------------------ the provider

use crate::provider::{
    Ack, ApiAnswer, ApiBody, ApiCall, Arrival, BadWebhook, Claim, Claims, Effect, NotSent,
    Outgoing, Provider, Rendering, Verified, WebhookRequest, base_url, refused, setting,
};
use switchboard_core::ingest::{Echoed, InboundEvent, InboundSender, Said};
use switchboard_core::outbound::OutboxJob;
use switchboard_core::{ChannelKind, DeliveryStatus, Inbox, MessageKind};

/// Zalo Official Accounts: one callback URL for every OA (§4.1). The OA is read first only to
/// find whose secret key applies; the signature covers the app id, the body and the timestamp,
/// and the body's `app_id` must be the inbox's.
pub struct Zalo;

const CHANNELS: [ChannelKind; 1] = [ChannelKind::Zalo];

fn attachments_json(a: &[Attachment]) -> Value {
    json!(
        a.iter()
            .map(|x| json!({"type": x.kind, "url": x.url, "thumbnail": x.thumbnail,
                "name": x.name, "coordinates": x.coordinates.as_ref().map(|(la, lo)| json!({"latitude": la, "longitude": lo}))}))
            .collect::<Vec<_>>()
    )
}

impl Provider for Zalo {
    fn check_call(&self, inbox: &Inbox, _: Timestamp) -> Option<ApiCall> {
        crate::check::zalo_call(inbox)
    }
    fn checked(
        &self,
        inbox: &Inbox,
        answer: &ApiAnswer<'_>,
    ) -> Result<crate::provider::Account, crate::provider::CheckFailure> {
        crate::check::zalo_checked(inbox, answer)
    }
    fn name(&self) -> &'static str {
        "zalo"
    }
    fn channels(&self) -> &'static [ChannelKind] {
        &CHANNELS
    }
    fn claims(&self, req: &WebhookRequest<'_>, _: usize) -> Claims {
        let oa = serde_json::from_slice::<Value>(req.body)
            .ok()
            .and_then(|v| oa_of(&v));
        Claims::Named(
            oa.map(|o| Claim::Account(ChannelKind::Zalo, o))
                .into_iter()
                .collect(),
        )
    }
    fn claims_of(&self, inbox: &Inbox) -> Vec<Claim> {
        setting(inbox, "oa_id")
            .map(|o| Claim::Account(ChannelKind::Zalo, o.to_owned()))
            .into_iter()
            .collect()
    }
    fn signing_key(&self, inbox: &Inbox, _: &WebhookRequest<'_>) -> Option<String> {
        let key = setting(inbox, "oa_secret_key")?;
        Some(format!("{}\n{key}", setting(inbox, "app_id").unwrap_or("")))
    }
    fn verify(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> bool {
        setting(inbox, "oa_secret_key")
            .is_some_and(|k| verify_signature(req.body, req.header("x-zevent-signature"), k))
            && signed_fields(req.body)
                .is_some_and(|(app, _)| Some(app.as_str()) == setting(inbox, "app_id"))
    }
    fn parse(
        &self,
        req: &WebhookRequest<'_>,
        inboxes: &Verified,
        now: Timestamp,
    ) -> Result<Vec<Arrival>, BadWebhook> {
        let hook = parse(req.body).map_err(|e| BadWebhook(e.to_string()))?;
        let Some(inbox) = inboxes.one(&Claim::Account(ChannelKind::Zalo, hook.oa_id.clone()))
        else {
            return Ok(Vec::new());
        };
        Ok(arrival(inbox, hook, now).into_iter().collect())
    }
    fn ack(&self, _: &[Arrival]) -> Ack {
        Ack::Empty
    }
    fn render(&self, r: &Rendering<'_>) -> (OutboxJob, Value) {
        let body = text_body(r.to, r.text, None);
        match crate::provider::file_request(r.content) {
            Some(file) => (
                OutboxJob::Send,
                json!({ "endpoint": "cs", "body": body, "file": file }),
            ),
            None => (OutboxJob::Send, json!({ "endpoint": "cs", "body": body })),
        }
    }
    fn upload_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        _: Timestamp,
    ) -> Option<Result<ApiCall, Failure>> {
        out.file?;
        let kind = crate::provider::file_kind(out.request)?;
        let Some(token) = setting(inbox, "access_token") else {
            return Some(Err(refused("token_expired")));
        };
        let url = upload_url(base_url(inbox, DEFAULT_API_BASE_URL), kind);
        let call = ApiCall {
            method: "POST",
            url,
            headers: vec![("access_token", token.to_owned())],
            body: ApiBody::Multipart {
                fields: Vec::new(),
                file_field: "file",
            },
        };
        Some(Ok(call))
    }
    fn uploaded(&self, answer: &ApiAnswer<'_>) -> Result<Value, NotSent> {
        parse_upload(answer.status, answer.body)
    }
    fn send_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        _: Timestamp,
    ) -> Result<ApiCall, Failure> {
        let token = setting(inbox, "access_token").ok_or_else(|| refused("token_expired"))?;
        let endpoint = out.request["endpoint"].as_str().unwrap_or("cs");
        let url = message_url(base_url(inbox, DEFAULT_API_BASE_URL), endpoint);
        let mut body = out.request["body"].clone();
        if let (Some(handle), Some(kind)) = (out.uploaded, crate::provider::file_kind(out.request))
        {
            body["message"] = file_message(kind, handle);
        }
        Ok(ApiCall::post(url, body).header("access_token", token))
    }
    fn sent(
        &self,
        _: &Outgoing<'_>,
        answer: &ApiAnswer<'_>,
    ) -> Result<crate::provider::Sent, NotSent> {
        match classify(answer.status, answer.body) {
            Answer::Sent(s) => Ok(crate::provider::Sent {
                provider_message_id: s.message_id,
                recipient: None,
                meta: s.quota_type.map(|q| json!({ "zalo_quota_type": q })),
            }),
            Answer::TokenExpired => Err(NotSent::TokenExpired),
            Answer::Failed(f) => Err(NotSent::Failed(f)),
        }
    }
    fn refreshes_tokens(&self) -> bool {
        true
    }
    fn access_token<'a>(&self, inbox: &'a Inbox) -> Option<&'a str> {
        setting(inbox, "access_token")
    }
    fn profile_call(&self, inbox: &Inbox, customer: &str) -> Option<ApiCall> {
        let token = setting(inbox, "access_token")?;
        let url = profile_url(base_url(inbox, DEFAULT_API_BASE_URL), customer)?;
        Some(ApiCall::get(url).header("access_token", token))
    }
    fn profile(&self, _: &Inbox, answer: &ApiAnswer<'_>) -> Option<crate::provider::Profile> {
        answer.ok().then(|| parse_profile(&answer.json())).flatten()
    }
    fn token_expired(&self, inbox: &Inbox, now: Timestamp) -> bool {
        inbox.settings["access_token_expires_at"]
            .as_i64()
            .is_some_and(|t| t <= now.millis())
    }
    fn refresh_call(&self, inbox: &Inbox) -> Option<ApiCall> {
        let (app_id, secret) = (setting(inbox, "app_id")?, setting(inbox, "app_secret")?);
        let refresh = setting(inbox, "refresh_token")?;
        let oauth = setting(inbox, "oauth_base_url").unwrap_or(DEFAULT_OAUTH_BASE_URL);
        let form = refresh_form(app_id, refresh).map(|(k, v)| (k, v.to_owned()));
        Some(ApiCall {
            method: "POST",
            url: refresh_url(oauth),
            headers: vec![("secret_key", secret.to_owned())],
            body: ApiBody::Form(form.to_vec()),
        })
    }
    fn refreshed(&self, inbox: &Inbox, answer: &ApiAnswer<'_>, now: Timestamp) -> Option<Value> {
        let (access, refresh, expires_in) = parse_refresh(&answer.json())?;
        let mut settings = inbox.settings.clone();
        let o = settings.as_object_mut()?;
        o.insert("access_token".into(), json!(access));
        o.insert("refresh_token".into(), json!(refresh));
        let expires = now.plus_secs(expires_in).millis();
        o.insert("access_token_expires_at".into(), json!(expires));
        Some(settings)
    }
    fn refused(&self) -> &'static str {
        "bad or missing X-ZEvent-Signature"
    }
}

fn receipt(
    inbox: &Inbox,
    at: Timestamp,
    customer: String,
    ids: Vec<String>,
    status: DeliveryStatus,
) -> Arrival {
    let event = InboundEvent::Receipt {
        customer,
        provider_message_ids: ids,
        watermark: None,
        status,
    };
    Arrival::event(inbox, at, event)
}

fn arrival(inbox: &Inbox, hook: Webhook, now: Timestamp) -> Option<Arrival> {
    let name = hook.event_name;
    Some(match hook.event {
        ZaloEvent::UserMessage {
            user_id,
            msg_id,
            kind,
            text,
            attachments,
            quote_msg_id,
            anonymous,
            at,
        } => {
            let media = !attachments.is_empty()
                && !matches!(
                    kind.as_str(),
                    "text" | "location" | "link" | "business_card"
                );
            let mut meta = json!({"zalo_event": name, "anonymous": anonymous});
            if !attachments.is_empty() {
                meta["attachments"] = attachments_json(&attachments);
            }
            if let Some(q) = &quote_msg_id {
                meta["reply_to"] = json!(q);
            }
            let said = Said {
                from: InboundSender::identity(user_id.as_str(), None),
                provider_message_id: msg_id,
                kind: if media {
                    MessageKind::Media
                } else {
                    MessageKind::Text
                },
                text,
                at,
                meta,
                replying_to: quote_msg_id,
                alias: None,
            };
            // The customer wrote: they can be reached again. Their name and picture come from
            // the user profile API (an anonymous user has none to ask for).
            let a = Arrival::event(inbox, at, InboundEvent::Customer(said));
            let a = if anonymous {
                a
            } else {
                a.with(Effect::FetchProfile {
                    customer: user_id.clone(),
                    name: None,
                })
            };
            a.with(Effect::Reachable {
                customer: user_id,
                unreachable: None,
            })
        }
        ZaloEvent::Echo {
            user_id,
            msg_id,
            text,
            attachments,
            at,
        } => {
            let mut meta = json!({"echo": {"zalo_event": name}});
            if !attachments.is_empty() {
                meta["attachments"] = attachments_json(&attachments);
            }
            let echo = Echoed {
                customer: user_id,
                provider_message_id: msg_id,
                ours: None,
                text,
                meta,
                at,
            };
            // Zalo echoes carry no marker of ours.
            Arrival::event(inbox, at, InboundEvent::Echo(echo)).with(Effect::EchoByText)
        }
        ZaloEvent::Received {
            user_id,
            msg_ids,
            at,
        } => receipt(inbox, at, user_id, msg_ids, DeliveryStatus::Delivered),
        ZaloEvent::Seen {
            user_id,
            msg_ids,
            at,
        } => receipt(inbox, at, user_id, msg_ids, DeliveryStatus::Read),
        ZaloEvent::Reaction {
            user_id,
            msg_id,
            reaction,
            at,
        } => Arrival::event(
            inbox,
            at,
            InboundEvent::Reaction {
                customer: user_id,
                target_provider_id: msg_id,
                reaction: reaction.map(|r| json!({"reaction": r, "at": at.clamp_to(now)})),
                at,
            },
        ),
        ZaloEvent::Follow {
            user_id,
            follow,
            at,
        } => Arrival::effect(
            inbox,
            at,
            Effect::Reachable {
                customer: user_id,
                unreachable: (!follow).then_some("unfollowed"),
            },
        ),
        ZaloEvent::Ignored { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"app_id":"360846524940903967","sender":{"id":"246845883529197922"},"recipient":{"id":"388613280878808645"},"event_name":"user_send_text","message":{"text":"hello","msg_id":"96d3cdf3af150460909"},"timestamp":"1700000000000"}"#;
    const MAC: &str = "mac=8e70793cd61d4ddd84d71f35855161ef7aa089ee417150e17ed6d1a9ae91998d";

    #[test]
    fn channels_md_signature_vector() {
        assert_eq!(
            signature_header(
                "360846524940903967",
                BODY.as_bytes(),
                "1700000000000",
                "oa_secret_test"
            ),
            MAC
        );
        assert!(verify_signature(
            BODY.as_bytes(),
            Some(MAC),
            "oa_secret_test"
        ));
        assert!(!verify_signature(
            BODY.as_bytes(),
            Some(&MAC[4..]),
            "oa_secret_test"
        ));
        let mut flipped = MAC.to_owned();
        flipped.replace_range(10..11, if &MAC[10..11] == "0" { "1" } else { "0" });
        assert!(!verify_signature(
            BODY.as_bytes(),
            Some(&flipped),
            "oa_secret_test"
        ));
        assert!(!verify_signature(
            BODY.as_bytes(),
            Some(MAC),
            "app_secret_instead"
        ));
        assert!(!verify_signature(BODY.as_bytes(), None, "oa_secret_test"));
        // An HMAC with the secret (a mistake some Zalo nodes make) is not it.
        let hmac = format!(
            "mac={}",
            signing::hmac_sha256_hex(b"oa_secret_test", BODY.as_bytes())
        );
        assert!(!verify_signature(
            BODY.as_bytes(),
            Some(&hmac),
            "oa_secret_test"
        ));
        // One changed body byte.
        let other = BODY.replace("hello", "hellp");
        assert!(!verify_signature(
            other.as_bytes(),
            Some(MAC),
            "oa_secret_test"
        ));
    }

    #[test]
    fn parses_events_and_finds_the_oa() {
        let w = parse(BODY.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.oa_id, "388613280878808645");
        assert_eq!(
            w.event,
            ZaloEvent::UserMessage {
                user_id: "246845883529197922".into(),
                msg_id: "96d3cdf3af150460909".into(),
                kind: "text".into(),
                text: "hello".into(),
                attachments: vec![],
                quote_msg_id: None,
                anonymous: false,
                at: Timestamp(1_700_000_000_000),
            }
        );
        let ev = |v: Value| parse(v.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let img = ev(
            json!({"app_id":"A","event_name":"user_send_image","timestamp":"5","sender":{"id":"U"},"recipient":{"id":"OA"},
            "message":{"msg_id":"m1","text":"","attachments":[{"type":"image","payload":{"url":"https://z/1.jpg","thumbnail":"https://z/t.jpg"}}]}}),
        );
        assert!(
            matches!(img.event, ZaloEvent::UserMessage { ref text, ref attachments, .. } if text == "[image]" && attachments[0].url.as_deref() == Some("https://z/1.jpg"))
        );
        for (name, want) in [
            ("user_send_sticker", "[sticker]"),
            ("user_send_file", "[file] a.pdf"),
            ("user_send_gif", "[gif]"),
        ] {
            let kind = name.trim_start_matches("user_send_");
            let mut payload = json!({"url": "https://z/x"});
            if kind == "file" {
                payload["name"] = json!("a.pdf");
            }
            let w = ev(
                json!({"app_id":"A","event_name":name,"timestamp":"5","sender":{"id":"U"},"recipient":{"id":"OA"},
                "message":{"msg_id":"m","attachments":[{"type":kind,"payload":payload}]}}),
            );
            assert!(
                matches!(w.event, ZaloEvent::UserMessage { ref text, .. } if text == want),
                "{name}: {:?}",
                w.event
            );
        }
        let loc = ev(
            json!({"app_id":"A","event_name":"user_send_location","timestamp":"5","sender":{"id":"U"},"recipient":{"id":"OA"},
            "message":{"msg_id":"m2","attachments":[{"type":"location","payload":{"coordinates":{"latitude":"10.7","longitude":"106.6"}}}]}}),
        );
        assert!(
            matches!(loc.event, ZaloEvent::UserMessage { ref text, .. } if text == "[location] 10.7, 106.6")
        );
        // Echoes, receipts: the OA is the sender.
        let echo = ev(
            json!({"app_id":"A","event_name":"oa_send_text","timestamp":"6","sender":{"id":"OA"},"recipient":{"id":"U"},"message":{"msg_id":"m3","text":"hi"}}),
        );
        assert_eq!(echo.oa_id, "OA");
        assert!(matches!(echo.event, ZaloEvent::Echo { ref user_id, .. } if user_id == "U"));
        let seen = ev(
            json!({"app_id":"A","event_name":"user_seen_message","timestamp":"7","sender":{"id":"OA"},"recipient":{"id":"U"},"message":{"msg_ids":["m3","m4"]}}),
        );
        assert_eq!(seen.oa_id, "OA");
        assert!(
            matches!(seen.event, ZaloEvent::Seen { ref msg_ids, .. } if msg_ids == &["m3", "m4"])
        );
        let recv = ev(
            json!({"app_id":"A","event_name":"user_received_message","timestamp":"7","sender":{"id":"OA"},"recipient":{"id":"U"},"message":{"msg_id":"m3"}}),
        );
        assert!(
            matches!(recv.event, ZaloEvent::Received { ref msg_ids, .. } if msg_ids == &["m3"])
        );
        let f = ev(
            json!({"app_id":"A","event_name":"unfollow","timestamp":"8","oa_id":"OA","follower":{"id":"U"},"source":"oa_profile"}),
        );
        assert_eq!(f.oa_id, "OA");
        assert!(
            matches!(f.event, ZaloEvent::Follow { follow: false, ref user_id, .. } if user_id == "U")
        );
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn answers_and_refresh() {
        let ok = json!({"error":0,"message":"Success","data":{"message_id":"abc","user_id":"U","quota":{"quota_type":"sub_quota"}}});
        assert_eq!(
            classify(200, ok.to_string().as_bytes()),
            Answer::Sent(Sent {
                message_id: "abc".into(),
                quota_type: Some("sub_quota".into())
            })
        );
        assert_eq!(
            classify(
                200,
                br#"{"error":-216,"message":"Access token is invalid"}"#
            ),
            Answer::TokenExpired
        );
        match classify(
            200,
            br#"{"error":-230,"message":"User has not interacted with the OA in the past 7 days"}"#,
        ) {
            Answer::Failed(f) => assert_eq!(
                (f.retry, f.reason, f.code),
                (false, "interaction_expired", Some(-230))
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify(502, b"bad gateway"), Answer::Failed(f) if f.retry));
        assert_eq!(
            text_body("U", "Xin chào", Some("q1")),
            json!({"recipient":{"user_id":"U"},"message":{"text":"Xin chào","quote_message_id":"q1"}})
        );
        assert_eq!(
            message_url("https://openapi.zalo.me/", "cs"),
            "https://openapi.zalo.me/v3.0/oa/message/cs"
        );
        assert_eq!(
            parse_refresh(&json!({"access_token":"a2","refresh_token":"r2","expires_in":"90000"})),
            Some(("a2".into(), "r2".into(), 90_000))
        );
        assert_eq!(parse_refresh(&json!({"error":-14003})), None);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn user_profiles() {
        assert_eq!(
            profile_url("https://openapi.zalo.me/", "246845883529197922").as_deref(),
            Some(
                "https://openapi.zalo.me/v3.0/oa/user/detail?data=%7B%22user_id%22%3A%22246845883529197922%22%7D"
            )
        );
        assert_eq!(profile_url("https://x", "12\"}&a=b"), None);
        assert_eq!(profile_url("https://x", ""), None);
        let p = parse_profile(&json!({"error":0,"message":"Success","data":{"user_id":"1","display_name":" Lan Anh ",
            "avatar":"https://s120-ava-talk.zadn.vn/a.jpg","avatars":{"120":"https://s120-ava-talk.zadn.vn/a.jpg","240":"https://s240-ava-talk.zadn.vn/a.jpg"}}}))
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Lan Anh"));
        let pic = p.picture.unwrap();
        assert_eq!(pic.key, "https://s240-ava-talk.zadn.vn/a.jpg");
        assert!(pic.storable);
        assert_eq!(
            parse_profile(&json!({"error":-216,"message":"Access token is invalid"})),
            None
        );
        let odd =
            parse_profile(&json!({"error":0,"data":{"display_name":42,"avatar":"javascript:x"}}))
                .unwrap();
        assert_eq!((odd.name, odd.picture), (None, None));
    }
}
