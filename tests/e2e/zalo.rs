//! Zalo OA against the in-process channel sandbox: the `X-ZEvent-Signature` mac (channels.md's
//! vector) accepted and refused, every user event kind, OA echoes, receipts, follow / unfollow,
//! the 8 free consultation messages in 48 h (the 9th paid), the 7-day limit (refused before
//! sending; -230 when the provider says so), and the access-token refresh on -216.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_channels::zalo::signature_header;
use switchboard_sandbox::channels::{ChannelFault, ChannelSandbox, ZaloOaSpec};
use switchboard_server::clock::Clock;
use switchboard_server::outbox::RunReport;

const OA: &str = "388613280878808645";
const APP: &str = "360846524940903967";
const KEY: &str = "oa_secret_test";
const USER: &str = "246845883529197922";
const SEC: i64 = 1_000;
const HOUR: i64 = 3_600 * SEC;
const DAY: i64 = 24 * HOUR;

struct Zalo {
    app: TestApp,
    sb: ChannelSandbox,
    agent: String,
    inbox: String,
}

impl Zalo {
    async fn start() -> Self {
        let app = TestApp::start().await;
        let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        sb.add_zalo_oa(ZaloOaSpec {
            oa_id: OA.into(),
            app_id: APP.into(),
            app_secret: "zalo_app_secret".into(),
            oa_secret_key: KEY.into(),
            access_token: "zat_0".into(),
            refresh_token: "zrt_0".into(),
            webhook_url: app.url("/webhooks/zalo"),
            echoes: true,
        });
        let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
        let inbox = app
            .channel_inbox("Zalo OA", "zalo", json!({
                    "oa_id": OA, "app_id": APP, "app_secret": "zalo_app_secret", "oa_secret_key": KEY,
                    "access_token": "zat_0", "refresh_token": "zrt_0",
                    "api_base_url": sb.base_url(), "oauth_base_url": sb.base_url()}), &[&agent_id])
            .await;
        Self {
            app,
            sb,
            agent,
            inbox,
        }
    }

    async fn run(&self) -> RunReport {
        let st = &self.app.state;
        st.outbox.run_due(self.app.clock.now()).await
    }

    fn advance(&self, ms: i64) {
        self.app.clock.advance_millis(ms);
    }

    async fn claimed(&self) -> String {
        let list = self
            .app
            .conversations(&self.agent, &format!("?inbox_id={}", self.inbox))
            .await;
        assert_eq!(list.len(), 1, "{list:?}");
        let id = list[0]["id"].as_str().unwrap().to_owned();
        self.app
            .ok(
                Method::POST,
                &format!("/api/v1/conversations/{id}/claim"),
                &self.agent,
                None,
            )
            .await;
        id
    }

    async fn thread(&self, conv: &str) -> Vec<Value> {
        self.app
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/messages?limit=200"),
                &self.agent,
                None,
            )
            .await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn reply(&self, conv: &str, text: &str) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &self.agent,
                json!({"text": text}),
            )
            .await
    }

    async fn policy(&self, conv: &str) -> Value {
        self.app.policy(&self.agent, conv).await
    }

    async fn raw(&self, body: &str, mac: Option<&str>) -> StatusCode {
        let mut req = self
            .app
            .http
            .post(self.app.url("/webhooks/zalo"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(m) = mac {
            req = req.header("x-zevent-signature", m);
        }
        req.send().await.unwrap().status()
    }

    /// The inbox's stored settings (secrets included), straight from the store.
    async fn settings(&self) -> Value {
        self.app
            .state
            .store
            .inbox(self.inbox.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .settings
    }
}

#[tokio::test]
async fn the_x_zevent_signature_is_checked() {
    let z = Zalo::start().await;
    let body = r#"{"app_id":"360846524940903967","sender":{"id":"246845883529197922"},"recipient":{"id":"388613280878808645"},"event_name":"user_send_text","message":{"text":"hello","msg_id":"96d3cdf3af150460909"},"timestamp":"1700000000000"}"#;
    let mac = "mac=8e70793cd61d4ddd84d71f35855161ef7aa089ee417150e17ed6d1a9ae91998d";
    assert_eq!(z.raw(body, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        z.raw(body, Some(&mac[4..])).await,
        StatusCode::UNAUTHORIZED,
        "no mac= prefix"
    );
    let changed = body.replace("hello", "hellp");
    assert_eq!(
        z.raw(&changed, Some(mac)).await,
        StatusCode::UNAUTHORIZED,
        "one byte changed"
    );
    // Signed with the app secret instead of the OA secret key: refused.
    let wrong = signature_header(APP, body.as_bytes(), "1700000000000", "zalo_app_secret");
    assert_eq!(z.raw(body, Some(&wrong)).await, StatusCode::UNAUTHORIZED);
    // Another app's event for our OA, correctly signed with our key: refused (app_id differs).
    let other_app = body.replace(APP, "999");
    let sig = signature_header("999", other_app.as_bytes(), "1700000000000", KEY);
    assert_eq!(
        z.raw(&other_app, Some(&sig)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        z.app.count_messages().await,
        0,
        "refused events store nothing"
    );
    assert_eq!(z.raw(body, Some(mac)).await, StatusCode::OK);
    assert_eq!(z.raw(body, Some(mac)).await, StatusCode::OK, "redelivered");
    assert_eq!(z.app.count_messages().await, 1);
    let list = z.app.conversations(&z.agent, "").await;
    assert_eq!(list[0]["channel"], "zalo");
    assert_eq!(list[0]["last_message_preview"], "hello");
    // Secrets are never shown.
    let inbox = z
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{}", z.inbox),
            &z.app.admin,
            None,
        )
        .await;
    for k in [
        "oa_secret_key",
        "app_secret",
        "access_token",
        "refresh_token",
    ] {
        assert!(inbox["settings"].get(k).is_none(), "{k}");
    }
}

#[tokio::test]
async fn user_events_echoes_receipts_and_follows() {
    let z = Zalo::start().await;
    let (_, first) = z.sb.zalo_user_text(OA, USER, "chào shop").await.unwrap();
    let ev = |name: &str, message: Value| json!({"event_name": name, "sender": {"id": USER}, "recipient": {"id": OA}, "message": message});
    let events = [
        ev(
            "user_send_image",
            json!({"msg_id": "z1", "text": "", "attachments": [{"type": "image", "payload": {"url": "https://zalo/1.jpg", "thumbnail": "https://zalo/t.jpg"}}]}),
        ),
        ev(
            "user_send_file",
            json!({"msg_id": "z2", "attachments": [{"type": "file", "payload": {"url": "https://zalo/f", "name": "bao-gia.xlsx", "size": "2048"}}]}),
        ),
        ev(
            "user_send_sticker",
            json!({"msg_id": "z3", "attachments": [{"type": "sticker", "payload": {"url": "https://zalo/s", "id": "st1"}}]}),
        ),
        ev(
            "user_send_location",
            json!({"msg_id": "z4", "attachments": [{"type": "location", "payload": {"coordinates": {"latitude": "10.77", "longitude": "106.70"}}}]}),
        ),
        ev(
            "user_send_gif",
            json!({"msg_id": "z5", "attachments": [{"type": "gif", "payload": {"url": "https://zalo/g.gif"}}]}),
        ),
        ev(
            "user_send_text",
            json!({"msg_id": "z6", "text": "trả lời", "quote_msg_id": first}),
        ),
    ];
    for e in events {
        z.advance(SEC);
        assert_eq!(z.sb.zalo_event(OA, e).await.unwrap(), 200);
    }
    let conv = z.claimed().await;
    let thread = z.thread(&conv).await;
    let texts: Vec<&str> = thread.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "chào shop",
            "[image]",
            "[file] bao-gia.xlsx",
            "[sticker]",
            "[location] 10.77, 106.70",
            "[gif]",
            "trả lời"
        ]
    );
    assert_eq!(thread[1]["kind"], "media");
    assert_eq!(
        thread[1]["meta"]["attachments"][0]["url"],
        "https://zalo/1.jpg"
    );
    assert_eq!(thread[6]["meta"]["reply_to"], first.as_str());

    // Our reply: sent, its echo recognised (not stored twice), then received and seen.
    z.advance(SEC);
    let (s, v) = z.reply(&conv, "Dạ shop đây ạ").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["messaging_type"], "cs");
    assert_eq!(z.run().await.sent, 1);
    z.sb.flush().await;
    let sent = z.sb.zalo_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        z.thread(&conv).await.len(),
        8,
        "the echo of our send is not a second message"
    );
    let oa_event = |name: &str, message: Value| json!({"event_name": name, "sender": {"id": OA}, "recipient": {"id": USER}, "message": message});
    z.sb.zalo_event(
        OA,
        oa_event("user_received_message", json!({"msg_id": sent[0].msg_id})),
    )
    .await
    .unwrap();
    assert_eq!(z.thread(&conv).await[7]["delivery_status"], "delivered");
    z.sb.zalo_event(
        OA,
        oa_event("user_seen_message", json!({"msg_ids": [sent[0].msg_id]})),
    )
    .await
    .unwrap();
    assert_eq!(z.thread(&conv).await[7]["delivery_status"], "read");
    // A message the OA sent from Zalo's own app: stored as outbound, once.
    z.advance(SEC);
    let from_app = oa_event(
        "oa_send_text",
        json!({"msg_id": "zapp1", "text": "Gửi từ Zalo OA Manager"}),
    );
    z.sb.zalo_event(OA, from_app.clone()).await.unwrap();
    z.sb.zalo_event(OA, from_app).await.unwrap();
    let thread = z.thread(&conv).await;
    assert_eq!(thread.len(), 9);
    assert_eq!(
        (thread[8]["direction"].as_str(), thread[8]["text"].as_str()),
        (Some("outbound"), Some("Gửi từ Zalo OA Manager"))
    );

    // Unfollow / follow.
    let follow = |name: &str| json!({"event_name": name, "oa_id": OA, "follower": {"id": USER}, "source": "oa_profile"});
    z.sb.zalo_event(OA, follow("unfollow")).await.unwrap();
    assert_eq!(z.policy(&conv).await["unreachable"], "unfollowed");
    z.sb.zalo_event(OA, follow("follow")).await.unwrap();
    assert_eq!(z.policy(&conv).await["unreachable"], Value::Null);
}

#[tokio::test]
async fn eight_free_replies_in_48h_the_ninth_is_paid_and_after_7_days_only_templates() {
    let z = Zalo::start().await;
    z.sb.zalo_user_text(OA, USER, "shop ơi").await.unwrap();
    let conv = z.claimed().await;
    let p = z.policy(&conv).await;
    assert_eq!(
        (p["mode"].as_str(), p["paid"].as_bool()),
        (Some("open"), Some(false))
    );
    assert_eq!(p["quota"]["free_left"], 8);
    assert_eq!(p["quota"]["free_until"], T0.millis() + 2 * DAY);
    assert_eq!(p["window_ends_at"], T0.millis() + 7 * DAY);
    for i in 1..=8 {
        z.advance(HOUR);
        let (s, v) = z.reply(&conv, &format!("tin {i}")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["meta"]["quota"], "free", "reply {i}");
        assert_eq!(z.policy(&conv).await["quota"]["free_left"], 8 - i);
    }
    assert_eq!(z.run().await.sent, 8);
    // The 9th within 48 h is reported as paid — by the policy and by Zalo.
    let p = z.policy(&conv).await;
    assert_eq!(
        (p["mode"].as_str(), p["paid"].as_bool()),
        (Some("open"), Some(true))
    );
    let (s, v) = z.reply(&conv, "tin 9").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["meta"]["quota"], "paid");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(z.run().await.sent, 1);
    let sent = z.sb.zalo_sent();
    assert_eq!(sent.iter().filter(|s| s.quota_type == "reply").count(), 8);
    assert_eq!(sent[8].quota_type, "purchase_quota");
    let m = z
        .thread(&conv)
        .await
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .unwrap();
    assert_eq!(m["meta"]["zalo_quota_type"], "purchase_quota");
    // After 48 h every consultation message is paid, up to 7 days.
    z.advance(2 * DAY);
    let (_, v) = z.reply(&conv, "còn cần không ạ?").await;
    assert_eq!(v["meta"]["quota"], "paid");
    // A new customer message gives 8 free replies again.
    z.advance(SEC);
    z.sb.zalo_user_text(OA, USER, "còn ạ").await.unwrap();
    assert_eq!(z.policy(&conv).await["quota"]["free_left"], 8);
    let (_, v) = z.reply(&conv, "Dạ").await;
    assert_eq!(v["meta"]["quota"], "free");
    assert_eq!(z.run().await.sent, 2);

    // 7 days + 1 s after the customer's last message: refused, nothing queued.
    z.advance(7 * DAY + SEC);
    let before = z.thread(&conv).await.len();
    let (s, v) = z.reply(&conv, "alo?").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("template_required"))
    );
    assert_eq!(z.thread(&conv).await.len(), before);
    assert_eq!(z.run().await, RunReport::default());
    let p = z.policy(&conv).await;
    assert_eq!(
        (p["mode"].as_str(), p["reason"].as_str()),
        (Some("template_only"), Some("template_required"))
    );
    assert_eq!(p["allowed"][0]["messaging_type"], "transaction");
}

#[tokio::test]
async fn a_message_that_waited_past_7_days_fails_with_zalos_230() {
    let z = Zalo::start().await;
    z.sb.zalo_user_text(OA, USER, "hi").await.unwrap();
    let conv = z.claimed().await;
    z.advance(7 * DAY - SEC);
    z.sb.push_fault(OA, ChannelFault::server_error());
    let (s, _) = z.reply(&conv, "Dạ").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(z.run().await.retried, 1);
    z.advance(HOUR);
    assert_eq!(z.run().await.failed, 1);
    let m = z.thread(&conv).await.pop().unwrap();
    assert_eq!(
        (m["delivery_status"].as_str(), m["failure_reason"].as_str()),
        (Some("failed"), Some("interaction_expired"))
    );
    assert!(z.sb.zalo_sent().is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_then_the_send_retried() {
    let z = Zalo::start().await;
    z.sb.zalo_user_text(OA, USER, "hi").await.unwrap();
    let conv = z.claimed().await;
    z.sb.zalo_expire_token(OA);
    z.reply(&conv, "một").await;
    assert_eq!(z.run().await.sent, 1);
    assert_eq!(z.sb.zalo_refreshes(OA), 1);
    assert_eq!(z.sb.zalo_sent().len(), 1);
    // The rotated tokens are stored (the old refresh token is single use).
    let (access, refresh) = z.sb.zalo_tokens(OA).unwrap();
    let s = z.settings().await;
    assert_eq!(
        (s["access_token"].as_str(), s["refresh_token"].as_str()),
        (Some(access.as_str()), Some(refresh.as_str()))
    );
    assert_eq!(
        s["access_token_expires_at"],
        z.app.clock.now().millis() + 90_000 * SEC
    );
    // Next sends use the new token: no refresh.
    z.reply(&conv, "hai").await;
    assert_eq!(z.run().await.sent, 1);
    assert_eq!(z.sb.zalo_refreshes(OA), 1);
    // Past expires_in, the token is refreshed before sending (no -216 round trip).
    z.advance(25 * HOUR + SEC);
    z.sb.zalo_user_text(OA, USER, "còn đó không").await.unwrap();
    z.reply(&conv, "ba").await;
    assert_eq!(z.run().await.sent, 1);
    assert_eq!(z.sb.zalo_refreshes(OA), 2);
    // The refresh token was used elsewhere (stale here): the refresh fails, the message fails
    // with token_expired — exactly one refresh attempt, no loop.
    z.sb.zalo_expire_token(OA);
    let mut stale = z.settings().await;
    stale["refresh_token"] = json!("zrt_used_elsewhere");
    let mut inbox = z
        .app
        .state
        .store
        .inbox(z.inbox.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    inbox.settings = stale;
    z.app.state.store.update_inbox(&inbox).await.unwrap();
    z.reply(&conv, "bốn").await;
    assert_eq!(z.run().await.failed, 1);
    let m = z.thread(&conv).await.pop().unwrap();
    assert_eq!(m["failure_reason"], "token_expired");
    assert_eq!(z.sb.zalo_refreshes(OA), 2);
    assert_eq!(z.sb.zalo_sent().len(), 3);
}

/// The out-of-hours reply and the closing message reach a Zalo follower (consultation messages,
/// counted in the free quota like any reply).
#[tokio::test]
async fn automatic_messages_reach_zalo() {
    let z = Zalo::start().await;
    z.app.with_automatic_messages(&z.inbox, 30).await;
    z.sb.zalo_user_text(OA, USER, "shop ơi").await.unwrap();
    let conv = z.claimed().await;
    z.run().await;
    z.app.reply_then_silence(&z.agent, &conv, 30).await;
    z.run().await;
    let sent = z.sb.zalo_sent();
    let texts: Vec<&str> = sent.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, [OUT_OF_HOURS, "Dạ shop đây ạ", CLOSING]);
    assert!(
        sent.iter()
            .all(|s| s.user_id == USER && s.quota_type == "reply")
    );
    let auto = z.app.automatic_messages(&z.agent, &conv).await;
    assert_eq!(auto.len(), 2);
    assert!(
        auto.iter().all(|(_, status, _)| status != "failed"),
        "{auto:?}"
    );
}

#[tokio::test]
async fn images_and_pdfs_are_uploaded_then_sent_and_video_is_refused_with_the_reason() {
    use crate::media_out::{MB, mp4, pdf, png, refused, sent};
    let z = Zalo::start().await;
    z.sb.zalo_user_text(OA, USER, "cho xem mẫu").await.unwrap();
    let conv = z.claimed().await;
    let (app, agent) = (&z.app, z.agent.as_str());
    sent(app, agent, &conv, "ao.png", png(MB), Some("Mẫu mới")).await;
    sent(app, agent, &conv, "gia.pdf", pdf(5 * MB), None).await;
    assert_eq!(z.run().await.sent, 3);
    // The image as the media template with its attachment_id, its caption as a text right
    // after (Zalo's media message has no caption), the PDF as a file with its token.
    let got: Vec<_> =
        z.sb.zalo_sent()
            .into_iter()
            .map(|s| match s.file {
                Some((kind, f)) => (kind, f.content_type, f.size, f.filename),
                None => ("text".into(), s.text, 0, String::new()),
            })
            .collect();
    assert_eq!(
        got,
        vec![
            ("image".into(), "image/png".into(), MB, "ao.png".into()),
            ("text".into(), "Mẫu mới".into(), 0, String::new()),
            (
                "file".into(),
                "application/pdf".into(),
                5 * MB,
                "gia.pdf".into()
            ),
        ]
    );
    refused(
        app,
        agent,
        &conv,
        "ao.png",
        png(MB + 1),
        "file_too_large",
        "at most 1 MB for image files on zalo",
    )
    .await;
    refused(
        app,
        agent,
        &conv,
        "gia.pdf",
        pdf(5 * MB + 1),
        "file_too_large",
        "at most 5 MB for document files on zalo",
    )
    .await;
    refused(
        app,
        agent,
        &conv,
        "clip.mp4",
        mp4(100),
        "file_kind_not_supported",
        "no video",
    )
    .await;
    refused(
        app,
        agent,
        &conv,
        "ghi-chu.txt",
        b"hello".to_vec(),
        "file_type_not_supported",
        "application/pdf",
    )
    .await;
    // An expired token on the upload: one refresh, then the upload and the send.
    z.sb.zalo_expire_token(OA);
    sent(app, agent, &conv, "ao2.png", png(100), None).await;
    assert_eq!(z.run().await.sent, 1);
    assert_eq!(z.sb.zalo_refreshes(OA), 1);
    // Seven days after the last interaction a file is refused before sending, as a text is.
    z.advance(7 * DAY + SEC);
    let (s, text) = z.reply(&conv, "chào").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let code = text["error"]["code"].as_str().unwrap();
    refused(app, agent, &conv, "ao.png", png(100), code, "").await;
}
