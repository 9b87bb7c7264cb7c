//! Which files each channel can send: the kinds it takes, the types and sizes per kind, and
//! whether a caption rides with the file (channels.md and, where it is silent, the provider's own
//! documented limits, marked as such). One table, one check, decided from the bytes' type (never
//! the uploader's claim) before anything is stored or queued.

use crate::media::OPAQUE;
use crate::model::ChannelKind;
use crate::outbound::MediaKind;
use serde::Serialize;

const MB: u64 = 1024 * 1024;

/// The types a kind takes on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "types", content = "only")]
pub enum Types {
    /// Any type we recognise for the kind (and, for documents, any file at all).
    Any,
    Only(&'static [&'static str]),
}

/// What a channel does with one kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "sends")]
pub enum KindRule {
    /// Sent, if of these types and at most this many bytes.
    Sends { types: Types, max_bytes: u64 },
    /// Not sent on this channel, and why (told to the agent).
    Refused { reason: &'static str },
}

/// A channel's file limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MediaLimits {
    pub image: KindRule,
    pub video: KindRule,
    pub audio: KindRule,
    pub document: KindRule,
    /// The longest caption sent with the file (characters); `None`: the channel's file message
    /// has no caption, so a caption goes as a text message right after the file.
    pub caption: Option<usize>,
}

impl MediaLimits {
    pub const fn rule(&self, kind: MediaKind) -> KindRule {
        match kind {
            MediaKind::Image | MediaKind::Sticker => self.image,
            MediaKind::Video => self.video,
            MediaKind::Audio => self.audio,
            MediaKind::Document => self.document,
        }
    }

    /// Whether the channel sends files at all.
    pub fn sends_files(&self) -> bool {
        [self.image, self.video, self.audio, self.document]
            .iter()
            .any(|r| matches!(r, KindRule::Sends { .. }))
    }
}

const fn sends(types: Types, max_bytes: u64) -> KindRule {
    KindRule::Sends { types, max_bytes }
}

const PNG_JPEG: Types = Types::Only(&["image/png", "image/jpeg"]);

/// The table. `ours` is live chat's own limit (`limits.max_upload_bytes`): the widget fetches
/// the file from us.
pub const fn limits(channel: ChannelKind, ours: u64) -> MediaLimits {
    match channel {
        ChannelKind::Livechat => MediaLimits {
            image: sends(Types::Any, ours),
            video: sends(Types::Any, ours),
            audio: sends(Types::Any, ours),
            document: sends(Types::Any, ours),
            caption: Some(crate::validate::MAX_TEXT_CHARS),
        },
        // §1.5: `attachment{type:image|audio|video|file}`, max 25 MB; no caption field.
        ChannelKind::Messenger => MediaLimits {
            image: sends(Types::Any, 25 * MB),
            video: sends(Types::Any, 25 * MB),
            audio: sends(Types::Any, 25 * MB),
            document: sends(Types::Any, 25 * MB),
            caption: None,
        },
        // §2: "Images are png/jpeg ≤8 MB … Audio and video ≤25 MB"; files are not documented
        // for sending on Instagram.
        ChannelKind::Instagram => MediaLimits {
            image: sends(PNG_JPEG, 8 * MB),
            video: sends(Types::Any, 25 * MB),
            audio: sends(Types::Any, 25 * MB),
            document: KindRule::Refused {
                reason: "Instagram's Send API documents images, audio and video only, no files",
            },
            caption: None,
        },
        // §3.2 has captions ≤1024 only; the sizes and types are the Cloud API's documented
        // media limits (image 5 MB jpeg/png, video 16 MB mp4, audio 16 MB, document 100 MB).
        ChannelKind::Whatsapp => MediaLimits {
            image: sends(PNG_JPEG, 5 * MB),
            video: sends(Types::Only(&["video/mp4"]), 16 * MB),
            audio: sends(
                Types::Only(&["audio/mpeg", "audio/mp4", "audio/ogg"]),
                16 * MB,
            ),
            document: sends(Types::Any, 100 * MB),
            caption: Some(1024),
        },
        // §4.2: files are uploaded first (`/upload/image` → attachment_id, `/upload/file` →
        // token). Sizes and types are Zalo's documented upload limits (image ≤1 MB jpg/png, file
        // ≤5 MB pdf/doc/docx — only PDF can be told from its bytes, so only PDF is sent).
        ChannelKind::Zalo => MediaLimits {
            image: sends(PNG_JPEG, MB),
            video: KindRule::Refused {
                reason: "Zalo's consultation messages carry images and files only, no video",
            },
            audio: KindRule::Refused {
                reason: "Zalo's consultation messages carry images and files only, no audio",
            },
            document: sends(Types::Only(&["application/pdf"]), 5 * MB),
            caption: None,
        },
        // Telegram fetches the file from our signed URL (Bot API: 5 MB for photos, 20 MB for
        // other files by URL; by URL sendVideo takes mp4, sendAudio mp3/m4a, sendDocument PDF
        // (and ZIP, which we do not recognise)). Captions 0-1024 characters.
        ChannelKind::Telegram => MediaLimits {
            image: sends(
                Types::Only(&["image/png", "image/jpeg", "image/webp"]),
                5 * MB,
            ),
            video: sends(Types::Only(&["video/mp4"]), 20 * MB),
            audio: sends(Types::Only(&["audio/mpeg", "audio/mp4"]), 20 * MB),
            document: sends(Types::Only(&["application/pdf"]), 20 * MB),
            caption: Some(1024),
        },
        // §6: `upload_image`, then `send_message` with `message_type:"image"`. The 10 MB is
        // Shopee's upload_image limit as integrators report it (channels.md is silent).
        ChannelKind::Shopee => MediaLimits {
            image: sends(PNG_JPEG, 10 * MB),
            video: KindRule::Refused {
                reason: SHOPEE_IMAGES_ONLY,
            },
            audio: KindRule::Refused {
                reason: SHOPEE_IMAGES_ONLY,
            },
            document: KindRule::Refused {
                reason: SHOPEE_IMAGES_ONLY,
            },
            caption: None,
        },
    }
}

const SHOPEE_IMAGES_ONLY: &str = "Shopee's seller chat API documents images only";

/// What kind of media a file is, from the type derived from its bytes.
pub fn kind_of(content_type: &str) -> MediaKind {
    match content_type.split('/').next() {
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("audio") => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// A file a channel cannot send, naming the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaUnfit {
    KindNotSupported {
        kind: MediaKind,
        reason: &'static str,
    },
    TypeNotSupported {
        kind: MediaKind,
        allowed: &'static [&'static str],
    },
    TooLarge {
        kind: MediaKind,
        max_bytes: u64,
    },
    CaptionTooLong {
        max: usize,
    },
}

impl MediaUnfit {
    pub const fn code(&self) -> &'static str {
        match self {
            Self::KindNotSupported { .. } => "file_kind_not_supported",
            Self::TypeNotSupported { .. } => "file_type_not_supported",
            Self::TooLarge { .. } => "file_too_large",
            Self::CaptionTooLong { .. } => "caption_too_long",
        }
    }

    /// The limit in words, naming the channel.
    pub fn describe(&self, channel: ChannelKind) -> String {
        match self {
            Self::KindNotSupported { reason, .. } => (*reason).to_owned(),
            Self::TypeNotSupported { kind, allowed } => {
                format!("{kind} files on {channel} must be {}", allowed.join(", "))
            }
            Self::TooLarge { kind, max_bytes } => {
                format!(
                    "at most {} for {kind} files on {channel}",
                    human_size(*max_bytes)
                )
            }
            Self::CaptionTooLong { max } => {
                format!("captions on {channel} are at most {max} characters")
            }
        }
    }
}

/// Bytes in words: whole MB where exact, else bytes.
pub fn human_size(bytes: u64) -> String {
    if bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Whether `channel` sends a file of this (sniffed) type and size, with this caption; the file's
/// kind when it does.
pub fn check(
    channel: ChannelKind,
    ours: u64,
    content_type: &str,
    size: u64,
    caption: Option<&str>,
) -> Result<MediaKind, MediaUnfit> {
    let l = limits(channel, ours);
    let kind = kind_of(content_type);
    let (types, max_bytes) = match l.rule(kind) {
        KindRule::Refused { reason } => return Err(MediaUnfit::KindNotSupported { kind, reason }),
        KindRule::Sends { types, max_bytes } => (types, max_bytes),
    };
    if let Types::Only(allowed) = types
        && (content_type == OPAQUE || !allowed.contains(&content_type))
    {
        return Err(MediaUnfit::TypeNotSupported { kind, allowed });
    }
    if size > max_bytes {
        return Err(MediaUnfit::TooLarge { kind, max_bytes });
    }
    if let (Some(max), Some(c)) = (l.caption, caption)
        && c.chars().count() > max
    {
        return Err(MediaUnfit::CaptionTooLong { max });
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ChannelKind as C;

    const OURS: u64 = 20 * MB;

    /// (channel, type, exactly the limit, the limit in words)
    const SIZES: &[(C, &str, u64, &str)] = &[
        (C::Livechat, "application/pdf", 20 * MB, "20 MB"),
        (C::Messenger, "image/png", 25 * MB, "25 MB"),
        (C::Messenger, "video/mp4", 25 * MB, "25 MB"),
        (C::Messenger, "application/pdf", 25 * MB, "25 MB"),
        (C::Instagram, "image/jpeg", 8 * MB, "8 MB"),
        (C::Instagram, "video/mp4", 25 * MB, "25 MB"),
        (C::Instagram, "audio/mpeg", 25 * MB, "25 MB"),
        (C::Whatsapp, "image/jpeg", 5 * MB, "5 MB"),
        (C::Whatsapp, "video/mp4", 16 * MB, "16 MB"),
        (C::Whatsapp, "audio/ogg", 16 * MB, "16 MB"),
        (C::Whatsapp, "application/pdf", 100 * MB, "100 MB"),
        (C::Zalo, "image/png", MB, "1 MB"),
        (C::Zalo, "application/pdf", 5 * MB, "5 MB"),
        (C::Telegram, "image/jpeg", 5 * MB, "5 MB"),
        (C::Telegram, "video/mp4", 20 * MB, "20 MB"),
        (C::Telegram, "audio/mpeg", 20 * MB, "20 MB"),
        (C::Telegram, "application/pdf", 20 * MB, "20 MB"),
        (C::Shopee, "image/jpeg", 10 * MB, "10 MB"),
    ];

    #[test]
    fn sizes_at_their_boundaries() {
        for &(channel, ty, max, words) in SIZES {
            let kind = kind_of(ty);
            assert_eq!(
                check(channel, OURS, ty, max, None),
                Ok(kind),
                "{channel} {ty}"
            );
            let over = check(channel, OURS, ty, max + 1, None).unwrap_err();
            assert_eq!(
                over,
                MediaUnfit::TooLarge {
                    kind,
                    max_bytes: max
                },
                "{channel} {ty}"
            );
            assert_eq!(over.code(), "file_too_large");
            assert_eq!(
                over.describe(channel),
                format!("at most {words} for {kind} files on {channel}")
            );
        }
    }

    #[test]
    fn kinds_a_channel_does_not_send_name_why() {
        for (channel, ty, why) in [
            (C::Instagram, "application/pdf", "no files"),
            (C::Zalo, "video/mp4", "no video"),
            (C::Zalo, "audio/mpeg", "no audio"),
            (C::Shopee, "video/mp4", "images only"),
            (C::Shopee, "application/pdf", "images only"),
            (C::Shopee, "audio/ogg", "images only"),
        ] {
            let e = check(channel, OURS, ty, 1, None).unwrap_err();
            assert_eq!(e.code(), "file_kind_not_supported", "{channel} {ty}");
            assert!(e.describe(channel).contains(why), "{channel} {ty}");
        }
    }

    #[test]
    fn types_are_checked_from_the_bytes_type() {
        for (channel, ty, ok) in [
            (C::Instagram, "image/gif", false),
            (C::Instagram, "image/png", true),
            (C::Whatsapp, "video/webm", false),
            (C::Whatsapp, "audio/wav", false),
            (C::Whatsapp, OPAQUE, true),
            (C::Zalo, OPAQUE, false),
            (C::Zalo, "image/gif", false),
            (C::Telegram, "image/webp", true),
            (C::Telegram, "image/gif", false),
            (C::Telegram, OPAQUE, false),
            (C::Shopee, "image/webp", false),
            (C::Messenger, OPAQUE, true),
            (C::Livechat, OPAQUE, true),
        ] {
            let got = check(channel, OURS, ty, 1, None);
            assert_eq!(got.is_ok(), ok, "{channel} {ty}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.code(), "file_type_not_supported");
                assert!(e.describe(channel).contains("must be"), "{channel} {ty}");
            }
        }
    }

    #[test]
    fn captions_ride_with_the_file_where_the_channel_has_them() {
        for (channel, max) in [
            (C::Whatsapp, Some(1024)),
            (C::Telegram, Some(1024)),
            (C::Livechat, Some(4096)),
            (C::Messenger, None),
            (C::Instagram, None),
            (C::Zalo, None),
            (C::Shopee, None),
        ] {
            assert_eq!(limits(channel, OURS).caption, max, "{channel}");
            let Some(max) = max else { continue };
            let ty = "image/png";
            let ok = "ả".repeat(max);
            assert!(check(channel, OURS, ty, 1, Some(&ok)).is_ok(), "{channel}");
            let long = "ả".repeat(max + 1);
            assert_eq!(
                check(channel, OURS, ty, 1, Some(&long)),
                Err(MediaUnfit::CaptionTooLong { max })
            );
        }
    }

    #[test]
    fn every_channel_sends_some_files() {
        for c in [
            C::Livechat,
            C::Messenger,
            C::Instagram,
            C::Whatsapp,
            C::Zalo,
            C::Telegram,
            C::Shopee,
        ] {
            assert!(limits(c, OURS).sends_files(), "{c}");
        }
    }
}
