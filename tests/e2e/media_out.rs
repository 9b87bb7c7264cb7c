//! Sending files (issue #19, part 1), shared by the channels' tests: files of an exact size whose
//! type shows in their first bytes, the upload call, and the refusal every channel gives a file
//! beyond its limits (422 naming the limit, nothing queued). Messenger, Instagram, live chat and
//! the signed links are tested here; the other channels in their own files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_sandbox::meta::{Sandbox, UserSpec};
use switchboard_server::clock::Clock;

pub const MB: usize = 1024 * 1024;

/// A file of exactly `size` bytes starting with `magic`.
fn file(magic: &[u8], size: usize) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.resize(size.max(magic.len()), 0);
    v
}

pub fn png(size: usize) -> Vec<u8> {
    file(b"\x89PNG\r\n\x1a\n", size)
}
pub fn jpeg(size: usize) -> Vec<u8> {
    file(b"\xff\xd8\xff\xe0", size)
}
pub fn gif(size: usize) -> Vec<u8> {
    file(b"GIF89a", size)
}
pub fn mp4(size: usize) -> Vec<u8> {
    file(b"\0\0\0\x20ftypisom", size)
}
pub fn pdf(size: usize) -> Vec<u8> {
    file(b"%PDF-1.7\n", size)
}

/// `POST /conversations/{conv}/attachments` with the file as the raw body.
pub async fn upload(
    app: &TestApp,
    token: &str,
    conv: &str,
    filename: &str,
    bytes: Vec<u8>,
    caption: Option<&str>,
) -> (StatusCode, Value) {
    let mut url = app.url(&format!(
        "/api/v1/conversations/{conv}/attachments?filename={filename}"
    ));
    if let Some(c) = caption {
        url.push_str(&format!("&caption={}", c.replace(' ', "%20")));
    }
    let resp = app
        .http
        .post(url)
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The conversation's messages, oldest first.
async fn thread(app: &TestApp, token: &str, conv: &str) -> Vec<Value> {
    app.ok(
        Method::GET,
        &format!("/api/v1/conversations/{conv}/messages?limit=200"),
        token,
        None,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn thread_len(app: &TestApp, token: &str, conv: &str) -> usize {
    thread(app, token, conv).await.len()
}

/// The file is refused with 422 `code`, the message naming the limit (`words`), and nothing is
/// written or queued (the thread is as it was; the outbox has nothing to send).
pub async fn refused(
    app: &TestApp,
    token: &str,
    conv: &str,
    name: &str,
    bytes: Vec<u8>,
    code: &str,
    words: &str,
) -> Value {
    let before = thread_len(app, token, conv).await;
    let (s, v) = upload(app, token, conv, name, bytes, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
    assert_eq!(v["error"]["code"], code, "{name}: {v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(words), "{name}: {message} lacks {words}");
    assert_eq!(thread_len(app, token, conv).await, before, "{name}");
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.sent + report.failed, 0, "{name}");
    v
}

/// The file is accepted (201) and its message carries the attachment.
pub async fn sent(
    app: &TestApp,
    token: &str,
    conv: &str,
    name: &str,
    bytes: Vec<u8>,
    caption: Option<&str>,
) -> Value {
    let (s, v) = upload(app, token, conv, name, bytes, caption).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
    assert_eq!(v["kind"], "media", "{v}");
    v
}

const PAGE: &str = "111";
const PSID: &str = "222";

/// A Messenger Page or an Instagram account with one customer who wrote; the conversation
/// claimed by the agent.
async fn meta(channel: &str) -> (TestApp, Sandbox, String, String) {
    // Our own upload limit (20 MB by default) above Meta's 25 MB.
    let app = TestApp::start_configured(|c| c.limits.max_upload_bytes = 30 * MB).await;
    let sb = Sandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = create_page(&app, &sb, PAGE, channel, &[&agent_id]).await;
    sb.add_user(
        PAGE,
        UserSpec {
            id: PSID.into(),
            first_name: "Hà".into(),
            last_name: "Nguyễn".into(),
            profile_pic: None,
            commenter_id: None,
        },
    );
    let (s, _) = sb
        .customer_message(PAGE, PSID, "gửi ảnh giúp em")
        .await
        .unwrap();
    assert_eq!(s, 200);
    let conv = app
        .conversations(&agent, &format!("?inbox_id={inbox}"))
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &agent,
        None,
    )
    .await;
    (app, sb, agent, conv)
}

/// What the Meta sandbox received: (attachment type, type it fetched, size) or the text.
fn received(sb: &Sandbox) -> Vec<(String, String, usize)> {
    sb.sent()
        .into_iter()
        .map(|s| match s.attachment {
            Some((kind, f)) => (kind, f.content_type, f.size),
            None => ("text".into(), s.text, 0),
        })
        .collect()
}

#[tokio::test]
async fn messenger_sends_an_image_a_video_and_a_pdf_by_signed_link_and_the_caption_after() {
    let (app, sb, agent, conv) = meta("messenger").await;
    sent(&app, &agent, &conv, "ao.png", png(1000), Some("Mẫu mới")).await;
    sent(&app, &agent, &conv, "clip.mp4", mp4(25 * MB), None).await;
    sent(&app, &agent, &conv, "bang-gia.pdf", pdf(2000), None).await;
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.sent, 4, "{report:?}");
    // The file, its caption as a text right after (Messenger's attachments have no caption),
    // then the others: each fetched by Meta from our signed link.
    assert_eq!(
        received(&sb),
        vec![
            ("image".into(), "image/png".into(), 1000),
            ("text".into(), "Mẫu mới".into(), 0),
            ("video".into(), "video/mp4".into(), 25 * MB),
            ("file".into(), "application/pdf".into(), 2000),
        ]
    );
    // Meta's echoes (with our marker) are matched to our messages, not stored again.
    sb.flush().await;
    let messages = thread(&app, &agent, &conv).await;
    let outbound: Vec<(&str, &str)> = messages
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["delivery_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outbound,
        [
            ("media", "sent"),
            ("text", "sent"),
            ("media", "sent"),
            ("media", "sent")
        ]
    );
    let url = sb.sent()[0].attachment.clone().unwrap().1.url;
    assert!(url.starts_with(&app.url("/media/s/")), "{url}");
    assert!(url.contains("exp=") && url.contains("&sig="), "{url}");
    // One byte over 25 MB, and a file that is nothing we recognise, are refused before sending.
    let v = refused(
        &app,
        &agent,
        &conv,
        "big.mp4",
        mp4(25 * MB + 1),
        "file_too_large",
        "at most 25 MB for video files on messenger",
    )
    .await;
    assert_eq!(v["error"]["field"], "file");
    assert_eq!(v["error"]["max_bytes"], 25 * MB);
}

#[tokio::test]
async fn instagram_takes_png_and_jpeg_up_to_8_mb_and_no_files() {
    let (app, sb, agent, conv) = meta("instagram").await;
    sent(&app, &agent, &conv, "ao.jpg", jpeg(8 * MB), None).await;
    sent(&app, &agent, &conv, "clip.mp4", mp4(3000), None).await;
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.sent, 2, "{report:?}");
    refused(
        &app,
        &agent,
        &conv,
        "ao.png",
        png(8 * MB + 1),
        "file_too_large",
        "at most 8 MB for image files on instagram",
    )
    .await;
    refused(
        &app,
        &agent,
        &conv,
        "dong.gif",
        gif(100),
        "file_type_not_supported",
        "image/png, image/jpeg",
    )
    .await;
    refused(
        &app,
        &agent,
        &conv,
        "bang-gia.pdf",
        pdf(100),
        "file_kind_not_supported",
        "no files",
    )
    .await;
    assert_eq!(
        received(&sb),
        vec![
            ("image".into(), "image/jpeg".into(), 8 * MB),
            ("video".into(), "video/mp4".into(), 3000),
        ]
    );
}

#[tokio::test]
async fn a_closed_window_refuses_a_file_as_it_refuses_text() {
    let (app, sb, agent, conv) = meta("messenger").await;
    app.clock.advance_millis(25 * 3_600_000);
    let (s, text) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &agent,
            json!({"text": "chào"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let code = text["error"]["code"].as_str().unwrap();
    let v = refused(&app, &agent, &conv, "ao.png", png(100), code, "").await;
    assert_eq!(v["error"]["code"], text["error"]["code"]);
    assert!(sb.sent().is_empty());
}

#[tokio::test]
async fn after_24_hours_a_file_goes_as_a_confirmed_human_agent_reply() {
    let (app, sb, agent, conv) = meta("messenger").await;
    app.clock.advance_millis(25 * 3_600_000);
    refused(
        &app,
        &agent,
        &conv,
        "ao.png",
        png(100),
        "human_agent_confirmation_required",
        "confirm",
    )
    .await;
    sent(
        &app,
        &agent,
        &conv,
        "ao.png&human_agent_confirmed=true",
        png(100),
        None,
    )
    .await;
    // A library file, confirmed the same way.
    let added: Value = app
        .http
        .post(app.url("/api/v1/library?filename=gia.pdf"))
        .bearer_auth(&app.admin)
        .body(pdf(300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/conversations/{conv}/attachments/library"),
            &agent,
            json!({"library_id": added["id"], "policy": {"human_agent_confirmed": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.sent, 2, "{report:?}");
    let got: Vec<_> = sb
        .sent()
        .into_iter()
        .map(|s| (s.messaging_type, s.tag, s.attachment.unwrap().0))
        .collect();
    let human = |kind: &str| {
        (
            Some("MESSAGE_TAG".to_owned()),
            Some("HUMAN_AGENT".to_owned()),
            kind.to_owned(),
        )
    };
    assert_eq!(got, vec![human("image"), human("file")]);
}

#[tokio::test]
async fn live_chat_sends_every_kind_up_to_our_own_limit() {
    let app = TestApp::start_configured(|c| c.limits.max_upload_bytes = MB).await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&agent_id]).await;
    let (visitor, conv) = app
        .claimed_visitor_conversation(&inbox, &agent, "xin chào")
        .await;
    sent(&app, &agent, &conv, "ao.png", png(MB), Some("Mẫu")).await;
    sent(&app, &agent, &conv, "clip.mp4", mp4(100), None).await;
    sent(&app, &agent, &conv, "gia.pdf", pdf(100), None).await;
    // Beyond our limit the body is refused before it is read (413 naming the limit).
    let (s, v) = upload(&app, &agent, &conv, "big.pdf", pdf(MB + 1), None).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["max_bytes"], MB);
    // The visitor sees the three files, the caption with the picture.
    let (s, v) = app
        .call(Method::GET, "/widget/v1/messages", Some(&visitor), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let texts: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "media")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Mẫu", "clip.mp4", "gia.pdf"]);
}

#[tokio::test]
async fn a_signed_link_works_until_it_expires_and_only_as_signed() {
    let app = TestApp::start().await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&agent_id]).await;
    let (_, conv) = app
        .claimed_visitor_conversation(&inbox, &agent, "xin chào")
        .await;
    let v = sent(&app, &agent, &conv, "gia.pdf", pdf(300), None).await;
    let id: uuid::Uuid = v["attachments"][0]["id"].as_str().unwrap().parse().unwrap();
    let url = app.state.providers.links.url(id, app.clock.now());
    let get = |u: String| {
        let http = app.http.clone();
        async move {
            let r = http.get(u).send().await.unwrap();
            let s = r.status();
            let nosniff = r.headers().get("x-content-type-options").cloned();
            (s, nosniff, r.bytes().await.unwrap())
        }
    };
    // No session: the link is the credential.
    let (s, nosniff, body) = get(url.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(nosniff.unwrap(), "nosniff");
    assert_eq!(body.to_vec(), pdf(300));
    // Another file's id, or a changed signature or expiry: refused.
    let other = url.replace(&id.to_string(), &uuid::Uuid::now_v7().to_string());
    assert_eq!(get(other).await.0, StatusCode::FORBIDDEN);
    let tampered = format!("{}0", &url[..url.len() - 1]);
    let tampered = if tampered == url {
        format!("{}1", &url[..url.len() - 1])
    } else {
        tampered
    };
    assert_eq!(get(tampered).await.0, StatusCode::FORBIDDEN);
    let exp: i64 = url
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let later = url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600));
    assert_eq!(get(later).await.0, StatusCode::FORBIDDEN);
    // An hour later it still works; a second after that it has expired.
    app.clock.advance_millis(3_600_000);
    assert_eq!(get(url.clone()).await.0, StatusCode::OK);
    app.clock.advance_millis(1_000);
    let (s, _, body) = get(url).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "link_expired");
}

#[tokio::test]
async fn a_file_the_provider_cannot_fetch_fails_with_the_reason() {
    let (app, sb, agent, conv) = meta("messenger").await;
    let v = sent(&app, &agent, &conv, "ao.png", png(100), None).await;
    // The stored file is gone by the time the outbox sends: Meta's fetch of the link fails.
    let id = v["attachments"][0]["id"].as_str().unwrap();
    app.state.media.delete(id).await.unwrap();
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.failed, 1, "{report:?}");
    assert!(sb.sent().is_empty());
    let messages = thread(&app, &agent, &conv).await;
    let m = messages.iter().find(|m| m["kind"] == "media").unwrap();
    assert_eq!(m["delivery_status"], "failed");
    assert_eq!(m["failure_reason"], "media_error");
}

#[tokio::test]
async fn a_library_file_is_held_to_the_channel_s_limits_as_an_upload_is() {
    let (app, sb, agent, conv) = meta("instagram").await;
    let add = |name: &str, body: Vec<u8>| {
        let url = app.url(&format!("/api/v1/library?filename={name}"));
        let req = app.http.post(url).bearer_auth(&app.admin).body(body);
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let price = add("gia.pdf", pdf(300)).await;
    let photo = add("ao.png", png(300)).await;
    let path = format!("/api/v1/conversations/{conv}/attachments/library");
    let send = |id: String| {
        app.post(
            &path,
            &agent,
            json!({"library_id": id, "caption": "Dạ mẫu ạ"}),
        )
    };
    // Instagram sends no files: refused, nothing queued.
    let (s, v) = send(price).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "file_kind_not_supported");
    // A picture goes, fetched by Instagram from our signed link, its caption after it.
    let (s, v) = send(photo).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.sent, 2, "{report:?}");
    assert_eq!(
        received(&sb),
        vec![
            ("image".into(), "image/png".into(), 300),
            ("text".into(), "Dạ mẫu ạ".into(), 0),
        ]
    );
}
