//! Meta's Messenger Platform (Facebook Page DMs and feed comments) and Instagram Messaging, as
//! `shared/channels.md` §1, §1.9 and §2 describe them: the verification handshake, the
//! `X-Hub-Signature-256` check over the raw body, webhook parsing into normalised events, Send API
//! and comment-operation requests, and the mapping of Graph API errors to clear reasons.
//! No I/O here: the server sends what this module builds.

use crate::signing;
use serde_json::{Value, json};
use switchboard_core::Timestamp;

/// The Graph API this version targets (channels.md §1.5).
pub use crate::settings::META_API_BASE_URL as DEFAULT_API_BASE_URL;
/// The Page Inbox (Meta Business Suite) app: its echoes are agents answering from Meta's own app.
pub const PAGE_INBOX_APP_ID: &str = "263902037430900";
/// Our marker in Send API `metadata` (echoed back in `message_echoes`): `sb:<message id>`.
pub const METADATA_PREFIX: &str = "sb:";

// ------------------------------------------------------------------ handshake and signature

/// §1.1: `hub.mode=subscribe` and the right token → the challenge to answer with (as plain text).
pub fn handshake<'a>(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
    expected_tokens: &[&str],
) -> Option<&'a str> {
    let token = token?;
    let token_ok = expected_tokens.iter().any(|t| {
        !t.is_empty() && subtle::ConstantTimeEq::ct_eq(t.as_bytes(), token.as_bytes()).into()
    });
    (mode == Some("subscribe") && token_ok)
        .then_some(challenge)
        .flatten()
}

/// The `X-Hub-Signature-256` value for `body` (what Meta — and our sandbox — sends).
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        signing::hmac_sha256_hex(app_secret.as_bytes(), body)
    )
}

/// §1.2: HMAC-SHA256 of the raw body bytes under the app secret, compared in constant time.
pub fn verify_signature(app_secret: &str, raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    hex.len() == 64 && signing::verify_hex(app_secret.as_bytes(), raw_body, hex)
}

/// The distinct `entry[].id`s of a webhook body when there are at most `max` of them; `None` when
/// there are more (or the body is not a webhook). Read before the signature is checked, so it
/// keeps no more than `max` ids whatever the body holds and skips everything else unbuilt.
pub fn entry_ids_at_most(raw_body: &[u8], max: usize) -> Option<Vec<String>> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Ids(usize);
    impl<'de> DeserializeSeed<'de> for Ids {
        type Value = Option<Vec<String>>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Ids {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a webhook object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Some(Vec::new());
            while let Some(key) = map.next_key::<String>()? {
                if key == "entry" {
                    out = map.next_value_seed(Entries(self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    struct Entries(usize);
    impl<'de> DeserializeSeed<'de> for Entries {
        type Value = Option<Vec<String>>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Entries {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of entries")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // Each entry as the parser reads it: one that is not an object, or has no id, is
            // skipped (never the whole body).
            let mut ids: Vec<String> = Vec::new();
            let mut over = false;
            while !over {
                let Some(id) = seq.next_element_seed(crate::lenient::Dig(&["id"]))? else {
                    break;
                };
                if let Some(id) = id.as_ref().and_then(id_str)
                    && !ids.contains(&id)
                {
                    ids.push(id);
                    over = ids.len() > self.0;
                }
            }
            // Past the limit the rest is only skipped.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok((!over).then_some(ids))
        }
    }
    let mut de = serde_json::Deserializer::from_slice(raw_body);
    let ids = Ids(max).deserialize(&mut de).ok()?;
    de.end().ok()?;
    ids.map(|mut v| {
        v.sort();
        v
    })
}

/// Reads only the `entry[].id`s (the pages or IG accounts a body is for), to pick the app secrets
/// to verify with. Nothing else of an unverified body is used.
pub fn entry_ids(raw_body: &[u8]) -> Vec<String> {
    entry_ids_at_most(raw_body, usize::MAX).unwrap_or_default()
}

// ------------------------------------------------------------------ webhook parsing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Page,
    Instagram,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub object: Object,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The Page id or the IG professional account id: what the inbox is found by.
    pub id: String,
    pub events: Vec<MetaEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub kind: String,
    pub url: Option<String>,
    pub sticker_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentVerb {
    Add,
    Edited,
    Remove,
    Hide,
    Unhide,
}

impl CommentVerb {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "add" => Self::Add,
            "edited" | "edit" => Self::Edited,
            "remove" | "delete" => Self::Remove,
            "hide" => Self::Hide,
            "unhide" => Self::Unhide,
            _ => return None,
        })
    }
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Edited => "edited",
            Self::Remove => "remove",
            Self::Hide => "hide",
            Self::Unhide => "unhide",
        }
    }
}

/// One normalised item of `messaging[]`, `standby[]` or `changes[]`. `at` is the provider's time.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaEvent {
    /// A customer's message: text and/or attachments, maybe a quick-reply tap, a reply or a referral.
    Message {
        from: String,
        mid: String,
        text: Option<String>,
        attachments: Vec<Attachment>,
        quick_reply_payload: Option<String>,
        reply_to_mid: Option<String>,
        /// Instagram: the story this message answers (`reply_to.story: {url, id}`).
        reply_to_story: Option<Value>,
        referral: Option<Value>,
        /// Instagram: content we cannot show (`is_unsupported`).
        unsupported: bool,
        standby: bool,
        at: Timestamp,
    },
    /// Instagram unsend: the original `mid` is marked deleted.
    Deleted {
        from: String,
        mid: String,
        at: Timestamp,
    },
    /// A message the page itself sent (from Meta's apps or from us); `to` is the customer, `from`
    /// who Meta says sent it (ours only when it is our own Page or account).
    Echo {
        from: String,
        to: String,
        mid: String,
        text: Option<String>,
        attachments: Vec<Attachment>,
        app_id: Option<String>,
        metadata: Option<String>,
        at: Timestamp,
    },
    Postback {
        from: String,
        mid: Option<String>,
        title: Option<String>,
        payload: Option<String>,
        referral: Option<Value>,
        standby: bool,
        at: Timestamp,
    },
    /// An m.me / ig.me link or an ad into an existing thread.
    Referral {
        from: String,
        referral: Value,
        at: Timestamp,
    },
    /// Messenger: everything up to `watermark`; Instagram: the one `mid`.
    Read {
        from: String,
        watermark: Option<Timestamp>,
        mid: Option<String>,
        at: Timestamp,
    },
    Delivery {
        from: String,
        mids: Vec<String>,
        watermark: Option<Timestamp>,
        at: Timestamp,
    },
    Reaction {
        from: String,
        mid: String,
        react: bool,
        reaction: Option<String>,
        emoji: Option<String>,
        at: Timestamp,
    },
    Edit {
        from: String,
        mid: String,
        text: String,
        num_edit: i64,
        at: Timestamp,
    },
    PolicyEnforcement {
        action: String,
        reason: Option<String>,
    },
    /// A Page feed comment (§1.9) or an Instagram comment (§2).
    Comment {
        comment_id: String,
        /// The post (Facebook) or media (Instagram) commented on.
        post_id: Option<String>,
        parent_id: Option<String>,
        from_id: Option<String>,
        from_name: Option<String>,
        text: Option<String>,
        verb: CommentVerb,
        at: Timestamp,
    },
    /// Anything else (other feed items, unknown fields): acknowledged and ignored.
    Ignored { what: String },
}

impl MetaEvent {
    /// The provider time used to order the items of one delivery.
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Message { at, .. }
            | Self::Deleted { at, .. }
            | Self::Echo { at, .. }
            | Self::Postback { at, .. }
            | Self::Referral { at, .. }
            | Self::Read { at, .. }
            | Self::Delivery { at, .. }
            | Self::Reaction { at, .. }
            | Self::Edit { at, .. }
            | Self::Comment { at, .. } => *at,
            Self::PolicyEnforcement { .. } | Self::Ignored { .. } => Timestamp(0),
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

/// Ids arrive as strings, sometimes as numbers.
fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A string field, without NUL or other control characters (they poison the store).
fn text(v: &Value) -> Option<String> {
    v.as_str().map(|s| {
        let mut s = s.to_owned();
        switchboard_core::validate::strip_controls(&mut s);
        s
    })
}

/// Messaging times are milliseconds (numbers, or numeric strings in Meta's dashboard tests).
fn ms(v: &Value) -> Option<Timestamp> {
    crate::wire::millis(v)
}

/// `changes` (feed, comments) times are seconds.
fn secs(v: &Value) -> Option<Timestamp> {
    crate::wire::seconds(v)
}

/// A story as a message keeps it: its id and URL (the URL is a CDN link that expires).
fn story(v: &Value) -> Option<Value> {
    let (id, url) = (id_str(&v["id"]), text(&v["url"]));
    (id.is_some() || url.is_some()).then(|| json!({"id": id, "url": url}))
}

fn attachments(v: &Value) -> Vec<Attachment> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| Attachment {
                    kind: text(&x["type"]).unwrap_or_else(|| "fallback".into()),
                    url: text(&x["payload"]["url"]),
                    sticker_id: id_str(&x["payload"]["sticker_id"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a webhook body (already verified). Items that make no sense are `Ignored`, never errors:
/// an error would make Meta retry a body that will never parse.
pub fn parse(raw_body: &[u8]) -> Result<Webhook, ParseError> {
    let v: Value = serde_json::from_slice(raw_body).map_err(|_| ParseError::NotJson)?;
    let object = match v["object"].as_str() {
        Some("page") => Object::Page,
        Some("instagram") => Object::Instagram,
        other => return Err(ParseError::UnknownObject(other.unwrap_or("").to_owned())),
    };
    let entries = v["entry"].as_array().ok_or(ParseError::NoEntries)?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let Some(id) = id_str(&e["id"]) else { continue };
        // Seconds for `changes`, milliseconds for `messaging` (channels.md, "Timestamps").
        let entry_time = secs(&e["time"]).map(Timestamp::millis);
        let mut events = Vec::new();
        for (key, standby) in [("messaging", false), ("standby", true)] {
            for m in e[key].as_array().into_iter().flatten() {
                events.push(parse_messaging(m, standby));
            }
        }
        for c in e["changes"].as_array().into_iter().flatten() {
            events.push(parse_change(object, c, entry_time));
        }
        out.push(Entry { id, events });
    }
    Ok(Webhook {
        object,
        entries: out,
    })
}

fn parse_messaging(m: &Value, standby: bool) -> MetaEvent {
    let from = id_str(&m["sender"]["id"]).unwrap_or_default();
    let to = id_str(&m["recipient"]["id"]).unwrap_or_default();
    let at = ms(&m["timestamp"]).unwrap_or(Timestamp(0));
    let ignored = |what: &str| MetaEvent::Ignored {
        what: what.to_owned(),
    };
    if let Some(msg) = m.get("message").filter(|x| x.is_object()) {
        let Some(mid) = id_str(&msg["mid"]) else {
            return ignored("message without mid");
        };
        if msg["is_echo"].as_bool() == Some(true) {
            return MetaEvent::Echo {
                from,
                to,
                mid,
                text: text(&msg["text"]),
                attachments: attachments(&msg["attachments"]),
                app_id: id_str(&msg["app_id"]),
                metadata: text(&msg["metadata"]),
                at,
            };
        }
        if msg["is_deleted"].as_bool() == Some(true) {
            return MetaEvent::Deleted { from, mid, at };
        }
        return MetaEvent::Message {
            from,
            mid,
            text: text(&msg["text"]),
            attachments: attachments(&msg["attachments"]),
            quick_reply_payload: text(&msg["quick_reply"]["payload"]),
            reply_to_mid: id_str(&msg["reply_to"]["mid"]),
            reply_to_story: story(&msg["reply_to"]["story"]),
            referral: msg.get("referral").cloned(),
            unsupported: msg["is_unsupported"].as_bool() == Some(true),
            standby,
            at,
        };
    }
    if let Some(p) = m.get("postback").filter(|x| x.is_object()) {
        return MetaEvent::Postback {
            from,
            mid: id_str(&p["mid"]),
            title: text(&p["title"]),
            payload: text(&p["payload"]),
            referral: p.get("referral").cloned(),
            standby,
            at,
        };
    }
    if let Some(r) = m.get("referral").filter(|x| x.is_object()) {
        return MetaEvent::Referral {
            from,
            referral: r.clone(),
            at,
        };
    }
    if let Some(r) = m.get("read").filter(|x| x.is_object()) {
        return MetaEvent::Read {
            from,
            watermark: ms(&r["watermark"]),
            mid: id_str(&r["mid"]),
            at,
        };
    }
    if let Some(d) = m.get("delivery").filter(|x| x.is_object()) {
        return MetaEvent::Delivery {
            from,
            mids: d["mids"]
                .as_array()
                .map(|a| a.iter().filter_map(id_str).collect())
                .unwrap_or_default(),
            watermark: ms(&d["watermark"]),
            at,
        };
    }
    if let Some(r) = m.get("reaction").filter(|x| x.is_object()) {
        let Some(mid) = id_str(&r["mid"]) else {
            return ignored("reaction without mid");
        };
        return MetaEvent::Reaction {
            from,
            mid,
            react: r["action"].as_str() != Some("unreact"),
            reaction: text(&r["reaction"]),
            emoji: text(&r["emoji"]),
            at,
        };
    }
    if let Some(ed) = m.get("message_edit").filter(|x| x.is_object()) {
        let (Some(mid), Some(t)) = (id_str(&ed["mid"]), text(&ed["text"])) else {
            return ignored("edit without mid or text");
        };
        return MetaEvent::Edit {
            from,
            mid,
            text: t,
            // A count, sometimes a numeric string in Meta's examples; else one more than before.
            num_edit: ed["num_edit"]
                .as_i64()
                .or_else(|| ed["num_edit"].as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| *n > 0)
                .unwrap_or(0),
            at,
        };
    }
    if let Some(p) = m.get("policy_enforcement").filter(|x| x.is_object()) {
        return MetaEvent::PolicyEnforcement {
            action: text(&p["action"]).unwrap_or_default(),
            reason: text(&p["reason"]),
        };
    }
    ignored("unknown messaging item")
}

fn parse_change(object: Object, c: &Value, entry_time: Option<i64>) -> MetaEvent {
    let field = c["field"].as_str().unwrap_or("");
    let v = &c["value"];
    match (object, field) {
        (Object::Page, "feed") => {
            if v["item"].as_str() != Some("comment") {
                return MetaEvent::Ignored {
                    what: format!("feed item {}", v["item"].as_str().unwrap_or("?")),
                };
            }
            let (Some(comment_id), Some(verb)) = (
                id_str(&v["comment_id"]),
                v["verb"].as_str().and_then(CommentVerb::parse),
            ) else {
                return MetaEvent::Ignored {
                    what: "feed comment without id or verb".into(),
                };
            };
            // Feed times are in seconds (channels.md, "Timestamps").
            let at = secs(&v["created_time"])
                .or_else(|| entry_time.map(Timestamp))
                .unwrap_or(Timestamp(0));
            MetaEvent::Comment {
                comment_id,
                post_id: id_str(&v["post_id"]).or_else(|| id_str(&v["post"]["id"])),
                parent_id: id_str(&v["parent_id"]),
                from_id: id_str(&v["from"]["id"]),
                from_name: text(&v["from"]["name"]),
                text: text(&v["message"]),
                verb,
                at,
            }
        }
        (Object::Instagram, "comments" | "live_comments") => {
            let Some(comment_id) = id_str(&v["id"]) else {
                return MetaEvent::Ignored {
                    what: "instagram comment without id".into(),
                };
            };
            MetaEvent::Comment {
                comment_id,
                post_id: id_str(&v["media"]["id"]),
                parent_id: id_str(&v["parent_id"]),
                from_id: id_str(&v["from"]["id"]),
                from_name: text(&v["from"]["username"]),
                text: text(&v["text"]),
                verb: CommentVerb::Add,
                at: entry_time.map(Timestamp).unwrap_or(Timestamp(0)),
            }
        }
        _ => MetaEvent::Ignored {
            what: format!("change field {field}"),
        },
    }
}

/// A one-line text for the thread and the conversation preview.
pub fn describe(text: Option<&str>, attachments: &[Attachment]) -> String {
    let mut parts: Vec<String> = text
        .filter(|t| !t.trim().is_empty())
        .map(|t| vec![t.to_owned()])
        .unwrap_or_default();
    for a in attachments {
        // Until 2026-08-30 a sticker also arrived as an image: show it once.
        if a.kind == "image" && a.sticker_id.is_some() {
            continue;
        }
        parts.push(format!("[{}]", a.kind));
    }
    if parts.is_empty() {
        "[message]".into()
    } else {
        parts.join(" ")
    }
}

// ------------------------------------------------------------------ Graph API requests

/// Who a Send API message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A PSID (Messenger) or IGSID (Instagram).
    Id(String),
    /// A private reply to a comment.
    Comment(String),
}

/// The Send API body (§1.5). `messaging_type` is omitted for private replies, as Meta's own
/// examples do; `metadata` comes back in the echo, which is how we recognise our own sends.
pub fn send_body(
    recipient: &Recipient,
    messaging_type: Option<&str>,
    tag: Option<&str>,
    text: &str,
    metadata: Option<&str>,
) -> Value {
    let mut body = json!({ "message": { "text": text } });
    body["recipient"] = match recipient {
        Recipient::Id(id) => json!({ "id": id }),
        Recipient::Comment(c) => json!({ "comment_id": c }),
    };
    if let Some(mt) = messaging_type {
        body["messaging_type"] = json!(mt);
    }
    if let Some(t) = tag {
        body["tag"] = json!(t);
    }
    if let Some(m) = metadata {
        body["message"]["metadata"] = json!(m);
    }
    body
}

/// A file instead of the text (§1.5): `message.attachment{type, payload{url, is_reusable}}`,
/// the URL one Meta fetches (our signed link). The Send API has no caption field: a caption goes
/// as its own text message right after (the send command queues it).
pub fn attach(body: &mut Value, kind: MediaKind, url: &str) {
    let kind = match kind {
        MediaKind::Image | MediaKind::Sticker => "image",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Document => "file",
    };
    if let Some(m) = body["message"].as_object_mut() {
        m.remove("text");
        m.insert(
            "attachment".into(),
            json!({"type": kind, "payload": {"url": url, "is_reusable": false}}),
        );
    }
}

/// Buttons as Messenger's and Instagram's quick replies (§1.5): one `text` quick reply per
/// choice, its id as the payload a tap sends back (`message.quick_reply.payload`). The capability
/// table has checked the count and the titles.
pub fn quick_replies(i: &Interactive) -> Value {
    json!(
        i.all_choices()
            .iter()
            .map(|c| json!({"content_type": "text", "title": c.title, "payload": c.id}))
            .collect::<Vec<_>>()
    )
}

pub fn messages_url(base: &str, account_id: &str) -> String {
    format!("{}/{}/messages", base.trim_end_matches('/'), account_id)
}

/// A moderation or reply operation on a comment (§1.9, §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentOp {
    Reply,
    Like,
    Unlike,
    Hide,
    Unhide,
    Delete,
}

impl CommentOp {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reply" => Self::Reply,
            "like" => Self::Like,
            "unlike" => Self::Unlike,
            "hide" => Self::Hide,
            "unhide" => Self::Unhide,
            "delete" => Self::Delete,
            _ => return None,
        })
    }
}

/// `(method, url, JSON body)` for a comment operation, or `None` when the platform has no such
/// operation (Instagram has no like through the API).
pub fn comment_request(
    object: Object,
    base: &str,
    comment_id: &str,
    op: CommentOp,
    message: Option<&str>,
) -> Option<(&'static str, String, Option<Value>)> {
    let base = base.trim_end_matches('/');
    let node = format!("{base}/{comment_id}");
    Some(match (object, op) {
        (Object::Page, CommentOp::Reply) => (
            "POST",
            format!("{node}/comments"),
            Some(json!({ "message": message.unwrap_or("") })),
        ),
        (Object::Instagram, CommentOp::Reply) => (
            "POST",
            format!("{node}/replies"),
            Some(json!({ "message": message.unwrap_or("") })),
        ),
        (Object::Page, CommentOp::Like) => ("POST", format!("{node}/likes"), None),
        (Object::Page, CommentOp::Unlike) => ("DELETE", format!("{node}/likes"), None),
        (Object::Instagram, CommentOp::Like | CommentOp::Unlike) => return None,
        (Object::Page, CommentOp::Hide) => ("POST", node, Some(json!({ "is_hidden": true }))),
        (Object::Page, CommentOp::Unhide) => ("POST", node, Some(json!({ "is_hidden": false }))),
        (Object::Instagram, CommentOp::Hide) => ("POST", node, Some(json!({ "hide": true }))),
        (Object::Instagram, CommentOp::Unhide) => ("POST", node, Some(json!({ "hide": false }))),
        (_, CommentOp::Delete) => ("DELETE", node, None),
    })
}

/// The User Profile API request for a customer's name and picture. (Not covered by channels.md:
/// Messenger's User Profile API fields `first_name,last_name,profile_pic`; Instagram's user
/// profile fields `name,username,profile_pic`.)
pub fn profile_url(object: Object, base: &str, user_id: &str) -> String {
    let fields = match object {
        Object::Page => "first_name,last_name,profile_pic",
        Object::Instagram => "name,username,profile_pic",
    };
    format!("{}/{user_id}?fields={fields}", base.trim_end_matches('/'))
}

pub use crate::provider::{Picture, PictureSource, Profile};

/// A Messenger or Instagram profile answer. Instagram's picture is a CDN URL whose bytes must not
/// be kept (channels.md §2 says so of Instagram's media; we hold its profile pictures to the same
/// rule): it is shown from the URL.
pub fn parse_profile(object: Object, v: &Value) -> Profile {
    let first_last = [text(&v["first_name"]), text(&v["last_name"])]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = text(&v["name"])
        .filter(|s| !s.trim().is_empty())
        .or_else(|| (!first_last.is_empty()).then_some(first_last))
        .or_else(|| text(&v["username"]));
    let picture = text(&v["profile_pic"])
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|url| Picture {
            key: url.clone(),
            source: PictureSource::Url(url),
            storable: object == Object::Page,
        });
    Profile {
        name: name.and_then(|n| crate::provider::account_name(&Value::String(n))),
        username: match object {
            Object::Instagram => text(&v["username"]).filter(|u| crate::links::is_handle(u)),
            Object::Page => None,
        },
        picture,
    }
}

// ------------------------------------------------------------------ errors

pub use crate::provider::Failure;

/// Maps an HTTP status, Meta's error body and headers to a [`Failure`] (§1.7).
/// `retry_after` is the `Retry-After` header; `buc_usage` is `X-Business-Use-Case-Usage`.
pub fn classify_error(
    status: u16,
    body: &[u8],
    retry_after: Option<&str>,
    buc_usage: Option<&str>,
) -> Failure {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_i64();
    let subcode = v["error"]["error_subcode"].as_i64();
    let hint = hint_ms(retry_after, buc_usage);
    let (retry, reason) = match (code, subcode) {
        (Some(10), Some(2_018_278 | 2_534_022 | 2_018_065)) => (false, "window_closed"),
        (Some(10), Some(2_018_108)) => (false, "user_unavailable"),
        (Some(10), Some(1_893_063)) => (false, "page_restricted"),
        (Some(200 | 551), _) | (_, Some(1_545_041)) => (false, "user_unavailable"),
        (Some(100), Some(2_534_025)) => (false, "comment_invalid_for_private_reply"),
        (Some(100), Some(2_534_037)) | (Some(2_018_300), _) => (false, "not_thread_owner"),
        (Some(100), Some(2_018_001 | 2_534_014)) => (false, "user_not_found"),
        // Meta could not fetch an attachment's URL (our signed link).
        (Some(100), Some(2_018_008)) => (false, "media_error"),
        (Some(100), _) => (false, "invalid_request"),
        (Some(190), _) => (false, "token_expired"),
        (Some(4 | 17 | 32 | 613 | 80_001 | 80_006), _) => (true, "rate_limited"),
        (Some(1 | 2), _) => (true, "provider_unavailable"),
        (Some(10), _) => (false, "permission_denied"),
        _ if status == 429 => (true, "rate_limited"),
        _ if status >= 500 => (true, "provider_unavailable"),
        _ => (false, "provider_error"),
    };
    Failure {
        retry,
        reason,
        retry_after_ms: hint,
        code,
        subcode,
    }
}

/// A network failure (no answer, or the answer never came): worth another try.
pub fn network_failure() -> Failure {
    Failure {
        retry: true,
        reason: "provider_unreachable",
        retry_after_ms: None,
        code: None,
        subcode: None,
    }
}

fn hint_ms(retry_after: Option<&str>, buc_usage: Option<&str>) -> Option<i64> {
    let header = retry_after
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|s| s.saturating_mul(1000));
    // {"<id>":[{"type":"messenger","estimated_time_to_regain_access":<minutes>,...}]}
    let buc = buc_usage
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| {
            v.as_object().map(|o| {
                o.values()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|u| u["estimated_time_to_regain_access"].as_i64())
                    .max()
            })
        })
        .flatten()
        .filter(|m| *m > 0)
        .map(|m| m.saturating_mul(60_000));
    match (header, buc) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The Send API success body: `{recipient_id?, message_id}`.
pub fn parse_send_ok(body: &[u8]) -> Option<(Option<String>, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some((id_str(&v["recipient_id"]), id_str(&v["message_id"])?))
}

#[cfg(test)]
mod bounded_ids_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The WhatsApp routing read's fuzz finding, on Meta's: an odd entry beside a good one must
    /// not hide the good one's Page (its signed events would be acknowledged and dropped).
    #[test]
    fn every_page_the_parser_keeps_is_found_before_verifying() {
        let good = r#"{"id":"P1","time":1,"messaging":[{"sender":{"id":"U"},"recipient":{"id":"P1"},"timestamp":1,"message":{"mid":"m1","text":"hi"}}]}"#;
        for body in [
            format!(r#"{{"object":"page","entry":[{good},5]}}"#),
            format!(r#"{{"object":"page","entry":[null,{good},"x",[1]]}}"#),
            format!(r#"{{"object":"page","entry":[],"entry":[{good}]}}"#),
            format!(r#"{{"object":"page","entry":[{{"id":"P0","id":{{"x":1}}}},{good}]}}"#),
        ] {
            let ids = entry_ids_at_most(body.as_bytes(), 32).unwrap_or_else(|| panic!("{body}"));
            let hook = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"));
            assert!(!hook.entries.is_empty(), "{body}");
            for e in &hook.entries {
                assert!(ids.contains(&e.id), "{} not found in {body}", e.id);
            }
            assert_eq!(entry_ids(body.as_bytes()), ids);
        }
    }

    #[test]
    fn ids_are_read_up_to_a_limit_and_no_further() {
        let body = |n: usize| {
            let entries: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        r#"{{"id":"{}","time":1,"messaging":[{{"x":[1,2]}}]}}"#,
                        100 + i % 5
                    )
                })
                .collect();
            format!(
                r#"{{"object":"page","entry":[{}],"z":{{"a":1}}}}"#,
                entries.join(",")
            )
        };
        assert_eq!(
            entry_ids_at_most(body(40).as_bytes(), 5),
            Some(
                vec!["100", "101", "102", "103", "104"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(entry_ids_at_most(body(40).as_bytes(), 4), None);
        assert_eq!(
            entry_ids_at_most(br#"{"entry":[{"id":7}]}"#, 1),
            Some(vec!["7".into()])
        );
        assert_eq!(entry_ids_at_most(b"not json", 10), None);
        assert_eq!(entry_ids_at_most(br#"{"entry":[]} trailing"#, 10), None);
        let ids = entry_ids(body(40).as_bytes());
        assert_eq!(entry_ids_at_most(body(40).as_bytes(), 5).unwrap(), ids);
    }
}

// ------------------------------------------------------------------ the provider

use crate::provider::{
    Ack, ApiAnswer, ApiBody, ApiCall, Arrival, BadWebhook, Claim, Claims, Effect, NotSent,
    Outgoing, Provider, Rendering, Sent, Verified, WebhookRequest, base_url, refused, setting,
};
use switchboard_core::outbound::{Content, Interactive, MediaKind, OutboxJob};

/// The Graph API object of an inbox's channel.
pub fn object_of(channel: ChannelKind) -> Object {
    if channel == ChannelKind::Instagram {
        Object::Instagram
    } else {
        Object::Page
    }
}
use switchboard_core::ingest::{COMMENTER_PREFIX, Echoed, InboundEvent, InboundSender, Said};
use switchboard_core::{ChannelKind, DeliveryStatus, Inbox, MessageKind};

/// Messenger and Instagram: one webhook URL for every Page and account (§1.1–§1.4, §1.9, §2).
pub struct Meta;

/// The Page id or IG account id webhooks carry in `entry[].id`.
pub fn account_id(i: &Inbox) -> Option<&str> {
    match i.channel {
        ChannelKind::Messenger => setting(i, "page_id"),
        ChannelKind::Instagram => setting(i, "ig_account_id"),
        _ => None,
    }
}

/// Who sends: the Page (Messenger, and Instagram linked to a Page) or the IG account.
pub fn sender_id(i: &Inbox) -> Option<&str> {
    setting(i, "page_id").or_else(|| account_id(i))
}

const CHANNELS: [ChannelKind; 2] = [ChannelKind::Messenger, ChannelKind::Instagram];

impl Provider for Meta {
    fn name(&self) -> &'static str {
        "meta"
    }
    fn channels(&self) -> &'static [ChannelKind] {
        &CHANNELS
    }
    fn claims(&self, req: &WebhookRequest<'_>, max: usize) -> Claims {
        match entry_ids_at_most(req.body, max) {
            Some(ids) => Claims::Named(
                ids.into_iter()
                    .flat_map(|id| CHANNELS.map(|c| Claim::Account(c, id.clone())))
                    .collect(),
            ),
            None => Claims::TooMany,
        }
    }
    fn claims_of(&self, inbox: &Inbox) -> Vec<Claim> {
        account_id(inbox)
            .map(|a| Claim::Account(inbox.channel, a.to_owned()))
            .into_iter()
            .collect()
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
        let channel = match hook.object {
            Object::Page => ChannelKind::Messenger,
            Object::Instagram => ChannelKind::Instagram,
        };
        let mut out = Vec::new();
        for entry in hook.entries {
            // An entry for a Page removed from Switchboard (or not signed by its own app) is
            // acknowledged and stores nothing: a failure would make Meta retry, then disable the
            // app's webhook for every Page.
            let Some(inbox) = inboxes.one(&Claim::Account(channel, entry.id)) else {
                continue;
            };
            out.extend(
                entry
                    .events
                    .into_iter()
                    .filter_map(|ev| arrival(inbox, ev, now)),
            );
        }
        Ok(out)
    }
    fn ack(&self, _: &[Arrival]) -> Ack {
        Ack::Text("EVENT_RECEIVED")
    }
    fn render(&self, r: &Rendering<'_>) -> (OutboxJob, Value) {
        if let Content::CommentReply(c) = r.content {
            let job = if c.private {
                OutboxJob::PrivateReply
            } else {
                OutboxJob::CommentReply
            };
            return (job, json!({"comment_id": c.comment_id, "text": c.text}));
        }
        let mut request = json!({
            "recipient_id": r.to,
            "messaging_type": r.messaging_type,
            "tag": r.tag,
            "text": r.text,
        });
        if let Content::Interactive(i) = r.content {
            request["text"] = json!(i.text_without_choices());
            request["quick_replies"] = quick_replies(i);
        }
        if let Some(file) = crate::provider::file_request(r.content) {
            request["file"] = file;
        }
        (OutboxJob::Send, request)
    }
    fn send_call(
        &self,
        inbox: &Inbox,
        out: &Outgoing<'_>,
        _: Timestamp,
    ) -> Result<ApiCall, Failure> {
        let token = setting(inbox, "page_access_token").ok_or_else(|| refused("token_expired"))?;
        let base = base_url(inbox, DEFAULT_API_BASE_URL);
        let r = out.request;
        let text = r["text"].as_str().unwrap_or("");
        let call = match out.job {
            OutboxJob::Send | OutboxJob::PrivateReply => {
                let to = |k: &str| r[k].as_str().unwrap_or("").to_owned();
                let recipient = if out.job == OutboxJob::PrivateReply {
                    Recipient::Comment(to("comment_id"))
                } else {
                    Recipient::Id(to("recipient_id"))
                };
                let marker = format!("{METADATA_PREFIX}{}", out.message_id);
                let (kind, tag) = (r["messaging_type"].as_str(), r["tag"].as_str());
                let mut body = send_body(&recipient, kind, tag, text, Some(&marker));
                if r["quick_replies"].is_array() {
                    body["message"]["quick_replies"] = r["quick_replies"].clone();
                }
                if let (Some(file), Some(kind)) = (out.file, crate::provider::file_kind(r)) {
                    attach(&mut body, kind, &file.url);
                }
                ApiCall::post(messages_url(base, sender_id(inbox).unwrap_or("me")), body)
            }
            OutboxJob::CommentReply => {
                let comment = r["comment_id"].as_str().unwrap_or("");
                let object = object_of(inbox.channel);
                let (method, url, body) =
                    comment_request(object, base, comment, CommentOp::Reply, Some(text))
                        .ok_or_else(|| refused("not_supported"))?;
                ApiCall {
                    method,
                    url,
                    headers: Vec::new(),
                    body: body.map_or(ApiBody::None, ApiBody::Json),
                }
            }
        };
        Ok(call.header("authorization", format!("Bearer {token}")))
    }
    fn sent(&self, out: &Outgoing<'_>, answer: &ApiAnswer<'_>) -> Result<Sent, NotSent> {
        if !answer.ok() {
            let a = answer;
            let f = classify_error(a.status, a.body, a.retry_after, a.usage);
            return Err(NotSent::Failed(f));
        }
        let v = answer.json();
        let (recipient, id) = match out.job {
            OutboxJob::CommentReply => (None, id_str(&v["id"]).map(|id| format!("comment:{id}"))),
            _ => (id_str(&v["recipient_id"]), id_str(&v["message_id"])),
        };
        Ok(Sent {
            provider_message_id: id.ok_or(NotSent::Failed(refused("provider_error")))?,
            recipient,
            meta: None,
        })
    }
    fn profile_call(&self, inbox: &Inbox, customer: &str) -> Option<ApiCall> {
        let token = setting(inbox, "page_access_token")?;
        let base = base_url(inbox, DEFAULT_API_BASE_URL);
        Some(ApiCall {
            method: "GET",
            url: profile_url(object_of(inbox.channel), base, customer),
            headers: vec![("authorization", format!("Bearer {token}"))],
            body: ApiBody::None,
        })
    }
    fn profile(&self, inbox: &Inbox, answer: &ApiAnswer<'_>) -> Option<Profile> {
        answer
            .ok()
            .then(|| parse_profile(object_of(inbox.channel), &answer.json()))
    }
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
    fn refused(&self) -> &'static str {
        "bad or missing X-Hub-Signature-256"
    }
    fn handshake(&self) -> bool {
        true
    }
}

/// The attachments as the message keeps them. Instagram's policy lets us keep the CDN URL but
/// not the media bytes (`channels.md` §2): its files say so (`bytes_kept: false`, read by
/// `core::inbound_media`).
fn attachments_json(inbox: &Inbox, a: &[Attachment]) -> Value {
    let kept = inbox.channel != ChannelKind::Instagram;
    json!(
        a.iter()
            .map(|x| {
                let mut v = json!({"type": x.kind, "url": x.url, "sticker_id": x.sticker_id});
                if !kept {
                    v["bytes_kept"] = json!(false);
                }
                v
            })
            .collect::<Vec<_>>()
    )
}

/// A customer's message, postback, referral or comment, with the profile fetch it asks for.
fn said(inbox: &Inbox, at: Timestamp, customer: String, m: Said, profile: bool) -> Arrival {
    let a = Arrival::event(inbox, at, InboundEvent::Customer(m));
    if profile {
        a.with(Effect::FetchProfile {
            customer,
            name: None,
        })
    } else {
        a
    }
}

fn message(customer: &str, id: String, kind: MessageKind, text: String, at: Timestamp) -> Said {
    Said {
        from: InboundSender::identity(customer, None),
        provider_message_id: id,
        kind,
        text,
        at,
        meta: Value::Null,
        replying_to: None,
        alias: None,
    }
}

/// A phone number or email the customer shared with Messenger's `user_phone_number` /
/// `user_email` quick replies arrives as the quick reply's payload.
fn shared_detail(payload: Option<&String>) -> Option<String> {
    use switchboard_core::validate::{Email, Phone};
    payload
        .filter(|p| Email::parse(p).is_ok() || Phone::parse(p).is_ok())
        .cloned()
}

/// One normalised event of a verified entry → what to store and what to do around it.
fn arrival(inbox: &Inbox, ev: MetaEvent, now: Timestamp) -> Option<Arrival> {
    let at = ev.at();
    let event = match ev {
        MetaEvent::Message {
            from,
            mid,
            text,
            attachments,
            quick_reply_payload,
            reply_to_mid,
            reply_to_story,
            referral,
            unsupported,
            standby,
            at,
        } => {
            if from.is_empty() {
                return None;
            }
            // A story mention carries the story in its attachment's URL.
            let mentioned = attachments
                .iter()
                .find(|a| a.kind == "story_mention")
                .map(|a| json!({"url": a.url, "mention": true}));
            let kind = if text.is_none() && !attachments.is_empty() {
                MessageKind::Media
            } else {
                MessageKind::Text
            };
            let shown = if unsupported {
                "[unsupported message]".to_owned()
            } else {
                describe(text.as_deref(), &attachments)
            };
            let mut m = serde_json::Map::new();
            if !attachments.is_empty() {
                m.insert("attachments".into(), attachments_json(inbox, &attachments));
            }
            let shared = shared_detail(quick_reply_payload.as_ref());
            if let Some(p) = quick_reply_payload {
                m.insert("quick_reply_payload".into(), json!(p));
            }
            if let Some(r) = &reply_to_mid {
                m.insert("reply_to".into(), json!(r));
            }
            if let Some(s) = reply_to_story.or(mentioned) {
                m.insert("story".into(), s);
            }
            if let Some(r) = referral {
                m.insert("referral".into(), r);
            }
            if standby {
                m.insert("standby".into(), json!(true));
            }
            let mut said_ = message(&from, mid, kind, shown, at);
            said_.meta = m.into();
            said_.replying_to = reply_to_mid;
            let a = said(inbox, at, from, said_, true);
            return Some(match shared {
                Some(s) => a.with(Effect::SharedDetail(s)),
                None => a,
            });
        }
        MetaEvent::Postback {
            from,
            mid,
            title,
            payload,
            referral,
            standby,
            at,
        } => {
            let id = mid.unwrap_or_else(|| format!("postback:{from}:{}", at.millis()));
            let text = title
                .clone()
                .or_else(|| payload.clone())
                .unwrap_or_else(|| "[button]".into());
            let mut m = message(&from, id, MessageKind::Text, text, at);
            m.meta = json!({"postback": {"title": title, "payload": payload, "referral": referral, "standby": standby}});
            return Some(said(inbox, at, from, m, true));
        }
        MetaEvent::Referral { from, referral, at } => {
            let id = format!("referral:{from}:{}", at.millis());
            let text = format!(
                "Opened the conversation from {} (ref {})",
                referral["source"].as_str().unwrap_or("a link"),
                referral["ref"].as_str().unwrap_or("-")
            );
            let mut m = message(&from, id, MessageKind::System, text, at);
            m.meta = json!({ "referral": referral });
            return Some(said(inbox, at, from, m, true));
        }
        MetaEvent::Comment {
            comment_id,
            post_id,
            parent_id,
            from_id,
            from_name,
            text,
            verb,
            at,
        } => {
            let from_id = from_id.unwrap_or_default();
            let provider_id = format!("comment:{comment_id}");
            if verb != CommentVerb::Add {
                return Some(Arrival::event(
                    inbox,
                    at,
                    InboundEvent::CommentChange {
                        provider_message_id: provider_id,
                        verb: verb.as_str().to_owned(),
                        text,
                    },
                ));
            }
            // The Page's own comments (our public replies among them) would loop: drop them.
            if from_id.is_empty()
                || Some(from_id.as_str()) == account_id(inbox)
                || Some(from_id.as_str()) == sender_id(inbox)
            {
                return None;
            }
            // A Facebook commenter id is not a PSID; an Instagram commenter id is the IGSID.
            let messenger = inbox.channel == ChannelKind::Messenger;
            let external = if messenger {
                format!("{COMMENTER_PREFIX}{from_id}")
            } else {
                from_id
            };
            let link = post_id
                .as_ref()
                .filter(|_| messenger)
                .map(|p| format!("https://www.facebook.com/{p}"));
            let mut m = message(
                &external,
                provider_id,
                MessageKind::Comment,
                text.unwrap_or_default(),
                at,
            );
            m.from = InboundSender::identity(external.as_str(), from_name.as_deref());
            m.meta = json!({"comment": {
                "id": comment_id, "post_id": post_id, "parent_id": parent_id, "post_link": link,
                "created_time": at, "from_name": from_name,
            }});
            return Some(said(inbox, at, external, m, !messenger));
        }
        MetaEvent::Echo {
            from,
            to,
            mid,
            text,
            attachments,
            app_id,
            metadata,
            at,
        } => {
            // An echo is ours only when Meta says our own Page or account sent it: anything else
            // claiming to be one is not stored (as ours or at all).
            if from.is_empty()
                || (Some(from.as_str()) != account_id(inbox)
                    && Some(from.as_str()) != sender_id(inbox))
            {
                return None;
            }
            let ours = metadata
                .as_deref()
                .and_then(|m| m.strip_prefix(METADATA_PREFIX))
                .and_then(|id| id.parse().ok());
            let from_page_inbox = app_id.as_deref() == Some(PAGE_INBOX_APP_ID);
            let mut m = serde_json::Map::new();
            m.insert(
                "echo".into(),
                json!({"app_id": app_id, "from_page_inbox": from_page_inbox}),
            );
            if !attachments.is_empty() {
                m.insert("attachments".into(), attachments_json(inbox, &attachments));
            }
            InboundEvent::Echo(Echoed {
                customer: to,
                provider_message_id: mid,
                ours,
                text: describe(text.as_deref(), &attachments),
                meta: m.into(),
                at,
            })
        }
        MetaEvent::Read {
            from,
            watermark,
            mid,
            ..
        } => InboundEvent::Receipt {
            customer: from,
            provider_message_ids: mid.into_iter().collect(),
            watermark,
            status: DeliveryStatus::Read,
        },
        MetaEvent::Delivery {
            from,
            mids,
            watermark,
            ..
        } => InboundEvent::Receipt {
            customer: from,
            provider_message_ids: mids,
            watermark,
            status: DeliveryStatus::Delivered,
        },
        MetaEvent::Reaction {
            from,
            mid,
            react,
            reaction,
            emoji,
            at,
        } => InboundEvent::Reaction {
            customer: from,
            target_provider_id: mid,
            reaction: react
                .then(|| json!({"reaction": reaction, "emoji": emoji, "at": at.clamp_to(now)})),
            at,
        },
        MetaEvent::Edit {
            mid,
            text,
            num_edit,
            ..
        } => InboundEvent::Edit {
            provider_message_id: mid,
            text,
            num_edit,
        },
        MetaEvent::Deleted { mid, .. } => InboundEvent::Unsent {
            provider_message_id: mid,
        },
        MetaEvent::PolicyEnforcement { action, .. } => {
            return Some(Arrival::effect(
                inbox,
                at,
                Effect::Warn {
                    what: "Meta policy enforcement on this page",
                    detail: action,
                },
            ));
        }
        MetaEvent::Ignored { .. } => return None,
    };
    Some(Arrival::event(inbox, at, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "app_secret_test";
    const BODY_186: &str = r#"{"object":"page","entry":[{"id":"111","time":1700000000000,"messaging":[{"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":1700000000000,"message":{"mid":"m_1","text":"hi"}}]}]}"#;
    const BODY_ESCAPED: &str = r#"{"object":"page","entry":[{"id":"111","time":1,"messaging":[{"message":{"mid":"m_2","text":"\u00e4\u00f6\u00e5"}}]}]}"#;

    #[test]
    fn channels_md_signature_vectors() {
        assert_eq!(BODY_186.len(), 186);
        let h = "sha256=c8689bb3bada46871eebcc7726065b6080f8766b86ea1c4cca1c718ccf7441e9";
        assert_eq!(signature_header(SECRET, BODY_186.as_bytes()), h);
        assert!(verify_signature(SECRET, BODY_186.as_bytes(), Some(h)));
        let e = "sha256=c3d8653b1194f2ea1e301ada9f5b88941d148c73decabd7ba30a5571e017b8e2";
        assert!(verify_signature(SECRET, BODY_ESCAPED.as_bytes(), Some(e)));
        // Re-serialising the parsed JSON writes äöå unescaped: a different body, a different HMAC.
        let reserialised =
            serde_json::to_string(&serde_json::from_str::<Value>(BODY_ESCAPED).unwrap_or_default())
                .unwrap_or_default();
        assert!(reserialised.contains('ä'));
        assert!(!verify_signature(SECRET, reserialised.as_bytes(), Some(e)));
        let unescaped = BODY_ESCAPED.replace(r"\u00e4\u00f6\u00e5", "äöå");
        assert!(signature_header(SECRET, unescaped.as_bytes()).starts_with("sha256=ec1a2be6"));
        assert!(!verify_signature(SECRET, unescaped.as_bytes(), Some(e)));
    }

    #[test]
    fn bad_signatures_are_refused() {
        let good = signature_header(SECRET, BODY_186.as_bytes());
        assert!(!verify_signature(SECRET, BODY_186.as_bytes(), None));
        assert!(!verify_signature(
            SECRET,
            BODY_186.as_bytes(),
            Some(&good[7..])
        ));
        assert!(!verify_signature("other", BODY_186.as_bytes(), Some(&good)));
        let mut flipped = good.clone();
        flipped.replace_range(70.., "0");
        assert!(!verify_signature(
            SECRET,
            BODY_186.as_bytes(),
            Some(&flipped)
        ));
        let sha1 = format!("sha1={}", &good[7..]);
        assert!(!verify_signature(SECRET, BODY_186.as_bytes(), Some(&sha1)));
    }

    #[test]
    fn handshake_vector() {
        let q = |mode, tok| handshake(Some(mode), Some(tok), Some("1158201444"), &["tok"]);
        assert_eq!(q("subscribe", "tok"), Some("1158201444"));
        assert_eq!(q("subscribe", "wrong"), None);
        assert_eq!(q("unsubscribe", "tok"), None);
        assert_eq!(
            handshake(Some("subscribe"), Some(""), Some("1"), &[""]),
            None
        );
    }

    #[test]
    fn parses_every_messaging_shape() {
        let body = json!({"object":"page","entry":[
            {"id":"111","time":1,"messaging":[
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":5,"message":{"mid":"m_a","text":"hi","quick_reply":{"payload":"YES"},"reply_to":{"mid":"m_0"}}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":6,"message":{"mid":"m_b","attachments":[{"type":"image","payload":{"url":"https://x/y.png","sticker_id":369239263222822_u64}},{"type":"sticker","payload":{"url":"u","sticker_id":369239263222822_u64}}]}},
                {"sender":{"id":"111"},"recipient":{"id":"222"},"timestamp":7,"message":{"mid":"m_c","is_echo":true,"app_id":263902037430900_u64,"text":"from page inbox"}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":8,"postback":{"title":"Get Started","payload":"START","mid":"m_d"}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":9,"read":{"watermark":8}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":10,"delivery":{"mids":["m_c"],"watermark":9}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":11,"reaction":{"mid":"m_c","action":"react","reaction":"love","emoji":"❤"}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":12,"message_edit":{"mid":"m_a","text":"hi!","num_edit":1}},
                {"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":13,"referral":{"ref":"summer","source":"SHORTLINK","type":"OPEN_THREAD"}},
                {"recipient":{"id":"111"},"timestamp":14,"policy_enforcement":{"action":"warning","reason":"spam"}}
            ],
            "standby":[{"sender":{"id":"333"},"recipient":{"id":"111"},"timestamp":15,"postback":{"title":"Hi"}}]}
        ]});
        let w = parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.object, Object::Page);
        let ev = &w.entries[0].events;
        assert_eq!(ev.len(), 11);
        assert!(
            matches!(&ev[0], MetaEvent::Message { quick_reply_payload: Some(p), reply_to_mid: Some(r), .. } if p == "YES" && r == "m_0")
        );
        match &ev[1] {
            MetaEvent::Message {
                attachments, text, ..
            } => {
                assert_eq!(describe(text.as_deref(), attachments), "[sticker]")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&ev[2], MetaEvent::Echo { to, app_id: Some(a), .. } if to == "222" && a == PAGE_INBOX_APP_ID)
        );
        assert!(matches!(&ev[3], MetaEvent::Postback { payload: Some(p), .. } if p == "START"));
        assert!(matches!(
            &ev[4],
            MetaEvent::Read {
                watermark: Some(Timestamp(8)),
                ..
            }
        ));
        assert!(matches!(&ev[5], MetaEvent::Delivery { mids, .. } if mids == &["m_c"]));
        assert!(
            matches!(&ev[6], MetaEvent::Reaction { react: true, reaction: Some(r), .. } if r == "love")
        );
        assert!(matches!(&ev[7], MetaEvent::Edit { num_edit: 1, .. }));
        assert!(matches!(&ev[8], MetaEvent::Referral { .. }));
        assert!(matches!(&ev[9], MetaEvent::PolicyEnforcement { .. }));
        // A standby postback has no payload.
        assert!(matches!(
            &ev[10],
            MetaEvent::Postback {
                payload: None,
                standby: true,
                ..
            }
        ));
    }

    #[test]
    fn parses_feed_and_instagram_comments_and_instagram_specifics() {
        let feed = json!({"object":"page","entry":[{"id":"111","time":1742667604,"changes":[{"field":"feed","value":{
            "item":"comment","verb":"add","comment_id":"P_C","post_id":"111_P","parent_id":"111_P",
            "from":{"id":"999","name":"Jo"},"message":"price?","created_time":1742667604,
            "post":{"id":"111_P","status_type":"mobile_status_update","is_published":true}}},
            {"field":"feed","value":{"item":"reaction","verb":"add","reaction_type":"like"}}]}]});
        let w = parse(feed.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let ev = &w.entries[0].events;
        assert!(
            matches!(&ev[0], MetaEvent::Comment { verb: CommentVerb::Add, at: Timestamp(1_742_667_604_000), from_id: Some(f), .. } if f == "999")
        );
        assert!(matches!(&ev[1], MetaEvent::Ignored { .. }));

        let ig = json!({"object":"instagram","entry":[{"id":"17841","time":1700000000,"changes":[{"field":"comments","value":{
            "id":"C1","text":"price?","from":{"id":"IGSID1","username":"jo"},"media":{"id":"M1","media_product_type":"FEED"}}}],
            "messaging":[{"sender":{"id":"IGSID1"},"recipient":{"id":"17841"},"timestamp":1700000000001_u64,"message":{"mid":"aWdf","is_deleted":true}},
                         {"sender":{"id":"IGSID1"},"recipient":{"id":"17841"},"timestamp":1700000000002_u64,"read":{"mid":"aWdg"}}]}]});
        let w = parse(ig.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.object, Object::Instagram);
        assert_eq!(w.entries[0].id, "17841");
        let ev = &w.entries[0].events;
        assert!(matches!(&ev[0], MetaEvent::Deleted { mid, .. } if mid == "aWdf"));
        assert!(
            matches!(&ev[1], MetaEvent::Read { mid: Some(m), watermark: None, .. } if m == "aWdg")
        );
        assert!(
            matches!(&ev[2], MetaEvent::Comment { post_id: Some(p), at: Timestamp(1_700_000_000_000), .. } if p == "M1")
        );
        assert!(parse(b"{\"object\":\"user\",\"entry\":[]}").is_err());
        assert_eq!(
            entry_ids(ig.to_string().as_bytes()),
            vec!["17841".to_owned()]
        );
    }

    #[test]
    fn maps_meta_errors() {
        let err = |code: i64, sub: Option<i64>| {
            let mut e = json!({"error":{"message":"x","type":"OAuthException","code":code,"fbtrace_id":"A"}});
            if let Some(s) = sub {
                e["error"]["error_subcode"] = json!(s);
            }
            classify_error(400, e.to_string().as_bytes(), None, None)
        };
        assert_eq!(err(10, Some(2_018_278)).reason, "window_closed");
        assert_eq!(err(10, Some(2_534_022)).reason, "window_closed");
        assert_eq!(err(10, Some(1_893_063)).reason, "page_restricted");
        assert_eq!(err(10, Some(2_018_108)).reason, "user_unavailable");
        assert_eq!(err(551, Some(1_545_041)).reason, "user_unavailable");
        assert_eq!(err(190, None).reason, "token_expired");
        assert_eq!(err(100, None).reason, "invalid_request");
        assert_eq!(
            err(100, Some(2_534_025)).reason,
            "comment_invalid_for_private_reply"
        );
        assert!(!err(190, None).retry);
        assert!(err(613, Some(2_534_040)).retry);
        assert!(err(2, None).retry);
        let r = classify_error(429, b"", Some("7"), None);
        assert_eq!(
            (r.retry, r.reason, r.retry_after_ms),
            (true, "rate_limited", Some(7_000))
        );
        let buc = r#"{"111":[{"type":"messenger","call_count":100,"estimated_time_to_regain_access":3}]}"#;
        let r = classify_error(400, br#"{"error":{"code":80006}}"#, None, Some(buc));
        assert_eq!((r.retry, r.retry_after_ms), (true, Some(180_000)));
        assert!(classify_error(503, b"oops", None, None).retry);
    }

    #[test]
    fn builds_send_and_comment_requests() {
        let b = send_body(
            &Recipient::Id("222".into()),
            Some("MESSAGE_TAG"),
            Some("HUMAN_AGENT"),
            "Agent here",
            Some("sb:1"),
        );
        assert_eq!(
            b,
            json!({"recipient":{"id":"222"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"Agent here","metadata":"sb:1"}})
        );
        let p = send_body(
            &Recipient::Comment("C".into()),
            None,
            None,
            "DM'ing you",
            None,
        );
        assert_eq!(
            p,
            json!({"recipient":{"comment_id":"C"},"message":{"text":"DM'ing you"}})
        );
        let base = "https://graph.facebook.com/v26.0/";
        assert_eq!(
            messages_url(base, "111"),
            "https://graph.facebook.com/v26.0/111/messages"
        );
        let ig_hide = comment_request(Object::Instagram, base, "C", CommentOp::Hide, None);
        assert_eq!(
            ig_hide,
            Some(("POST", format!("{base}C"), Some(json!({"hide": true}))))
        );
        let fb_hide = comment_request(Object::Page, base, "C", CommentOp::Hide, None);
        assert_eq!(
            fb_hide,
            Some(("POST", format!("{base}C"), Some(json!({"is_hidden": true}))))
        );
        assert_eq!(
            comment_request(Object::Instagram, base, "C", CommentOp::Like, None),
            None
        );
        assert_eq!(
            comment_request(Object::Instagram, base, "C", CommentOp::Reply, Some("hi"))
                .map(|r| r.1),
            Some(format!("{base}C/replies"))
        );
        let v = json!({"first_name":"Jo","last_name":"Le","profile_pic":"https://p"});
        assert_eq!(
            parse_profile(Object::Page, &v),
            Profile {
                name: Some("Jo Le".into()),
                username: None,
                picture: Some(Picture {
                    key: "https://p".into(),
                    source: PictureSource::Url("https://p".into()),
                    storable: true,
                }),
            }
        );
        // Instagram: the handle is kept; the picture is shown from its URL, never copied.
        let v = json!({"name":"Jo Le","username":"jo.le","profile_pic":"https://p"});
        let ig = parse_profile(Object::Instagram, &v);
        assert_eq!(ig.username.as_deref(), Some("jo.le"));
        assert_eq!(ig.picture.map(|p| p.storable), Some(false));
        let hostile = json!({"name":"\u{0}","username":"../x","profile_pic":"javascript:alert(1)"});
        let hostile = parse_profile(Object::Instagram, &hostile);
        assert_eq!((hostile.username, hostile.picture), (None, None));
    }

    fn buttons(header: Option<&str>) -> Interactive {
        use switchboard_core::outbound::{Choice, Choices};
        let c = |id: &str, title: &str| Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        };
        Interactive {
            header: header.map(str::to_owned),
            body: "Anh chọn size nào ạ?".into(),
            footer: None,
            choices: Choices::Buttons(vec![c("SIZE_M", "Size M"), c("SIZE_L", "Size L")]),
        }
    }

    #[test]
    fn buttons_go_out_as_quick_replies() {
        let content = Content::Interactive(buttons(Some("Áo thun")));
        let message_id = switchboard_core::MessageId(uuid::Uuid::from_u128(7));
        let r = Rendering {
            to: "222",
            content: &content,
            text: "Anh chọn size nào ạ?",
            template: None,
            message_id,
            messaging_type: Some("RESPONSE"),
            tag: None,
        };
        let (job, request) = Meta.render(&r);
        assert_eq!(job, OutboxJob::Send);
        let inbox = Inbox {
            id: switchboard_core::InboxId(uuid::Uuid::from_u128(1)),
            workspace_id: switchboard_core::WorkspaceId(uuid::Uuid::from_u128(2)),
            name: "Shop".into(),
            channel: ChannelKind::Messenger,
            settings: json!({"page_id": "111", "page_access_token": "T"}),
            created_at: Timestamp(0),
        };
        let out = Outgoing {
            job,
            request: &request,
            message_id,
            file: None,
            uploaded: None,
        };
        let call = Meta
            .send_call(&inbox, &out, Timestamp(0))
            .unwrap_or_else(|f| panic!("{f:?}"));
        assert_eq!(
            call.body,
            ApiBody::Json(json!({
                "recipient": {"id": "222"},
                "messaging_type": "RESPONSE",
                "message": {
                    // The header has no place of its own: it heads the text.
                    "text": "Áo thun\nAnh chọn size nào ạ?",
                    "metadata": format!("sb:{message_id}"),
                    "quick_replies": [
                        {"content_type": "text", "title": "Size M", "payload": "SIZE_M"},
                        {"content_type": "text", "title": "Size L", "payload": "SIZE_L"},
                    ],
                },
            }))
        );
        // A text (or buttons handed over as their numbered list) has no quick replies.
        let text = Content::Text("1. Size M".into());
        let (_, request) = Meta.render(&Rendering {
            content: &text,
            text: "1. Size M",
            ..r
        });
        assert!(request.get("quick_replies").is_none(), "{request}");
    }
}
