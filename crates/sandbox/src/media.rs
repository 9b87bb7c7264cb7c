//! Files the sandboxed providers receive from the service: fetched from the URL a send names
//! (as Meta, WhatsApp and Telegram do), or read from a multipart upload (Zalo, Shopee), and
//! checked as the provider would (size, type) before the send is accepted.

use switchboard_core::media::sniff;

pub const MB: usize = 1024 * 1024;

/// A file a provider received with a send, as tests read it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The URL it was fetched from (empty for an upload).
    pub url: String,
    /// The type the provider found in the bytes.
    pub content_type: String,
    pub size: usize,
    /// The name the upload gave it (empty when fetched).
    pub filename: String,
}

/// Fetches a file the way a provider does, refusing anything but a 200 within `max` bytes.
pub async fn fetch(http: &reqwest::Client, url: &str, max: usize) -> Result<Received, String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err("not an http(s) URL".into());
    }
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 200 {
        return Err(format!("the URL answered {}", resp.status().as_u16()));
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if bytes.len() > max {
        return Err(format!("the file is larger than {max} bytes"));
    }
    Ok(Received {
        url: url.to_owned(),
        content_type: sniff(&bytes).to_owned(),
        size: bytes.len(),
        filename: String::new(),
    })
}

/// The file part named `field` of a `multipart/form-data` body.
pub fn multipart_file(content_type: &str, body: &[u8], field: &str) -> Option<Received> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        if head.contains(&format!("name=\"{field}\"")) {
            let filename = head
                .split("filename=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("")
                .to_owned();
            let bytes = &content[..end];
            return Some(Received {
                url: String::new(),
                content_type: sniff(bytes).to_owned(),
                size: bytes.len(),
                filename,
            });
        }
        rest = &content[end..];
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_file_part() {
        let body = b"--b1\r\ncontent-disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b1\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\ncontent-type: application/pdf\r\n\r\n%PDF-1.7\r\n--b1--\r\n";
        let f = multipart_file("multipart/form-data; boundary=b1", body, "file");
        assert_eq!(
            f,
            Some(Received {
                url: String::new(),
                content_type: "application/pdf".into(),
                size: 8,
                filename: "a.pdf".into(),
            })
        );
        assert_eq!(
            multipart_file("multipart/form-data; boundary=b1", body, "y"),
            None
        );
    }
}
