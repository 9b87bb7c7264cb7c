//! Customers' files from every channel, against the sandboxes' media endpoints: a photo is
//! downloaded once (a redelivered webhook downloads nothing new), typed by its bytes, shown with a
//! thumbnail, in the thread and in the gallery; a download failing twice then succeeding ends
//! ready (the worker and the manual clock driven by hand); Telegram's 20 MB limit, an oversize
//! file and HTML claiming to be a picture are handled safely; an agent retries a failed download;
//! Instagram's photo is shown from its URL and its bytes are never in our store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_sandbox::PICTURE_PNG;
use switchboard_sandbox::channels::{ChannelSandbox, WaNumberSpec, ZaloOaSpec};
use switchboard_sandbox::meta::meta_json;
use switchboard_server::clock::Clock;
use switchboard_server::media_fetch::FetchReport;

const BOT: &str = "123456789:AAE-media_bot_token";
const PNID: &str = "106540352242922";
const WA_TOKEN: &str = "EAAG-media-token";
const OA: &str = "388613280878808645";
const ZALO_APP: &str = "360846524940903967";

struct Files {
    app: TestApp,
    sb: ChannelSandbox,
    agent: String,
    inbox: String,
}

impl Files {
    /// A server and a channel sandbox, with the agent Lan in an inbox of `channel`.
    async fn start(
        channel: &str,
        settings: impl FnOnce(&ChannelSandbox, &TestApp) -> Value,
        adjust: impl FnOnce(&mut switchboard_server::config::Config),
    ) -> Self {
        let app = TestApp::start_configured(adjust).await;
        let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let settings = settings(&sb, &app);
        let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
        let inbox = app
            .channel_inbox("Shop", channel, settings, &[&agent_id])
            .await;
        Self {
            app,
            sb,
            agent,
            inbox,
        }
    }

    async fn fetch(&self) -> FetchReport {
        let app = &self.app;
        app.state.media_fetch.run_due(app.clock.now()).await
    }

    /// The files of the inbox's one conversation's latest message, as the thread shows them.
    async fn files(&self) -> (String, Vec<Value>) {
        files_of(&self.app, &self.agent, &self.inbox).await
    }
}

async fn files_of(app: &TestApp, agent: &str, inbox: &str) -> (String, Vec<Value>) {
    let list = app
        .conversations(agent, &format!("?inbox_id={inbox}"))
        .await;
    assert_eq!(list.len(), 1, "{list:?}");
    let conv = list[0]["id"].as_str().unwrap().to_owned();
    let page = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages"),
            agent,
            None,
        )
        .await;
    let last = page["items"].as_array().unwrap().last().cloned().unwrap();
    (
        conv,
        last["attachments"].as_array().cloned().unwrap_or_default(),
    )
}

/// GET with the agent's session: status, content type and bytes.
async fn bytes(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

/// The photo is ready: its bytes served with the type they are (whatever the provider claimed),
/// a JPEG thumbnail, and the conversation's gallery lists it.
async fn assert_photo_shown(app: &TestApp, agent: &str, conv: &str, file: &Value) {
    assert_eq!(file["state"], "ready", "{file}");
    assert_eq!(file["kind"], "image");
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["size_bytes"], PICTURE_PNG.len());
    let (status, ct, body) = bytes(app, file["url"].as_str().unwrap(), agent).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/png"));
    assert_eq!(body, PICTURE_PNG);
    let (status, ct, thumb) = bytes(app, file["thumbnail_url"].as_str().unwrap(), agent).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/jpeg"));
    assert_eq!(switchboard_core::media::sniff(&thumb), "image/jpeg");
    let gallery = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/attachments"),
            agent,
            None,
        )
        .await;
    assert!(
        gallery["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == file["id"] && g["state"] == "ready"),
        "{gallery}"
    );
}

/// Fails twice (the worker retries with backoff on the manual clock), then is ready.
async fn fails_twice_then_ready(f: &Files) {
    let r = f.fetch().await;
    assert_eq!((r.ready, r.retried), (0, 1), "first attempt fails");
    assert_eq!(f.files().await.1[0]["state"], "pending");
    assert_eq!(f.fetch().await, FetchReport::default(), "not due yet");
    f.app.advance_minutes(1);
    assert_eq!(f.fetch().await.retried, 1, "second attempt fails");
    f.app.advance_minutes(2);
    assert_eq!(f.fetch().await.ready, 1, "third attempt succeeds");
}

#[tokio::test]
async fn a_whatsapp_photo_is_downloaded_once_with_the_token_and_survives_two_failures() {
    let f = Files::start(
        "whatsapp",
        |sb, app| {
            sb.add_whatsapp_number(WaNumberSpec {
                phone_number_id: PNID.into(),
                waba_id: "102290129340398".into(),
                display_phone_number: "15550783881".into(),
                token: WA_TOKEN.into(),
                app_secret: META_APP_SECRET.into(),
                webhook_url: app.url("/webhooks/whatsapp"),
                auto_delivery: false,
                sync_window_errors: false,
            });
            json!({"phone_number_id": PNID, "waba_id": "102290129340398", "access_token": WA_TOKEN,
                "app_secret": META_APP_SECRET, "verify_token": "tok", "api_base_url": sb.whatsapp_base_url()})
        },
        |_| {},
    )
    .await;
    // WhatsApp claims a JPEG; the bytes are a PNG: the bytes win.
    f.sb.add_whatsapp_media("1037543291543636", PICTURE_PNG.to_vec(), "image/jpeg");
    f.sb.fail_media("1037543291543636", 2);
    let body = meta_json(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Kim"}, "wa_id": "84901234567"}],
        "messages": [{"from": "84901234567", "id": "wamid.photo1", "timestamp": (T0.millis() / 1000).to_string(),
            "type": "image", "image": {"id": "1037543291543636", "mime_type": "image/jpeg", "sha256": "x", "caption": "mẫu này"}}]}}]}]}),
    );
    assert_eq!(f.sb.whatsapp_post(PNID, body.clone()).await.unwrap(), 200);
    fails_twice_then_ready(&f).await;
    let (conv, files) = f.files().await;
    assert_eq!(files.len(), 1);
    assert_photo_shown(&f.app, &f.agent, &conv, &files[0]).await;
    assert_eq!(f.sb.media_downloads("1037543291543636"), 1);

    // Meta redelivers the webhook: nothing new is stored or downloaded.
    assert_eq!(f.sb.whatsapp_post(PNID, body).await.unwrap(), 200);
    f.app.advance_minutes(10);
    assert_eq!(f.fetch().await, FetchReport::default());
    assert_eq!(f.files().await.1.len(), 1);
    assert_eq!(f.sb.media_downloads("1037543291543636"), 1);
}

#[tokio::test]
async fn a_telegram_photo_is_fetched_by_get_file_and_a_file_past_the_bot_api_limit_fails_plainly() {
    let f = Files::start(
        "telegram",
        |sb, _| {
            sb.add_telegram_bot(BOT);
            json!({"bot_token": BOT, "api_base_url": sb.base_url()})
        },
        |_| {},
    )
    .await;
    f.sb.add_telegram_file(BOT, "AgADbig", PICTURE_PNG.to_vec(), "image/png");
    f.sb.add_telegram_file(
        BOT,
        "BQADhuge",
        vec![0_u8; 20 * 1024 * 1024 + 1],
        "application/pdf",
    );
    let photo = json!({"message": {"message_id": 7, "date": T0.millis() / 1000,
        "from": {"id": 1_111_111, "is_bot": false, "first_name": "An"},
        "chat": {"id": 1_111_111, "type": "private", "first_name": "An"},
        "photo": [{"file_id": "AgADsmall", "file_unique_id": "s", "width": 90, "height": 90},
                  {"file_id": "AgADbig", "file_unique_id": "b", "width": 4, "height": 4}]}});
    let (status, update_id, _) = f.sb.telegram_update(BOT, photo.clone()).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(f.fetch().await.ready, 1);
    let (conv, files) = f.files().await;
    assert_photo_shown(&f.app, &f.agent, &conv, &files[0]).await;
    let photo_id = files[0]["id"].as_str().unwrap().to_owned();
    // The same update again: nothing new.
    let mut again = photo;
    again["update_id"] = json!(update_id);
    f.sb.telegram_update(BOT, again).await.unwrap();
    assert_eq!(f.fetch().await, FetchReport::default());
    assert_eq!(f.sb.media_downloads("AgADbig"), 1);

    // A 20 MB + 1 byte document: getFile refuses it; failed at once, with the reason.
    let doc = json!({"message": {"message_id": 8, "date": T0.millis() / 1000,
        "from": {"id": 1_111_111, "is_bot": false, "first_name": "An"},
        "chat": {"id": 1_111_111, "type": "private", "first_name": "An"},
        "document": {"file_id": "BQADhuge", "file_unique_id": "h", "file_name": "catalogue.pdf"}}});
    f.sb.telegram_update(BOT, doc).await.unwrap();
    assert_eq!(f.fetch().await.failed, 1);
    let (_, files) = f.files().await;
    let failed = &files[0];
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"], "file_too_big_for_bot_api");
    assert_eq!(failed["filename"], "catalogue.pdf");
    assert!(failed["url"].is_null());
    assert_eq!(f.sb.media_downloads("BQADhuge"), 0);

    // An agent retries it (it fails again, plainly); a ready file cannot be retried.
    let id = failed["id"].as_str().unwrap();
    let retried = f
        .app
        .ok(
            Method::POST,
            &format!("/api/v1/attachments/{id}/retry"),
            &f.agent,
            None,
        )
        .await;
    assert_eq!(retried["state"], "pending");
    assert_eq!(f.fetch().await.failed, 1);
    assert_eq!(f.files().await.1[0]["state"], "failed");
    let (status, body) = f
        .app
        .post(
            &format!("/api/v1/attachments/{photo_id}/retry"),
            &f.agent,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_failed"))
    );
    // Someone who does not see the conversation does not see the file either.
    let (_, other) = f.app.agent("binh@shop.vn", "Bình", "agent").await;
    let (status, _) = f
        .app
        .post(
            &format!("/api/v1/attachments/{id}/retry"),
            &other,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A Messenger or Instagram customer sends files (their CDN URLs on the channel sandbox).
async fn meta_customer_sends(
    meta: &switchboard_sandbox::meta::Sandbox,
    object: &str,
    page: &str,
    mid: &str,
    urls: &[&str],
) {
    let attachments: Vec<Value> = urls
        .iter()
        .map(|u| json!({"type": "image", "payload": {"url": u}}))
        .collect();
    let body = json!({"object": object, "entry": [{"id": page, "time": T0.millis(), "messaging": [{
        "sender": {"id": "psid-media"}, "recipient": {"id": page}, "timestamp": T0.millis(),
        "message": {"mid": mid, "attachments": attachments}}]}]});
    assert_eq!(
        meta.post_webhook(page, meta_json(&body)).await.unwrap(),
        200
    );
}

async fn meta_sandboxes(app: &TestApp) -> (switchboard_sandbox::meta::Sandbox, ChannelSandbox) {
    let clock = Arc::new(app.clock.clone());
    let meta =
        switchboard_sandbox::meta::Sandbox::start(clock.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let cdn = ChannelSandbox::start(clock, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (meta, cdn)
}

#[tokio::test]
async fn a_messenger_photo_is_copied_and_html_posing_as_a_photo_is_only_a_download() {
    let app = TestApp::start().await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (meta, cdn) = meta_sandboxes(&app).await;
    let inbox = create_page(&app, &meta, "777000555", "messenger", &[&agent_id]).await;
    let photo = cdn.add_cdn_media("photo.jpg", PICTURE_PNG.to_vec(), "image/jpeg");
    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let fake = cdn.add_cdn_media("fake.jpg", html.clone(), "image/jpeg");
    cdn.fail_media("photo.jpg", 2);
    meta_customer_sends(&meta, "page", "777000555", "m_photo", &[&photo, &fake]).await;
    let run = || app.state.media_fetch.run_due(app.clock.now());
    let r = run().await;
    assert_eq!(
        (r.ready, r.retried),
        (1, 1),
        "the fake is ready at once, the photo retried"
    );
    app.advance_minutes(1);
    assert_eq!(run().await.retried, 1);
    app.advance_minutes(2);
    assert_eq!(run().await.ready, 1);
    let (conv, files) = files_of(&app, &agent, &inbox).await;
    assert_eq!(files.len(), 2);
    assert_photo_shown(&app, &agent, &conv, &files[0]).await;
    // The HTML is kept as opaque bytes: a download, never a picture, no thumbnail.
    let f = &files[1];
    assert_eq!(
        (f["state"].as_str(), f["content_type"].as_str()),
        (Some("ready"), Some("application/octet-stream"))
    );
    assert!(f.get("thumbnail_url").is_none(), "{f}");
    let r = app
        .http
        .get(app.url(f["url"].as_str().unwrap()))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    // Meta redelivers: nothing new.
    meta_customer_sends(&meta, "page", "777000555", "m_photo", &[&photo, &fake]).await;
    app.advance_minutes(10);
    assert_eq!(run().await, FetchReport::default());
    assert_eq!(
        (
            cdn.media_downloads("photo.jpg"),
            cdn.media_downloads("fake.jpg")
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn an_instagram_photo_is_shown_from_its_url_and_its_bytes_are_never_stored() {
    let app = TestApp::start().await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (meta, cdn) = meta_sandboxes(&app).await;
    let inbox = create_page(&app, &meta, "17841000555", "instagram", &[&agent_id]).await;
    let url = cdn.add_cdn_media("ig.jpg", PICTURE_PNG.to_vec(), "image/jpeg");
    meta_customer_sends(&meta, "instagram", "17841000555", "aWdf_photo", &[&url]).await;
    assert_eq!(
        app.state.media_fetch.run_due(app.clock.now()).await,
        FetchReport::default()
    );
    let (conv, files) = files_of(&app, &agent, &inbox).await;
    let f = &files[0];
    assert_eq!(
        (f["state"].as_str(), f["kind"].as_str()),
        (Some("remote"), Some("image")),
        "{f}"
    );
    assert_eq!(f["remote_url"], url.as_str());
    assert!(f["url"].is_null());
    // Nothing of it is in our store, and our media URL serves nothing.
    assert_eq!(cdn.media_downloads("ig.jpg"), 0);
    let id = f["id"].as_str().unwrap();
    let media = app.state.config.data_dir.join("media");
    assert!(!media.join(id).exists());
    assert!(!media.join(format!("thumbs/{id}")).exists());
    let (status, _, _) = bytes(&app, &format!("/api/v1/media/{id}"), &agent).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The gallery lists it (from its URL).
    let gallery = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/attachments"),
            &agent,
            None,
        )
        .await;
    assert_eq!(gallery["items"][0]["remote_url"], url.as_str());
}

fn zalo_settings(sb: &ChannelSandbox, app: &TestApp) -> Value {
    sb.add_zalo_oa(ZaloOaSpec {
        oa_id: OA.into(),
        app_id: ZALO_APP.into(),
        app_secret: "zalo_app_secret".into(),
        oa_secret_key: "oa_secret_test".into(),
        access_token: "zat_0".into(),
        refresh_token: "zrt_0".into(),
        webhook_url: app.url("/webhooks/zalo"),
        echoes: true,
    });
    json!({"oa_id": OA, "app_id": ZALO_APP, "app_secret": "zalo_app_secret", "oa_secret_key": "oa_secret_test",
        "access_token": "zat_0", "refresh_token": "zrt_0", "api_base_url": sb.base_url(), "oauth_base_url": sb.base_url()})
}

async fn zalo_sends(f: &Files, msg_id: &str, kind: &str, url: &str, thumbnail: &str) {
    let ev = json!({"event_name": format!("user_send_{kind}"), "sender": {"id": "246845883529197922"}, "recipient": {"id": OA},
        "user_id_by_app": "app1", "message": {"msg_id": msg_id, "attachments": [{"type": kind, "payload": {"url": url, "thumbnail": thumbnail}}]}});
    assert_eq!(f.sb.zalo_event(OA, ev).await.unwrap(), 200);
}

#[tokio::test]
async fn a_zalo_photo_is_copied_once_and_an_oversize_file_fails_without_being_kept() {
    let f = Files::start("zalo", zalo_settings, |c| {
        c.inbound_media.max_bytes = 64 * 1024
    })
    .await;
    let url =
        f.sb.add_cdn_media("zalo.jpg", PICTURE_PNG.to_vec(), "image/jpeg");
    f.sb.fail_media("zalo.jpg", 2);
    zalo_sends(&f, "zimg0001", "image", &url, &url).await;
    fails_twice_then_ready(&f).await;
    let (conv, files) = f.files().await;
    assert_photo_shown(&f.app, &f.agent, &conv, &files[0]).await;
    zalo_sends(&f, "zimg0001", "image", &url, &url).await;
    f.app.advance_minutes(10);
    assert_eq!(f.fetch().await, FetchReport::default());
    assert_eq!(f.sb.media_downloads("zalo.jpg"), 1);

    // Past `inbound_media.max_bytes`: failed with the reason, nothing left in the store.
    let big =
        f.sb.add_cdn_media("big.mp4", vec![7_u8; 100 * 1024], "video/mp4");
    zalo_sends(&f, "zvid0002", "video", &big, &big).await;
    assert_eq!(f.fetch().await.failed, 1);
    let (_, files) = f.files().await;
    assert_eq!(
        (files[0]["state"].as_str(), files[0]["error"].as_str()),
        (Some("failed"), Some("file_too_large"))
    );
    let id = files[0]["id"].as_str().unwrap();
    let media = f.app.state.config.data_dir.join("media");
    assert!(!media.join(id).exists());
    assert!(!media.join(format!("{id}.part")).exists());

    // A video: no decoder here, so Zalo's own thumbnail of it becomes ours.
    let mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2mp41".to_vec();
    let video = f.sb.add_cdn_media("clip.mp4", mp4.clone(), "video/mp4");
    let poster =
        f.sb.add_cdn_media("clip.jpg", PICTURE_PNG.to_vec(), "image/jpeg");
    zalo_sends(&f, "zvid0003", "video", &video, &poster).await;
    assert_eq!(f.fetch().await.ready, 1);
    let (_, files) = f.files().await;
    let v = &files[0];
    assert_eq!(
        (
            v["state"].as_str(),
            v["kind"].as_str(),
            v["content_type"].as_str()
        ),
        (Some("ready"), Some("video"), Some("video/mp4")),
        "{v}"
    );
    let (status, ct, _) = bytes(&f.app, v["thumbnail_url"].as_str().unwrap(), &f.agent).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/jpeg"));
    let (_, _, body) = bytes(&f.app, v["url"].as_str().unwrap(), &f.agent).await;
    assert_eq!(body, mp4);
}

#[tokio::test]
async fn a_20_mb_video_streams_into_the_store_whole() {
    let f = Files::start("zalo", zalo_settings, |_| {}).await;
    // 20 MiB of an MP4 (its header, then filler).
    let mut mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2mp41".to_vec();
    mp4.resize(20 * 1024 * 1024, 0x5a);
    let url = f.sb.add_cdn_media("long.mp4", mp4.clone(), "video/mp4");
    zalo_sends(&f, "zvid0020", "video", &url, "").await;
    assert_eq!(f.fetch().await.ready, 1);
    let (_, files) = f.files().await;
    let v = &files[0];
    assert_eq!(
        (v["content_type"].as_str(), v["size_bytes"].as_u64()),
        (Some("video/mp4"), Some(mp4.len() as u64))
    );
    assert!(
        v.get("thumbnail_url").is_none(),
        "no decoder, no provider thumbnail: {v}"
    );
    let (status, _, body) = bytes(&f.app, v["url"].as_str().unwrap(), &f.agent).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == mp4, "the whole file, byte for byte");
}
