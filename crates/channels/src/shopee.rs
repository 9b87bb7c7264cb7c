//! Shopee Open Platform seller chat, as far as `shared/channels.md` §6 documents it: the push
//! `Authorization` check (hex HMAC-SHA256 of `callback_url + "|" + raw body` under the partner
//! key), chat pushes (code 10, `webchat_push`), and the v2 `sellerchat/send_message` call with the
//! standard v2 request signature. No I/O here.
//!
//! What channels.md leaves open (Shopee's own docs are behind a partner login) is marked [U] and
//! read defensively: the fields of a chat push beyond `conversation_id`, `from_id` and
//! `from_user_name` (message id, type, text, time) and the shape of the send answer.

use crate::meta::Failure;
use crate::signing;
use serde_json::{Value, json};
use switchboard_core::Timestamp;

pub use crate::settings::SHOPEE_API_BASE_URL as DEFAULT_API_BASE_URL;
pub const SEND_MESSAGE_PATH: &str = "/api/v2/sellerchat/send_message";
/// The push code of chat messages.
pub const WEBCHAT_PUSH: i64 = 10;

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

/// The push signature: hex HMAC-SHA256(partner_key, callback_url + "|" + raw_body).
pub fn push_signature(partner_key: &str, callback_url: &str, raw_body: &[u8]) -> String {
    let mut data = Vec::with_capacity(callback_url.len() + 1 + raw_body.len());
    data.extend_from_slice(callback_url.as_bytes());
    data.push(b'|');
    data.extend_from_slice(raw_body);
    signing::hmac_sha256_hex(partner_key.as_bytes(), &data)
}

/// Checks `Authorization` in constant time. The URL must be exactly the configured one.
pub fn verify_push(
    partner_key: &str,
    callback_url: &str,
    raw_body: &[u8],
    header: Option<&str>,
) -> bool {
    let Some(h) = header.map(str::trim).filter(|h| h.len() == 64) else {
        return false;
    };
    let mut data = Vec::with_capacity(callback_url.len() + 1 + raw_body.len());
    data.extend_from_slice(callback_url.as_bytes());
    data.push(b'|');
    data.extend_from_slice(raw_body);
    signing::verify_hex(partner_key.as_bytes(), &data, h)
}

/// The `shop_id` of an unverified push (to find the inbox whose partner key applies).
pub fn shop_id(raw_body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(raw_body).ok()?;
    id_str(&v["shop_id"])
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShopeeEvent {
    /// A chat message (code 10, `data.type = "message"`).
    Message {
        conversation_id: String,
        from_id: String,
        from_name: Option<String>,
        to_id: Option<String>,
        /// Shopee's message id [U]; when absent, a key derived from the push.
        message_id: String,
        message_type: String,
        text: String,
        at: Timestamp,
    },
    /// Any other push (order status, tracking number, authorization expiry, chat notifications).
    Other { code: i64, what: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub shop_id: String,
    pub event: ShopeeEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("no shop_id")]
    NoShop,
}

/// Parses a (verified) push.
pub fn parse_push(raw_body: &[u8]) -> Result<Push, ParseError> {
    let v: Value = serde_json::from_slice(raw_body).map_err(|_| ParseError::NotJson)?;
    let shop_id = id_str(&v["shop_id"]).ok_or(ParseError::NoShop)?;
    let code = v["code"].as_i64().unwrap_or(0);
    // Shopee times are seconds (numbers or numeric strings).
    let push_time = crate::wire::seconds(&v["timestamp"]);
    let data = &v["data"];
    let kind = data["type"].as_str().unwrap_or("");
    if code != WEBCHAT_PUSH || kind != "message" {
        return Ok(Push {
            shop_id,
            event: ShopeeEvent::Other {
                code,
                what: format!("code {code} {kind}"),
            },
        });
    }
    // `content` may arrive as a JSON string (§6).
    let content = match &data["content"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    let (Some(conversation_id), Some(from_id)) = (
        id_str(&content["conversation_id"]),
        id_str(&content["from_id"]),
    ) else {
        return Ok(Push {
            shop_id,
            event: ShopeeEvent::Other {
                code,
                what: "chat push without conversation_id or from_id".into(),
            },
        });
    };
    let message_type = text(&content["message_type"]).unwrap_or_else(|| "text".into());
    // [U] The text sits in `content.content.text` (as in send_message), sometimes as a string.
    let inner = match &content["content"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| json!({"text": s})),
        other => other.clone(),
    };
    let shown = match message_type.as_str() {
        "text" => text(&inner["text"]).unwrap_or_else(|| "[message]".into()),
        other => text(&inner["text"]).unwrap_or_else(|| format!("[{other}]")),
    };
    let at = crate::wire::seconds(&content["created_timestamp"])
        .or(push_time)
        .unwrap_or(Timestamp(0));
    let message_id = id_str(&content["message_id"]).unwrap_or_else(|| {
        format!(
            "push:{conversation_id}:{}",
            signing::sha256_hex(raw_body).get(..32).unwrap_or("")
        )
    });
    Ok(Push {
        shop_id,
        event: ShopeeEvent::Message {
            conversation_id,
            from_id,
            from_name: text(&content["from_user_name"]),
            to_id: id_str(&content["to_id"]),
            message_id,
            message_type,
            text: shown,
            at,
        },
    })
}

/// The v2 shop-level signature: hex HMAC-SHA256(partner_key, partner_id + path + timestamp +
/// access_token + shop_id).
pub fn api_sign(
    partner_key: &str,
    partner_id: &str,
    path: &str,
    timestamp: i64,
    access_token: &str,
    shop_id: &str,
) -> String {
    let base = format!("{partner_id}{path}{timestamp}{access_token}{shop_id}");
    signing::hmac_sha256_hex(partner_key.as_bytes(), base.as_bytes())
}

/// `(url, body)` of a text `send_message` (the access token travels in the query, as v2 wants).
pub struct SendRequest<'a> {
    pub base: &'a str,
    pub partner_id: &'a str,
    pub partner_key: &'a str,
    pub shop_id: &'a str,
    pub access_token: &'a str,
    pub timestamp: i64,
}

/// The seller chat API's path for uploading an image before sending it (§6 `upload_image`).
pub const UPLOAD_IMAGE_PATH: &str = "/api/v2/sellerchat/upload_image";

/// A v2 API URL for `path`, signed (`partner_id+path+timestamp+access_token+shop_id`).
pub fn signed_url(r: &SendRequest<'_>, path: &str) -> String {
    let sign = api_sign(
        r.partner_key,
        r.partner_id,
        path,
        r.timestamp,
        r.access_token,
        r.shop_id,
    );
    format!(
        "{}{path}?partner_id={}&timestamp={}&access_token={}&shop_id={}&sign={sign}",
        r.base.trim_end_matches('/'),
        r.partner_id,
        r.timestamp,
        r.access_token,
        r.shop_id
    )
}

/// The signing inputs of an inbox's API calls at `now`.
fn signed_request(inbox: &Inbox, now: Timestamp) -> Result<SendRequest<'_>, Failure> {
    let (Some(partner_id), Some(partner_key), Some(shop_id), Some(token)) = (
        setting(inbox, "partner_id"),
        setting(inbox, "partner_key"),
        setting(inbox, "shop_id"),
        setting(inbox, "access_token"),
    ) else {
        return Err(refused("token_expired"));
    };
    Ok(SendRequest {
        base: base_url(inbox, DEFAULT_API_BASE_URL),
        partner_id,
        partner_key,
        shop_id,
        access_token: token,
        timestamp: now.millis() / 1000,
    })
}

pub fn send_text(r: &SendRequest<'_>, to_id: &str, text: &str) -> (String, Value) {
    send_message(r, to_id, "text", json!({ "text": text }))
}

/// `send_message` of any type: `{to_id, message_type, content}`.
pub fn send_message(
    r: &SendRequest<'_>,
    to_id: &str,
    message_type: &str,
    content: Value,
) -> (String, Value) {
    let to: Value = to_id
        .parse::<i64>()
        .map_or_else(|_| json!(to_id), |n| json!(n));
    (
        signed_url(r, SEND_MESSAGE_PATH),
        json!({"to_id": to, "message_type": message_type, "content": content}),
    )
}

/// The `upload_image` answer: `{"response":{"url":…},"error":""}`; the URL is what
/// `send_message` of type `image` carries.
pub fn parse_upload(status: u16, body: &[u8]) -> Result<Value, Failure> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if (200..300).contains(&status)
        && v["error"].as_str().unwrap_or("").is_empty()
        && let Some(url) = v["response"]["url"].as_str().filter(|u| !u.is_empty())
    {
        return Ok(json!({ "image_url": url }));
    }
    // Errors read as for sends (no message id in an error answer).
    match classify(status, body) {
        Err(f) => Err(f),
        Ok(_) => Err(Failure {
            retry: false,
            reason: "provider_error",
            retry_after_ms: None,
            code: None,
            subcode: None,
        }),
    }
}

/// A v2 answer: `{"error": "", "message": "", "response": {...}}` [U for `response.message_id`].
pub fn classify(status: u16, body: &[u8]) -> Result<String, Failure> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = v["error"].as_str().unwrap_or("");
    let fail = |retry, reason| Failure {
        retry,
        reason,
        retry_after_ms: None,
        code: None,
        subcode: None,
    };
    if (200..300).contains(&status) && error.is_empty() {
        return id_str(&v["response"]["message_id"]).ok_or_else(|| fail(false, "provider_error"));
    }
    Err(match error {
        e if e.contains("access_token") || e.contains("auth") || e.contains("sign") => {
            fail(false, "token_expired")
        }
        e if e.contains("param") => fail(false, "invalid_request"),
        e if e.contains("permission") => fail(false, "permission_denied"),
        e if e.contains("rate") || e.contains("too_many") => fail(true, "rate_limited"),
        _ if status == 429 => fail(true, "rate_limited"),
        _ if status >= 500 => fail(true, "provider_unavailable"),
        _ => fail(false, "provider_error"),
    })
}

// ------------------------------------------------------------------ the provider

use crate::provider::{
    Ack, ApiAnswer, ApiBody, ApiCall, Arrival, BadWebhook, Claim, Claims, Effect, NotSent,
    Outgoing, Provider, Rendering, Sent, Verified, WebhookRequest, base_url, refused, setting,
};
use switchboard_core::ingest::{InboundEvent, InboundSender, Said};
use switchboard_core::outbound::OutboxJob;
use switchboard_core::{ChannelKind, Inbox, MessageKind};

/// Shopee Open Platform pushes (§6): the shop is read first, only to find whose partner key
/// applies; `Authorization` is the HMAC of the callback URL and the body. Chat pushes from buyers
/// are stored; everything else is acknowledged. Shopee wants a 2xx with an empty body.
pub struct Shopee;

const CHANNELS: [ChannelKind; 1] = [ChannelKind::Shopee];

/// The URL Shopee signs pushes with: the one configured at Shopee (`push_callback_url`), or this
/// server's public URL + `/webhooks/shopee`.
pub fn callback_url(public_url: &str, inbox: &Inbox) -> String {
    setting(inbox, "push_callback_url")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{public_url}/webhooks/shopee"))
}

impl Provider for Shopee {
    fn check_call(&self, inbox: &Inbox, now: Timestamp) -> Option<ApiCall> {
        crate::check::shopee_call(inbox, now)
    }
    fn checked(
        &self,
        _: &Inbox,
        answer: &ApiAnswer<'_>,
    ) -> Result<crate::provider::Account, crate::provider::CheckFailure> {
        crate::check::shopee_checked(answer)
    }
    fn name(&self) -> &'static str {
        "shopee"
    }
    fn channels(&self) -> &'static [ChannelKind] {
        &CHANNELS
    }
    fn claims(&self, req: &WebhookRequest<'_>, _: usize) -> Claims {
        Claims::Named(
            shop_id(req.body)
                .map(|s| Claim::Account(ChannelKind::Shopee, s))
                .into_iter()
                .collect(),
        )
    }
    fn claims_of(&self, inbox: &Inbox) -> Vec<Claim> {
        setting(inbox, "shop_id")
            .map(|s| Claim::Account(ChannelKind::Shopee, s.to_owned()))
            .into_iter()
            .collect()
    }
    fn signing_key(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> Option<String> {
        let key = setting(inbox, "partner_key")?;
        Some(format!("{}\n{key}", callback_url(req.public_url, inbox)))
    }
    fn verify(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> bool {
        setting(inbox, "partner_key").is_some_and(|k| {
            let url = callback_url(req.public_url, inbox);
            verify_push(k, &url, req.body, req.header("authorization"))
        })
    }
    fn parse(
        &self,
        req: &WebhookRequest<'_>,
        inboxes: &Verified,
        _: Timestamp,
    ) -> Result<Vec<Arrival>, BadWebhook> {
        let push = parse_push(req.body).map_err(|e| BadWebhook(e.to_string()))?;
        let Some(inbox) =
            shop_id(req.body).and_then(|s| inboxes.one(&Claim::Account(ChannelKind::Shopee, s)))
        else {
            return Ok(Vec::new());
        };
        let ShopeeEvent::Message {
            conversation_id,
            from_id,
            from_name,
            to_id,
            message_id,
            message_type,
            text,
            at,
        } = push.event
        else {
            return Ok(Vec::new());
        };
        // The seller's own messages (sent from Seller Centre, or ours) are not the customer writing.
        if Some(from_id.as_str()) == setting(inbox, "shop_id") {
            return Ok(Vec::new());
        }
        // Shopee has no buyer profile API: `from_user_name` is the name (no picture).
        let profile = Effect::FetchProfile {
            customer: from_id.clone(),
            name: from_name.clone(),
        };
        let said = Said {
            from: InboundSender::identity(from_id.as_str(), from_name.as_deref()),
            provider_message_id: message_id,
            kind: if message_type == "image" {
                MessageKind::Media
            } else {
                MessageKind::Text
            },
            text,
            at,
            meta: json!({"shopee": {"conversation_id": conversation_id, "message_type": message_type, "to_id": to_id}}),
            replying_to: None,
            alias: None,
        };
        Ok(vec![
            Arrival::event(inbox, at, InboundEvent::Customer(said)).with(profile),
        ])
    }
    fn ack(&self, _: &[Arrival]) -> Ack {
        Ack::Empty
    }
    fn render(&self, r: &Rendering<'_>) -> (OutboxJob, Value) {
        let mut request = json!({ "to_id": r.to, "text": r.text });
        if let Some(file) = crate::provider::file_request(r.content) {
            request["file"] = file;
        }
        (OutboxJob::Send, request)
    }
    fn upload_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        now: Timestamp,
    ) -> Option<Result<ApiCall, Failure>> {
        out.file?;
        let call = signed_request(inbox, now).map(|req| ApiCall {
            method: "POST",
            url: signed_url(&req, UPLOAD_IMAGE_PATH),
            headers: Vec::new(),
            body: ApiBody::Multipart {
                fields: Vec::new(),
                file_field: "file",
            },
        });
        Some(call)
    }
    fn uploaded(&self, answer: &ApiAnswer<'_>) -> Result<Value, NotSent> {
        parse_upload(answer.status, answer.body).map_err(NotSent::Failed)
    }
    fn send_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        now: Timestamp,
    ) -> Result<ApiCall, Failure> {
        let req = signed_request(inbox, now)?;
        let field = |k: &str| out.request[k].as_str().unwrap_or("");
        let (url, body) = match out.uploaded {
            // Shopee documents images only (the capability table refuses other files).
            Some(image) => send_message(&req, field("to_id"), "image", image.clone()),
            None => send_text(&req, field("to_id"), field("text")),
        };
        Ok(ApiCall::post(url, body))
    }
    fn sent(&self, _: &Outgoing<'_>, answer: &ApiAnswer<'_>) -> Result<Sent, NotSent> {
        match classify(answer.status, answer.body) {
            Ok(id) => Ok(Sent {
                provider_message_id: id,
                recipient: None,
                meta: None,
            }),
            Err(f) => Err(NotSent::Failed(f)),
        }
    }
    fn refused(&self) -> &'static str {
        "bad or missing Authorization"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"data":{"type":"message","content":{"conversation_id":"123","from_id":456,"from_user_name":"buyer"}},"shop_id":789,"code":10,"timestamp":1700000000}"#;
    const SIG: &str = "a902d0d6a24e4b4e86cea4b544afdbee6fc50066433d0dccc36bb583ec641800";
    const URL: &str = "https://example.com/shopee/push";

    #[test]
    fn channels_md_push_vector() {
        assert_eq!(
            push_signature("partner_key_test", URL, BODY.as_bytes()),
            SIG
        );
        assert!(verify_push(
            "partner_key_test",
            URL,
            BODY.as_bytes(),
            Some(SIG)
        ));
        assert!(!verify_push(
            "partner_key_test",
            &format!("{URL}/"),
            BODY.as_bytes(),
            Some(SIG)
        ));
        assert!(!verify_push("other", URL, BODY.as_bytes(), Some(SIG)));
        assert!(!verify_push("partner_key_test", URL, BODY.as_bytes(), None));
        assert!(!verify_push(
            "partner_key_test",
            URL,
            BODY.as_bytes(),
            Some(&SIG[1..])
        ));
        assert_eq!(shop_id(BODY.as_bytes()).as_deref(), Some("789"));
        match parse_push(BODY.as_bytes()).map(|p| p.event) {
            Ok(ShopeeEvent::Message {
                conversation_id,
                from_id,
                from_name,
                message_id,
                text,
                at,
                ..
            }) => {
                assert_eq!((conversation_id.as_str(), from_id.as_str()), ("123", "456"));
                assert_eq!(from_name.as_deref(), Some("buyer"));
                assert!(message_id.starts_with("push:123:"));
                assert_eq!(text, "[message]");
                assert_eq!(at, Timestamp(1_700_000_000_000));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_as_a_string_and_other_pushes() {
        let inner = json!({"conversation_id":"c1","from_id":456,"from_user_name":"buyer","message_id":"m9",
            "message_type":"text","content":{"text":"còn hàng không?"},"created_timestamp":1700000100});
        let body = json!({"shop_id":789,"code":10,"timestamp":1700000101,"data":{"type":"message","content":inner.to_string()}});
        match parse_push(body.to_string().as_bytes()).map(|p| p.event) {
            Ok(ShopeeEvent::Message {
                message_id,
                text,
                at,
                ..
            }) => {
                assert_eq!(
                    (message_id.as_str(), text.as_str()),
                    ("m9", "còn hàng không?")
                );
                assert_eq!(at, Timestamp(1_700_000_100_000));
            }
            other => panic!("{other:?}"),
        }
        let order = json!({"shop_id":789,"code":3,"timestamp":1,"data":{"ordersn":"X","status":"READY_TO_SHIP"}});
        assert!(matches!(
            parse_push(order.to_string().as_bytes()).map(|p| p.event),
            Ok(ShopeeEvent::Other { code: 3, .. })
        ));
    }

    #[test]
    fn send_request_and_answers() {
        let r = SendRequest {
            base: "https://partner.shopeemobile.com",
            partner_id: "1001",
            partner_key: "k",
            shop_id: "789",
            access_token: "tok",
            timestamp: 1_700_000_000,
        };
        let (url, body) = send_text(&r, "456", "Dạ còn ạ");
        let sign =
            signing::hmac_sha256_hex(b"k", b"1001/api/v2/sellerchat/send_message1700000000tok789");
        assert_eq!(
            url,
            format!(
                "https://partner.shopeemobile.com/api/v2/sellerchat/send_message?partner_id=1001&timestamp=1700000000&access_token=tok&shop_id=789&sign={sign}"
            )
        );
        assert_eq!(
            body,
            json!({"to_id":456,"message_type":"text","content":{"text":"Dạ còn ạ"}})
        );
        assert_eq!(
            classify(
                200,
                br#"{"request_id":"r","error":"","message":"","response":{"message_id":"m1"}}"#
            ),
            Ok("m1".into())
        );
        assert!(
            matches!(classify(200, br#"{"error":"error_auth","message":"Invalid access_token."}"#), Err(f) if f.reason == "token_expired")
        );
        assert!(matches!(classify(500, b""), Err(f) if f.retry));
    }
}
