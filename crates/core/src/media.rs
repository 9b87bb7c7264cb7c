//! What a file is, decided from its bytes — never from the type its uploader claimed.
//!
//! A browser that is told `image/svg+xml`, `text/html` or `image/png,text/html` runs script on
//! our origin; so the content type of every file we serve comes from this allowlist, derived from
//! the file's first bytes at upload, and anything we do not recognise is served as
//! `application/octet-stream` and downloaded.

/// The type of a file we could not (or may not) recognise: served as a download.
pub const OPAQUE: &str = "application/octet-stream";

/// Every type we ever serve as itself, with whether a browser may show it inline (in `<img>`,
/// `<video>`, `<audio>`). SVG is deliberately absent: it can carry script.
const ALLOWED: &[(&str, bool)] = &[
    ("image/png", true),
    ("image/jpeg", true),
    ("image/gif", true),
    ("image/webp", true),
    ("video/mp4", true),
    ("video/webm", true),
    ("audio/mp4", true),
    ("audio/mpeg", true),
    ("audio/ogg", true),
    ("audio/wav", true),
    ("application/pdf", false),
];

/// The content type of a file from its first bytes, or [`OPAQUE`].
pub fn sniff(bytes: &[u8]) -> &'static str {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        "image/webp"
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        "audio/wav"
    } else if at(4, b"ftyp") {
        // ISO media: an M4A brand is audio, every other brand we treat as MP4 video.
        if at(8, b"M4A ") {
            "audio/mp4"
        } else {
            "video/mp4"
        }
    } else if starts(b"\x1a\x45\xdf\xa3") {
        "video/webm"
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(b"ID3") || starts(b"\xff\xfb") || starts(b"\xff\xf3") || starts(b"\xff\xf2") {
        "audio/mpeg"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else {
        OPAQUE
    }
}

/// The type to serve a stored file with: the stored type only if it is exactly one of ours
/// (files stored before types were derived carry their uploader's string), else [`OPAQUE`].
pub fn served_type(stored: &str) -> &'static str {
    ALLOWED
        .iter()
        .find(|(t, _)| *t == stored)
        .map_or(OPAQUE, |(t, _)| t)
}

/// Whether a browser may show a file of this (served) type inline rather than download it.
pub fn shows_inline(served: &str) -> bool {
    ALLOWED.iter().any(|(t, inline)| *t == served && *inline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        for (bytes, want) in [
            (&b"\x89PNG\r\n\x1a\n...."[..], "image/png"),
            (b"\xff\xd8\xff\xe0..JFIF", "image/jpeg"),
            (b"GIF89a....", "image/gif"),
            (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
            (b"RIFF\0\0\0\0WAVEfmt ", "audio/wav"),
            (b"\0\0\0\x20ftypisom", "video/mp4"),
            (b"\0\0\0\x20ftypM4A ", "audio/mp4"),
            (b"\x1a\x45\xdf\xa3....", "video/webm"),
            (b"OggS\0\x02", "audio/ogg"),
            (b"ID3\x04\0", "audio/mpeg"),
            (b"%PDF-1.7\n", "application/pdf"),
            // Script in every disguise is an opaque download.
            (
                b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
                OPAQUE,
            ),
            (b"<html><script>alert(1)</script>", OPAQUE),
            (b"<?xml version=\"1.0\"?><x/>", OPAQUE),
            (b"", OPAQUE),
            (b"RIFF", OPAQUE),
            (b"\0\0\0", OPAQUE),
        ] {
            assert_eq!(sniff(bytes), want, "{bytes:?}");
        }
    }

    #[test]
    fn only_our_exact_types_are_served_as_themselves() {
        assert_eq!(served_type("image/png"), "image/png");
        assert_eq!(served_type("application/pdf"), "application/pdf");
        for hostile in [
            "image/SVG+xml",
            "image/svg+xml",
            "image/png,text/html",
            "image/x;a=b,application/xml",
            "image/png; charset=utf-8",
            "IMAGE/PNG",
            "text/html",
            "",
        ] {
            assert_eq!(served_type(hostile), OPAQUE, "{hostile}");
        }
    }

    #[test]
    fn only_pictures_video_and_sound_show_inline() {
        assert!(shows_inline("image/webp"));
        assert!(shows_inline("video/mp4"));
        assert!(shows_inline("audio/ogg"));
        assert!(!shows_inline("application/pdf"));
        assert!(!shows_inline(OPAQUE));
        assert!(!shows_inline("image/svg+xml"));
    }
}
