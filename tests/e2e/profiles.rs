//! Customer profiles from every channel, through the in-process sandboxes: names and pictures
//! after the first message (Zalo's user profile API, Telegram's `getChat` + `getFile`, WhatsApp's
//! webhook name), pictures copied once into our media store and served from our route,
//! Instagram's picture shown from its URL with no bytes kept, a typed name kept over the channel's
//! until the agent presses "sync from channel", and the "open in app" link on every channel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_sandbox::PICTURE_PNG;
use switchboard_sandbox::channels::{ChannelSandbox, WaNumberSpec, ZaloOaSpec};
use switchboard_sandbox::meta::{Sandbox, UserSpec};
use switchboard_server::clock::Clock;

const BOT: &str = "123456789:AAE-sandbox_bot_token";
const CHAT: i64 = 1_111_111;
const OA: &str = "388613280878808645";
const ZALO_USER: &str = "246845883529197922";

struct World {
    app: TestApp,
    sb: ChannelSandbox,
    agent: String,
    agent_id: String,
}

impl World {
    async fn start() -> Self {
        let app = TestApp::start().await;
        let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
        Self {
            app,
            sb,
            agent,
            agent_id,
        }
    }

    async fn inbox(&self, name: &str, channel: &str, settings: Value) -> String {
        let v = self
            .app
            .ok(
                Method::POST,
                "/api/v1/inboxes",
                &self.app.admin,
                Some(json!({"name": name, "channel": channel, "settings": settings})),
            )
            .await;
        let id = v["id"].as_str().unwrap().to_owned();
        self.app
            .ok(
                Method::PUT,
                &format!("/api/v1/inboxes/{id}/members"),
                &self.app.admin,
                Some(json!({"agent_ids": [self.agent_id]})),
            )
            .await;
        id
    }

    async fn telegram(&self) -> String {
        self.sb.add_telegram_bot(BOT);
        self.inbox(
            "Shop bot",
            "telegram",
            json!({"bot_token": BOT, "api_base_url": self.sb.base_url()}),
        )
        .await
    }

    async fn zalo(&self) -> String {
        self.sb.add_zalo_oa(ZaloOaSpec {
            oa_id: OA.into(),
            app_id: "360846524940903967".into(),
            app_secret: "zalo_app_secret".into(),
            oa_secret_key: "oa_secret_test".into(),
            access_token: "zat_0".into(),
            refresh_token: "zrt_0".into(),
            webhook_url: self.app.url("/webhooks/zalo"),
            echoes: false,
        });
        self.inbox(
            "Zalo OA",
            "zalo",
            json!({
            "oa_id": OA, "app_id": "360846524940903967", "app_secret": "zalo_app_secret",
            "oa_secret_key": "oa_secret_test", "access_token": "zat_0", "refresh_token": "zrt_0",
            "api_base_url": self.sb.base_url(), "oauth_base_url": self.sb.base_url()}),
        )
        .await
    }

    /// Runs the outbox (where profiles are fetched): how many profiles it synced.
    async fn sync(&self) -> usize {
        self.app
            .state
            .outbox
            .run_due(self.app.clock.now())
            .await
            .profiles
    }

    /// The only conversation of `inbox` as the list shows it.
    async fn row(&self, inbox: &str) -> Value {
        let list = self
            .app
            .conversations(&self.agent, &format!("?inbox_id={inbox}"))
            .await;
        assert_eq!(list.len(), 1, "{list:?}");
        list[0].clone()
    }

    async fn contact(&self, id: &str) -> Value {
        self.app
            .ok(
                Method::GET,
                &format!("/api/v1/contacts/{id}"),
                &self.agent,
                None,
            )
            .await
    }

    async fn policy(&self, conv: &str) -> Value {
        self.app.policy(&self.agent, conv).await
    }

    /// The bytes and type an agent's browser gets for this picture URL of ours.
    async fn picture(&self, url: &str) -> (StatusCode, String, Vec<u8>) {
        let r = reqwest::Client::new()
            .get(self.app.url(url))
            .bearer_auth(&self.agent)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ct, r.bytes().await.unwrap().to_vec())
    }

    fn avatar_files(&self) -> usize {
        std::fs::read_dir(self.app.state.config.data_dir.join("media/avatars"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn telegram_customers_have_a_name_and_a_picture_downloaded_once() {
    let w = World::start().await;
    let inbox = w.telegram().await;
    w.sb.telegram_set_profile(BOT, CHAT, "An", Some("Lê"), Some("an_le"), true);
    let (status, update_id, _) =
        w.sb.telegram_user_text(BOT, CHAT, "An", "chào shop")
            .await
            .unwrap();
    assert_eq!(status, 200);
    // The name is on the contact with the first message, before any profile call.
    let row = w.row(&inbox).await;
    assert_eq!(row["contact_name"], "An Lê");
    assert_eq!(w.sync().await, 1);
    let row = w.row(&inbox).await;
    let contact = row["contact_id"].as_str().unwrap();
    let url = row["contact_avatar_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/api/v1/contacts/{contact}/avatar")),
        "{url}"
    );
    assert_eq!(w.contact(contact).await["avatar_url"], url.as_str());
    let (s, ct, bytes) = w.picture(&url).await;
    assert_eq!(
        (s, ct.as_str(), bytes.as_slice()),
        (StatusCode::OK, "image/png", PICTURE_PNG)
    );
    assert_eq!(w.sb.picture_downloads(), 1);

    // A redelivered update and a second message download nothing new.
    let again = json!({"update_id": update_id, "message": {"message_id": 1, "date": w.app.clock.now().millis() / 1000,
        "from": {"id": CHAT, "is_bot": false, "first_name": "An", "last_name": "Lê", "username": "an_le"},
        "chat": {"id": CHAT, "type": "private", "first_name": "An", "last_name": "Lê", "username": "an_le"}, "text": "chào shop"}});
    assert_eq!(w.sb.telegram_update(BOT, again).await.unwrap().0, 200);
    w.sb.telegram_user_text(BOT, CHAT, "An", "còn hàng không?")
        .await
        .unwrap();
    assert_eq!(w.sync().await, 0);
    assert_eq!(w.sb.picture_downloads(), 1);
    assert_eq!(w.avatar_files(), 1);

    // The header's link opens the chat in Telegram (the user has a public username).
    let conv = row["id"].as_str().unwrap();
    assert_eq!(
        w.policy(conv).await["open_in_provider_app_url"],
        "https://t.me/an_le"
    );

    // Another agent who sees none of the contact's conversations gets 404 for both.
    let (_, other) = w.app.agent("minh@shop.vn", "Minh", "agent").await;
    for (m, path) in [
        (Method::GET, format!("/api/v1/contacts/{contact}/avatar")),
        (
            Method::POST,
            format!("/api/v1/contacts/{contact}/sync-profile"),
        ),
    ] {
        let (s, _) = w.app.call(m, &path, Some(&other), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn zalo_customers_have_a_name_and_a_picture_after_their_first_message() {
    let w = World::start().await;
    let inbox = w.zalo().await;
    w.sb.zalo_set_profile(OA, ZALO_USER, "Trần Thu Hà");
    w.sb.zalo_user_text(OA, ZALO_USER, "shop ơi").await.unwrap();
    assert_eq!(w.sync().await, 1);
    let row = w.row(&inbox).await;
    assert_eq!(row["contact_name"], "Trần Thu Hà");
    let (s, ct, bytes) = w.picture(row["contact_avatar_url"].as_str().unwrap()).await;
    assert_eq!(
        (s, ct.as_str(), bytes.as_slice()),
        (StatusCode::OK, "image/png", PICTURE_PNG)
    );
    assert_eq!(w.sb.picture_downloads(), 1);
    // Zalo offers no link to a follower's thread.
    let conv = row["id"].as_str().unwrap();
    assert_eq!(
        w.policy(conv).await["open_in_provider_app_url"],
        Value::Null
    );
    // A second message fetches nothing.
    w.sb.zalo_user_text(OA, ZALO_USER, "còn size M?")
        .await
        .unwrap();
    assert_eq!(w.sync().await, 0);
    assert_eq!(w.sb.picture_downloads(), 1);
}

#[tokio::test]
async fn a_typed_name_is_kept_until_the_agent_syncs_from_the_channel() {
    let w = World::start().await;
    let inbox = w.telegram().await;
    w.sb.telegram_set_profile(BOT, CHAT, "An", None, None, false);
    w.sb.telegram_user_text(BOT, CHAT, "An", "chào")
        .await
        .unwrap();
    w.sync().await;
    let row = w.row(&inbox).await;
    let contact = row["contact_id"].as_str().unwrap();
    // No photo (or hidden by privacy), no username: no picture, no link.
    assert_eq!(row["contact_avatar_url"], Value::Null);
    assert_eq!(
        w.policy(row["id"].as_str().unwrap()).await["open_in_provider_app_url"],
        Value::Null
    );

    // The agent types a name: it is the agent's.
    let typed = w
        .app
        .ok(
            Method::PATCH,
            &format!("/api/v1/contacts/{contact}"),
            &w.agent,
            Some(json!({"name": "Chị An (khách sỉ)"})),
        )
        .await;
    assert_eq!(
        (typed["name"].as_str(), typed["name_source"].as_str()),
        (Some("Chị An (khách sỉ)"), Some("agent"))
    );

    // The customer renames themselves on Telegram and writes again: the typed name stays.
    w.sb.telegram_set_profile(BOT, CHAT, "An", Some("Nguyễn"), Some("an_nguyen"), true);
    w.sb.telegram_user_text(BOT, CHAT, "An", "có mẫu mới không?")
        .await
        .unwrap();
    w.sync().await;
    assert_eq!(w.row(&inbox).await["contact_name"], "Chị An (khách sỉ)");

    // "Sync from channel": the channel's name now, with the picture and the handle.
    let synced = w
        .app
        .ok(
            Method::POST,
            &format!("/api/v1/contacts/{contact}/sync-profile"),
            &w.agent,
            None,
        )
        .await;
    assert_eq!(
        (synced["name"].as_str(), synced["name_source"].as_str()),
        (Some("An Nguyễn"), Some("channel"))
    );
    let row = w.row(&inbox).await;
    assert_eq!(row["contact_name"], "An Nguyễn");
    assert!(
        row["contact_avatar_url"]
            .as_str()
            .unwrap()
            .contains("/avatar?v=")
    );
    assert_eq!(
        w.policy(row["id"].as_str().unwrap()).await["open_in_provider_app_url"],
        "https://t.me/an_nguyen"
    );
    assert_eq!(w.sb.picture_downloads(), 1);

    // From the channel again: a later rename follows by itself.
    w.sb.telegram_set_profile(BOT, CHAT, "An", Some("Phạm"), Some("an_nguyen"), true);
    w.sb.telegram_user_text(BOT, CHAT, "An", "ok")
        .await
        .unwrap();
    w.sync().await;
    assert_eq!(w.row(&inbox).await["contact_name"], "An Phạm");
    // Same picture: nothing downloaded again.
    assert_eq!(w.sb.picture_downloads(), 1);
}

#[tokio::test]
async fn whatsapp_names_come_from_the_webhook_and_the_link_is_wa_me() {
    let w = World::start().await;
    w.sb.add_whatsapp_number(WaNumberSpec {
        phone_number_id: "106540352242922".into(),
        waba_id: "102290129340398".into(),
        display_phone_number: "15550783881".into(),
        token: "EAAG-sandbox-token".into(),
        app_secret: "app_secret_test".into(),
        webhook_url: w.app.url("/webhooks/whatsapp"),
        auto_delivery: false,
        sync_window_errors: false,
    });
    let inbox = w
        .inbox("WhatsApp", "whatsapp", json!({"phone_number_id": "106540352242922", "waba_id": "102290129340398",
            "access_token": "EAAG-sandbox-token", "app_secret": "app_secret_test", "verify_token": "tok",
            "api_base_url": w.sb.whatsapp_base_url()}))
        .await;
    let text = |t: &str| json!({"type": "text", "text": {"body": t}});
    w.sb.whatsapp_customer(
        "106540352242922",
        Some("84901234567"),
        None,
        "Hà",
        text("chào"),
    )
    .await
    .unwrap();
    let row = w.row(&inbox).await;
    assert_eq!(row["contact_name"], "Hà");
    assert_eq!(
        row["contact_avatar_url"],
        Value::Null,
        "WhatsApp gives no picture"
    );
    let conv = row["id"].as_str().unwrap();
    assert_eq!(
        w.policy(conv).await["open_in_provider_app_url"],
        "https://wa.me/84901234567"
    );
    w.sync().await;
    // The customer changes their WhatsApp name: a name from the channel follows it.
    w.sb.whatsapp_customer(
        "106540352242922",
        Some("84901234567"),
        None,
        "Hà Nguyễn",
        text("còn hàng?"),
    )
    .await
    .unwrap();
    assert_eq!(w.sync().await, 1);
    assert_eq!(w.row(&inbox).await["contact_name"], "Hà Nguyễn");
    // WhatsApp has no profile API: nothing to sync from.
    let contact = row["contact_id"].as_str().unwrap();
    let (s, v) = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/contacts/{contact}/sync-profile"),
            Some(&w.agent),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("profile_unavailable")
        )
    );
}

#[tokio::test]
async fn messenger_pictures_are_copied_and_instagram_pictures_are_never_stored() {
    let w = World::start().await;
    let meta = Sandbox::start(
        Arc::new(w.app.clock.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let page = create_page(&w.app, &meta, "111", "messenger", &[&w.agent_id]).await;
    let ig = create_page(&w.app, &meta, "17841", "instagram", &[&w.agent_id]).await;
    let user = |id: &str, first: &str| UserSpec {
        id: id.into(),
        first_name: first.into(),
        last_name: "Nguyễn".into(),
        profile_pic: Some(meta.picture_url(id)),
        commenter_id: None,
    };
    meta.add_user("111", user("222", "Hà"));
    meta.add_user("17841", user("333", "Lan"));
    meta.customer_message("111", "222", "hi").await.unwrap();
    meta.customer_message("17841", "333", "hi").await.unwrap();
    assert_eq!(w.sync().await, 2);
    assert_eq!(
        meta.picture_downloads(),
        1,
        "only Messenger's picture is downloaded"
    );
    assert_eq!(w.avatar_files(), 1);

    let messenger = w.row(&page).await;
    assert_eq!(messenger["contact_name"], "Hà Nguyễn");
    let (s, _, bytes) = w
        .picture(messenger["contact_avatar_url"].as_str().unwrap())
        .await;
    assert_eq!((s, bytes.as_slice()), (StatusCode::OK, PICTURE_PNG));
    assert_eq!(
        w.policy(messenger["id"].as_str().unwrap()).await["open_in_provider_app_url"],
        "https://business.facebook.com/latest/inbox/all?asset_id=111"
    );

    // Instagram: the provider's URL is kept (and would be shown were it https); no bytes, and our
    // picture route has nothing.
    let insta = w.row(&ig).await;
    let contact = insta["contact_id"].as_str().unwrap();
    assert_eq!(insta["contact_name"], "Lan Nguyễn");
    let p = w
        .app
        .state
        .store
        .contact_profile(contact.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.avatar_url.as_deref(),
        Some(meta.picture_url("333").as_str())
    );
    assert_eq!(p.avatar_file, None);
    let (s, _) = w
        .app
        .get(&format!("/api/v1/contacts/{contact}/avatar"), &w.agent)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A sync from the channel downloads nothing either.
    w.app
        .ok(
            Method::POST,
            &format!("/api/v1/contacts/{contact}/sync-profile"),
            &w.agent,
            None,
        )
        .await;
    assert_eq!(meta.picture_downloads(), 1);
    assert_eq!(w.avatar_files(), 1);
}
