//! WhatsApp Cloud API, as `shared/channels.md` §3 describes it: the handshake and the
//! `X-Hub-Signature-256` check (identical to Messenger's, so they are [`crate::meta`]'s), webhook
//! parsing (every inbound message type, `statuses[]`, template updates), Send API bodies (text,
//! media, interactive, templates), message templates (parsing the template list, checking and
//! filling parameters) and the mapping of WhatsApp error codes to stable reasons.
//! No I/O here: the server sends what this module builds.

use crate::meta::Failure;
use serde_json::{Value, json};
use switchboard_core::Timestamp;
use switchboard_core::outbound::{
    Choice, Choices, Interactive, Media, MediaKind, MediaSource, Section,
};

pub use crate::meta::{DEFAULT_API_BASE_URL, handshake, signature_header, verify_signature};

/// Our marker in `biz_opaque_callback_data` (echoed in statuses): `sb:<message id>`.
pub const CALLBACK_PREFIX: &str = "sb:";

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

/// WhatsApp times are strings of seconds.
fn secs(v: &Value) -> Option<Timestamp> {
    crate::wire::seconds(v)
}

/// Reads only the routing ids of an unverified body: `metadata.phone_number_id` of each change,
/// and the `entry[].id` (the business account) of an entry with a change that names no number
/// (template updates). Used to pick the app secrets to verify with; nothing else of the body is
/// trusted before that.
pub fn routing_ids(raw_body: &[u8]) -> (Vec<String>, Vec<String>) {
    use crate::lenient::{Dig, Each, none_for_scalars};
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// One entry: its id and each change's number, read as the parser reads them (an entry or a
    /// change that is not an object is skipped; of duplicate keys the last wins).
    #[derive(Default)]
    struct Ids {
        id: Option<Value>,
        phones: Vec<Option<Value>>,
    }
    struct Entry;
    impl<'de> DeserializeSeed<'de> for Entry {
        type Value = Ids;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Ids, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Entry {
        type Value = Ids;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a webhook entry")
        }
        none_for_scalars!();
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ids, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Ids::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ids, A::Error> {
            let mut ids = Ids::default();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match key.as_ref() {
                    "id" => ids.id = Some(map.next_value::<Value>()?),
                    "changes" => {
                        let number = || Dig(&["value", "metadata", "phone_number_id"]);
                        ids.phones = map.next_value_seed(Each(number))?.unwrap_or_default();
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(ids)
        }
    }
    struct Hook;
    impl<'de> DeserializeSeed<'de> for Hook {
        type Value = Vec<Ids>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Ids>, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Hook {
        type Value = Vec<Ids>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a webhook")
        }
        none_for_scalars!();
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Ids>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Ids>, A::Error> {
            let mut entries = Vec::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "entry" {
                    entries = map.next_value_seed(Each(|| Entry))?.unwrap_or_default();
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(entries)
        }
    }
    // Typed walking: everything but the ids is skipped unbuilt (this runs before the signature
    // is checked, on bodies of up to several MB).
    let mut de = serde_json::Deserializer::from_slice(raw_body);
    let Ok(entries) = Hook.deserialize(&mut de).and_then(|e| de.end().map(|()| e)) else {
        return (Vec::new(), Vec::new());
    };
    let mut phones = Vec::new();
    let mut wabas = Vec::new();
    for e in entries {
        for p in &e.phones {
            match p.as_ref().and_then(id_str) {
                Some(p) => phones.push(p),
                None => wabas.extend(e.id.as_ref().and_then(id_str)),
            }
        }
    }
    for l in [&mut phones, &mut wabas] {
        l.sort();
        l.dedup();
    }
    (phones, wabas)
}

// ------------------------------------------------------------------ webhook parsing

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub changes: Vec<Change>,
}

/// One `entry[].changes[]` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `entry[].id`: the WhatsApp Business Account.
    pub waba_id: String,
    /// `value.metadata.phone_number_id`: the number (inbox) the events are for.
    pub phone_number_id: Option<String>,
    pub events: Vec<WaEvent>,
}

/// Who wrote: the phone-number id `wa_id`, the business-scoped user id (`CC.<digits>`), or both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Customer {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
}

impl Customer {
    /// The id the contact is keyed by: `wa_id`, else the business-scoped user id (§3.1).
    pub fn key(&self) -> Option<&str> {
        self.wa_id.as_deref().or(self.user_id.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub id: String,
    pub from: Customer,
    pub at: Timestamp,
    /// The message `type` (`text`, `image`, `interactive`, `button`, ...).
    pub kind: String,
    /// A one-line text for the thread and the preview.
    pub text: String,
    /// Media (image, video, audio, document, sticker): shown as a media message.
    pub is_media: bool,
    /// Extras: attachments, location, contacts, interactive reply, button, order, referral, ...
    pub meta: Value,
    /// `context.id`: the message this one answers.
    pub reply_to: Option<String>,
    /// Click-to-WhatsApp ad / Page CTA (`referral`): the free entry point applies.
    pub from_ad: bool,
    /// Counts as the customer writing (opens the customer-service window). `system` messages
    /// (e.g. "changed their number") do not.
    pub opens_window: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaError {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The `wamid` of our message.
    pub id: String,
    /// `sent`, `delivered`, `read`, `played`, `failed` (or anything newer, ignored).
    pub status: String,
    pub at: Timestamp,
    pub recipient: Customer,
    pub errors: Vec<WaError>,
    pub pricing: Option<Value>,
    pub conversation: Option<Value>,
    /// `biz_opaque_callback_data` as we sent it.
    pub callback: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WaEvent {
    Message(InboundMessage),
    /// A reaction to a message (`emoji: None` removes it).
    Reaction {
        from: Customer,
        id: String,
        target: String,
        emoji: Option<String>,
        at: Timestamp,
    },
    /// The customer edited a message of theirs (`type: edit`): `text` is the new text or caption,
    /// shown as the thread shows such a message.
    Edit {
        from: Customer,
        target: String,
        text: String,
        at: Timestamp,
    },
    /// The customer deleted a message of theirs for everyone (`type: revoke`).
    Revoke {
        from: Customer,
        target: String,
        at: Timestamp,
    },
    Status(StatusUpdate),
    /// `message_template_status_update`.
    TemplateStatus {
        template_id: Option<String>,
        name: Option<String>,
        language: Option<String>,
        status: String,
    },
    /// `template_category_update`.
    TemplateCategory {
        template_id: Option<String>,
        name: Option<String>,
        language: Option<String>,
        category: String,
    },
    Ignored {
        what: String,
    },
}

impl WaEvent {
    /// Provider time, for ordering one delivery.
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Message(m) => m.at,
            Self::Reaction { at, .. } | Self::Edit { at, .. } | Self::Revoke { at, .. } => *at,
            Self::Status(s) => s.at,
            _ => Timestamp(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("unknown object `{0}`")]
    UnknownObject(String),
    #[error("`entry` must be an array")]
    NoEntries,
}

/// Parses a (verified) webhook body. Items that make no sense are `Ignored`, never errors.
pub fn parse(raw_body: &[u8]) -> Result<Webhook, ParseError> {
    let v: Value = serde_json::from_slice(raw_body).map_err(|_| ParseError::NotJson)?;
    match v["object"].as_str() {
        Some("whatsapp_business_account") => {}
        other => return Err(ParseError::UnknownObject(other.unwrap_or("").to_owned())),
    }
    let entries = v["entry"].as_array().ok_or(ParseError::NoEntries)?;
    let mut changes = Vec::new();
    for e in entries {
        let waba_id = id_str(&e["id"]).unwrap_or_default();
        for c in e["changes"].as_array().into_iter().flatten() {
            let value = &c["value"];
            let field = c["field"].as_str().unwrap_or("");
            let events = match field {
                "messages" => parse_messages_value(value),
                "message_template_status_update" => vec![WaEvent::TemplateStatus {
                    template_id: id_str(&value["message_template_id"]),
                    name: text(&value["message_template_name"]),
                    language: text(&value["message_template_language"]),
                    status: text(&value["event"]).unwrap_or_default(),
                }],
                "template_category_update" => vec![WaEvent::TemplateCategory {
                    template_id: id_str(&value["message_template_id"]),
                    name: text(&value["message_template_name"]),
                    language: text(&value["message_template_language"]),
                    category: text(&value["new_category"])
                        .or_else(|| text(&value["category"]))
                        .unwrap_or_default(),
                }],
                other => vec![WaEvent::Ignored {
                    what: format!("field {other}"),
                }],
            };
            changes.push(Change {
                waba_id: waba_id.clone(),
                phone_number_id: id_str(&value["metadata"]["phone_number_id"]),
                events,
            });
        }
    }
    Ok(Webhook { changes })
}

fn parse_messages_value(value: &Value) -> Vec<WaEvent> {
    let contacts: Vec<&Value> = value["contacts"].as_array().into_iter().flatten().collect();
    let contact_of = |wa_id: Option<&str>, user_id: Option<&str>| -> Customer {
        let found = contacts.iter().find(|c| {
            (wa_id.is_some() && c["wa_id"].as_str() == wa_id)
                || (user_id.is_some() && c["user_id"].as_str() == user_id)
        });
        let found = found.or(if contacts.len() == 1 {
            contacts.first()
        } else {
            None
        });
        Customer {
            wa_id: wa_id
                .map(str::to_owned)
                .or_else(|| found.and_then(|c| text(&c["wa_id"]))),
            user_id: user_id
                .map(str::to_owned)
                .or_else(|| found.and_then(|c| text(&c["user_id"]))),
            name: found.and_then(|c| text(&c["profile"]["name"])),
        }
    };
    let mut out = Vec::new();
    for m in value["messages"].as_array().into_iter().flatten() {
        let from = contact_of(m["from"].as_str(), m["from_user_id"].as_str());
        out.push(parse_message(m, from));
    }
    for s in value["statuses"].as_array().into_iter().flatten() {
        let Some(id) = id_str(&s["id"]) else {
            out.push(WaEvent::Ignored {
                what: "status without id".into(),
            });
            continue;
        };
        let errors = s["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| WaError {
                code: e["code"].as_i64(),
                title: text(&e["title"]),
                message: text(&e["message"]),
                details: text(&e["error_data"]["details"]),
            })
            .collect();
        out.push(WaEvent::Status(StatusUpdate {
            id,
            status: text(&s["status"]).unwrap_or_default(),
            at: secs(&s["timestamp"]).unwrap_or(Timestamp(0)),
            recipient: Customer {
                wa_id: text(&s["recipient_id"]),
                user_id: text(&s["recipient_user_id"]),
                name: None,
            },
            errors,
            pricing: s.get("pricing").filter(|p| p.is_object()).cloned(),
            conversation: s.get("conversation").filter(|p| p.is_object()).cloned(),
            callback: text(&s["biz_opaque_callback_data"]),
        }));
    }
    out
}

const MEDIA: &[&str] = &["image", "video", "audio", "document", "sticker"];

fn parse_message(m: &Value, from: Customer) -> WaEvent {
    let Some(id) = id_str(&m["id"]) else {
        return WaEvent::Ignored {
            what: "message without id".into(),
        };
    };
    let at = secs(&m["timestamp"]).unwrap_or(Timestamp(0));
    let kind = text(&m["type"]).unwrap_or_else(|| "unknown".into());
    if kind == "reaction" {
        let target = id_str(&m["reaction"]["message_id"]).unwrap_or_default();
        return WaEvent::Reaction {
            from,
            id,
            target,
            emoji: text(&m["reaction"]["emoji"]),
            at,
        };
    }
    if kind == "edit" || kind == "revoke" {
        return change_of(m, &kind, from, at);
    }
    let body = &m[kind.as_str()];
    let mut meta = serde_json::Map::new();
    let mut opens_window = true;
    let mut is_media = false;
    let shown = match kind.as_str() {
        "text" => text(&body["body"]).unwrap_or_default(),
        k if MEDIA.contains(&k) => {
            is_media = true;
            meta.insert(
                "attachments".into(),
                json!([{
                    "type": k, "media_id": id_str(&body["id"]), "mime_type": body["mime_type"],
                    "sha256": body["sha256"], "filename": body["filename"], "caption": body["caption"],
                    "animated": body["animated"],
                }]),
            );
            match text(&body["caption"]) {
                Some(c) => format!("[{k}] {c}"),
                None => format!("[{k}]"),
            }
        }
        "location" => {
            meta.insert("location".into(), body.clone());
            let place = [text(&body["name"]), text(&body["address"])]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            let coords = format!(
                "{}, {}",
                body["latitude"].as_f64().unwrap_or(0.0),
                body["longitude"].as_f64().unwrap_or(0.0)
            );
            if place.is_empty() {
                format!("[location] {coords}")
            } else {
                format!("[location] {place} ({coords})")
            }
        }
        "contacts" => {
            let cards = m["contacts"].clone();
            let names: Vec<String> = cards
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| text(&c["name"]["formatted_name"]))
                .collect();
            meta.insert("contacts".into(), cards);
            format!("[contact] {}", names.join(", "))
        }
        "interactive" => {
            let t = text(&body["type"]).unwrap_or_default();
            let reply = &body[t.as_str()];
            meta.insert(
                "interactive".into(),
                json!({"type": t, "id": reply["id"], "title": reply["title"],
                       "description": reply["description"], "response_json": reply["response_json"]}),
            );
            match t.as_str() {
                "button_reply" | "list_reply" => text(&reply["title"]).unwrap_or_default(),
                "nfm_reply" => "[form reply]".into(),
                _ => format!("[{t}]"),
            }
        }
        "button" => {
            meta.insert(
                "button".into(),
                json!({"payload": body["payload"], "text": body["text"]}),
            );
            text(&body["text"])
                .or_else(|| text(&body["payload"]))
                .unwrap_or_else(|| "[button]".into())
        }
        "order" => {
            meta.insert("order".into(), body.clone());
            let n = body["product_items"].as_array().map_or(0, Vec::len);
            format!("[order] {n} item(s)")
        }
        "system" => {
            opens_window = false;
            meta.insert("system".into(), body.clone());
            text(&body["body"]).unwrap_or_else(|| "[system]".into())
        }
        "request_welcome" => "[opened the chat]".into(),
        _ => {
            // `unsupported` (and types newer than this code): keep what WhatsApp said.
            meta.insert("errors".into(), m["errors"].clone());
            "[unsupported message]".into()
        }
    };
    if let Some(ctx) = m.get("context").filter(|c| c.is_object()) {
        meta.insert("context".into(), ctx.clone());
    }
    let from_ad = m.get("referral").is_some_and(Value::is_object);
    if from_ad {
        meta.insert("referral".into(), m["referral"].clone());
    }
    if let Some(u) = &from.user_id {
        meta.insert("user_id".into(), json!(u));
    }
    meta.insert("type".into(), json!(kind));
    WaEvent::Message(InboundMessage {
        id,
        from,
        at,
        kind,
        text: if shown.trim().is_empty() {
            "[message]".into()
        } else {
            shown
        },
        is_media,
        meta: Value::Object(meta),
        reply_to: id_str(&m["context"]["id"]),
        from_ad,
        opens_window,
    })
}

/// An `edit` or a `revoke` of an earlier message (`<type>.original_message_id`). The edit carries
/// the new message (`edit.message`, a text or a media with its caption), shown as that message
/// would be shown.
fn change_of(m: &Value, kind: &str, from: Customer, at: Timestamp) -> WaEvent {
    let Some(target) = id_str(&m[kind]["original_message_id"]) else {
        return WaEvent::Ignored {
            what: format!("{kind} without original_message_id"),
        };
    };
    if kind == "revoke" {
        return WaEvent::Revoke { from, target, at };
    }
    let new = &m["edit"]["message"];
    let new_kind = new["type"].as_str().unwrap_or("text");
    if !new.is_object() || new_kind == "edit" || new_kind == "revoke" {
        return WaEvent::Ignored {
            what: "edit without a message".into(),
        };
    }
    let mut shown = new.clone();
    shown["id"] = json!(target);
    shown["type"] = json!(new_kind);
    match parse_message(&shown, from.clone()) {
        WaEvent::Message(n) => WaEvent::Edit {
            from,
            target,
            text: n.text,
            at,
        },
        _ => WaEvent::Ignored {
            what: "edit of an unreadable message".into(),
        },
    }
}

// ------------------------------------------------------------------ Send API

/// The recipient field: `to` for a phone number, `recipient` for a business-scoped user id.
fn addressed(recipient: &str) -> Value {
    if recipient.contains('.') {
        json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "recipient": recipient })
    } else {
        json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient })
    }
}

/// A Send API body: `{messaging_product, to|recipient, type, <type>: object}` with our callback
/// marker and an optional quoted message.
pub fn message_body(
    recipient: &str,
    kind: &str,
    object: Value,
    callback: Option<&str>,
    reply_to: Option<&str>,
) -> Value {
    let mut b = addressed(recipient);
    b["type"] = json!(kind);
    b[kind] = object;
    if let Some(c) = callback {
        b["biz_opaque_callback_data"] = json!(c);
    }
    if let Some(r) = reply_to {
        b["context"] = json!({ "message_id": r });
    }
    b
}

pub fn text_body(recipient: &str, text: &str, callback: Option<&str>) -> Value {
    message_body(
        recipient,
        "text",
        json!({ "body": text, "preview_url": false }),
        callback,
        None,
    )
}

pub fn messages_url(base: &str, phone_number_id: &str) -> String {
    format!("{}/{phone_number_id}/messages", base.trim_end_matches('/'))
}

pub fn templates_url(base: &str, waba_id: &str) -> String {
    format!(
        "{}/{waba_id}/message_templates?fields=id,name,language,status,category,components,parameter_format&limit=100",
        base.trim_end_matches('/')
    )
}

/// The Send API answer: the `wamid` (and the `wa_id` WhatsApp resolved the number to).
pub fn parse_send_ok(v: &Value) -> Option<(String, Option<String>)> {
    let id = id_str(&v["messages"][0]["id"])?;
    Some((id, text(&v["contacts"][0]["wa_id"])))
}

/// Checks an interactive object (§3.2 limits): reply buttons or a list.
pub fn check_interactive(v: &Value) -> Result<(), String> {
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let body = chars(&v["body"]["text"]);
    if body == 0 || body > 1024 {
        return Err("interactive.body.text: 1 to 1024 characters".into());
    }
    match v["type"].as_str() {
        Some("button") => {
            let buttons = v["action"]["buttons"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if buttons.is_empty() || buttons.len() > 3 {
                return Err("interactive.action.buttons: 1 to 3 reply buttons".into());
            }
            for b in &buttons {
                let (id, title) = (chars(&b["reply"]["id"]), chars(&b["reply"]["title"]));
                if b["type"].as_str() != Some("reply") || id == 0 || id > 256 {
                    return Err("interactive.action.buttons: each is a reply with an id of 1 to 256 characters".into());
                }
                if title == 0 || title > 20 {
                    return Err("interactive.action.buttons: titles are 1 to 20 characters".into());
                }
            }
            Ok(())
        }
        Some("list") => {
            let button = chars(&v["action"]["button"]);
            if button == 0 || button > 20 {
                return Err("interactive.action.button: 1 to 20 characters".into());
            }
            let rows: Vec<&Value> = v["action"]["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["rows"].as_array().into_iter().flatten())
                .collect();
            if rows.is_empty() || rows.len() > 10 {
                return Err("interactive.action.sections: 1 to 10 rows in total".into());
            }
            for r in rows {
                let (id, title, desc) = (
                    chars(&r["id"]),
                    chars(&r["title"]),
                    chars(&r["description"]),
                );
                if id == 0 || id > 200 || title == 0 || title > 24 || desc > 72 {
                    return Err("interactive.action.sections: row ids 1 to 200, titles 1 to 24, descriptions up to 72 characters".into());
                }
            }
            Ok(())
        }
        _ => Err("interactive.type: button or list".into()),
    }
}

/// The outbound model's choices from an interactive object (after [`check_interactive`]); a
/// header is text only.
pub fn parse_interactive(v: &Value) -> Result<Interactive, String> {
    check_interactive(v)?;
    let header = match &v["header"] {
        Value::Null => None,
        h if h["type"].as_str() == Some("text") => text(&h["text"]),
        _ => return Err("interactive.header: a text header only".into()),
    };
    let choice = |id: &Value, title: &Value, description: &Value| Choice {
        id: text(id).unwrap_or_default(),
        title: text(title).unwrap_or_default(),
        description: text(description),
    };
    let choices = if v["type"].as_str() == Some("button") {
        Choices::Buttons(
            v["action"]["buttons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| choice(&b["reply"]["id"], &b["reply"]["title"], &Value::Null))
                .collect(),
        )
    } else {
        Choices::List {
            button: text(&v["action"]["button"]).unwrap_or_default(),
            sections: v["action"]["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Section {
                    title: text(&s["title"]),
                    rows: s["rows"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| choice(&r["id"], &r["title"], &r["description"]))
                        .collect(),
                })
                .collect(),
        }
    };
    Ok(Interactive {
        header,
        body: text(&v["body"]["text"]).unwrap_or_default(),
        footer: text(&v["footer"]["text"]),
        choices,
    })
}

/// The Send API `interactive` object: reply buttons or a list.
pub fn interactive_object(i: &Interactive) -> Value {
    let mut o = match &i.choices {
        Choices::Buttons(b) => json!({"type": "button", "action": {"buttons": b.iter()
            .map(|c| json!({"type": "reply", "reply": {"id": c.id, "title": c.title}}))
            .collect::<Vec<_>>()}}),
        Choices::List { button, sections } => {
            let sections: Vec<Value> = sections
                .iter()
                .map(|s| {
                    let rows: Vec<Value> = s
                        .rows
                        .iter()
                        .map(|r| {
                            let mut row = json!({"id": r.id, "title": r.title});
                            if let Some(d) = &r.description {
                                row["description"] = json!(d);
                            }
                            row
                        })
                        .collect();
                    let mut section = json!({ "rows": rows });
                    if let Some(t) = &s.title {
                        section["title"] = json!(t);
                    }
                    section
                })
                .collect();
            json!({"type": "list", "action": {"button": button, "sections": sections}})
        }
    };
    o["body"] = json!({ "text": i.body });
    if let Some(h) = &i.header {
        o["header"] = json!({"type": "text", "text": h});
    }
    if let Some(f) = &i.footer {
        o["footer"] = json!({ "text": f });
    }
    o
}

/// The outbound model's media from a media object (after [`check_media`]).
pub fn parse_media(kind: &str, v: &Value) -> Result<Media, String> {
    check_media(kind, v)?;
    let kind = MediaKind::parse(kind).ok_or("type: image, video, audio, document or sticker")?;
    let source = match (text(&v["link"]), text(&v["id"])) {
        (Some(l), _) if l.starts_with("https://") || l.starts_with("http://") => {
            MediaSource::Link(l)
        }
        (_, Some(id)) => MediaSource::Hosted(id),
        _ => {
            return Err(format!(
                "{kind}: a `link` (http/https URL) or an uploaded media `id`"
            ));
        }
    };
    Ok(Media {
        kind,
        source,
        caption: v["caption"].as_str().map(str::to_owned),
        filename: v["filename"].as_str().map(str::to_owned),
    })
}

/// A file uploaded to Switchboard, as the media object WhatsApp fetches (§3.2): `link` (our
/// signed URL, made at send time), the caption, and the file's name for documents.
pub fn link_file(body: &mut Value, file: &Value, url: &str) {
    let Some(kind) = file["kind"].as_str() else {
        return;
    };
    let mut o = json!({ "link": url });
    if let Some(c) = file["caption"].as_str() {
        o["caption"] = json!(c);
    }
    if let (Some(f), "document") = (file["filename"].as_str(), kind) {
        o["filename"] = json!(f);
    }
    body[kind] = o;
}

/// The Send API media object (`None`: a file uploaded to Switchboard, linked at send time by
/// [`link_file`]).
pub fn media_object(m: &Media) -> Option<Value> {
    let mut o = match &m.source {
        MediaSource::Link(l) => json!({ "link": l }),
        MediaSource::Hosted(id) => json!({ "id": id }),
        MediaSource::Uploaded(_) => return None,
    };
    if let Some(c) = &m.caption {
        o["caption"] = json!(c);
    }
    if let Some(f) = &m.filename {
        o["filename"] = json!(f);
    }
    Some(o)
}

/// Checks a media object sent by link or by uploaded id (§3.2).
pub fn check_media(kind: &str, v: &Value) -> Result<(), String> {
    if !MEDIA.contains(&kind) {
        return Err("type: image, video, audio, document or sticker".into());
    }
    let link_ok = v["link"].as_str().is_some_and(|l| {
        (l.starts_with("https://") || l.starts_with("http://")) && l.len() <= 2048
    });
    if !link_ok && v["id"].as_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{kind}: a `link` (http/https URL) or an uploaded media `id`"
        ));
    }
    if let Some(c) = v.get("caption") {
        if matches!(kind, "audio" | "sticker") {
            return Err(format!("{kind}: has no caption"));
        }
        if c.as_str().is_none_or(|c| c.chars().count() > 1024) {
            return Err(format!("{kind}.caption: up to 1024 characters"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ templates

/// What a template needs filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateParams {
    /// `TEXT` header placeholders (names or positions), if the header has any.
    pub header_text: Vec<String>,
    /// `IMAGE` / `VIDEO` / `DOCUMENT` / `LOCATION` header: a media link is required.
    pub header_media: Option<String>,
    pub body: Vec<String>,
    /// URL buttons with a `{{1}}` suffix: (button index, placeholders).
    pub buttons: Vec<(usize, Vec<String>)>,
    /// `named` or `positional`.
    pub format: String,
}

/// A template as synced from the provider.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Template {
    pub id: Option<String>,
    pub name: String,
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    pub status: String,
    /// `marketing`, `utility`, `authentication`.
    pub category: String,
    pub components: Value,
    pub parameter_format: String,
}

/// `{{1}}`, `{{name}}` placeholders of a text, in order of first appearance.
pub fn placeholders(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_owned();
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !out.contains(&name)
        {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

fn component<'a>(t: &'a Template, kind: &str) -> Option<&'a Value> {
    t.components.as_array()?.iter().find(|c| {
        c["type"]
            .as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case(kind))
    })
}

impl Template {
    pub fn params(&self) -> TemplateParams {
        let header = component(self, "header");
        let format = header
            .and_then(|h| h["format"].as_str())
            .unwrap_or("TEXT")
            .to_ascii_uppercase();
        let (header_text, header_media) = match header {
            None => (Vec::new(), None),
            Some(h) if format == "TEXT" => (placeholders(h["text"].as_str().unwrap_or("")), None),
            Some(_) => (Vec::new(), Some(format.to_ascii_lowercase())),
        };
        let body = component(self, "body")
            .map(|b| placeholders(b["text"].as_str().unwrap_or("")))
            .unwrap_or_default();
        let buttons = component(self, "buttons")
            .and_then(|b| b["buttons"].as_array())
            .map(|bs| {
                bs.iter()
                    .enumerate()
                    .filter(|(_, b)| {
                        b["type"]
                            .as_str()
                            .is_some_and(|t| t.eq_ignore_ascii_case("url"))
                    })
                    .map(|(i, b)| (i, placeholders(b["url"].as_str().unwrap_or(""))))
                    .filter(|(_, p)| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        TemplateParams {
            header_text,
            header_media,
            body,
            buttons,
            format: self.parameter_format.clone(),
        }
    }

    /// The body text with the parameters filled in (what the thread shows).
    pub fn render(&self, args: &TemplateArgs) -> String {
        let p = self.params();
        let fill = |text: &str, names: &[String], values: &[String]| {
            let mut s = text.to_owned();
            for (n, v) in names.iter().zip(values) {
                s = s.replace(&format!("{{{{{n}}}}}"), v);
            }
            s
        };
        let header = component(self, "header")
            .and_then(|h| h["text"].as_str())
            .map(|h| fill(h, &p.header_text, &args.header));
        let body = component(self, "body")
            .and_then(|b| b["text"].as_str())
            .map(|b| fill(b, &p.body, &args.body))
            .unwrap_or_default();
        match header.filter(|h| !h.is_empty()) {
            Some(h) => format!("{h}\n{body}"),
            None => body,
        }
    }
}

/// Parameters for a template, as the composer fills them (the outbound model's).
pub use switchboard_core::outbound::{ButtonArg, TemplateArgs};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template status is {0}; only APPROVED templates can be sent")]
    NotApproved(String),
    #[error("{component}: expected {expected} parameter(s), got {got}")]
    Count {
        component: String,
        expected: usize,
        got: usize,
    },
    #[error(
        "{component}: parameter {index} is empty or too long (1 to 1024 characters, no line breaks in the header)"
    )]
    BadValue { component: String, index: usize },
    #[error("header: this template's header is {0}: give `header_media_link` (an http/https URL)")]
    MediaRequired(String),
    #[error("header: this template has no media header")]
    MediaNotExpected,
}

fn check_values(
    component: &str,
    names: &[String],
    values: &[String],
    header: bool,
) -> Result<(), TemplateError> {
    if names.len() != values.len() {
        return Err(TemplateError::Count {
            component: component.to_owned(),
            expected: names.len(),
            got: values.len(),
        });
    }
    for (i, v) in values.iter().enumerate() {
        let n = v.chars().count();
        if v.trim().is_empty() || n > 1024 || (header && (v.contains('\n') || n > 60)) {
            return Err(TemplateError::BadValue {
                component: component.to_owned(),
                index: i + 1,
            });
        }
    }
    Ok(())
}

/// Checks the arguments against the template and builds the Send API `template` object, so a
/// wrong parameter count never reaches WhatsApp (which would answer 132000).
pub fn build_template(t: &Template, args: &TemplateArgs) -> Result<Value, TemplateError> {
    if !t.status.eq_ignore_ascii_case("APPROVED") {
        return Err(TemplateError::NotApproved(t.status.clone()));
    }
    let p = t.params();
    let named = p.format.eq_ignore_ascii_case("named");
    let text_params = |names: &[String], values: &[String]| -> Vec<Value> {
        names
            .iter()
            .zip(values)
            .map(|(n, v)| {
                if named {
                    json!({"type": "text", "parameter_name": n, "text": v})
                } else {
                    json!({"type": "text", "text": v})
                }
            })
            .collect()
    };
    let mut components = Vec::new();
    check_values("header", &p.header_text, &args.header, true)?;
    match (&p.header_media, &args.header_media_link) {
        (Some(kind), Some(link)) => {
            if !(link.starts_with("https://") || link.starts_with("http://")) {
                return Err(TemplateError::MediaRequired(kind.clone()));
            }
            let mut param = json!({ "type": kind });
            param[kind.as_str()] = json!({ "link": link });
            components.push(json!({"type": "header", "parameters": [param]}));
        }
        (Some(kind), None) => return Err(TemplateError::MediaRequired(kind.clone())),
        (None, Some(_)) => return Err(TemplateError::MediaNotExpected),
        (None, None) => {}
    }
    if !p.header_text.is_empty() {
        components.push(
            json!({"type": "header", "parameters": text_params(&p.header_text, &args.header)}),
        );
    }
    check_values("body", &p.body, &args.body, false)?;
    if !p.body.is_empty() {
        components.push(json!({"type": "body", "parameters": text_params(&p.body, &args.body)}));
    }
    for (index, names) in &p.buttons {
        let given = args.buttons.iter().find(|b| b.index == *index);
        let values = given.map(|b| b.parameters.clone()).unwrap_or_default();
        check_values(&format!("buttons[{index}]"), names, &values, false)?;
        components.push(json!({"type": "button", "sub_type": "url", "index": index.to_string(),
            "parameters": values.iter().map(|v| json!({"type": "text", "text": v})).collect::<Vec<_>>()}));
    }
    if let Some(extra) = args
        .buttons
        .iter()
        .find(|b| !p.buttons.iter().any(|(i, _)| *i == b.index))
    {
        return Err(TemplateError::Count {
            component: format!("buttons[{}]", extra.index),
            expected: 0,
            got: extra.parameters.len(),
        });
    }
    let mut tpl = json!({"name": t.name, "language": {"code": t.language}});
    if !components.is_empty() {
        tpl["components"] = json!(components);
    }
    Ok(tpl)
}

/// One page of `GET /{waba-id}/message_templates`: the templates and the next page's URL.
pub fn parse_templates_page(v: &Value) -> (Vec<Template>, Option<String>) {
    let items = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(Template {
                id: id_str(&t["id"]),
                name: text(&t["name"])?,
                language: text(&t["language"])?,
                status: text(&t["status"]).unwrap_or_else(|| "UNKNOWN".into()),
                category: text(&t["category"])
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                components: t["components"].clone(),
                parameter_format: text(&t["parameter_format"])
                    .unwrap_or_else(|| "positional".into())
                    .to_ascii_lowercase(),
            })
        })
        .collect();
    (items, text(&v["paging"]["next"]))
}

// ------------------------------------------------------------------ errors

/// The stable reason for a WhatsApp error code (§3.4), and whether trying again later may work.
pub fn reason_for(code: i64) -> (bool, &'static str) {
    match code {
        131_047 => (false, "reengagement_required"),
        131_026 => (false, "undeliverable"),
        131_049 => (false, "marketing_frequency_cap"),
        131_050 => (false, "marketing_opted_out"),
        131_051 => (false, "unsupported_message_type"),
        131_052 | 131_053 => (false, "media_error"),
        131_030 => (false, "recipient_not_allowed"),
        131_031 => (false, "account_locked"),
        368 => (false, "temporarily_blocked"),
        131_008 | 131_009 | 100 => (false, "invalid_request"),
        132_000 => (false, "template_parameter_mismatch"),
        132_001 => (false, "template_not_found"),
        132_005 => (false, "template_text_too_long"),
        132_007 => (false, "template_policy_violation"),
        132_012 => (false, "template_parameter_format"),
        132_015 => (false, "template_paused"),
        132_016 => (false, "template_disabled"),
        130_429 | 131_048 | 131_056 | 80_007 | 4 => (true, "rate_limited"),
        130_472 => (false, "experiment"),
        131_042 => (false, "payment_required"),
        131_000 | 135_000 | 1 | 2 => (true, "provider_unavailable"),
        190 => (false, "token_expired"),
        10 | 200 => (false, "permission_denied"),
        _ => (false, "provider_error"),
    }
}

/// Maps a failed Send API call (HTTP status, body, `Retry-After`) to a [`Failure`].
pub fn classify_error(status: u16, body: &[u8], retry_after: Option<&str>) -> Failure {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_i64();
    let hint = retry_after
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|s| s.saturating_mul(1000));
    let (retry, reason) = match code {
        Some(c) => reason_for(c),
        None if status == 429 => (true, "rate_limited"),
        None if status >= 500 => (true, "provider_unavailable"),
        None => (false, "provider_error"),
    };
    let (retry, reason) = if reason == "provider_error" && status >= 500 {
        (true, "provider_unavailable")
    } else {
        (retry, reason)
    };
    Failure {
        retry,
        reason,
        retry_after_ms: hint,
        code,
        subcode: v["error"]["error_subcode"].as_i64(),
    }
}

// ------------------------------------------------------------------ the provider

use crate::provider::{
    Ack, ApiAnswer, ApiCall, Arrival, BadWebhook, Claim, Claims, Effect, NotSent, Outgoing,
    Provider, Rendering, Sent, TemplateChange, Usage, Verified, WebhookRequest, base_url, refused,
    setting,
};
use switchboard_core::ingest::{InboundEvent, InboundSender, Said};
use switchboard_core::outbound::{Content, OutboxJob};
use switchboard_core::{ChannelKind, DeliveryStatus, Inbox, MessageKind};

/// The WhatsApp Cloud API: one webhook URL for every number (§3).
pub struct WhatsApp;

/// Our message id in `biz_opaque_callback_data`.
pub fn ours(s: &StatusUpdate) -> Option<switchboard_core::MessageId> {
    s.callback
        .as_deref()
        .and_then(|c| c.strip_prefix(CALLBACK_PREFIX))
        .and_then(|id| id.parse().ok())
}

const CHANNELS: [ChannelKind; 1] = [ChannelKind::Whatsapp];

impl Provider for WhatsApp {
    fn check_call(&self, inbox: &Inbox, _: Timestamp) -> Option<ApiCall> {
        crate::check::graph_call(inbox)
    }
    fn checked(
        &self,
        inbox: &Inbox,
        answer: &ApiAnswer<'_>,
    ) -> Result<crate::provider::Account, crate::provider::CheckFailure> {
        crate::check::graph_checked(inbox, answer)
    }
    fn name(&self) -> &'static str {
        "whatsapp"
    }
    fn channels(&self) -> &'static [ChannelKind] {
        &CHANNELS
    }
    fn claims(&self, req: &WebhookRequest<'_>, max: usize) -> Claims {
        let (phones, wabas) = routing_ids(req.body);
        if phones.len() + wabas.len() > max {
            return Claims::TooMany;
        }
        let phones = phones
            .into_iter()
            .map(|p| Claim::Account(ChannelKind::Whatsapp, p));
        Claims::Named(
            phones
                .chain(wabas.into_iter().map(Claim::Business))
                .collect(),
        )
    }
    fn claims_of(&self, inbox: &Inbox) -> Vec<Claim> {
        let phone = setting(inbox, "phone_number_id")
            .map(|p| Claim::Account(ChannelKind::Whatsapp, p.to_owned()));
        let waba = setting(inbox, "waba_id").map(|w| Claim::Business(w.to_owned()));
        phone.into_iter().chain(waba).collect()
    }
    fn signing_key(&self, inbox: &Inbox, _: &WebhookRequest<'_>) -> Option<String> {
        setting(inbox, "app_secret").map(str::to_owned)
    }
    fn verify(&self, inbox: &Inbox, req: &WebhookRequest<'_>) -> bool {
        setting(inbox, "app_secret")
            .is_some_and(|s| verify_signature(s, req.body, req.header("x-hub-signature-256")))
    }
    fn parse(
        &self,
        req: &WebhookRequest<'_>,
        inboxes: &Verified,
        now: Timestamp,
    ) -> Result<Vec<Arrival>, BadWebhook> {
        let hook = parse(req.body).map_err(|e| BadWebhook(e.to_string()))?;
        let mut out = Vec::new();
        for change in hook.changes {
            match &change.phone_number_id {
                // A number we do not hold (or whose app did not sign): nothing stored.
                Some(p) => {
                    let Some(inbox) =
                        inboxes.one(&Claim::Account(ChannelKind::Whatsapp, p.clone()))
                    else {
                        continue;
                    };
                    out.extend(
                        change
                            .events
                            .into_iter()
                            .filter_map(|ev| arrival(inbox, ev, now)),
                    );
                }
                // Template updates name the business account only: every number of it.
                None => {
                    for inbox in inboxes.all(&Claim::Business(change.waba_id.clone())) {
                        out.extend(change.events.iter().filter_map(|ev| template(inbox, ev)));
                    }
                }
            }
        }
        Ok(out)
    }
    fn ack(&self, _: &[Arrival]) -> Ack {
        Ack::Text("EVENT_RECEIVED")
    }
    fn render(&self, r: &Rendering<'_>) -> (OutboxJob, Value) {
        let marker = format!("{CALLBACK_PREFIX}{}", r.message_id);
        let rich = |kind: &str, object| message_body(r.to, kind, object, Some(&marker), None);
        let body = match r.content {
            Content::Template(_) => rich("template", r.template.cloned().unwrap_or_default()),
            Content::Interactive(i) => rich("interactive", interactive_object(i)),
            Content::Media(m) => rich(m.kind.as_str(), media_object(m).unwrap_or_default()),
            _ => text_body(r.to, r.text, Some(&marker)),
        };
        match crate::provider::file_request(r.content) {
            Some(file) => (OutboxJob::Send, json!({ "body": body, "file": file })),
            None => (OutboxJob::Send, json!({ "body": body })),
        }
    }
    /// `GET /{media-id}` with the Bearer token: the media's (short-lived) download URL (§3.1).
    fn media_call(&self, inbox: &Inbox, id: &str) -> Option<ApiCall> {
        let token = setting(inbox, "access_token")?;
        let plain = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        plain.then(|| {
            ApiCall::get(format!("{}/{id}", base_url(inbox, DEFAULT_API_BASE_URL)))
                .header("authorization", format!("Bearer {token}"))
        })
    }
    /// The download URL needs the same Bearer token.
    fn media_download(&self, inbox: &Inbox, answer: &ApiAnswer<'_>) -> Result<ApiCall, Failure> {
        if !answer.ok() {
            return Err(classify_error(
                answer.status,
                answer.body,
                answer.retry_after,
            ));
        }
        let token = setting(inbox, "access_token").ok_or_else(|| refused("token_expired"))?;
        let url = answer.json()["url"]
            .as_str()
            .filter(|u| switchboard_core::inbound_media::is_web_url(u))
            .map(str::to_owned)
            .ok_or_else(|| refused("media_unavailable"))?;
        Ok(ApiCall::get(url).header("authorization", format!("Bearer {token}")))
    }
    fn send_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        _: Timestamp,
    ) -> Result<ApiCall, Failure> {
        let token = setting(inbox, "access_token").ok_or_else(|| refused("token_expired"))?;
        let pnid = setting(inbox, "phone_number_id").ok_or_else(|| refused("inbox_missing"))?;
        let url = messages_url(base_url(inbox, DEFAULT_API_BASE_URL), pnid);
        let mut body = out.request["body"].clone();
        if let Some(file) = out.file {
            link_file(&mut body, &out.request["file"], &file.url);
        }
        Ok(ApiCall::post(url, body).header("authorization", format!("Bearer {token}")))
    }
    fn sent(&self, _: &Outgoing<'_>, answer: &ApiAnswer<'_>) -> Result<Sent, NotSent> {
        if !answer.ok() {
            let a = answer;
            return Err(NotSent::Failed(classify_error(
                a.status,
                a.body,
                a.retry_after,
            )));
        }
        let (id, _) =
            parse_send_ok(&answer.json()).ok_or(NotSent::Failed(refused("provider_error")))?;
        Ok(Sent {
            provider_message_id: id,
            recipient: None,
            meta: None,
        })
    }
    fn refused(&self) -> &'static str {
        "bad or missing X-Hub-Signature-256"
    }
    fn handshake(&self) -> bool {
        true
    }
}

fn template(inbox: &Inbox, ev: &WaEvent) -> Option<Arrival> {
    let change = match ev {
        WaEvent::TemplateStatus {
            template_id,
            name,
            language,
            status,
        } => TemplateChange {
            template_id: template_id.clone(),
            name: name.clone(),
            language: language.clone(),
            status: Some(status.clone()),
            category: None,
        },
        WaEvent::TemplateCategory {
            template_id,
            name,
            language,
            category,
        } => TemplateChange {
            template_id: template_id.clone(),
            name: name.clone(),
            language: language.clone(),
            status: None,
            category: Some(category.clone()),
        },
        _ => return None,
    };
    Some(Arrival::effect(
        inbox,
        Timestamp(0),
        Effect::Template(change),
    ))
}

/// One event of a verified change → what to store, and what to meter afterwards.
fn arrival(inbox: &Inbox, ev: WaEvent, now: Timestamp) -> Option<Arrival> {
    let ev_at = ev.at();
    match ev {
        WaEvent::Message(m) => {
            let user = m.from.key()?.to_owned();
            if !m.opens_window {
                // `system` messages (e.g. "changed their number") are not the customer writing:
                // storing them as customer messages would reopen the window.
                return None;
            }
            // The business-scoped id next to the phone number is linked with the message.
            let alias = m.from.user_id.clone().filter(|_| m.from.wa_id.is_some());
            // WhatsApp has no profile API: the webhook's `contacts[].profile.name` is the name.
            let profile = Effect::FetchProfile {
                customer: user.clone(),
                name: m.from.name.clone(),
            };
            let said = Said {
                from: InboundSender::identity(user.as_str(), m.from.name.as_deref()),
                provider_message_id: m.id.clone(),
                kind: if m.is_media {
                    MessageKind::Media
                } else {
                    MessageKind::Text
                },
                text: m.text,
                at: m.at,
                meta: m.meta,
                replying_to: m.reply_to,
                alias,
            };
            let usage = Usage::Customer {
                user,
                wamid: m.id,
                at: m.at,
                from_ad: m.from_ad,
            };
            Some(
                Arrival::event(inbox, m.at, InboundEvent::Customer(said))
                    .with(profile)
                    .with(Effect::Usage(usage)),
            )
        }
        WaEvent::Reaction {
            from,
            id,
            target,
            emoji,
            at,
        } => {
            let user = from.key()?.to_owned();
            let event = InboundEvent::Reaction {
                customer: user.clone(),
                target_provider_id: target,
                reaction: emoji.map(|e| json!({"emoji": e, "at": at.clamp_to(now)})),
                at,
            };
            // A reaction is a message from the customer: it opens the window (§3.3).
            let usage = Usage::Customer {
                user,
                wamid: id,
                at,
                from_ad: false,
            };
            Some(Arrival::event(inbox, at, event).with(Effect::Usage(usage)))
        }
        // Edits and deletes change the original (never a new message), count for nothing and
        // move no window: they are not the customer writing.
        WaEvent::Edit { target, text, .. } => Some(Arrival::event(
            inbox,
            ev_at,
            InboundEvent::Edit {
                provider_message_id: target,
                text,
                num_edit: 0,
            },
        )),
        WaEvent::Revoke { target, .. } => Some(Arrival::event(
            inbox,
            ev_at,
            InboundEvent::Unsent {
                provider_message_id: target,
            },
        )),
        WaEvent::Status(s) => {
            let status = match s.status.as_str() {
                "sent" => DeliveryStatus::Sent,
                "delivered" => DeliveryStatus::Delivered,
                "read" | "played" => DeliveryStatus::Read,
                "failed" => DeliveryStatus::Failed,
                _ => return None,
            };
            let failure = (status == DeliveryStatus::Failed).then(|| {
                let e = s.errors.first();
                let code = e.and_then(|e| e.code);
                let reason = code.map_or("provider_error", |c| reason_for(c).1);
                (
                    reason.to_owned(),
                    json!({
                        "code": code, "title": e.and_then(|e| e.title.clone()),
                        "message": e.and_then(|e| e.message.clone()),
                        "details": e.and_then(|e| e.details.clone()),
                    }),
                )
            });
            let event = InboundEvent::Status {
                provider_message_id: s.id.clone(),
                ours: ours(&s),
                status,
                failure: failure.clone(),
            };
            let mut a = Arrival::event(inbox, s.at, event);
            if let Some((reason, _)) = failure {
                a = a.with(Effect::Warn {
                    what: "whatsapp: message failed",
                    detail: reason,
                });
            }
            let usage = Usage::Status {
                ours: ours(&s),
                provider_message_id: s.id,
                status: s.status,
                recipient: s.recipient.key().map(str::to_owned),
                at: s.at,
                pricing: s.pricing,
            };
            Some(a.with(Effect::Usage(usage)))
        }
        WaEvent::TemplateStatus { .. } | WaEvent::TemplateCategory { .. } => None,
        WaEvent::Ignored { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "app_secret_test";
    const BODY_414: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.AAA","timestamp":"1700000000","type":"text","text":{"body":"hello"}}]},"field":"messages"}]}]}"#;

    /// Found by the fuzzer: an odd entry beside a good one hid the good one's number from the
    /// routing read, so a signed message would have been acknowledged and dropped.
    #[test]
    fn routing_finds_every_number_the_parser_accepts() {
        let good = r#"{"id":"W1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},"messages":[{"from":"1","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}"#;
        for body in [
            format!(r#"{{"object":"whatsapp_business_account","entry":[{good},5]}}"#),
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W0","changes":7}},{good}]}}"#
            ),
            format!(r#"{{"object":"whatsapp_business_account","entry":[],"entry":[{good}]}}"#),
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W0","changes":[null,{{"value":{{"metadata":{{"phone_number_id":"P1","phone_number_id":"P1"}}}}}}]}},{good}]}}"#
            ),
        ] {
            let (phones, _) = routing_ids(body.as_bytes());
            let hook = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"));
            for p in hook
                .changes
                .iter()
                .filter_map(|c| c.phone_number_id.as_ref())
            {
                assert!(phones.contains(p), "{p} not routed in {body}");
            }
            assert!(hook.changes.iter().any(|c| !c.events.is_empty()), "{body}");
        }
        // A template update names no number: it is routed by its business account alone.
        let t = r#"{"object":"whatsapp_business_account","entry":[{"id":"W9","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1}}]}]}"#;
        assert_eq!(
            routing_ids(t.as_bytes()),
            (Vec::new(), vec!["W9".to_owned()])
        );
    }

    #[test]
    fn channels_md_signature_vector_and_routing() {
        assert_eq!(BODY_414.len(), 414);
        let h = "sha256=e08c5c160fa94f9118fe08bc48feeb2a6217e98be59499c7b60edc2e6e2574bb";
        assert_eq!(signature_header(SECRET, BODY_414.as_bytes()), h);
        assert!(verify_signature(SECRET, BODY_414.as_bytes(), Some(h)));
        assert!(!verify_signature("other", BODY_414.as_bytes(), Some(h)));
        let (phones, wabas) = routing_ids(BODY_414.as_bytes());
        assert_eq!(phones, vec!["106540352242922".to_owned()]);
        // A message names its number: the business account is not looked up for it.
        assert!(wabas.is_empty());
        let w = parse(BODY_414.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let c = &w.changes[0];
        assert_eq!(c.phone_number_id.as_deref(), Some("106540352242922"));
        match &c.events[0] {
            WaEvent::Message(m) => {
                assert_eq!(
                    (m.id.as_str(), m.text.as_str(), m.at),
                    ("wamid.AAA", "hello", Timestamp(1_700_000_000_000))
                );
                assert_eq!(m.from.key(), Some("16505551234"));
                assert_eq!(m.from.name.as_deref(), Some("Sheena"));
                assert!(m.opens_window && !m.from_ad && !m.is_media);
            }
            other => panic!("{other:?}"),
        }
    }

    fn one(msg: Value) -> WaEvent {
        let body = json!({"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{
            "metadata":{"phone_number_id":"P"},
            "contacts":[{"profile":{"name":"Ann"},"wa_id":"84900000001","user_id":"VN.123"}],
            "messages":[msg]}}]}]});
        let w = parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        w.changes[0].events[0].clone()
    }

    fn msg(e: WaEvent) -> InboundMessage {
        match e {
            WaEvent::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_inbound_type() {
        let base = |t: &str, body: Value| {
            let mut m = json!({"from":"84900000001","id":format!("wamid.{t}"),"timestamp":"1700000000","type":t});
            m[t] = body;
            m
        };
        let m = msg(one(base(
            "image",
            json!({"id":"MID","mime_type":"image/jpeg","sha256":"x","caption":"look"}),
        )));
        assert_eq!((m.text.as_str(), m.is_media), ("[image] look", true));
        assert_eq!(m.meta["attachments"][0]["media_id"], "MID");
        for t in ["video", "audio", "document", "sticker"] {
            let m = msg(one(base(t, json!({"id":"M","mime_type":"x/y"}))));
            assert_eq!(m.text, format!("[{t}]"));
            assert!(m.is_media);
        }
        let m = msg(one(base(
            "location",
            json!({"latitude":10.77,"longitude":106.7,"name":"Shop","address":"Q1"}),
        )));
        assert_eq!(m.text, "[location] Shop, Q1 (10.77, 106.7)");
        let mut c = json!({"from":"84900000001","id":"wamid.c","timestamp":"1","type":"contacts"});
        c["contacts"] = json!([{"name":{"formatted_name":"Bo Le"},"phones":[{"phone":"+84 90"}]}]);
        assert_eq!(msg(one(c)).text, "[contact] Bo Le");
        let m = msg(one(base(
            "interactive",
            json!({"type":"button_reply","button_reply":{"id":"yes","title":"Yes"}}),
        )));
        assert_eq!(
            (m.text.as_str(), &m.meta["interactive"]["id"]),
            ("Yes", &json!("yes"))
        );
        let m = msg(one(base(
            "interactive",
            json!({"type":"list_reply","list_reply":{"id":"r1","title":"Red","description":"d"}}),
        )));
        assert_eq!(m.text, "Red");
        let m = msg(one(base(
            "interactive",
            json!({"type":"nfm_reply","nfm_reply":{"response_json":"{}","body":"Sent","name":"flow"}}),
        )));
        assert_eq!(m.text, "[form reply]");
        let m = msg(one(base(
            "button",
            json!({"payload":"STOP","text":"Stop promotions"}),
        )));
        assert_eq!((m.text.as_str(), m.opens_window), ("Stop promotions", true));
        let m = msg(one(base(
            "order",
            json!({"catalog_id":"C","product_items":[{"a":1},{"b":2}]}),
        )));
        assert_eq!(m.text, "[order] 2 item(s)");
        let m = msg(one(base(
            "system",
            json!({"body":"Ann changed their phone number","type":"user_changed_number"}),
        )));
        assert!(!m.opens_window);
        let m = msg(one(
            json!({"from":"84900000001","id":"wamid.w","timestamp":"1","type":"request_welcome"}),
        ));
        assert_eq!(m.text, "[opened the chat]");
        let m = msg(one(
            json!({"from":"84900000001","id":"wamid.u","timestamp":"1","type":"unsupported","errors":[{"code":131051}]}),
        ));
        assert_eq!(m.text, "[unsupported message]");
        assert_eq!(m.meta["errors"][0]["code"], 131_051);
        // A reply with a referral (Click-to-WhatsApp ad).
        let mut t = base("text", json!({"body":"hi from ad"}));
        t["context"] = json!({"from":"P","id":"wamid.prev"});
        t["referral"] = json!({"source_url":"https://fb.me/x","source_type":"ad","source_id":"1","ctwa_clid":"c"});
        let m = msg(one(t));
        assert_eq!(m.reply_to.as_deref(), Some("wamid.prev"));
        assert!(m.from_ad);
        match one(base(
            "reaction",
            json!({"message_id":"wamid.OUT","emoji":"👍"}),
        )) {
            WaEvent::Reaction { target, emoji, .. } => {
                assert_eq!(
                    (target.as_str(), emoji.as_deref()),
                    ("wamid.OUT", Some("👍"))
                )
            }
            other => panic!("{other:?}"),
        }
        match one(base(
            "reaction",
            json!({"message_id":"wamid.OUT","emoji":""}),
        )) {
            WaEvent::Reaction { emoji, .. } => assert_eq!(emoji, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_username_without_wa_id_is_keyed_by_the_business_scoped_id() {
        let body = json!({"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{
            "metadata":{"phone_number_id":"P"},
            "contacts":[{"profile":{"name":"Kim"},"user_id":"US.13491208655302741918"}],
            "messages":[{"from_user_id":"US.13491208655302741918","id":"wamid.b","timestamp":"1","type":"text","text":{"body":"yo"}}]}}]}]});
        let w = parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let m = msg(w.changes[0].events[0].clone());
        assert_eq!(m.from.key(), Some("US.13491208655302741918"));
        assert_eq!(m.from.wa_id, None);
        assert_eq!(m.from.name.as_deref(), Some("Kim"));
    }

    #[test]
    fn statuses_and_template_updates() {
        let body = json!({"object":"whatsapp_business_account","entry":[{"id":"W","changes":[
            {"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[
                {"id":"wamid.X","status":"sent","timestamp":"1698266945","recipient_id":"16505551234","biz_opaque_callback_data":"sb:1",
                 "conversation":{"id":"7270","expiration_timestamp":"1698339900","origin":{"type":"service"}},
                 "pricing":{"billable":false,"pricing_model":"PMP","type":"free_customer_service","category":"service"}},
                {"id":"wamid.Y","status":"failed","timestamp":"1698266946","recipient_id":"16505551234",
                 "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed"}}]}]}},
            {"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":123,"message_template_name":"order_update","message_template_language":"en_US","reason":"NONE"}},
            {"field":"template_category_update","value":{"message_template_id":123,"message_template_name":"order_update","message_template_language":"en_US","previous_category":"UTILITY","new_category":"MARKETING"}}
        ]}]});
        let w = parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        match &w.changes[0].events[0] {
            WaEvent::Status(s) => {
                assert_eq!(
                    (s.status.as_str(), s.callback.as_deref()),
                    ("sent", Some("sb:1"))
                );
                assert_eq!(s.at, Timestamp(1_698_266_945_000));
                assert_eq!(
                    s.pricing.as_ref().map(|p| p["type"].clone()),
                    Some(json!("free_customer_service"))
                );
            }
            other => panic!("{other:?}"),
        }
        match &w.changes[0].events[1] {
            WaEvent::Status(s) => {
                assert_eq!(s.errors[0].code, Some(131_047));
                assert_eq!(reason_for(131_047), (false, "reengagement_required"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&w.changes[1].events[0], WaEvent::TemplateStatus { status, template_id: Some(id), .. } if status == "APPROVED" && id == "123")
        );
        assert!(
            matches!(&w.changes[2].events[0], WaEvent::TemplateCategory { category, .. } if category == "MARKETING")
        );
        assert!(parse(br#"{"object":"page","entry":[]}"#).is_err());
    }

    fn order_update() -> Template {
        Template {
            id: Some("1".into()),
            name: "order_update".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "utility".into(),
            components: json!([
                {"type":"HEADER","format":"TEXT","text":"Order {{1}}"},
                {"type":"BODY","text":"Hi {{1}}, your order {{2}} ships {{2}} today."},
                {"type":"BUTTONS","buttons":[{"type":"QUICK_REPLY","text":"Thanks"},{"type":"URL","text":"Track","url":"https://shop.vn/t/{{1}}"}]}
            ]),
            parameter_format: "positional".into(),
        }
    }

    #[test]
    fn templates_are_checked_before_sending() {
        let t = order_update();
        let p = t.params();
        assert_eq!(p.header_text, vec!["1"]);
        assert_eq!(p.body, vec!["1", "2"]);
        assert_eq!(p.buttons, vec![(1, vec!["1".to_owned()])]);
        let args = TemplateArgs {
            header: vec!["#123".into()],
            header_media_link: None,
            body: vec!["An".into(), "#123".into()],
            buttons: vec![ButtonArg {
                index: 1,
                parameters: vec!["123".into()],
            }],
        };
        let built = build_template(&t, &args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            built,
            json!({"name":"order_update","language":{"code":"en_US"},"components":[
                {"type":"header","parameters":[{"type":"text","text":"#123"}]},
                {"type":"body","parameters":[{"type":"text","text":"An"},{"type":"text","text":"#123"}]},
                {"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"123"}]}]})
        );
        assert_eq!(
            t.render(&args),
            "Order #123\nHi An, your order #123 ships #123 today."
        );
        let mut short = args.clone();
        short.body.pop();
        assert_eq!(
            build_template(&t, &short),
            Err(TemplateError::Count {
                component: "body".into(),
                expected: 2,
                got: 1
            })
        );
        let mut empty = args.clone();
        empty.body[1] = "  ".into();
        assert!(matches!(
            build_template(&t, &empty),
            Err(TemplateError::BadValue { index: 2, .. })
        ));
        let mut no_button = args.clone();
        no_button.buttons.clear();
        assert!(build_template(&t, &no_button).is_err());
        let mut media = args.clone();
        media.header_media_link = Some("https://x/y.png".into());
        assert_eq!(
            build_template(&t, &media),
            Err(TemplateError::MediaNotExpected)
        );
        let mut paused = t.clone();
        paused.status = "PAUSED".into();
        assert!(matches!(
            build_template(&paused, &args),
            Err(TemplateError::NotApproved(_))
        ));

        // Named parameters and a media header.
        let named = Template {
            components: json!([{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Hello {{first_name}}"}]),
            parameter_format: "named".into(),
            ..t
        };
        let args = TemplateArgs {
            body: vec!["An".into()],
            header_media_link: Some("https://cdn/x.png".into()),
            ..TemplateArgs::default()
        };
        assert_eq!(
            build_template(&named, &args).map(|v| v["components"].clone()),
            Ok(
                json!([{"type":"header","parameters":[{"type":"image","image":{"link":"https://cdn/x.png"}}]},
                      {"type":"body","parameters":[{"type":"text","parameter_name":"first_name","text":"An"}]}])
            )
        );
        assert_eq!(
            build_template(
                &named,
                &TemplateArgs {
                    body: vec!["An".into()],
                    ..TemplateArgs::default()
                }
            ),
            Err(TemplateError::MediaRequired("image".into()))
        );
        assert_eq!(
            placeholders("{{1}} {{ 2 }} {{1}} {{bad-name}} {{x"),
            vec!["1", "2"]
        );
    }

    #[test]
    fn send_bodies_and_limits() {
        assert_eq!(
            text_body("16505551234", "hi", Some("sb:1")),
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text",
                   "text":{"body":"hi","preview_url":false},"biz_opaque_callback_data":"sb:1"})
        );
        let b = text_body("US.1349", "hi", None);
        assert_eq!(
            (b["recipient"].as_str(), b.get("to")),
            (Some("US.1349"), None)
        );
        let ok = json!({"type":"button","body":{"text":"Pick"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}});
        assert_eq!(check_interactive(&ok), Ok(()));
        let four = json!({"type":"button","body":{"text":"Pick"},"action":{"buttons":[
            {"type":"reply","reply":{"id":"1","title":"a"}},{"type":"reply","reply":{"id":"2","title":"b"}},
            {"type":"reply","reply":{"id":"3","title":"c"}},{"type":"reply","reply":{"id":"4","title":"d"}}]}});
        assert!(check_interactive(&four).is_err());
        let long = json!({"type":"button","body":{"text":"Pick"},"action":{"buttons":[{"type":"reply","reply":{"id":"1","title":"x".repeat(21)}}]}});
        assert!(check_interactive(&long).is_err());
        let list = json!({"type":"list","body":{"text":"Pick"},"action":{"button":"Sizes","sections":[{"title":"S","rows":[{"id":"s","title":"Small","description":"36-38"}]}]}});
        assert_eq!(check_interactive(&list), Ok(()));
        assert_eq!(
            check_media("image", &json!({"link":"https://x/y.jpg","caption":"c"})),
            Ok(())
        );
        assert!(check_media("audio", &json!({"link":"https://x/y.ogg","caption":"c"})).is_err());
        assert!(check_media("image", &json!({})).is_err());
        assert!(check_media("gif", &json!({"link":"https://x"})).is_err());
        let ok = json!({"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.Z","message_status":"accepted"}]});
        assert_eq!(
            parse_send_ok(&ok),
            Some(("wamid.Z".into(), Some("1".into())))
        );
    }

    #[test]
    fn maps_whatsapp_errors() {
        let err = |status, code: i64| {
            classify_error(status, json!({"error":{"message":"x","type":"OAuthException","code":code,"fbtrace_id":"A"}}).to_string().as_bytes(), None)
        };
        assert_eq!(err(400, 131_047).reason, "reengagement_required");
        assert_eq!(err(400, 132_000).reason, "template_parameter_mismatch");
        assert_eq!(err(400, 132_001).reason, "template_not_found");
        assert_eq!(err(401, 190).reason, "token_expired");
        let r = err(400, 130_429);
        assert_eq!((r.retry, r.reason), (true, "rate_limited"));
        assert!(!err(400, 131_026).retry);
        let r = classify_error(429, b"", Some("3"));
        assert_eq!((r.retry, r.retry_after_ms), (true, Some(3_000)));
        assert!(classify_error(503, b"oops", None).retry);
    }

    #[test]
    fn interactive_objects_read_into_the_outbound_model_and_back() {
        let buttons = json!({"type": "button", "header": {"type": "text", "text": "Áo"},
            "body": {"text": "Còn cần không?"}, "footer": {"text": "Shop"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Có"}}]}});
        let list = json!({"type": "list", "body": {"text": "Chọn size"},
            "action": {"button": "Size", "sections": [{"title": "Nhỏ", "rows": [
                {"id": "s", "title": "S", "description": "45-50kg"}, {"id": "m", "title": "M"}]}]}});
        for v in [buttons, list] {
            let back = parse_interactive(&v).map(|i| interactive_object(&i));
            assert_eq!(back, Ok(v));
        }
        let image_header = json!({"type": "button", "header": {"type": "image", "image": {"link": "https://x.test/a.jpg"}},
            "body": {"text": "?"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}});
        assert!(parse_interactive(&image_header).is_err());
        assert!(
            parse_interactive(
                &json!({"type": "button", "body": {"text": "?"}, "action": {"buttons": []}})
            )
            .is_err()
        );
    }

    #[test]
    fn media_objects_read_into_the_outbound_model_and_back() {
        let link = json!({"link": "https://x.test/a.jpg", "caption": "mẫu"});
        let m = parse_media("image", &link).map(|m| (m.source.clone(), media_object(&m)));
        let source = MediaSource::Link("https://x.test/a.jpg".into());
        assert_eq!(m, Ok((source, Some(link))));
        let hosted = json!({"id": "M1", "filename": "don.pdf"});
        let m = parse_media("document", &hosted).map(|m| (m.kind, media_object(&m)));
        assert_eq!(m, Ok((MediaKind::Document, Some(hosted))));
        assert!(parse_media("audio", &json!({"id": "M2", "caption": "x"})).is_err());
        assert!(parse_media("gif", &json!({"id": "M2"})).is_err());
    }
}
