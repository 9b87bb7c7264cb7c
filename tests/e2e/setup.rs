//! Channel setup as an admin does it: the connection test through each provider (the sandboxes
//! answer as the providers would), the webhook URL and verify token to paste, the creator a
//! member of what they created, and tokens rotated by editing the settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_sandbox::channels::{ChannelSandbox, ShopeeShopSpec, WaNumberSpec, ZaloOaSpec};
use switchboard_sandbox::meta::Sandbox;

async fn create(app: &TestApp, channel: &str, settings: Value) -> Value {
    app.ok(
        Method::POST,
        "/api/v1/inboxes",
        &app.admin,
        Some(json!({"name": format!("My {channel}"), "channel": channel, "settings": settings})),
    )
    .await
}

async fn check(app: &TestApp, inbox: &Value) -> Value {
    let id = inbox["id"].as_str().unwrap();
    app.ok(
        Method::POST,
        &format!("/api/v1/inboxes/{id}/check"),
        &app.admin,
        None,
    )
    .await
}

async fn patch(app: &TestApp, inbox: &Value, settings: Value) -> Value {
    let id = inbox["id"].as_str().unwrap();
    app.ok(
        Method::PATCH,
        &format!("/api/v1/inboxes/{id}"),
        &app.admin,
        Some(json!({ "settings": settings })),
    )
    .await
}

#[tokio::test]
async fn every_provider_answers_the_connection_test_with_its_account_or_why_not() {
    let app = TestApp::start().await;
    let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let meta = Sandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sb.base_url();

    // Messenger: right token, then a token of another Page.
    let page = create_page(&app, &meta, "5005", "messenger", &[]).await;
    let page = app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{page}"),
            &app.admin,
            None,
        )
        .await;
    let c = check(&app, &page).await;
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(c["account_name"], "Sandbox Page 5005");
    create_page(&app, &meta, "6006", "messenger", &[]).await;
    patch(&app, &page, json!({"page_access_token": "token-6006"})).await;
    let c = check(&app, &page).await;
    assert_eq!(
        (c["ok"].clone(), c["reason"].clone()),
        (json!(false), json!("account_mismatch"))
    );
    // The right token again (a rotation is an edit): connected.
    patch(&app, &page, json!({"page_access_token": "token-5005"})).await;
    assert_eq!(check(&app, &page).await["ok"], true);

    // WhatsApp: a refused token, then the right one.
    sb.add_whatsapp_number(WaNumberSpec {
        phone_number_id: "106540352242922".into(),
        waba_id: "102290129340398".into(),
        display_phone_number: "15550783881".into(),
        token: "wa-token".into(),
        app_secret: "wa-secret".into(),
        webhook_url: app.url("/webhooks/whatsapp"),
        auto_delivery: false,
        sync_window_errors: false,
    });
    let wa = create(
        &app,
        "whatsapp",
        json!({"phone_number_id": "106540352242922", "waba_id": "102290129340398",
            "access_token": "not-the-token", "app_secret": "wa-secret",
            "api_base_url": sb.whatsapp_base_url()}),
    )
    .await;
    assert_eq!(check(&app, &wa).await["reason"], "credentials_refused");
    patch(&app, &wa, json!({"access_token": "wa-token"})).await;
    let c = check(&app, &wa).await;
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(c["account_name"], "Sandbox 15550783881");

    // Telegram: getMe names the bot.
    sb.add_telegram_bot("4242:AAE_sandbox");
    let tg = create(
        &app,
        "telegram",
        json!({"bot_token": "4242:AAE_sandbox", "api_base_url": base}),
    )
    .await;
    let c = check(&app, &tg).await;
    assert_eq!(c["account_name"], "@sandbox_4242_bot", "{c}");
    assert_eq!(tg["setup"]["automatic"], true);

    // Zalo: an OA; a token of another OA is a mismatch.
    for (oa, token) in [("388613280878808645", "zat_a"), ("1234", "zat_b")] {
        sb.add_zalo_oa(ZaloOaSpec {
            oa_id: oa.into(),
            app_id: "36084".into(),
            app_secret: "s".into(),
            oa_secret_key: "k".into(),
            access_token: token.into(),
            refresh_token: format!("r{token}"),
            webhook_url: app.url("/webhooks/zalo"),
            echoes: false,
        });
    }
    let zalo = create(
        &app,
        "zalo",
        json!({"oa_id": "388613280878808645", "app_id": "36084", "app_secret": "s",
            "oa_secret_key": "k", "access_token": "zat_a", "refresh_token": "rzat_a",
            "api_base_url": base, "oauth_base_url": base}),
    )
    .await;
    let c = check(&app, &zalo).await;
    assert_eq!(c["account_name"], "Sandbox OA 388613280878808645", "{c}");
    patch(&app, &zalo, json!({"access_token": "zat_b"})).await;
    assert_eq!(check(&app, &zalo).await["reason"], "account_mismatch");

    // Shopee: the signed shop profile; a wrong partner key fails the signature.
    sb.add_shopee_shop(ShopeeShopSpec {
        shop_id: "789".into(),
        partner_id: "1001".into(),
        partner_key: "partner_key_test".into(),
        access_token: "shp".into(),
        push_url: "https://example.com/shopee/push".into(),
    });
    let shop = create(
        &app,
        "shopee",
        json!({"shop_id": "789", "partner_id": "1001", "partner_key": "wrong",
            "access_token": "shp", "api_base_url": base,
            "push_callback_url": "https://example.com/shopee/push"}),
    )
    .await;
    assert_eq!(check(&app, &shop).await["reason"], "credentials_refused");
    patch(&app, &shop, json!({"partner_key": "partner_key_test"})).await;
    assert_eq!(check(&app, &shop).await["account_name"], "Sandbox shop 789");
    assert_eq!(
        shop["setup"]["webhook_url"], "https://example.com/shopee/push",
        "Shopee signs with the callback URL configured there, so that is the one to paste"
    );
}

#[tokio::test]
async fn setup_shows_what_to_paste_and_the_creator_sees_the_new_inbox() {
    let app = TestApp::start().await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let me = app.ok(Method::GET, "/api/v1/me", &app.admin, None).await;
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let unreachable = "http://127.0.0.1:9"; // discard port: nothing listens
    let wa = create(
        &app,
        "whatsapp",
        json!({"phone_number_id": "1065", "waba_id": "1022", "access_token": "t",
            "app_secret": "s", "api_base_url": unreachable}),
    )
    .await;
    let id = wa["id"].as_str().unwrap();

    // What to paste into Meta's app dashboard: our URL and a generated verify token, which the
    // handshake then accepts.
    assert_eq!(wa["setup"]["webhook_url"], app.url("/webhooks/whatsapp"));
    let token = wa["setup"]["verify_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "{token}");
    assert!(
        wa["settings"].get("verify_token").is_none(),
        "still a secret in the settings"
    );
    let r = app
        .http
        .get(app.url(&format!(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    assert!(
        wa["setup"]["events"]
            .as_array()
            .unwrap()
            .contains(&json!("messages"))
    );

    // The creator is a member; the provider being down is said plainly.
    let members = app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{id}/members"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(members["agent_ids"], json!([admin_id]));
    assert_eq!(check(&app, &wa).await["reason"], "provider_unreachable");

    // An agent who is made a member sees the inbox but neither its setup nor its test.
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{id}/members"),
        &app.admin,
        Some(json!({"agent_ids": [admin_id, agent_id]})),
    )
    .await;
    let seen = app
        .ok(Method::GET, &format!("/api/v1/inboxes/{id}"), &agent, None)
        .await;
    assert!(seen.get("setup").is_none(), "{seen}");
    let (status, _) = app
        .post(&format!("/api/v1/inboxes/{id}/check"), &agent, json!(null))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A live-chat inbox has nothing to test.
    let chat = app.inbox("Web", &[]).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/inboxes/{chat}/check"),
            &app.admin,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
