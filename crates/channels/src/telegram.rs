//! Telegram Bot API, as `shared/channels.md` §5 describes it: `setWebhook` with a
//! `secret_token`, the `X-Telegram-Bot-Api-Secret-Token` check (constant time; there is no body
//! signature), update parsing (messages, edits, media, button taps, the bot being blocked), the
//! `sendMessage` body and the mapping of its errors (429 `retry_after`, 403 blocked). No I/O here.

use crate::meta::Failure;
use serde_json::{Value, json};
use switchboard_core::Timestamp;

pub use crate::settings::{
    TELEGRAM_API_BASE_URL as DEFAULT_API_BASE_URL, valid_bot_token, valid_secret_token,
};
/// The updates we ask Telegram for: exactly those [`parse`] handles (a test holds the two
/// together).
pub const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "message_reaction",
    "callback_query",
    "my_chat_member",
];

/// Service messages (channels.md §5: members joining or leaving, a title or photo changed, a
/// message pinned, ...): not the customer writing. Acknowledged and not stored, so they never
/// count unread or move anything.
const SERVICE_KEYS: &[&str] = &[
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "gift",
    "unique_gift",
    "connected_website",
    "write_access_allowed",
    "passport_data",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "checklist_tasks_done",
    "checklist_tasks_added",
    "direct_message_price_changed",
    "paid_message_price_changed",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway_winners",
    "giveaway_completed",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
];

/// Whether a message is a service message ([`SERVICE_KEYS`]).
pub fn is_service(m: &Value) -> bool {
    SERVICE_KEYS
        .iter()
        .any(|k| m.get(*k).is_some_and(|v| !v.is_null()))
}

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

/// Telegram times are integer seconds (numeric strings accepted too).
fn secs(v: &Value) -> Option<Timestamp> {
    crate::wire::seconds(v)
}

/// `https://api.telegram.org/bot<token>/<method>`.
pub fn method_url(base: &str, bot_token: &str, method: &str) -> String {
    format!("{}/bot{bot_token}/{method}", base.trim_end_matches('/'))
}

/// A chat's name, handle and photo: `getChat` (Bot API; not in channels.md). One call gives the
/// current name (a sync follows renames), the username (the `t.me` link) and the profile photo
/// (`photo.big_file_id`, 640×640), which `getUserProfilePhotos` would give without the rest.
pub fn profile_body(chat_id: &str) -> Option<Value> {
    let id: i64 = chat_id.parse().ok()?;
    Some(json!({ "chat_id": id }))
}

/// The `getChat` answer `{"ok":true,"result":{"first_name","last_name","username","photo":{
/// "big_file_id","big_file_unique_id",…}}}`.
pub fn parse_profile(v: &Value) -> Option<crate::provider::Profile> {
    use crate::provider::{Picture, PictureSource, Profile, account_name};
    if v["ok"] != Value::Bool(true) {
        return None;
    }
    let r = &v["result"];
    let first_last = [text(&r["first_name"]), text(&r["last_name"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = account_name(&r["title"]).or_else(|| account_name(&Value::String(first_last)));
    let file_id = text(&r["photo"]["big_file_id"]).filter(|f| is_file_id(f));
    let key = text(&r["photo"]["big_file_unique_id"]).filter(|f| is_file_id(f));
    Some(Profile {
        name,
        username: text(&r["username"]).filter(|u| crate::links::is_handle(u)),
        picture: file_id.zip(key).map(|(file_id, key)| Picture {
            key,
            source: PictureSource::File(file_id),
            storable: true,
        }),
    })
}

/// File ids are URL-safe base64: nothing else is sent back to Telegram.
fn is_file_id(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where `getFile`'s answer says the file is: `<api>/file/bot<token>/<file_path>` (the path
/// checked: no way out of the bot's files; a file larger than a picture may be is not fetched).
pub fn file_url(base: &str, bot_token: &str, v: &Value) -> Option<String> {
    if v["ok"] != Value::Bool(true) {
        return None;
    }
    let r = &v["result"];
    if r["file_size"]
        .as_u64()
        .is_some_and(|n| n > crate::provider::MAX_PICTURE_BYTES as u64)
    {
        return None;
    }
    let path = r["file_path"].as_str()?;
    let plain = (1..=256).contains(&path.len())
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && !path.starts_with('/')
        && !path.contains("..");
    plain.then(|| format!("{}/file/bot{bot_token}/{path}", base.trim_end_matches('/')))
}

pub fn set_webhook_body(url: &str, secret_token: &str) -> Value {
    json!({"url": url, "secret_token": secret_token, "allowed_updates": ALLOWED_UPDATES, "max_connections": 40})
}

/// Compares the header with the inbox's secret in constant time.
pub fn verify_secret(expected: &str, header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    !expected.is_empty()
        && h.len() == expected.len()
        && subtle::ConstantTimeEq::ct_eq(h.as_bytes(), expected.as_bytes()).into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub kind: String,
    pub file_id: String,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    /// The file id of the provider's own thumbnail (videos, documents).
    pub thumbnail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TgEvent {
    /// A message in a chat with the bot (private chat, group or channel post).
    Message {
        chat_id: String,
        message_id: String,
        /// The chat's (or sender's) display name.
        name: Option<String>,
        text: String,
        attachments: Vec<Attachment>,
        reply_to: Option<String>,
        chat_type: String,
        /// What the message carries beside its text ([`extras`]): dice, poll, location, venue,
        /// contact, story, where it was forwarded from, what it answers.
        extras: Value,
        at: Timestamp,
    },
    /// `message_reaction`: the user's reactions to a message now (`emoji: None`: all taken back).
    Reaction {
        chat_id: String,
        message_id: String,
        emoji: Option<String>,
        at: Timestamp,
    },
    /// `edited_message` / `edited_channel_post`.
    Edited {
        chat_id: String,
        message_id: String,
        text: String,
        at: Timestamp,
    },
    /// A tap on an inline button.
    Callback {
        id: String,
        chat_id: String,
        name: Option<String>,
        data: String,
        /// The tapped button's text, from the keyboard of the message it was under.
        title: Option<String>,
        at: Timestamp,
    },
    /// `my_chat_member`: the user blocked (`false`) or restarted (`true`) the bot.
    Reachable {
        chat_id: String,
        reachable: bool,
        at: Timestamp,
    },
    Ignored {
        what: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub update_id: i64,
    pub event: TgEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("no update_id")]
    NoUpdateId,
}

fn name_of(chat: &Value, from: &Value) -> Option<String> {
    text(&chat["title"]).or_else(|| {
        let who = if chat["first_name"].is_string() {
            chat
        } else {
            from
        };
        let n = [text(&who["first_name"]), text(&who["last_name"])]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!n.is_empty())
            .then_some(n)
            .or_else(|| text(&who["username"]))
    })
}

fn attachments(m: &Value) -> Vec<Attachment> {
    let mut out = Vec::new();
    // `photo` is an array of sizes: keep the largest.
    if let Some(p) = m["photo"].as_array().and_then(|a| a.last())
        && let Some(file_id) = text(&p["file_id"])
    {
        out.push(Attachment {
            kind: "photo".into(),
            file_id,
            file_name: None,
            mime_type: None,
            thumbnail: None,
        });
    }
    for kind in [
        "document",
        "voice",
        "video",
        "audio",
        "sticker",
        "animation",
        "video_note",
    ] {
        if let Some(file_id) = text(&m[kind]["file_id"]) {
            out.push(Attachment {
                kind: kind.into(),
                file_id,
                file_name: text(&m[kind]["file_name"]),
                mime_type: text(&m[kind]["mime_type"]),
                thumbnail: text(&m[kind]["thumbnail"]["file_id"]),
            });
        }
    }
    out
}

fn full_name(who: &Value) -> Option<String> {
    let n = [text(&who["first_name"]), text(&who["last_name"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!n.is_empty())
        .then_some(n)
        .or_else(|| text(&who["username"]).map(|u| format!("@{u}")))
}

/// Who a forwarded message came from: `forward_origin` (Bot API 7.0+: a user, a hidden user, a
/// chat or a channel) or the older `forward_from` / `forward_sender_name` / `forward_from_chat`.
fn forwarded_from(m: &Value) -> Option<String> {
    let o = &m["forward_origin"];
    if o.is_object() {
        return match o["type"].as_str() {
            Some("user") => full_name(&o["sender_user"]),
            Some("hidden_user") => text(&o["sender_user_name"]),
            Some("chat") => text(&o["sender_chat"]["title"]),
            Some("channel") => text(&o["chat"]["title"]),
            _ => None,
        }
        .or_else(|| Some("?".into()));
    }
    full_name(&m["forward_from"])
        .or_else(|| text(&m["forward_sender_name"]))
        .or_else(|| text(&m["forward_from_chat"]["title"]))
}

/// At most `n` characters of a text (for quotes and previews of what a message answers).
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// What a message carries beside its text, kept in the message's extras for the thread: a dice
/// roll, a poll, a location or venue, a contact, a forwarded story, where it was forwarded
/// from, and the message it answers (`reply_to_text`: a short quote).
pub fn extras(m: &Value) -> Value {
    let mut x = serde_json::Map::new();
    let d = &m["dice"];
    if d.is_object() {
        x.insert(
            "dice".into(),
            json!({"emoji": text(&d["emoji"]).unwrap_or_else(|| "🎲".into()), "value": d["value"].as_i64()}),
        );
    }
    let p = &m["poll"];
    if p.is_object() {
        let options: Vec<String> = p["options"]
            .as_array()
            .into_iter()
            .flatten()
            .take(12)
            .filter_map(|o| text(&o["text"]))
            .map(|o| cut(&o, 100))
            .collect();
        x.insert(
            "poll".into(),
            json!({"question": text(&p["question"]).map(|q| cut(&q, 300)), "options": options}),
        );
    }
    let v = &m["venue"];
    let l = if v.is_object() {
        &v["location"]
    } else {
        &m["location"]
    };
    if l.is_object() {
        let mut loc =
            json!({"latitude": l["latitude"].as_f64(), "longitude": l["longitude"].as_f64()});
        if v.is_object() {
            loc["name"] = json!(text(&v["title"]));
            loc["address"] = json!(text(&v["address"]));
        }
        x.insert("location".into(), loc);
    }
    let c = &m["contact"];
    if c.is_object() {
        x.insert(
            "contact".into(),
            json!({"name": full_name(c), "phone": text(&c["phone_number"]), "user_id": c["user_id"].as_i64()}),
        );
    }
    let s = &m["story"];
    if s.is_object() {
        x.insert(
            "story".into(),
            json!({"id": s["id"].as_i64(), "chat": text(&s["chat"]["title"]).or_else(|| text(&s["chat"]["username"]).map(|u| format!("@{u}")))}),
        );
    }
    if let Some(f) = forwarded_from(m) {
        x.insert("forwarded_from".into(), json!(cut(&f, 200)));
    }
    let r = &m["reply_to_message"];
    if r.is_object()
        && let Some(t) = text(&r["text"]).or_else(|| text(&r["caption"]))
    {
        x.insert("reply_to_text".into(), json!(cut(&t, 140)));
    }
    Value::Object(x)
}

/// A one-line text for the thread (what each kind means, never only "[message]" for a kind
/// Telegram documents).
pub fn describe(m: &Value, attachments: &[Attachment]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for a in attachments {
        parts.push(match (&a.file_name, a.kind.as_str()) {
            (Some(n), _) => format!("[{}] {n}", a.kind),
            (None, "sticker") => {
                format!("[sticker] {}", m["sticker"]["emoji"].as_str().unwrap_or(""))
                    .trim()
                    .to_owned()
            }
            _ => format!("[{}]", a.kind),
        });
    }
    let x = extras(m);
    if let Some(d) = x.get("dice") {
        let value = d["value"]
            .as_i64()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        parts.push(format!(
            "[dice] {}{value}",
            d["emoji"].as_str().unwrap_or("🎲")
        ));
    }
    if let Some(p) = x.get("poll") {
        let options: Vec<&str> = p["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(format!(
            "[poll] {} ({})",
            p["question"].as_str().unwrap_or(""),
            options.join(" / ")
        ));
    }
    if let Some(l) = x.get("location") {
        let coords = format!(
            "{}, {}",
            l["latitude"].as_f64().unwrap_or(0.0),
            l["longitude"].as_f64().unwrap_or(0.0)
        );
        let place = [l["name"].as_str(), l["address"].as_str()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(if place.is_empty() {
            format!("[location] {coords}")
        } else {
            format!("[venue] {place} ({coords})")
        });
    }
    if let Some(c) = x.get("contact") {
        let who = [c["name"].as_str(), c["phone"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        parts.push(format!("[contact] {who}").trim().to_owned());
    }
    if let Some(s) = x.get("story") {
        parts.push(match s["chat"].as_str() {
            Some(c) => format!("[story] {c}"),
            None => "[story]".into(),
        });
    }
    for (key, label) in [
        ("game", "game"),
        ("invoice", "invoice"),
        ("checklist", "checklist"),
    ] {
        if m[key].is_object() {
            let title = text(&m[key]["title"]).unwrap_or_default();
            parts.push(format!("[{label}] {title}").trim().to_owned());
        }
    }
    if m["paid_media"].is_object() {
        parts.push("[paid media]".into());
    }
    if m["giveaway"].is_object() {
        parts.push("[giveaway]".into());
    }
    if let Some(d) = text(&m["web_app_data"]["data"]) {
        parts.push(format!("[web app] {}", cut(&d, 500)));
    }
    if let Some(t) = text(&m["text"]).or_else(|| text(&m["caption"])) {
        parts.push(t);
    }
    if parts.is_empty() {
        "[message]".into()
    } else {
        parts.join(" ")
    }
}

/// Parses one Update (Telegram posts one per request).
pub fn parse(raw_body: &[u8]) -> Result<Update, ParseError> {
    let v: Value = serde_json::from_slice(raw_body).map_err(|_| ParseError::NotJson)?;
    let update_id = v["update_id"].as_i64().ok_or(ParseError::NoUpdateId)?;
    let event = if let Some(m) = ["message", "channel_post"]
        .iter()
        .find_map(|k| v.get(*k).filter(|x| x.is_object()))
    {
        match (id_str(&m["chat"]["id"]), id_str(&m["message_id"])) {
            (Some(_), Some(_)) if is_service(m) => TgEvent::Ignored {
                what: "service message".into(),
            },
            (Some(chat_id), Some(message_id)) => {
                let atts = attachments(m);
                TgEvent::Message {
                    chat_id,
                    message_id,
                    name: name_of(&m["chat"], &m["from"]),
                    text: describe(m, &atts),
                    attachments: atts,
                    reply_to: id_str(&m["reply_to_message"]["message_id"]),
                    chat_type: text(&m["chat"]["type"]).unwrap_or_else(|| "private".into()),
                    extras: extras(m),
                    at: secs(&m["date"]).unwrap_or(Timestamp(0)),
                }
            }
            _ => TgEvent::Ignored {
                what: "message without chat or id".into(),
            },
        }
    } else if let Some(m) = ["edited_message", "edited_channel_post"]
        .iter()
        .find_map(|k| v.get(*k).filter(|x| x.is_object()))
    {
        match (id_str(&m["chat"]["id"]), id_str(&m["message_id"])) {
            (Some(chat_id), Some(message_id)) => TgEvent::Edited {
                chat_id,
                message_id,
                text: describe(m, &attachments(m)),
                at: secs(&m["edit_date"])
                    .or_else(|| secs(&m["date"]))
                    .unwrap_or(Timestamp(0)),
            },
            _ => TgEvent::Ignored {
                what: "edit without chat or id".into(),
            },
        }
    } else if let Some(r) = v.get("message_reaction").filter(|x| x.is_object()) {
        match (id_str(&r["chat"]["id"]), id_str(&r["message_id"])) {
            (Some(chat_id), Some(message_id)) => TgEvent::Reaction {
                chat_id,
                message_id,
                // The reactions now: the first emoji (a custom emoji or a paid star is shown as
                // such); none left means the reaction was taken back.
                emoji: r["new_reaction"].as_array().and_then(|a| a.first()).map(
                    |x| match x["type"].as_str() {
                        Some("emoji") => text(&x["emoji"]).unwrap_or_else(|| "?".into()),
                        Some("paid") => "⭐".into(),
                        _ => "★".into(),
                    },
                ),
                at: secs(&r["date"]).unwrap_or(Timestamp(0)),
            },
            _ => TgEvent::Ignored {
                what: "reaction without chat or message".into(),
            },
        }
    } else if let Some(c) = v.get("callback_query").filter(|x| x.is_object()) {
        let chat_id = id_str(&c["message"]["chat"]["id"]).or_else(|| id_str(&c["from"]["id"]));
        match (id_str(&c["id"]), chat_id) {
            (Some(id), Some(chat_id)) => {
                let data = text(&c["data"]).unwrap_or_default();
                TgEvent::Callback {
                    id,
                    chat_id,
                    name: name_of(&Value::Null, &c["from"]),
                    title: button_title(&c["message"]["reply_markup"], &data),
                    data,
                    at: secs(&c["message"]["date"]).unwrap_or(Timestamp(0)),
                }
            }
            _ => TgEvent::Ignored {
                what: "callback without id".into(),
            },
        }
    } else if let Some(c) = v.get("my_chat_member").filter(|x| x.is_object()) {
        match id_str(&c["chat"]["id"]) {
            Some(chat_id) => TgEvent::Reachable {
                chat_id,
                reachable: !matches!(
                    c["new_chat_member"]["status"].as_str(),
                    Some("kicked" | "left")
                ),
                at: secs(&c["date"]).unwrap_or(Timestamp(0)),
            },
            None => TgEvent::Ignored {
                what: "my_chat_member without chat".into(),
            },
        }
    } else {
        TgEvent::Ignored {
            what: "update kind".into(),
        }
    };
    Ok(Update { update_id, event })
}

/// The text of the inline button with this `callback_data` in a message's `reply_markup`.
fn button_title(markup: &Value, data: &str) -> Option<String> {
    markup["inline_keyboard"]
        .as_array()?
        .iter()
        .filter_map(Value::as_array)
        .flatten()
        .find(|b| b["callback_data"].as_str() == Some(data))
        .and_then(|b| text(&b["text"]))
}

pub fn send_message_body(chat_id: &str, text: &str, reply_to: Option<&str>) -> Value {
    let chat: Value = chat_id
        .parse::<i64>()
        .map_or_else(|_| json!(chat_id), |n| json!(n));
    let mut b = json!({"chat_id": chat, "text": text});
    if let Some(r) = reply_to.and_then(|r| r.parse::<i64>().ok()) {
        b["reply_parameters"] = json!({"message_id": r, "allow_sending_without_reply": true});
    }
    b
}

/// The Bot API method that sends a file of this kind, and the field naming the file (here the
/// signed URL Telegram fetches).
pub const fn file_method(kind: MediaKind) -> (&'static str, &'static str) {
    match kind {
        MediaKind::Image | MediaKind::Sticker => ("sendPhoto", "photo"),
        MediaKind::Video => ("sendVideo", "video"),
        MediaKind::Audio => ("sendAudio", "audio"),
        MediaKind::Document => ("sendDocument", "document"),
    }
}

/// Buttons as an inline keyboard (§5 `reply_markup`), one button per row so titles are not cut:
/// a tap comes back as a `callback_query` with the choice's id as its `data`. The capability
/// table has checked that every id is 1-64 bytes, as `callback_data` must be.
pub fn inline_keyboard(i: &Interactive) -> Value {
    let rows: Vec<Value> = i
        .all_choices()
        .iter()
        .map(|c| json!([{"text": c.title, "callback_data": c.id}]))
        .collect();
    json!({ "inline_keyboard": rows })
}

/// A Bot API answer: the sent message's id, or how the failure should be handled.
pub fn classify(status: u16, body: &[u8]) -> Result<String, Failure> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if v["ok"].as_bool() == Some(true) {
        return id_str(&v["result"]["message_id"]).ok_or(Failure {
            retry: false,
            reason: "provider_error",
            retry_after_ms: None,
            code: None,
            subcode: None,
        });
    }
    let code = v["error_code"].as_i64().or(Some(i64::from(status)));
    let description = v["description"].as_str().unwrap_or("");
    let retry_after = v["parameters"]["retry_after"]
        .as_i64()
        .map(|s| s.saturating_mul(1000));
    let (retry, reason) = match code {
        Some(429) => (true, "rate_limited"),
        Some(403) => (false, "user_blocked"),
        Some(401 | 404) => (false, "token_invalid"),
        Some(400) if v["parameters"]["migrate_to_chat_id"].is_number() => (false, "chat_migrated"),
        Some(400) if description.contains("too long") => (false, "message_too_long"),
        Some(400) => (false, "invalid_request"),
        Some(c) if c >= 500 => (true, "provider_unavailable"),
        _ => (false, "provider_error"),
    };
    Err(Failure {
        retry,
        reason,
        retry_after_ms: retry_after,
        code,
        subcode: None,
    })
}

// ------------------------------------------------------------------ the provider

use crate::provider::{
    Ack, ApiAnswer, ApiCall, Arrival, BadWebhook, Claim, Claims, Effect, NotSent, Outgoing,
    Provider, Rendering, Sent, Verified, WebhookRequest, base_url, refused, setting,
};
use switchboard_core::ingest::{InboundEvent, InboundSender, Said};
use switchboard_core::outbound::{Content, Interactive, MediaKind, OutboxJob};
use switchboard_core::{ChannelKind, Inbox, MessageKind};

/// Telegram bots: one webhook URL per bot (`/webhooks/telegram/{inbox}`), registered with
/// `setWebhook`; the `X-Telegram-Bot-Api-Secret-Token` header must equal the inbox's secret.
pub struct Telegram;

const CHANNELS: [ChannelKind; 1] = [ChannelKind::Telegram];

impl Provider for Telegram {
    fn check_call(&self, inbox: &Inbox, _: Timestamp) -> Option<ApiCall> {
        crate::check::telegram_call(inbox)
    }
    fn checked(
        &self,
        _: &Inbox,
        answer: &ApiAnswer<'_>,
    ) -> Result<crate::provider::Account, crate::provider::CheckFailure> {
        crate::check::telegram_checked(answer)
    }
    fn name(&self) -> &'static str {
        "telegram"
    }
    fn channels(&self) -> &'static [ChannelKind] {
        &CHANNELS
    }
    fn claims(&self, req: &WebhookRequest<'_>, _: usize) -> Claims {
        Claims::Named(req.inbox.map(Claim::Inbox).into_iter().collect())
    }
    fn claims_of(&self, inbox: &Inbox) -> Vec<Claim> {
        vec![Claim::Inbox(inbox.id)]
    }
    fn signing_key(&self, inbox: &Inbox, _: &WebhookRequest<'_>) -> Option<String> {
        setting(inbox, "secret_token").map(str::to_owned)
    }
    fn verify(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> bool {
        // Only the bot of the URL: another bot's secret never opens this one's door.
        req.inbox == Some(inbox.id)
            && setting(inbox, "secret_token")
                .is_some_and(|s| verify_secret(s, req.header("x-telegram-bot-api-secret-token")))
    }
    fn parse(
        &self,
        req: &WebhookRequest<'_>,
        inboxes: &Verified,
        now: Timestamp,
    ) -> Result<Vec<Arrival>, BadWebhook> {
        let update = parse(req.body).map_err(|e| BadWebhook(e.to_string()))?;
        let Some(inbox) = req.inbox.and_then(|i| inboxes.one(&Claim::Inbox(i))) else {
            return Ok(Vec::new());
        };
        Ok(arrival(inbox, update, now).into_iter().collect())
    }
    fn ack(&self, arrivals: &[Arrival]) -> Ack {
        arrivals
            .iter()
            .flat_map(|a| &a.effects)
            .find_map(|e| match e {
                Effect::Respond(v) => Some(Ack::Json(v.clone())),
                _ => None,
            })
            .unwrap_or(Ack::Empty)
    }
    fn render(&self, r: &Rendering<'_>) -> (OutboxJob, Value) {
        let body = match r.content {
            Content::Interactive(i) => {
                let mut b = send_message_body(r.to, &i.text_without_choices(), None);
                b["reply_markup"] = inline_keyboard(i);
                b
            }
            _ => send_message_body(r.to, r.text, None),
        };
        match crate::provider::file_request(r.content) {
            Some(file) => {
                let mut body = send_message_body(r.to, "", None);
                if let Some(o) = body.as_object_mut() {
                    o.remove("text");
                    if let Some(c) = file["caption"].as_str() {
                        o.insert("caption".into(), json!(c));
                    }
                }
                (OutboxJob::Send, json!({ "body": body, "file": file }))
            }
            None => (OutboxJob::Send, json!({ "body": body })),
        }
    }
    fn profile_call(&self, inbox: &Inbox, customer: &str) -> Option<ApiCall> {
        let token = setting(inbox, "bot_token")?;
        let url = method_url(base_url(inbox, DEFAULT_API_BASE_URL), token, "getChat");
        Some(ApiCall::post(url, profile_body(customer)?))
    }
    fn profile(&self, _: &Inbox, answer: &ApiAnswer<'_>) -> Option<crate::provider::Profile> {
        parse_profile(&answer.json())
    }
    fn picture_call(&self, inbox: &Inbox, file_id: &str) -> Option<ApiCall> {
        let token = setting(inbox, "bot_token")?;
        let url = method_url(base_url(inbox, DEFAULT_API_BASE_URL), token, "getFile");
        is_file_id(file_id).then(|| ApiCall::post(url, json!({ "file_id": file_id })))
    }
    fn picture_url(&self, inbox: &Inbox, answer: &ApiAnswer<'_>) -> Option<String> {
        let token = setting(inbox, "bot_token")?;
        file_url(base_url(inbox, DEFAULT_API_BASE_URL), token, &answer.json())
    }
    /// `getFile` refuses files over the Bot API's 20 MB download limit ("file is too big"):
    /// that one never passes.
    fn media_download(&self, inbox: &Inbox, answer: &ApiAnswer<'_>) -> Result<ApiCall, Failure> {
        let v = answer.json();
        let too_big = v["description"]
            .as_str()
            .is_some_and(|d| d.to_ascii_lowercase().contains("file is too big"));
        if too_big {
            return Err(refused("file_too_big_for_bot_api"));
        }
        match self.picture_url(inbox, answer) {
            Some(url) => Ok(ApiCall::get(url)),
            None => Err(crate::provider::media_unavailable(answer)),
        }
    }
    fn send_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        _: Timestamp,
    ) -> Result<ApiCall, Failure> {
        let token = setting(inbox, "bot_token").ok_or_else(|| refused("token_invalid"))?;
        let mut body = out.request["body"].clone();
        let method = match (out.file, crate::provider::file_kind(out.request)) {
            (Some(file), Some(kind)) => {
                let (method, field) = file_method(kind);
                body[field] = json!(file.url);
                method
            }
            _ => "sendMessage",
        };
        let url = method_url(base_url(inbox, DEFAULT_API_BASE_URL), token, method);
        Ok(ApiCall::post(url, body))
    }
    fn sent(&self, out: &Outgoing<'_>, answer: &ApiAnswer<'_>) -> Result<Sent, NotSent> {
        let chat = out.request["body"]["chat_id"].to_string();
        let chat = chat.trim_matches('"');
        match classify(answer.status, answer.body) {
            Ok(id) => Ok(Sent {
                provider_message_id: format!("{chat}:{id}"),
                recipient: None,
                meta: None,
            }),
            Err(f) => Err(NotSent::Failed(f)),
        }
    }
    fn refused(&self) -> &'static str {
        "bad or missing X-Telegram-Bot-Api-Secret-Token"
    }
    fn per_inbox_url(&self) -> bool {
        true
    }
}

/// A chat's message or button tap; the chat can be reached again.
/// The chat's name in the update fills the contact; its photo (and a renamed chat's new name)
/// come from `getChat` once.
fn said(inbox: &Inbox, customer: String, m: Said) -> Arrival {
    let name = match &m.from {
        InboundSender::Identity { name, .. } => name.clone(),
        InboundSender::Contact(_) => None,
    };
    Arrival::event(inbox, m.at, InboundEvent::Customer(m))
        .with(Effect::FetchProfile {
            customer: customer.clone(),
            name,
        })
        .with(Effect::Reachable {
            customer,
            unreachable: None,
        })
}

fn arrival(inbox: &Inbox, update: Update, now: Timestamp) -> Option<Arrival> {
    Some(match update.event {
        TgEvent::Message {
            chat_id,
            message_id,
            name,
            text,
            attachments,
            reply_to,
            chat_type,
            extras,
            at,
        } => {
            let kind = if attachments.is_empty() {
                MessageKind::Text
            } else {
                MessageKind::Media
            };
            let atts: Vec<_> = attachments
                .iter()
                .map(|a| json!({"type": a.kind, "file_id": a.file_id, "file_name": a.file_name, "mime_type": a.mime_type, "thumbnail_file_id": a.thumbnail}))
                .collect();
            let mut meta = json!({"chat_type": chat_type, "update_id": update.update_id});
            if !atts.is_empty() {
                meta["attachments"] = json!(atts);
            }
            if let (Some(m), Value::Object(x)) = (meta.as_object_mut(), extras) {
                m.extend(x);
            }
            let replying = reply_to.map(|r| format!("{chat_id}:{r}"));
            if let Some(r) = &replying {
                meta["reply_to"] = json!(r);
            }
            said(
                inbox,
                chat_id.clone(),
                Said {
                    provider_message_id: format!("{chat_id}:{message_id}"),
                    from: InboundSender::identity(chat_id.as_str(), name.as_deref()),
                    kind,
                    text,
                    at,
                    meta,
                    replying_to: replying,
                    alias: None,
                },
            )
        }
        TgEvent::Edited {
            chat_id,
            message_id,
            text,
            at,
        } => Arrival::event(
            inbox,
            at,
            InboundEvent::Edit {
                provider_message_id: format!("{chat_id}:{message_id}"),
                text,
                // Telegram counts no edits: one more than before.
                num_edit: 0,
            },
        ),
        TgEvent::Reaction {
            chat_id,
            message_id,
            emoji,
            at,
        } => Arrival::event(
            inbox,
            at,
            InboundEvent::Reaction {
                customer: chat_id.clone(),
                target_provider_id: format!("{chat_id}:{message_id}"),
                reaction: emoji.map(|e| json!({"emoji": e, "at": at.clamp_to(now)})),
                at,
            },
        ),
        TgEvent::Callback {
            id,
            chat_id,
            name,
            data,
            title,
            at,
        } => {
            // A tap has no time of its own: the update's arrival.
            let at = if at.millis() == 0 { now } else { now.max(at) };
            let tap = said(
                inbox,
                chat_id.clone(),
                Said {
                    from: InboundSender::identity(chat_id.as_str(), name.as_deref()),
                    provider_message_id: format!("callback:{id}"),
                    kind: MessageKind::Text,
                    // The customer sees no message for a tap: the thread shows it as a tap.
                    text: format!("[button] {}", title.as_deref().unwrap_or(&data)),
                    at,
                    meta: json!({"callback_data": data}),
                    replying_to: None,
                    alias: None,
                },
            );
            // Acknowledged in the webhook's answer itself, as the Bot API allows.
            tap.with(Effect::Respond(
                json!({"method": "answerCallbackQuery", "callback_query_id": id}),
            ))
        }
        TgEvent::Reachable {
            chat_id,
            reachable,
            at,
        } => Arrival::effect(
            inbox,
            at,
            Effect::Reachable {
                customer: chat_id,
                unreachable: (!reachable).then_some("user_blocked"),
            },
        ),
        TgEvent::Ignored { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_tokens() {
        assert!(verify_secret("s3cr3t", Some("s3cr3t")));
        assert!(!verify_secret("s3cr3t", Some("s3cr3T")));
        assert!(!verify_secret("s3cr3t", Some("s3cr3t ")));
        assert!(!verify_secret("s3cr3t", None));
        assert!(!verify_secret("", Some("")));
        assert!(valid_secret_token("abc_DEF-123"));
        assert!(!valid_secret_token("has space"));
        assert!(!valid_secret_token(""));
        assert!(!valid_secret_token(&"a".repeat(257)));
        assert!(valid_bot_token("123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"));
        assert!(!valid_bot_token("123456/../x"));
        assert_eq!(
            method_url("https://api.telegram.org/", "1:A", "sendMessage"),
            "https://api.telegram.org/bot1:A/sendMessage"
        );
    }

    #[test]
    fn parses_updates() {
        let u = parse(br#"{"update_id":10000,"message":{"message_id":1365,"date":1700000000,
            "from":{"id":1111111,"is_bot":false,"first_name":"An","username":"an","language_code":"vi"},
            "chat":{"id":1111111,"type":"private","first_name":"An"},"text":"/start","entities":[{"type":"bot_command","offset":0,"length":6}]}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.update_id, 10_000);
        assert_eq!(
            u.event,
            TgEvent::Message {
                chat_id: "1111111".into(),
                message_id: "1365".into(),
                name: Some("An".into()),
                text: "/start".into(),
                attachments: vec![],
                reply_to: None,
                chat_type: "private".into(),
                extras: json!({}),
                at: Timestamp(1_700_000_000_000),
            }
        );
        let photo = parse(br#"{"update_id":2,"message":{"message_id":2,"date":1,"chat":{"id":5,"type":"private","first_name":"B"},
            "photo":[{"file_id":"small","file_unique_id":"s","width":90,"height":90},{"file_id":"big","file_unique_id":"b","width":800,"height":800}],
            "caption":"this one","reply_to_message":{"message_id":1}}}"#).unwrap_or_else(|e| panic!("{e}"));
        match photo.event {
            TgEvent::Message {
                text,
                attachments,
                reply_to,
                ..
            } => {
                assert_eq!(text, "[photo] this one");
                assert_eq!(attachments[0].file_id, "big");
                assert_eq!(reply_to.as_deref(), Some("1"));
            }
            other => panic!("{other:?}"),
        }
        for (k, want) in [
            (
                r#""document":{"file_id":"d","file_name":"a.pdf","mime_type":"application/pdf"}"#,
                "[document] a.pdf",
            ),
            (r#""voice":{"file_id":"v","duration":3}"#, "[voice]"),
            (r#""video":{"file_id":"v","duration":3}"#, "[video]"),
            (r#""sticker":{"file_id":"s","emoji":"😀"}"#, "[sticker] 😀"),
        ] {
            let body = format!(
                r#"{{"update_id":3,"message":{{"message_id":3,"date":1,"chat":{{"id":5,"type":"private"}},{k}}}}}"#
            );
            match parse(body.as_bytes()).map(|u| u.event) {
                Ok(TgEvent::Message { text, .. }) => assert_eq!(text, want),
                other => panic!("{other:?}"),
            }
        }
        let edit = parse(br#"{"update_id":4,"edited_message":{"message_id":1365,"date":1,"edit_date":9,"chat":{"id":5,"type":"private"},"text":"fixed"}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            edit.event,
            TgEvent::Edited {
                chat_id: "5".into(),
                message_id: "1365".into(),
                text: "fixed".into(),
                at: Timestamp(9_000)
            }
        );
        let cb = parse(br#"{"update_id":5,"callback_query":{"id":"77","from":{"id":5,"first_name":"B"},"message":{"message_id":9,"date":3,"chat":{"id":5,"type":"private"}},"chat_instance":"x","data":"size_m"}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(cb.event, TgEvent::Callback { ref data, ref chat_id, title: None, .. } if data == "size_m" && chat_id == "5")
        );
        // Telegram sends the message the button was under, keyboard included: its text is kept.
        let cb = parse(br#"{"update_id":7,"callback_query":{"id":"78","from":{"id":5,"first_name":"B"},"chat_instance":"x","data":"size_l",
            "message":{"message_id":9,"date":3,"chat":{"id":5,"type":"private"},"text":"Size?","reply_markup":{"inline_keyboard":[
                [{"text":"Size M","callback_data":"size_m"}],[{"text":"Size L","callback_data":"size_l"}]]}}}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(cb.event, TgEvent::Callback { ref title, .. } if title.as_deref() == Some("Size L"))
        );
        let blocked = parse(br#"{"update_id":6,"my_chat_member":{"chat":{"id":5,"type":"private"},"from":{"id":5},"date":4,
            "old_chat_member":{"status":"member"},"new_chat_member":{"status":"kicked"}}}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            blocked.event,
            TgEvent::Reachable {
                reachable: false,
                ..
            }
        ));
        assert!(parse(b"{}").is_err());
    }

    /// `setWebhook` asks for exactly what `parse` handles: every kind asked for becomes an event,
    /// and a kind not asked for would be ignored anyway.
    #[test]
    fn allowed_updates_are_exactly_the_updates_we_handle() {
        let chat = json!({"id": 5, "type": "private", "first_name": "B"});
        let message = json!({"message_id": 1, "date": 1_790_000_000, "chat": chat, "text": "hi"});
        let sample = |kind: &str| match kind {
            "callback_query" => json!({"id": "1", "from": {"id": 5}, "data": "x",
                "message": {"message_id": 1, "date": 1, "chat": chat}}),
            "my_chat_member" => json!({"chat": chat, "from": {"id": 5}, "date": 1,
                "old_chat_member": {"status": "member"}, "new_chat_member": {"status": "kicked"}}),
            "message_reaction" => json!({"chat": chat, "message_id": 1, "date": 1,
                "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}),
            _ => message.clone(),
        };
        for kind in ALLOWED_UPDATES {
            let body = json!({"update_id": 1, *kind: sample(kind)}).to_string();
            let u = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(
                !matches!(u.event, TgEvent::Ignored { .. }),
                "{kind} is asked for but not handled"
            );
        }
        for kind in [
            "inline_query",
            "poll_answer",
            "chat_member",
            "business_message",
        ] {
            assert!(!ALLOWED_UPDATES.contains(&kind));
            let body = json!({"update_id": 1, kind: sample(kind)}).to_string();
            let u = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(matches!(u.event, TgEvent::Ignored { .. }), "{kind}");
        }
        assert_eq!(
            set_webhook_body("https://x/y", "s")["allowed_updates"],
            json!(ALLOWED_UPDATES)
        );
    }

    #[test]
    fn answers() {
        assert_eq!(
            classify(
                200,
                br#"{"ok":true,"result":{"message_id":42,"date":1,"chat":{"id":5}}}"#
            ),
            Ok("42".into())
        );
        let e = classify(429, br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#);
        assert!(
            matches!(e, Err(ref f) if f.retry && f.retry_after_ms == Some(3_000) && f.reason == "rate_limited")
        );
        let e = classify(403, br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#);
        assert!(matches!(e, Err(ref f) if !f.retry && f.reason == "user_blocked"));
        let e = classify(
            400,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#,
        );
        assert!(matches!(e, Err(ref f) if f.reason == "message_too_long"));
        let e = classify(400, br#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-100123}}"#);
        assert!(matches!(e, Err(ref f) if f.reason == "chat_migrated"));
        assert_eq!(
            send_message_body("5", "hi", Some("9")),
            json!({"chat_id":5,"text":"hi","reply_parameters":{"message_id":9,"allow_sending_without_reply":true}})
        );
    }

    #[test]
    fn buttons_go_out_as_an_inline_keyboard() {
        use switchboard_core::outbound::{Choice, Choices};
        let c = |id: &str, title: &str| Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        };
        let content = Content::Interactive(Interactive {
            header: None,
            body: "Anh chọn size nào ạ?".into(),
            footer: Some("Shop Lan".into()),
            choices: Choices::Buttons(vec![c("size_m", "Size M"), c("size_l", "Size L")]),
        });
        let r = Rendering {
            to: "1111111",
            content: &content,
            text: "Anh chọn size nào ạ?",
            template: None,
            message_id: switchboard_core::MessageId(uuid::Uuid::from_u128(7)),
            messaging_type: None,
            tag: None,
        };
        let (job, request) = Telegram.render(&r);
        assert_eq!(job, OutboxJob::Send);
        assert_eq!(
            request,
            json!({"body": {"chat_id": 1111111, "text": "Anh chọn size nào ạ?\n\nShop Lan",
            "reply_markup": {"inline_keyboard": [
                [{"text": "Size M", "callback_data": "size_m"}],
                [{"text": "Size L", "callback_data": "size_l"}],
            ]}}})
        );
        let text = Content::Text("hi".into());
        let (_, request) = Telegram.render(&Rendering {
            content: &text,
            text: "hi",
            ..r
        });
        assert_eq!(request, json!({"body": {"chat_id": 1111111, "text": "hi"}}));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn profiles_and_their_photo() {
        assert_eq!(profile_body("1111111"), Some(json!({"chat_id": 1_111_111})));
        assert_eq!(profile_body("-100123"), Some(json!({"chat_id": -100_123})));
        assert_eq!(profile_body("@x"), None);
        let p = parse_profile(&json!({"ok":true,"result":{"id":1111111,"type":"private","first_name":"An","last_name":"Lê","username":"an_le",
            "photo":{"small_file_id":"AQADs","small_file_unique_id":"AQADsu","big_file_id":"AQADb","big_file_unique_id":"AQADbu"}}}))
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("An Lê"));
        assert_eq!(p.username.as_deref(), Some("an_le"));
        let pic = p.picture.unwrap();
        assert_eq!(
            (pic.key.as_str(), pic.source),
            (
                "AQADbu",
                crate::provider::PictureSource::File("AQADb".into())
            )
        );
        // No photo (privacy settings, or none set): the name alone.
        let bare =
            parse_profile(&json!({"ok":true,"result":{"id":5,"type":"private","first_name":"B"}}))
                .unwrap();
        assert_eq!((bare.name.as_deref(), bare.picture), (Some("B"), None));
        assert_eq!(
            parse_profile(
                &json!({"ok":false,"error_code":400,"description":"Bad Request: chat not found"})
            ),
            None
        );

        let base = "https://api.telegram.org";
        let file = |path: &str, size: u64| json!({"ok":true,"result":{"file_id":"AQADb","file_unique_id":"AQADbu","file_size":size,"file_path":path}});
        assert_eq!(
            file_url(base, "123:ABC", &file("photos/file_0.jpg", 9000)).as_deref(),
            Some("https://api.telegram.org/file/bot123:ABC/photos/file_0.jpg")
        );
        for hostile in [
            "../../etc/passwd",
            "/photos/x.jpg",
            "photos/x.jpg?a=b",
            "photos/x y.jpg",
            "",
        ] {
            assert_eq!(file_url(base, "t", &file(hostile, 9000)), None, "{hostile}");
        }
        assert_eq!(
            file_url(base, "t", &file("photos/big.jpg", 50_000_000)),
            None
        );
    }
}
