//! Small JPEG thumbnails of customers' pictures. Decoding is bounded: a picture declaring huge
//! dimensions (a decompression bomb: a few KB that expand to gigabytes) is refused before its
//! pixels are allocated.

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Widest and tallest picture we decode.
const MAX_SIDE: u32 = 12_000;
/// Most memory one decode may take.
const MAX_ALLOC: u64 = 200 * 1024 * 1024;

/// A JPEG at most `px` on its longest side of the picture in `bytes` (PNG, JPEG, GIF, WebP).
pub fn jpeg_thumbnail(bytes: &[u8], px: u32) -> Result<Vec<u8>, String> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| e.to_string())?;
    let small = DynamicImage::ImageRgb8(picture.thumbnail(px, px).to_rgb8());
    let mut out = Vec::new();
    small
        .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([250, 120, 0])));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
            .unwrap_or_default();
        out
    }

    #[test]
    fn a_picture_becomes_a_small_jpeg() {
        let t = jpeg_thumbnail(&png(1000, 500), 320).unwrap_or_default();
        assert_eq!(switchboard_core::media::sniff(&t), "image/jpeg");
        let back = image::load_from_memory(&t).map(|i| (i.width(), i.height()));
        assert_eq!(back.ok(), Some((320, 160)));
    }

    #[test]
    fn bombs_and_non_pictures_are_refused() {
        // A PNG header declaring 100 000 × 100 000 pixels (a few bytes that would expand to 30 GB).
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000_u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000_u32.to_be_bytes());
        assert!(jpeg_thumbnail(&bomb, 320).is_err());
        assert!(jpeg_thumbnail(b"<html><script>alert(1)</script>", 320).is_err());
        assert!(jpeg_thumbnail(b"", 320).is_err());
    }
}
