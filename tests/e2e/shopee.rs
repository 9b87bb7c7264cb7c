//! Shopee seller chat against the in-process channel sandbox: the push `Authorization` (channels.md's
//! vector, and the exact callback URL), chat pushes stored once, other pushes acknowledged with an
//! empty body, and replies through `send_message` with the v2 signature; no messaging window.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use switchboard_channels::shopee::push_signature;
use switchboard_sandbox::channels::{ChannelSandbox, ShopeeShopSpec};
use switchboard_server::clock::Clock;
use switchboard_server::outbox::RunReport;

const SHOP: &str = "789";
const KEY: &str = "partner_key_test";
const PUSH_URL: &str = "https://example.com/shopee/push";
const DAY: i64 = 86_400_000;

async fn start() -> (TestApp, ChannelSandbox, String, String) {
    let app = TestApp::start().await;
    let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    // The callback configured at Shopee is a public HTTPS URL (a proxy in front of us); the
    // signature covers that URL, so the inbox is told it.
    let v = app
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &app.admin,
            Some(json!({"name": "Shopee", "channel": "shopee", "settings": {
                "shop_id": SHOP, "partner_id": "1001", "partner_key": KEY, "access_token": "shp-token",
                "api_base_url": sb.base_url(), "push_callback_url": PUSH_URL}})),
        )
        .await;
    let inbox = v["id"].as_str().unwrap().to_owned();
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/members"),
        &app.admin,
        Some(json!({"agent_ids": [agent_id]})),
    )
    .await;
    (app, sb, agent, inbox)
}

/// The shop connected (pushes signed for our own address), a buyer who wrote `text`, and their
/// conversation claimed by the agent.
async fn buyer_wrote(text: &str) -> (TestApp, ChannelSandbox, String, String, String) {
    let (app, sb, agent, inbox) = start().await;
    sb.add_shopee_shop(ShopeeShopSpec {
        shop_id: SHOP.into(),
        partner_id: "1001".into(),
        partner_key: KEY.into(),
        access_token: "shp-token".into(),
        push_url: app.url("/webhooks/shopee"),
    });
    // The sandbox pushes to our own address: tell the inbox that is the callback URL.
    app.ok(
        Method::PATCH,
        &format!("/api/v1/inboxes/{inbox}"),
        &app.admin,
        Some(json!({"settings": {"push_callback_url": app.url("/webhooks/shopee")}})),
    )
    .await;
    let (s, _) = sb
        .shopee_buyer_text(SHOP, 456, "buyer", text)
        .await
        .unwrap();
    assert_eq!(s, 200);
    let conv = app.conversations(&agent, "").await[0]["id"]
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
    (app, sb, agent, inbox, conv)
}

async fn push(app: &TestApp, body: &str, auth: Option<&str>) -> (StatusCode, String) {
    let mut req = app
        .http
        .post(app.url("/webhooks/shopee"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn push_authorization_vector_and_exact_callback_url() {
    let (app, _sb, agent, _) = start().await;
    let body = r#"{"data":{"type":"message","content":{"conversation_id":"123","from_id":456,"from_user_name":"buyer"}},"shop_id":789,"code":10,"timestamp":1700000000}"#;
    let sig = "a902d0d6a24e4b4e86cea4b544afdbee6fc50066433d0dccc36bb583ec641800";
    assert_eq!(push(&app, body, None).await.0, StatusCode::UNAUTHORIZED);
    let slash = push_signature(KEY, &format!("{PUSH_URL}/"), body.as_bytes());
    assert_eq!(
        push(&app, body, Some(&slash)).await.0,
        StatusCode::UNAUTHORIZED,
        "another URL"
    );
    let other = push_signature("other_key", PUSH_URL, body.as_bytes());
    assert_eq!(
        push(&app, body, Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.count_messages().await, 0);
    assert_eq!(
        push(&app, body, Some(sig)).await,
        (StatusCode::OK, String::new())
    );
    assert_eq!(
        push(&app, body, Some(sig)).await.0,
        StatusCode::OK,
        "redelivered"
    );
    assert_eq!(app.count_messages().await, 1);
    let list = app.conversations(&agent, "").await;
    assert_eq!(
        (
            list[0]["contact_name"].as_str(),
            list[0]["channel"].as_str()
        ),
        (Some("buyer"), Some("shopee"))
    );
    // Other pushes (an order status) are acknowledged with an empty body and store nothing.
    let order = r#"{"shop_id":789,"code":3,"timestamp":1700000001,"data":{"ordersn":"2411XYZ","status":"READY_TO_SHIP"}}"#;
    let s = push_signature(KEY, PUSH_URL, order.as_bytes());
    assert_eq!(
        push(&app, order, Some(&s)).await,
        (StatusCode::OK, String::new())
    );
    assert_eq!(app.count_messages().await, 1);
    // The partner key is never shown.
    let inbox = app
        .ok(Method::GET, "/api/v1/inboxes", &app.admin, None)
        .await["items"][0]
        .clone();
    assert!(inbox["settings"].get("partner_key").is_none());
    assert!(inbox["settings"].get("access_token").is_none());
}

#[tokio::test]
async fn buyer_messages_and_signed_replies_with_no_window() {
    let (app, sb, agent, inbox, conv) = buyer_wrote("còn hàng không shop?").await;
    // Shopee publishes no window: a reply 20 days later is sent.
    app.clock.advance_millis(20 * DAY);
    let p = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/policy"),
            &agent,
            None,
        )
        .await;
    assert_eq!(p["mode"], "no_window");
    let (s, v) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &agent,
            json!({"text": "Dạ còn ạ"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let st = &app.state;
    assert_eq!(st.outbox.run_due(app.clock.now()).await.sent, 1);
    let sent = sb.shopee_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to_id.as_str(), sent[0].text.as_str()),
        ("456", "Dạ còn ạ")
    );
    let thread = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages"),
            &agent,
            None,
        )
        .await;
    assert_eq!(thread["items"][1]["delivery_status"], "sent");
    // A wrong access token: Shopee refuses; the message fails with token_expired.
    let mut i = st
        .store
        .inbox(inbox.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    i.settings["access_token"] = json!("expired");
    st.store.update_inbox(&i).await.unwrap();
    app.post(
        &format!("/api/v1/conversations/{conv}/messages"),
        &agent,
        json!({"text": "alo"}),
    )
    .await;
    let r = st.outbox.run_due(app.clock.now()).await;
    assert_eq!(
        r,
        RunReport {
            failed: 1,
            ..RunReport::default()
        }
    );
    let thread = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages"),
            &agent,
            None,
        )
        .await;
    assert_eq!(thread["items"][2]["failure_reason"], "token_expired");
    assert_eq!(sb.shopee_sent().len(), 1);
}

/// Shopee chat has no buttons: a reply with buttons reaches the buyer as the numbered list they
/// answer by typing, and the thread shows that text.
#[tokio::test]
async fn buttons_reach_shopee_as_a_numbered_list() {
    let (app, sb, agent, _, conv) = buyer_wrote("còn size M không?").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &agent,
            json!({"text": "Anh chọn size nào ạ?", "buttons": [
                {"id": "m", "title": "Size M"},
                {"id": "l", "title": "Size L", "description": "65-75kg"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let numbered = "Anh chọn size nào ạ?\n\n1. Size M\n2. Size L — 65-75kg";
    assert_eq!(v["text"], numbered);
    assert_eq!(v["meta"]["sent_as"], "numbered_list");
    // The channel has no buttons at all: nothing to explain.
    assert_eq!(v["meta"].get("numbered_because"), None);
    assert_eq!(app.state.outbox.run_due(app.clock.now()).await.sent, 1);
    let sent = sb.shopee_sent();
    assert_eq!(
        (sent[0].to_id.as_str(), sent[0].text.as_str()),
        ("456", numbered)
    );
}

#[tokio::test]
async fn images_are_uploaded_then_sent_and_other_files_are_refused_with_the_reason() {
    use crate::media_out::{MB, mp4, pdf, png, refused, sent};
    let (app, sb, agent, _, conv) = buyer_wrote("có ảnh thật không shop?").await;
    sent(
        &app,
        &agent,
        &conv,
        "ao.png",
        png(10 * MB),
        Some("Ảnh thật"),
    )
    .await;
    let report = app.state.outbox.run_due(app.clock.now()).await;
    assert_eq!(report.sent, 2, "{report:?}");
    let got: Vec<_> = sb
        .shopee_sent()
        .into_iter()
        .map(|s| match s.image {
            Some(f) => ("image".to_owned(), f.content_type, f.size),
            None => ("text".to_owned(), s.text, 0),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("image".into(), "image/png".into(), 10 * MB),
            ("text".into(), "Ảnh thật".into(), 0),
        ]
    );
    refused(
        &app,
        &agent,
        &conv,
        "ao.png",
        png(10 * MB + 1),
        "file_too_large",
        "at most 10 MB for image files on shopee",
    )
    .await;
    refused(
        &app,
        &agent,
        &conv,
        "clip.mp4",
        mp4(100),
        "file_kind_not_supported",
        "documents images only",
    )
    .await;
    refused(
        &app,
        &agent,
        &conv,
        "gia.pdf",
        pdf(100),
        "file_kind_not_supported",
        "documents images only",
    )
    .await;
}
