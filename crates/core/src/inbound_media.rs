//! Files customers send us: which of a message's provider attachments we fetch, where from, and
//! when a failed download is tried again. Pure: the server downloads, the store keeps the rows.
//!
//! Every provider parser leaves its attachments in the message's `meta.attachments` with the
//! provider's own `type` and exactly one source: `media_id` (WhatsApp: `GET /{media-id}` says
//! where), `file_id` (Telegram: `getFile` says where) or `url` (Messenger, Instagram, Zalo: a CDN
//! URL that expires). `bytes_kept: false` marks a platform whose policy forbids keeping the bytes
//! (Instagram, `channels.md` §2): its file is only ever shown from the provider's URL.

use crate::retry::{self, RetryPolicy};
use crate::time::Timestamp;
use serde_json::Value;

/// At most this many files of one message are fetched (a provider sends a handful).
pub const MAX_FILES: usize = 10;
/// Download attempts before a file is `failed` (an agent may retry it then).
pub const MAX_ATTEMPTS: u32 = 5;
/// The longest provider id or URL we keep.
const MAX_SOURCE: usize = 2048;

/// Waits between attempts: up to 30 s, 1 min, 2 min, 4 min (at least half of each: jitter), then
/// give up.
const RETRY: RetryPolicy = RetryPolicy {
    base_ms: 30_000,
    max_ms: 30 * 60_000,
    give_up_after_ms: i64::MAX / 4,
};

/// What a file is, as the thread shows it.
pub const KINDS: &[(&str, &str)] = &[
    // (provider type, our kind)
    ("image", "image"),
    ("photo", "image"),
    ("gif", "image"),
    ("sticker", "sticker"),
    ("video", "video"),
    ("video_note", "video"),
    ("animation", "video"),
    ("ig_reel", "video"),
    ("reel", "video"),
    ("audio", "audio"),
    ("voice", "audio"),
    ("file", "file"),
    ("document", "file"),
];

/// Where a file's bytes are fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A provider CDN URL (it expires).
    Url(String),
    /// A WhatsApp media id.
    WhatsAppMedia(String),
    /// A Telegram file id.
    TelegramFile(String),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Url(_) => "url",
            Source::WhatsAppMedia(_) => "whatsapp_media",
            Source::TelegramFile(_) => "telegram_file",
        }
    }
    pub fn value(&self) -> &str {
        match self {
            Source::Url(s) | Source::WhatsAppMedia(s) | Source::TelegramFile(s) => s,
        }
    }
    /// The source from its stored parts.
    pub fn parse(kind: &str, value: &str) -> Option<Self> {
        let v = value.to_owned();
        match kind {
            "url" => Some(Source::Url(v)),
            "whatsapp_media" => Some(Source::WhatsAppMedia(v)),
            "telegram_file" => Some(Source::TelegramFile(v)),
            _ => None,
        }
    }
}

/// The state of an inbound file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Waiting for (another) download attempt.
    Pending,
    /// Our copy is in the media store.
    Ready,
    /// Every attempt failed: shown with a retry button.
    Failed,
    /// Never downloaded (the platform's policy): shown from the provider's URL while it lives.
    Remote,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Ready => "ready",
            FileState::Failed => "failed",
            FileState::Remote => "remote",
        }
    }
}

/// One file of an inbound message, to be fetched (or linked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFile {
    /// Its place among the message's attachments: (message, position) is unique, so a
    /// redelivered webhook adds nothing.
    pub position: u32,
    /// `image`, `sticker`, `video`, `audio` or `file`.
    pub kind: &'static str,
    pub source: Source,
    /// The name the customer's file had, when the provider says.
    pub filename: Option<String>,
    /// `Pending` (to download) or `Remote` (the bytes may not be kept).
    pub state: FileState,
    /// A video's own thumbnail at the provider (Telegram's `thumbnail`, Zalo's `thumbnail`): we
    /// cannot decode video, so this is the picture we show for it.
    pub thumbnail: Option<Source>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SOURCE && !s.contains('\0'))
        .map(str::to_owned)
}

/// The name to show for a file: the provider's, without paths or control characters, else one
/// from its kind.
fn filename(a: &Value, kind: &str) -> Option<String> {
    let raw = text(a, "filename")
        .or_else(|| text(a, "file_name"))
        .or_else(|| text(a, "name"))?;
    let name: String = raw
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(120)
        .collect();
    let name = name.trim();
    (!name.is_empty() && kind != "sticker").then(|| name.to_owned())
}

/// The files of a message's extras (`meta.attachments`), in order, at most [`MAX_FILES`]: those
/// of a kind we show as a file and with a source we can fetch (a location, a link, an Instagram
/// share have none). A sticker that Messenger also sent as an image is fetched once.
pub fn files_of(meta: &Value) -> Vec<InboundFile> {
    let Some(list) = meta.get("attachments").and_then(Value::as_array) else {
        return Vec::new();
    };
    let has_sticker = list.iter().any(|a| a["type"] == "sticker");
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate().take(MAX_FILES) {
        let Some(t) = a.get("type").and_then(Value::as_str) else {
            continue;
        };
        let Some(&(_, kind)) = KINDS.iter().find(|(p, _)| *p == t) else {
            continue;
        };
        // Until 2026-08-30 Messenger sent a sticker as an image as well.
        if kind == "image" && has_sticker && a.get("sticker_id").is_some_and(|s| !s.is_null()) {
            continue;
        }
        let source = if let Some(id) = text(a, "media_id") {
            Source::WhatsAppMedia(id)
        } else if let Some(id) = text(a, "file_id") {
            Source::TelegramFile(id)
        } else if let Some(u) = text(a, "url").filter(|u| is_web_url(u)) {
            Source::Url(u)
        } else {
            continue;
        };
        let remote = a.get("bytes_kept").and_then(Value::as_bool) == Some(false);
        let thumbnail = if kind != "video" || remote {
            None
        } else if let Some(id) = text(a, "thumbnail_file_id") {
            Some(Source::TelegramFile(id))
        } else {
            text(a, "thumbnail")
                .filter(|u| is_web_url(u))
                .map(Source::Url)
        };
        if remote && !matches!(source, Source::Url(_)) {
            continue;
        }
        out.push(InboundFile {
            position: u32::try_from(i).unwrap_or(u32::MAX),
            kind,
            filename: filename(a, kind),
            source,
            state: if remote {
                FileState::Remote
            } else {
                FileState::Pending
            },
            thumbnail,
        });
    }
    out
}

/// Only `http(s)` URLs are ever fetched or shown.
pub fn is_web_url(u: &str) -> bool {
    let l = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    l.starts_with("https://") || l.starts_with("http://")
}

/// When to try a download again after `attempts` failed ones (`jitter` in `[0, 1)`), or `None`
/// to give up: the file is then `failed` until an agent retries it.
pub fn next_attempt(attempts: u32, now: Timestamp, jitter: f64) -> Option<Timestamp> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    retry::next_attempt(&RETRY, attempts, now, now, None, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_providers_attachments_become_files_to_fetch() {
        for (attachment, want) in [
            // WhatsApp
            (
                json!({"type": "image", "media_id": "MID", "mime_type": "image/jpeg"}),
                Some((
                    "image",
                    Source::WhatsAppMedia("MID".into()),
                    FileState::Pending,
                )),
            ),
            (
                json!({"type": "document", "media_id": "D", "filename": "../../hoá đơn.pdf"}),
                Some((
                    "file",
                    Source::WhatsAppMedia("D".into()),
                    FileState::Pending,
                )),
            ),
            // Telegram
            (
                json!({"type": "photo", "file_id": "AgAD"}),
                Some((
                    "image",
                    Source::TelegramFile("AgAD".into()),
                    FileState::Pending,
                )),
            ),
            (
                json!({"type": "voice", "file_id": "V"}),
                Some((
                    "audio",
                    Source::TelegramFile("V".into()),
                    FileState::Pending,
                )),
            ),
            // Messenger, Zalo
            (
                json!({"type": "video", "url": "https://cdn.example/v.mp4"}),
                Some((
                    "video",
                    Source::Url("https://cdn.example/v.mp4".into()),
                    FileState::Pending,
                )),
            ),
            (
                json!({"type": "gif", "url": "https://cdn.example/g.gif"}),
                Some((
                    "image",
                    Source::Url("https://cdn.example/g.gif".into()),
                    FileState::Pending,
                )),
            ),
            // Instagram: linked, never downloaded.
            (
                json!({"type": "image", "url": "https://lookaside.fbsbx.com/x", "bytes_kept": false}),
                Some((
                    "image",
                    Source::Url("https://lookaside.fbsbx.com/x".into()),
                    FileState::Remote,
                )),
            ),
            // Nothing to fetch.
            (json!({"type": "location", "url": "https://maps"}), None),
            (json!({"type": "fallback", "url": "https://x"}), None),
            (json!({"type": "ephemeral"}), None),
            (json!({"type": "image"}), None),
            (json!({"type": "image", "url": "javascript:alert(1)"}), None),
            (json!({"type": "image", "url": "file:///etc/passwd"}), None),
            (json!({"type": "image", "url": "https://x\u{0}y"}), None),
            (json!({"url": "https://x"}), None),
        ] {
            let files = files_of(&json!({ "attachments": [attachment.clone()] }));
            let got = files.first().map(|f| (f.kind, f.source.clone(), f.state));
            assert_eq!(got, want, "{attachment}");
        }
    }

    #[test]
    fn names_positions_stickers_and_bounds() {
        let meta = json!({"attachments": [
            {"type": "location"},
            {"type": "document", "media_id": "D", "filename": "C:\\docs\\hoá đơn\u{7}.pdf"},
            {"type": "image", "url": "https://cdn/s.png", "sticker_id": "369"},
            {"type": "sticker", "url": "https://cdn/s.png", "sticker_id": "369"},
        ]});
        let f = files_of(&meta);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].position, 1);
        assert_eq!(f[0].filename.as_deref(), Some("hoá đơn.pdf"));
        assert_eq!((f[1].position, f[1].kind), (3, "sticker"));
        let many: Vec<_> = (0..50)
            .map(|i| json!({"type": "image", "url": format!("https://cdn/{i}")}))
            .collect();
        assert_eq!(files_of(&json!({ "attachments": many })).len(), MAX_FILES);
        assert!(files_of(&json!({"text": "hi"})).is_empty());
        assert!(files_of(&Value::Null).is_empty());
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let now = Timestamp(1_000_000);
        let wait = |n| next_attempt(n, now, 0.0).map(|t| t.millis() - now.millis());
        assert_eq!(wait(1), Some(15_000));
        assert_eq!(wait(2), Some(30_000));
        assert_eq!(wait(3), Some(60_000));
        assert_eq!(wait(4), Some(120_000));
        assert_eq!(wait(MAX_ATTEMPTS), None);
        assert_eq!(
            next_attempt(1, now, 0.999).map(|t| t.millis() - now.millis()),
            Some(29_985)
        );
    }

    #[test]
    fn videos_keep_the_providers_own_thumbnail() {
        let meta = json!({"attachments": [
            {"type": "video", "file_id": "V", "thumbnail_file_id": "T"},
            {"type": "video", "url": "https://cdn/v.mp4", "thumbnail": "https://cdn/t.jpg"},
            {"type": "image", "url": "https://cdn/i.jpg", "thumbnail": "https://cdn/t.jpg"},
            {"type": "video", "url": "https://cdn/v.mp4", "thumbnail": "javascript:x"},
        ]});
        let thumbs: Vec<_> = files_of(&meta).into_iter().map(|f| f.thumbnail).collect();
        assert_eq!(
            thumbs,
            vec![
                Some(Source::TelegramFile("T".into())),
                Some(Source::Url("https://cdn/t.jpg".into())),
                None,
                None
            ]
        );
    }

    #[test]
    fn sources_round_trip() {
        for s in [
            Source::Url("https://x".into()),
            Source::WhatsAppMedia("1".into()),
            Source::TelegramFile("A".into()),
        ] {
            assert_eq!(Source::parse(s.kind(), s.value()), Some(s.clone()));
        }
        assert_eq!(Source::parse("ftp", "x"), None);
    }
}
