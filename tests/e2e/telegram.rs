//! Telegram against the in-process channel sandbox: `setWebhook` with a secret token on inbox
//! creation, the secret-token header accepted and refused, messages / media / edits / button taps,
//! dedupe by update, no messaging window, 429 `retry_after` then success delivering once, a
//! blocked bot, and buttons as an inline keyboard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_sandbox::channels::{ChannelFault, ChannelSandbox};
use switchboard_server::clock::Clock;
use switchboard_server::outbox::RunReport;

const BOT: &str = "123456789:AAE-sandbox_bot_token";
const CHAT: i64 = 1_111_111;
const SEC: i64 = 1_000;
const DAY: i64 = 86_400 * SEC;

struct Tg {
    app: TestApp,
    sb: ChannelSandbox,
    agent: String,
    inbox: String,
}

impl Tg {
    async fn start() -> Self {
        let app = TestApp::start().await;
        let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        sb.add_telegram_bot(BOT);
        let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
        let inbox = app
            .channel_inbox(
                "Shop bot",
                "telegram",
                json!({"bot_token": BOT, "api_base_url": sb.base_url()}),
                &[&agent_id],
            )
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

    /// Posts an update with this secret header (or none).
    async fn raw(&self, inbox: &str, update: &Value, secret: Option<&str>) -> StatusCode {
        let mut req = self
            .app
            .http
            .post(self.app.url(&format!("/webhooks/telegram/{inbox}")))
            .header("content-type", "application/json")
            .body(update.to_string());
        if let Some(s) = secret {
            req = req.header("x-telegram-bot-api-secret-token", s);
        }
        req.send().await.unwrap().status()
    }
}

#[tokio::test]
async fn creating_the_inbox_sets_the_webhook_with_a_secret_token() {
    let t = Tg::start().await;
    let (url, secret) = t.sb.telegram_webhook(BOT).expect("setWebhook was called");
    assert_eq!(url, t.app.url(&format!("/webhooks/telegram/{}", t.inbox)));
    assert!(secret.len() >= 32, "a generated secret token");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    );
    // The token and the secret are never shown.
    let inbox = t
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{}", t.inbox),
            &t.app.admin,
            None,
        )
        .await;
    assert!(inbox["settings"].get("bot_token").is_none());
    assert!(inbox["settings"].get("secret_token").is_none());
    assert_eq!(
        inbox["settings"]["secrets_set"],
        json!(["bot_token", "secret_token"])
    );
    // A bot Telegram does not know: 502, and no inbox.
    let before = t
        .app
        .ok(Method::GET, "/api/v1/inboxes", &t.app.admin, None)
        .await["items"]
        .as_array()
        .unwrap()
        .len();
    let (s, v) = t
        .app
        .post(
            "/api/v1/inboxes",
            &t.app.admin,
            json!({"name": "x", "channel": "telegram",
            "settings": {"bot_token": "999:unknown", "api_base_url": t.sb.base_url()}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("provider_error"))
    );
    let after = t
        .app
        .ok(Method::GET, "/api/v1/inboxes", &t.app.admin, None)
        .await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    // A secret token with characters Telegram refuses: 422 before calling it.
    let (s, v) = t
        .app
        .post("/api/v1/inboxes", &t.app.admin, json!({"name": "x", "channel": "telegram",
            "settings": {"bot_token": BOT, "secret_token": "no spaces allowed", "api_base_url": t.sb.base_url()}}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("secret_token"))
    );
    // Changing the secret sets the webhook again.
    t.app
        .ok(
            Method::PATCH,
            &format!("/api/v1/inboxes/{}", t.inbox),
            &t.app.admin,
            Some(json!({"settings": {"secret_token": "s3cr3t"}})),
        )
        .await;
    assert_eq!(t.sb.telegram_webhook(BOT).unwrap().1, "s3cr3t");
}

#[tokio::test]
async fn the_secret_token_header_is_checked() {
    let t = Tg::start().await;
    t.app
        .ok(
            Method::PATCH,
            &format!("/api/v1/inboxes/{}", t.inbox),
            &t.app.admin,
            Some(json!({"settings": {"secret_token": "s3cr3t"}})),
        )
        .await;
    let update = json!({"update_id": 10000, "message": {"message_id": 1365, "date": 1790000000,
        "from": {"id": CHAT, "is_bot": false, "first_name": "An", "username": "an", "language_code": "vi"},
        "chat": {"id": CHAT, "type": "private", "first_name": "An"}, "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}});
    assert_eq!(
        t.raw(&t.inbox, &update, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.raw(&t.inbox, &update, Some("s3cr3T")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.raw(&t.inbox, &update, Some("s3cr3tX")).await,
        StatusCode::UNAUTHORIZED
    );
    let other = "01000000-0000-7000-8000-000000000000";
    assert_eq!(
        t.raw(other, &update, Some("s3cr3t")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.app.count_messages().await, 0, "nothing processed");
    assert_eq!(
        t.raw(&t.inbox, &update, Some("s3cr3t")).await,
        StatusCode::OK
    );
    // The same update again (Telegram retries): processed once.
    assert_eq!(
        t.raw(&t.inbox, &update, Some("s3cr3t")).await,
        StatusCode::OK
    );
    assert_eq!(t.app.count_messages().await, 1);
    let list = t.app.conversations(&t.agent, "").await;
    assert_eq!(
        (
            list[0]["contact_name"].as_str(),
            list[0]["channel"].as_str()
        ),
        (Some("An"), Some("telegram"))
    );
}

#[tokio::test]
async fn messages_media_edits_and_button_taps() {
    let t = Tg::start().await;
    let (s, _, first) =
        t.sb.telegram_user_text(BOT, CHAT, "An", "chào shop")
            .await
            .unwrap();
    assert_eq!(s, 200);
    t.app.clock.advance_millis(10 * SEC);
    let msg = |id: i64, extra: Value| {
        let mut m = json!({"message_id": id, "date": 1790000000 + id - 100, "from": {"id": CHAT, "first_name": "An"},
            "chat": {"id": CHAT, "type": "private", "first_name": "An"}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"message": m})
    };
    let updates = [
        msg(
            101,
            json!({"photo": [{"file_id": "p-small", "file_unique_id": "a", "width": 90, "height": 90},
                                   {"file_id": "p-big", "file_unique_id": "b", "width": 1280, "height": 1280}], "caption": "mẫu này"}),
        ),
        msg(
            102,
            json!({"document": {"file_id": "d1", "file_unique_id": "d", "file_name": "don-hang.pdf", "mime_type": "application/pdf"}}),
        ),
        msg(
            103,
            json!({"voice": {"file_id": "v1", "file_unique_id": "v", "duration": 4}}),
        ),
        msg(
            104,
            json!({"sticker": {"file_id": "s1", "file_unique_id": "s", "emoji": "👍", "width": 512, "height": 512, "is_animated": false, "is_video": false, "type": "regular"}}),
        ),
        msg(
            105,
            json!({"text": "trả lời", "reply_to_message": {"message_id": first, "date": 1790000000, "chat": {"id": CHAT, "type": "private"}}}),
        ),
    ];
    for u in updates {
        assert_eq!(t.sb.telegram_update(BOT, u).await.unwrap().0, 200);
    }
    // An edit changes the stored text.
    let edit = json!({"edited_message": {"message_id": first, "date": 1790000000, "edit_date": 1790000100,
        "chat": {"id": CHAT, "type": "private"}, "from": {"id": CHAT, "first_name": "An"}, "text": "chào shop ơi"}});
    assert_eq!(t.sb.telegram_update(BOT, edit).await.unwrap().0, 200);
    // A button tap is stored and acknowledged in the webhook answer.
    t.app.clock.advance_millis(60 * SEC);
    let tap = json!({"callback_query": {"id": "4382", "from": {"id": CHAT, "first_name": "An"}, "chat_instance": "x", "data": "size_m",
        "message": {"message_id": 999, "date": 1790000000, "chat": {"id": CHAT, "type": "private"}}}});
    let (s, _, body) = t.sb.telegram_update(BOT, tap).await.unwrap();
    assert_eq!(s, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        json!({"method": "answerCallbackQuery", "callback_query_id": "4382"})
    );
    let conv = t.claimed().await;
    let thread = t.thread(&conv).await;
    let texts: Vec<&str> = thread.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "chào shop ơi",
            "[photo] mẫu này",
            "[document] don-hang.pdf",
            "[voice]",
            "[sticker] 👍",
            "trả lời",
            "[button] size_m"
        ]
    );
    assert_eq!(thread[0]["meta"]["edited"], 1);
    assert_eq!(thread[1]["kind"], "media");
    assert_eq!(thread[1]["meta"]["attachments"][0]["file_id"], "p-big");
    assert_eq!(thread[5]["meta"]["reply_to"], format!("{CHAT}:{first}"));
    assert_eq!(thread[6]["meta"]["callback_data"], "size_m");
}

#[tokio::test]
async fn no_window_and_429_retry_after_then_success_delivers_once() {
    let t = Tg::start().await;
    t.sb.telegram_user_text(BOT, CHAT, "An", "/start")
        .await
        .unwrap();
    let conv = t.claimed().await;
    // Twenty days later: Telegram has no window.
    t.app.clock.advance_millis(20 * DAY);
    let p = t
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/policy"),
            &t.agent,
            None,
        )
        .await;
    assert_eq!(
        (p["mode"].as_str(), p["window_ends_at"].as_i64()),
        (Some("no_window"), None)
    );
    t.sb.push_fault(BOT, ChannelFault::telegram_429(3));
    let (s, v) = t.reply(&conv, "Dạ shop đây").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["delivery_status"], "queued");
    let r = t.run().await;
    assert_eq!((r.sent, r.retried), (0, 1));
    assert!(t.sb.telegram_sent().is_empty());
    // retry_after is honoured: not before 3 s.
    t.app.clock.advance_millis(2 * SEC);
    assert_eq!(t.run().await, RunReport::default());
    t.app.clock.advance_millis(SEC);
    assert_eq!(t.run().await.sent, 1);
    t.app.clock.advance_millis(DAY);
    assert_eq!(t.run().await, RunReport::default());
    let sent = t.sb.telegram_sent();
    assert_eq!(sent.len(), 1, "delivered exactly once");
    assert_eq!(
        (sent[0].chat_id.as_str(), sent[0].text.as_str()),
        ("1111111", "Dạ shop đây")
    );
    let m = t.thread(&conv).await.pop().unwrap();
    assert_eq!(m["delivery_status"], "sent");
    // 4097 characters: refused before anything is queued.
    let (s, v) = t.reply(&conv, &"x".repeat(4097)).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("text"))
    );
    assert_eq!(t.thread(&conv).await.len(), 2);
}

#[tokio::test]
async fn a_blocked_bot_marks_the_customer_unreachable_until_they_write_again() {
    let t = Tg::start().await;
    t.sb.telegram_user_text(BOT, CHAT, "An", "hi")
        .await
        .unwrap();
    let conv = t.claimed().await;
    let policy = || async {
        t.app
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/policy"),
                &t.agent,
                None,
            )
            .await
    };
    assert_eq!(policy().await["unreachable"], Value::Null);
    assert_eq!(t.sb.telegram_block(BOT, CHAT).await.unwrap(), 200);
    assert_eq!(policy().await["unreachable"], "user_blocked");
    t.reply(&conv, "alo").await;
    assert_eq!(t.run().await.failed, 1);
    let m = t.thread(&conv).await.pop().unwrap();
    assert_eq!(
        (m["delivery_status"].as_str(), m["failure_reason"].as_str()),
        (Some("failed"), Some("user_blocked"))
    );
    t.sb.telegram_user_text(BOT, CHAT, "An", "mình đây")
        .await
        .unwrap();
    assert_eq!(policy().await["unreachable"], Value::Null);
    t.reply(&conv, "Dạ").await;
    assert_eq!(t.run().await.sent, 1);
}

/// The out-of-hours reply and the closing message reach a Telegram chat (no window).
#[tokio::test]
async fn automatic_messages_reach_telegram() {
    let t = Tg::start().await;
    t.app.with_automatic_messages(&t.inbox, 30).await;
    t.sb.telegram_user_text(BOT, CHAT, "Hà", "bot ơi")
        .await
        .unwrap();
    let conv = t.claimed().await;
    t.run().await;
    t.app.reply_then_silence(&t.agent, &conv, 30).await;
    t.run().await;
    let sent = t.sb.telegram_sent();
    let texts: Vec<&str> = sent.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, [OUT_OF_HOURS, "Dạ shop đây ạ", CLOSING]);
    assert!(sent.iter().all(|s| s.chat_id == CHAT.to_string()));
    let auto = t.app.automatic_messages(&t.agent, &conv).await;
    assert_eq!(auto.len(), 2);
    assert!(
        auto.iter().all(|(_, status, _)| status != "failed"),
        "{auto:?}"
    );
}

/// Buttons reach a Telegram chat as an inline keyboard (one button per row); the customer's tap
/// is a callback query, answered in the webhook's reply, stored with its data in the meta. An id
/// longer than `callback_data` takes (64 bytes) sends the numbered list instead, saying why.
#[tokio::test]
async fn buttons_arrive_on_telegram_as_an_inline_keyboard_and_taps_come_back() {
    let t = Tg::start().await;
    t.sb.telegram_user_text(BOT, CHAT, "An", "còn size M không?")
        .await
        .unwrap();
    let conv = t.claimed().await;
    let (s, v) = t
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &t.agent,
            json!({"text": "Anh chọn size nào ạ?", "buttons": [
                {"id": "m", "title": "Size M"},
                {"id": "l", "title": "Size L", "description": "65-75kg"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text"], "Anh chọn size nào ạ?");
    assert_eq!(v["meta"].get("sent_as"), None, "{v}");
    assert_eq!(v["meta"]["interactive"]["choices"]["buttons"][1]["id"], "l");
    assert_eq!(t.run().await.sent, 1);
    let sent = t.sb.telegram_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, "Anh chọn size nào ạ?");
    let keyboard: Vec<Vec<(&str, &str)>> = sent[0]
        .inline_keyboard
        .iter()
        .map(|row| {
            row.iter()
                .map(|b| (b.text.as_str(), b.callback_data.as_str()))
                .collect()
        })
        .collect();
    assert_eq!(keyboard, [[("Size M", "m")], [("Size L", "l")]]);
    // The customer taps "Size L" under that message.
    t.app.clock.advance_millis(5 * SEC);
    let (s, query, _) =
        t.sb.telegram_tap(BOT, "An", sent[0].message_id, "l")
            .await
            .unwrap();
    assert_eq!(s, 200);
    assert!(t.sb.telegram_callback_answered(BOT, &query));
    let tap = t.thread(&conv).await.pop().unwrap();
    assert_eq!(
        (
            tap["direction"].as_str(),
            tap["text"].as_str(),
            tap["meta"]["callback_data"].as_str()
        ),
        (Some("inbound"), Some("[button] Size L"), Some("l"))
    );
    // A customer cannot tap a button the message does not have.
    assert!(
        t.sb.telegram_tap(BOT, "An", sent[0].message_id, "xl")
            .await
            .is_err()
    );

    // An id over 64 bytes cannot be a callback_data: the numbered list, and why.
    let long_id = "size-".repeat(13);
    let (s, v) = t
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &t.agent,
            json!({"text": "Màu nào ạ?", "buttons": [{"id": long_id, "title": "Đỏ"}, {"id": "x", "title": "Xanh"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let numbered = "Màu nào ạ?\n\n1. Đỏ\n2. Xanh";
    assert_eq!(v["text"], numbered);
    assert_eq!(v["meta"]["sent_as"], "numbered_list");
    assert_eq!(
        v["meta"]["numbered_because"],
        json!({"reason": "choice_id_too_long", "max": 64})
    );
    assert_eq!(t.run().await.sent, 1);
    let last = t.sb.telegram_sent().pop().unwrap();
    assert_eq!(last.text, numbered);
    assert!(last.inline_keyboard.is_empty());

    // Buttons belong to a reply: a note with buttons is refused.
    let (s, v) = t
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &t.agent,
            json!({"text": "ghi chú", "kind": "note", "buttons": [{"id": "a", "title": "A"}]}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("buttons"))
    );
}

/// The sandbox refuses inline keyboards as the Bot API does: `callback_data` is 1-64 bytes.
#[tokio::test]
async fn the_sandbox_refuses_callback_data_telegram_refuses() {
    let t = Tg::start().await;
    t.sb.telegram_user_text(BOT, CHAT, "An", "hi")
        .await
        .unwrap();
    let send = |data: String| {
        let req = t
            .app
            .http
            .post(format!("{}/bot{BOT}/sendMessage", t.sb.base_url()))
            .json(&json!({"chat_id": CHAT, "text": "Chọn:",
                "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": data}]]}}));
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    for data in [String::new(), "ă".repeat(33)] {
        let (s, v) = send(data).await;
        assert_eq!(
            (s, v["description"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("Bad Request: BUTTON_DATA_INVALID")
            )
        );
    }
    assert!(t.sb.telegram_sent().is_empty());
    let (s, v) = send("ă".repeat(32)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        t.sb.telegram_sent()[0].inline_keyboard[0][0]
            .callback_data
            .len(),
        64
    );
}

async fn unread(t: &Tg) -> Value {
    t.app.conversations(&t.agent, "").await[0]["unread_count"].clone()
}

/// Telegram kinds carry their meaning into the thread; service messages are not the customer
/// writing (nothing stored, nothing unread); reactions to our messages arrive because the webhook
/// asks for them.
#[tokio::test]
async fn dice_forwards_service_messages_and_reactions() {
    let t = Tg::start().await;
    let allowed = t.sb.telegram_allowed_updates(BOT).unwrap();
    for kind in ["channel_post", "edited_channel_post", "message_reaction"] {
        assert!(allowed.iter().any(|a| a == kind), "{allowed:?}");
    }
    t.sb.telegram_user_text(BOT, CHAT, "An", "chào shop")
        .await
        .unwrap();
    let msg = |id: i64, extra: Value| {
        let mut m = json!({"message_id": id, "date": 1790000000 + id - 100, "from": {"id": CHAT, "first_name": "An"},
            "chat": {"id": CHAT, "type": "private", "first_name": "An"}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"message": m})
    };
    for u in [
        msg(201, json!({"dice": {"emoji": "🎲", "value": 4}})),
        msg(
            202,
            json!({"text": "giá?", "forward_origin": {"type": "user", "date": 1789999000,
            "sender_user": {"id": 9, "is_bot": false, "first_name": "Bảo", "last_name": "Lê"}}}),
        ),
    ] {
        assert_eq!(t.sb.telegram_update(BOT, u).await.unwrap().0, 200);
    }
    let conv = t.claimed().await;
    let before = unread(&t).await;
    assert!(before.is_number(), "{before}");
    // A service message: acknowledged, not stored, not unread.
    let pinned = msg(
        203,
        json!({"pinned_message": {"message_id": 201, "date": 1, "chat": {"id": CHAT, "type": "private"}}}),
    );
    assert_eq!(t.sb.telegram_update(BOT, pinned).await.unwrap().0, 200);
    assert_eq!(unread(&t).await, before);
    // Our reply (read: nothing unread), then the customer's reaction to it (still nothing unread).
    assert_eq!(t.reply(&conv, "Dạ 4 điểm ạ").await.0, StatusCode::CREATED);
    assert_eq!(t.run().await.sent, 1);
    let ours = t.sb.telegram_sent().last().unwrap().message_id;
    let reaction = json!({"message_reaction": {"chat": {"id": CHAT, "type": "private"}, "message_id": ours,
        "user": {"id": CHAT, "first_name": "An"}, "date": 1790000100, "old_reaction": [],
        "new_reaction": [{"type": "emoji", "emoji": "👍"}]}});
    assert_eq!(t.sb.telegram_update(BOT, reaction).await.unwrap().0, 200);
    let thread = t.thread(&conv).await;
    let texts: Vec<&str> = thread.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["chào shop", "[dice] 🎲 4", "giá?", "Dạ 4 điểm ạ"]);
    assert_eq!(thread[1]["meta"]["dice"]["value"], 4);
    assert_eq!(thread[2]["meta"]["forwarded_from"], "Bảo Lê");
    assert_eq!(thread[3]["meta"]["reactions"]["customer"]["emoji"], "👍");
    assert_eq!(unread(&t).await, 0);
}

#[tokio::test]
async fn photos_videos_and_pdfs_go_by_signed_link_with_their_captions() {
    use crate::media_out::{MB, gif, mp4, pdf, png, refused, sent};
    let t = Tg::start().await;
    t.sb.telegram_user_text(BOT, CHAT, "An", "cho xem ảnh")
        .await
        .unwrap();
    let conv = t.claimed().await;
    let (app, agent) = (&t.app, t.agent.as_str());
    sent(app, agent, &conv, "ao.png", png(5 * MB), Some("Mẫu mới")).await;
    sent(app, agent, &conv, "clip.mp4", mp4(20 * MB), None).await;
    sent(app, agent, &conv, "gia.pdf", pdf(300), Some("Bảng giá")).await;
    assert_eq!(t.run().await.sent, 3);
    let got: Vec<_> =
        t.sb.telegram_sent()
            .into_iter()
            .map(|s| {
                let (method, f) = s.file.unwrap();
                assert!(f.url.starts_with(&app.url("/media/s/")));
                (method, f.content_type, f.size, s.text)
            })
            .collect();
    assert_eq!(
        got,
        vec![
            (
                "sendPhoto".into(),
                "image/png".into(),
                5 * MB,
                "Mẫu mới".into()
            ),
            (
                "sendVideo".into(),
                "video/mp4".into(),
                20 * MB,
                String::new()
            ),
            (
                "sendDocument".into(),
                "application/pdf".into(),
                300,
                "Bảng giá".into()
            ),
        ]
    );
    // Telegram fetches at most 5 MB for a photo, 20 MB for other files, by URL.
    refused(
        app,
        agent,
        &conv,
        "ao.png",
        png(5 * MB + 1),
        "file_too_large",
        "at most 5 MB for image files on telegram",
    )
    .await;
    refused(
        app,
        agent,
        &conv,
        "dong.gif",
        gif(100),
        "file_type_not_supported",
        "image/png",
    )
    .await;
}
