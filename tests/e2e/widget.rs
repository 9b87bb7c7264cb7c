//! The live-chat widget API: private messages stay private, dedupe, identity, limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard_channels::signing::hmac_sha256_hex;

#[tokio::test]
async fn notes_and_agent_to_agent_never_reach_the_visitor() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let v = app.visitor(&inbox).await;
    let conv = app.visitor_says(&v, "Tôi muốn trả hàng").await["message"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut visitor_ws = app.ws(&format!("/widget/v1/ws?token={v}")).await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &lan_t,
        None,
    )
    .await;
    let post = |text: &'static str, kind: &'static str| {
        let (app, lan_t, conv) = (&app, &lan_t, &conv);
        async move {
            app.ok(
                Method::POST,
                &format!("/api/v1/conversations/{conv}/messages"),
                lan_t,
                Some(json!({"text": text, "kind": kind})),
            )
            .await
        }
    };
    post("khách này hay đổi trả", "note").await;
    post("nhờ Minh kiểm tra kho", "agent_to_agent").await;
    post("Dạ chị gửi giúp em mã đơn ạ", "reply").await;

    // Over the socket, the reply is the first thing the visitor gets.
    let first = visitor_ws.next().await;
    assert_eq!(first["type"], "message.created");
    assert_eq!(first["message"]["text"], "Dạ chị gửi giúp em mã đơn ạ");
    assert!(first["message"].get("sender_agent_id").is_none());

    let (s, thread) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let texts: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Tôi muốn trả hàng", "Dạ chị gửi giúp em mã đơn ạ"]);
    // The agent sees all four.
    let agent_view = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages"),
            &lan_t,
            None,
        )
        .await;
    assert_eq!(agent_view["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_same_client_message_id_twice_is_one_message() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let v = app.visitor(&inbox).await;
    let body = json!({"text": "gửi lại do mạng chập chờn", "client_message_id": "m-1"});
    let (s1, a) = app
        .call(
            Method::POST,
            "/widget/v1/messages",
            Some(&v),
            Some(body.clone()),
        )
        .await;
    let (s2, b) = app
        .call(Method::POST, "/widget/v1/messages", Some(&v), Some(body))
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(
        (a["duplicate"].as_bool(), b["duplicate"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(a["message"]["id"], b["message"]["id"]);
    let conv = a["message"]["conversation_id"].as_str().unwrap();
    let thread = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages"),
            &lan_t,
            None,
        )
        .await;
    assert_eq!(thread["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.conversations(&lan_t, "").await[0]["unread_count"], 1);

    // Another visitor may use the same client id: ids are per visitor.
    let v2 = app.visitor(&inbox).await;
    let (_, c) = app
        .call(
            Method::POST,
            "/widget/v1/messages",
            Some(&v2),
            Some(json!({"text": "x", "client_message_id": "m-1"})),
        )
        .await;
    assert_eq!(c["duplicate"], false);
}

#[tokio::test]
async fn a_visitor_reaches_only_their_own_conversation() {
    let app = TestApp::start().await;
    let (lan, _) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let a = app.visitor(&inbox).await;
    let b = app.visitor(&inbox).await;
    app.visitor_says(&a, "A's secret").await;
    app.visitor_says(&b, "B's question").await;
    let (_, thread) = app
        .call(Method::GET, "/widget/v1/messages", Some(&b), None)
        .await;
    let texts: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["B's question"]);
}

#[tokio::test]
async fn identity_hash_links_sessions_and_bad_hashes_are_refused() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let secret = app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{inbox}"),
            &app.admin,
            None,
        )
        .await["settings"]["identity_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let hash = hmac_sha256_hex(secret.as_bytes(), b"user-42");
    let session = |id: &'static str, h: String| {
        let app = &app;
        let inbox = inbox.clone();
        async move {
            app.call(
                Method::POST,
                "/widget/v1/sessions",
                None,
                Some(json!({"inbox_id": inbox, "identifier": id, "identifier_hash": h})),
            )
            .await
        }
    };
    let (s, one) = session("user-42", hash.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, two) = session("user-42", hash.clone()).await;
    app.visitor_says(one["token"].as_str().unwrap(), "from the laptop")
        .await;
    app.visitor_says(two["token"].as_str().unwrap(), "from the phone")
        .await;
    let list = app.conversations(&lan_t, "").await;
    assert_eq!(list.len(), 1, "one customer, one conversation");

    let (s, b) = session("user-43", hash).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_identity"))
    );

    app.ok(
        Method::PATCH,
        &format!("/api/v1/inboxes/{inbox}"),
        &app.admin,
        Some(json!({"settings": {"require_identity": true}})),
    )
    .await;
    let (s, b) = app
        .call(
            Method::POST,
            "/widget/v1/sessions",
            None,
            Some(json!({"inbox_id": inbox})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("identity_required"))
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/widget/v1/sessions",
            None,
            Some(json!({"inbox_id": "01000000-0000-7000-8000-000000000000"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_chatty_visitor_is_rate_limited_until_the_clock_moves() {
    let app = TestApp::start().await;
    let (lan, _) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let v = app.visitor(&inbox).await;
    for i in 0..30 {
        app.visitor_says(&v, &format!("spam {i}")).await;
    }
    let (s, b) = app
        .call(
            Method::POST,
            "/widget/v1/messages",
            Some(&v),
            Some(json!({"text": "one too many"})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    app.clock.advance_millis(2_000);
    app.visitor_says(&v, "later").await;
}

#[tokio::test]
async fn widget_answers_cors_preflight_from_any_site() {
    let app = TestApp::start().await;
    let r = app
        .http
        .request(Method::OPTIONS, app.url("/widget/v1/messages"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    // The agent API does not.
    let r = app
        .http
        .get(app.url("/api/v1/me"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// Hardening finding 2: text with a NUL from a visitor or an agent is refused with 422 before
/// anything is written (PostgreSQL refused it with a 500, and failed the visitor's neighbours).
#[tokio::test]
async fn text_with_a_nul_is_refused_before_anything_is_stored() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let (v, conv) = app
        .claimed_visitor_conversation(&inbox, &lan_t, "xin chào")
        .await;
    let contact = app.conversation(&conv).await["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = |s: StatusCode, b: &serde_json::Value, what: &str| {
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_characters")),
            "{what}: {b}"
        );
    };
    for text in ["a\u{0}b", "\u{0}", "màu\u{1b}[31m đỏ"] {
        let (s, b) = app
            .call(
                Method::POST,
                "/widget/v1/messages",
                Some(&v),
                Some(json!({"text": text})),
            )
            .await;
        refused(s, &b, "visitor message");
        for kind in ["text", "note"] {
            let (s, b) = app
                .post(
                    &format!("/api/v1/conversations/{conv}/messages"),
                    &lan_t,
                    json!({"text": text, "kind": kind}),
                )
                .await;
            refused(s, &b, kind);
        }
        let (s, b) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/contacts/{contact}"),
                Some(&lan_t),
                Some(json!({"notes": text})),
            )
            .await;
        refused(s, &b, "contact notes");
    }
    // In a search box (the query string) too: a 422, not a server error.
    let (s, b) = app.get("/api/v1/conversations?q=ch%00ao", &lan_t).await;
    refused(s, &b, "search");
    // Nothing was written: the thread still holds the visitor's first message only.
    assert_eq!(app.count_messages().await, 1);
    let c = app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{contact}"),
            &lan_t,
            None,
        )
        .await;
    assert!(c["notes"].is_null() || c["notes"] == "", "{c}");
}

/// A visitor sends a picture from the widget: stored once (a retry with the same id is the same
/// message), shown to the agent with its file (the open thread is told to fetch it again), and
/// served back to the visitor; an archive or a script in disguise is refused and nothing is kept.
#[tokio::test]
async fn a_visitor_sends_a_picture_and_the_agent_sees_it() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let (v, conv) = app
        .claimed_visitor_conversation(&inbox, &lan_t, "shop ơi")
        .await;
    let mut agent_ws = app.online(&lan_t).await;
    let upload = |name: &'static str, id: &'static str, body: Vec<u8>| {
        app.http
            .post(app.url(&format!(
                "/widget/v1/attachments?filename={name}&client_message_id={id}"
            )))
            .bearer_auth(&v)
            .body(body)
            .send()
    };
    let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0 mau vay do".to_vec();
    let r = upload("váy đỏ.jpg", "c-1", jpeg.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["duplicate"], false);
    let att = &body["message"]["attachments"][0];
    assert_eq!(att["content_type"], "image/jpeg");
    assert_eq!(att["filename"], "váy đỏ.jpg");
    let message_id = body["message"]["id"].as_str().unwrap().to_owned();
    // The agent's open thread hears of the message, then of its file.
    let seen = agent_ws
        .collect_until(|e| e["type"] == "message.updated" && e["message"]["id"] == message_id)
        .await;
    assert!(
        seen.iter()
            .any(|e| e["type"] == "message.created" && e["message"]["id"] == message_id)
    );
    let thread = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages"),
            &lan_t,
            None,
        )
        .await;
    let m = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == message_id)
        .unwrap()
        .clone();
    assert_eq!(
        (m["kind"].as_str(), m["sender_kind"].as_str()),
        (Some("media"), Some("customer"))
    );
    let url = m["attachments"][0]["url"].as_str().unwrap().to_owned();
    let got = app
        .http
        .get(app.url(&url))
        .bearer_auth(&lan_t)
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.unwrap().to_vec(), jpeg);
    // In the gallery too.
    let gallery = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/attachments"),
            &lan_t,
            None,
        )
        .await;
    assert_eq!(gallery["items"].as_array().unwrap().len(), 1);

    // The widget retried (the answer was lost): the same message, no second file.
    let r = upload("váy đỏ.jpg", "c-1", jpeg.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], message_id.as_str());
    assert_eq!(again["message"]["attachments"][0]["id"], att["id"]);
    let files = std::fs::read_dir(app.state.config.data_dir.join("media"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
        .count();
    assert_eq!(files, 1, "the retry left a second file behind");

    // What a visitor may not send: refused by its bytes whatever its name, nothing stored.
    let before = app.count_messages().await;
    for (name, bytes) in [
        ("hoa-don.zip", b"PK\x03\x04 archive".to_vec()),
        ("anh.png", b"<svg onload=alert(1)>".to_vec()),
        ("trong.png", Vec::new()),
    ] {
        let r = upload(name, "c-2", bytes).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
    }
    let too_big = vec![0xffu8; app.state.config.limits.max_upload_bytes + 1];
    let r = upload("to.jpg", "c-3", too_big).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count_messages().await, before);
    // Another visitor's token reaches nothing of this one.
    let other = app.visitor(&inbox).await;
    let r = app
        .http
        .get(app.url(att["url"].as_str().unwrap()))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
