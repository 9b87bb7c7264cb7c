//! Messenger, page comments and Instagram against the in-process Meta sandbox: webhooks (handshake,
//! signatures over raw bytes, batching, dedupe, echoes, order), the messaging-window policy at its
//! boundaries, the outbox (429, token expiry, timeouts), comments and private replies, merges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_channels::meta::signature_header;
use switchboard_core::Timestamp;
use switchboard_sandbox::meta::{Fault, PageSpec, QuickReply, Sandbox, UserSpec, meta_json};
use switchboard_server::outbox::RunReport;

const SECRET: &str = META_APP_SECRET;
const PAGE: &str = "111";
const PSID: &str = "222";
const COMMENTER: &str = "9001";
const SEC: i64 = 1_000;
const HOUR: i64 = 3_600 * SEC;
const DAY: i64 = 24 * HOUR;

struct Meta {
    app: TestApp,
    sb: Sandbox,
    agent: String,
    agent_id: String,
    inbox: String,
}

impl Meta {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(change: impl FnOnce(&mut switchboard_server::config::Config)) -> Self {
        let app = TestApp::start_configured(change).await;
        let sb = Sandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
        let inbox = create_page(&app, &sb, PAGE, "messenger", &[&agent_id]).await;
        sb.add_user(
            PAGE,
            UserSpec {
                id: PSID.into(),
                first_name: "Hà".into(),
                last_name: "Nguyễn".into(),
                profile_pic: Some(sb.picture_url(PSID)),
                commenter_id: Some(COMMENTER.into()),
            },
        );
        Self {
            app,
            sb,
            agent,
            agent_id,
            inbox,
        }
    }

    async fn run(&self) -> RunReport {
        let st = &self.app.state;
        st.outbox.run_due(self.app.clock.now_ts()).await
    }

    fn advance(&self, ms: i64) {
        self.app.clock.advance_millis(ms);
    }

    /// The single conversation of the test inbox, claimed by the agent.
    async fn claimed_conversation(&self) -> String {
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

    async fn reply(&self, conv: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &self.agent,
                body,
            )
            .await
    }

    async fn thread(&self, conv: &str) -> Vec<Value> {
        let v = self
            .app
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/messages?limit=200"),
                &self.agent,
                None,
            )
            .await;
        v["items"].as_array().unwrap().clone()
    }

    async fn policy(&self, conv: &str) -> Value {
        self.app.policy(&self.agent, conv).await
    }

    /// The test Page's app, not subscribed to message echoes (nothing settles a lost answer).
    fn page_without_echoes(&self) {
        self.sb.add_page(PageSpec {
            id: PAGE.into(),
            object: switchboard_channels::meta::Object::Page,
            token: format!("token-{PAGE}"),
            app_secret: SECRET.into(),
            webhook_url: self.app.url("/webhooks/meta"),
            echoes: false,
            private_reply_recipient_id: true,
            auto_delivery: false,
        });
    }

    /// The delivery status and failure reason of the message `sent` (a send's response) now.
    async fn status_of(&self, conv: &str, sent: &Value) -> (String, Option<String>) {
        let m = self
            .thread(conv)
            .await
            .into_iter()
            .find(|x| x["id"] == sent["id"])
            .unwrap();
        (
            m["delivery_status"].as_str().unwrap().to_owned(),
            m["failure_reason"].as_str().map(str::to_owned),
        )
    }

    async fn webhook(&self, body: &str, signature: Option<String>) -> (StatusCode, String) {
        let mut req = self
            .app
            .http
            .post(self.app.url("/webhooks/meta"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for switchboard_server::clock::ManualClock {
    fn now_ts(&self) -> Timestamp {
        switchboard_server::clock::Clock::now(self)
    }
}

/// The next `message.updated` whose delivery status is `status` (skipping repeats of earlier ones).
async fn next_status(ws: &mut Ws, status: &str) -> Value {
    loop {
        let v = ws.next_of("message.updated").await;
        if v["message"]["delivery_status"] == status {
            return v;
        }
    }
}

fn dm(page: &str, psid: &str, mid: &str, ts: i64, text: &str) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts, "message": {"mid": mid, "text": text}})
}

#[tokio::test]
async fn handshake_signature_and_size_limit() {
    let m = Meta::start().await;
    let app = &m.app;
    let get = |q: &'static str| {
        let url = app.url(&format!("/webhooks/meta?{q}"));
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        get("hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1158201444").await,
        (StatusCode::OK, "1158201444".to_owned())
    );
    assert_eq!(
        get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // channels.md's 186-byte vector with its published signature is accepted and stored.
    let body = r#"{"object":"page","entry":[{"id":"111","time":1700000000000,"messaging":[{"sender":{"id":"222"},"recipient":{"id":"111"},"timestamp":1700000000000,"message":{"mid":"m_1","text":"hi"}}]}]}"#;
    let sig = "sha256=c8689bb3bada46871eebcc7726065b6080f8766b86ea1c4cca1c718ccf7441e9";
    assert_eq!(m.webhook(body, Some(sig.into())).await.0, StatusCode::OK);
    assert_eq!(app.count_messages().await, 1);

    // The non-ASCII vector (escapes are literal bytes) verifies over the raw bytes.
    let escaped = r#"{"object":"page","entry":[{"id":"111","time":1,"messaging":[{"message":{"mid":"m_2","text":"\u00e4\u00f6\u00e5"}}]}]}"#;
    let esig = "sha256=c3d8653b1194f2ea1e301ada9f5b88941d148c73decabd7ba30a5571e017b8e2";
    assert_eq!(
        m.webhook(escaped, Some(esig.into())).await.0,
        StatusCode::OK
    );
    // A message with escapes from a real sender: stored with the decoded text.
    let msg = json!({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [dm(PAGE, PSID, "m_3", T0.millis(), "Chào shop, áo còn không? äöå")]}]});
    let raw = meta_json(&msg);
    assert!(raw.contains("\\u00e4"), "{raw}");
    let good = signature_header(SECRET, raw.as_bytes());
    // The same JSON written without escapes has other bytes: the signature of the escaped body fails.
    let reserialised = msg.to_string();
    assert_eq!(
        m.webhook(&reserialised, Some(good.clone())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(m.webhook(&raw, None).await.0, StatusCode::UNAUTHORIZED);
    let wrong = signature_header("another secret", raw.as_bytes());
    assert_eq!(
        m.webhook(&raw, Some(wrong)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count_messages().await,
        1,
        "refused bodies store nothing"
    );
    assert_eq!(m.webhook(&raw, Some(good)).await.0, StatusCode::OK);
    let conv = app.conversations(&m.agent, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let texts: Vec<String> = m
        .thread(&conv)
        .await
        .iter()
        .map(|x| x["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["hi", "Chào shop, áo còn không? äöå"]);

    // Too large: 413 with our error shape, nothing stored.
    let app2 = Meta::start_with(|c| c.webhooks.max_body_bytes = 1024).await;
    let big = json!({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [dm(PAGE, PSID, "m_big", T0.millis(), &"x".repeat(2000))]}]}).to_string();
    let s = signature_header(SECRET, big.as_bytes());
    let (status, body) = app2.webhook(&big, Some(s)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    assert_eq!(app2.app.count_messages().await, 0);
}

#[tokio::test]
async fn batched_pages_dedupe_echoes_and_order() {
    let m = Meta::start().await;
    let admin = m.app.admin.clone();
    let inbox2 = create_page(&m.app, &m.sb, "333", "messenger", &[]).await;
    let t = T0.millis() - 60 * SEC;
    // Two entries (two pages) × two events; the second page's events arrive newest first.
    let body = json!({"object": "page", "entry": [
        {"id": PAGE, "time": t, "messaging": [dm(PAGE, PSID, "m_a1", t, "one"), dm(PAGE, PSID, "m_a2", t + SEC, "two")]},
        {"id": "333", "time": t, "messaging": [dm("333", "444", "m_b2", t + 5 * SEC, "later"), dm("333", "444", "m_b1", t + 2 * SEC, "earlier")]},
    ]});
    let raw = meta_json(&body);
    let sig = signature_header(SECRET, raw.as_bytes());
    assert_eq!(m.webhook(&raw, Some(sig.clone())).await.0, StatusCode::OK);
    assert_eq!(m.app.count_messages().await, 4);
    // Meta redelivers the same body: nothing new.
    assert_eq!(m.webhook(&raw, Some(sig)).await.0, StatusCode::OK);
    assert_eq!(m.app.count_messages().await, 4);

    let list = m
        .app
        .conversations(&admin, &format!("?inbox_id={inbox2}"))
        .await;
    let conv2 = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["last_customer_message_at"], t + 5 * SEC);
    let thread: Vec<Value> = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv2}/messages"),
            &admin,
            None,
        )
        .await["items"]
        .as_array()
        .unwrap()
        .clone();
    let texts: Vec<&str> = thread.iter().map(|x| x["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["earlier", "later"], "sorted by the provider's time");

    // An echo (the page answered from Meta Business Suite) is outbound, not duplicated, and does
    // not move the window.
    let conv1 = m.claimed_conversation().await;
    let before = m.policy(&conv1).await["window_ends_at"].clone();
    let echo = json!({"object": "page", "entry": [{"id": PAGE, "time": t, "messaging": [{
        "sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": t + 30 * SEC,
        "message": {"mid": "m_echo", "is_echo": true, "app_id": 263902037430900_u64, "text": "Dạ còn ạ"}}]}]});
    let raw = meta_json(&echo);
    let sig = signature_header(SECRET, raw.as_bytes());
    m.webhook(&raw, Some(sig.clone())).await;
    m.webhook(&raw, Some(sig)).await;
    let thread = m.thread(&conv1).await;
    assert_eq!(thread.len(), 3);
    let e = &thread[2];
    assert_eq!(
        (e["direction"].as_str(), e["text"].as_str()),
        (Some("outbound"), Some("Dạ còn ạ"))
    );
    assert_eq!(e["meta"]["echo"]["from_page_inbox"], true);
    assert_eq!(
        m.policy(&conv1).await["window_ends_at"],
        before,
        "echoes never move the window"
    );
}

#[tokio::test]
async fn window_boundaries_response_human_agent_and_closed() {
    let m = Meta::start().await;
    let (s, _) =
        m.sb.customer_message(PAGE, PSID, "còn size M không?")
            .await
            .unwrap();
    assert_eq!(s, 200);
    let conv = m.claimed_conversation().await;
    let p = m.policy(&conv).await;
    assert_eq!(
        (p["mode"].as_str(), p["can_message"].as_bool()),
        (Some("open"), Some(true))
    );
    assert_eq!(p["window_ends_at"], T0.millis() + DAY);

    // 23:59:59 after the customer's message: RESPONSE.
    m.advance(DAY - SEC);
    let (s, v) = m.reply(&conv, json!({"text": "Dạ còn ạ"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["delivery_status"].as_str(), v["messaging_type"].as_str()),
        (Some("queued"), Some("RESPONSE"))
    );
    assert_eq!(m.run().await.sent, 1);
    let sent = m.sb.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].messaging_type.as_deref(), sent[0].tag.as_deref()),
        (Some("RESPONSE"), None)
    );
    m.sb.flush().await; // the echo comes back: recognised, not stored twice
    let thread = m.thread(&conv).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1]["delivery_status"], "sent");

    // 24:00:01: refused without confirmation, nothing queued.
    m.advance(2 * SEC);
    let (s, v) = m
        .reply(&conv, json!({"text": "Anh còn cần không ạ?"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "human_agent_confirmation_required");
    assert_eq!(m.policy(&conv).await["mode"], "human_agent");
    assert_eq!(m.thread(&conv).await.len(), 2);
    assert_eq!(m.run().await, RunReport::default());
    // A bot after 24 h is refused even when it claims the confirmation.
    let (s, v) = m
        .reply(
            &conv,
            json!({"text": "auto", "automated": true, "policy": {"human_agent_confirmed": true}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window_closed"))
    );
    assert_eq!(v["error"]["reason"], "human_agent_only");
    // With the confirmation: MESSAGE_TAG + HUMAN_AGENT, accepted by the sandbox.
    let (s, v) = m
        .reply(
            &conv,
            json!({"text": "Anh còn cần không ạ?", "policy": {"human_agent_confirmed": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(m.run().await.sent, 1);
    let last = m.sb.sent().pop().unwrap();
    assert_eq!(
        (last.messaging_type.as_deref(), last.tag.as_deref()),
        (Some("MESSAGE_TAG"), Some("HUMAN_AGENT"))
    );
    // A retired tag is refused by us before Meta would (code 100).
    let (s, v) = m
        .reply(&conv, json!({"text": "Đơn đã giao", "policy": {"tag": "POST_PURCHASE_UPDATE", "content": "order_status"}}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tag_not_allowed"))
    );

    // 7 days + 1 s: closed for everyone, nothing sent.
    m.advance(6 * DAY);
    let (s, v) = m
        .reply(
            &conv,
            json!({"text": "hello?", "policy": {"human_agent_confirmed": true}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("window_closed"))
    );
    assert_eq!(
        v["error"]["options"],
        json!(["wait_for_customer", "open_in_provider_app"])
    );
    let p = m.policy(&conv).await;
    assert_eq!(
        (p["mode"].as_str(), p["reason"].as_str()),
        (Some("closed"), Some("window_closed"))
    );
    assert_eq!(m.run().await, RunReport::default());
    assert_eq!(m.sb.sent().len(), 2);
    assert_eq!(m.thread(&conv).await.len(), 3);

    // The customer writes again: the window is open again.
    m.sb.customer_message(PAGE, PSID, "alo").await.unwrap();
    assert_eq!(m.policy(&conv).await["mode"], "open");
}

#[tokio::test]
async fn rate_limit_then_success_delivers_exactly_once_and_status_goes_live() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    let mut ws = m.app.ws(&format!("/api/v1/ws?token={}", m.agent)).await;
    ws.next_of("hello").await;
    m.sb.push_fault(
        PAGE,
        Fault::TooManyRequests {
            retry_after_secs: 30,
        },
    );
    let (s, v) = m.reply(&conv, json!({"text": "Dạ"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ws.next_of("message.created").await["message"]["delivery_status"],
        "queued"
    );
    let r = m.run().await;
    assert_eq!((r.sent, r.retried), (0, 1));
    assert!(m.sb.sent().is_empty());
    // Retry-After is honoured: nothing happens before 30 s.
    m.advance(29 * SEC);
    assert_eq!(m.run().await, RunReport::default());
    m.advance(SEC);
    assert_eq!(m.run().await.sent, 1);
    assert_eq!(m.run().await, RunReport::default());
    m.advance(DAY);
    assert_eq!(m.run().await, RunReport::default());
    assert_eq!(m.sb.sent().len(), 1, "delivered exactly once");
    let upd = next_status(&mut ws, "sent").await;
    assert_eq!(upd["message"]["id"].as_str(), Some(id.as_str()));

    // The customer's phone: delivered, then read — live.
    let mid = m.sb.sent()[0].mid.clone();
    m.sb.customer_receipt(PAGE, PSID, false, &[mid])
        .await
        .unwrap();
    next_status(&mut ws, "delivered").await;
    m.sb.customer_receipt(PAGE, PSID, true, &[]).await.unwrap();
    next_status(&mut ws, "read").await;
    m.sb.flush().await;
    let thread = m.thread(&conv).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1]["delivery_status"], "read");
}

#[tokio::test]
async fn token_expired_fails_with_that_reason_and_5xx_retries() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    m.sb.push_fault(PAGE, Fault::token_expired());
    let (_, v) = m.reply(&conv, json!({"text": "one"})).await;
    let r = m.run().await;
    assert_eq!((r.sent, r.failed), (0, 1));
    let thread = m.thread(&conv).await;
    let msg = thread.iter().find(|x| x["id"] == v["id"]).unwrap();
    assert_eq!(
        (
            msg["delivery_status"].as_str(),
            msg["failure_reason"].as_str()
        ),
        (Some("failed"), Some("token_expired"))
    );
    // Failed is final: never sent later.
    m.advance(DAY / 2);
    assert_eq!(m.run().await, RunReport::default());
    assert!(m.sb.sent().is_empty());

    // A 500 is retried with backoff and then goes through.
    m.sb.push_fault(PAGE, Fault::ServerError);
    m.reply(&conv, json!({"text": "two"})).await;
    assert_eq!(m.run().await.retried, 1);
    m.advance(10 * 60 * SEC);
    assert_eq!(m.run().await.sent, 1);
    assert_eq!(m.sb.sent().len(), 1);
}

#[tokio::test]
async fn a_timeout_after_meta_accepted_is_not_sent_again() {
    let m = Meta::start_with(|c| c.outbox.http_timeout_ms = 300).await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    m.sb.push_fault(PAGE, Fault::TimeoutAfterAccept);
    m.reply(&conv, json!({"text": "Dạ"})).await;
    assert_eq!(
        m.run().await.retried,
        1,
        "no answer: counted as a retryable failure"
    );
    // Meta's echo carries our marker: the row is recorded as sent.
    m.sb.flush().await;
    m.advance(HOUR);
    assert_eq!(m.run().await, RunReport::default());
    assert_eq!(m.sb.sent().len(), 1);
    assert_eq!(m.thread(&conv).await[1]["delivery_status"], "sent");
}

#[tokio::test]
async fn comment_private_reply_and_dm_answer_land_in_one_contact() {
    let m = Meta::start().await;
    let (s, comment_id) =
        m.sb.customer_comment(PAGE, PSID, "111_555", "giá bao nhiêu?")
            .await
            .unwrap();
    assert_eq!(s, 200);
    let conv = m.claimed_conversation().await;
    let thread = m.thread(&conv).await;
    assert_eq!(thread.len(), 1);
    let comment = &thread[0];
    assert_eq!(comment["kind"], "comment");
    assert_eq!(
        comment["meta"]["comment"]["post_link"],
        "https://www.facebook.com/111_555"
    );
    let summary = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}"),
            &m.agent,
            None,
        )
        .await;
    assert_eq!(summary["contact_name"], "Hà Nguyễn");
    // No messaging id yet: a normal DM is impossible, the private reply is the way.
    assert_eq!(m.policy(&conv).await["can_message"], false);
    let (s, v) = m.reply(&conv, json!({"text": "Dạ"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_messaging_id"))
    );

    let action = |body: Value| {
        let path = format!(
            "/api/v1/messages/{}/comment-actions",
            comment["id"].as_str().unwrap()
        );
        let app = &m.app;
        let token = m.agent.clone();
        async move { app.post(&path, &token, body).await }
    };
    let (s, v) = action(json!({"action": "private_reply", "text": "Em inbox anh giá nhé"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(m.run().await.sent, 1);
    let sent = m.sb.sent();
    assert_eq!(
        (
            sent[0].comment_id.as_deref(),
            sent[0].messaging_type.as_deref()
        ),
        (Some(comment_id.as_str()), None)
    );
    // Once per comment.
    let (s, v) = action(json!({"action": "private_reply", "text": "again"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("private_reply_already_sent")
        )
    );

    // The Send API answered with the PSID: the customer's DM joins the same contact and thread.
    m.sb.flush().await;
    m.sb.customer_message(PAGE, PSID, "ok em, size M")
        .await
        .unwrap();
    let list = m.app.conversations(&m.agent, "").await;
    assert_eq!(list.len(), 1, "one contact, one history: {list:?}");
    let thread = m.thread(&conv).await;
    let kinds: Vec<(&str, &str)> = thread
        .iter()
        .map(|x| {
            (
                x["direction"].as_str().unwrap(),
                x["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("inbound", "comment"),
            ("outbound", "text"),
            ("inbound", "text")
        ]
    );
    let contact = list[0]["contact_id"].as_str().unwrap();
    let c = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{contact}"),
            &m.agent,
            None,
        )
        .await;
    let mut ids: Vec<&str> = c["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["external_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [PSID, format!("commenter:{COMMENTER}").as_str()]);
    assert_eq!(m.policy(&conv).await["can_message"], true);

    // Public reply, like, hide: each reaches the Graph API and shows on the comment.
    assert_eq!(
        action(json!({"action": "reply", "text": "Đã inbox ạ"}))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(m.run().await.sent, 1);
    let (s, v) = action(json!({"action": "like"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["meta"]["comment"]["liked"], true);
    let (_, v) = action(json!({"action": "hide"})).await;
    assert_eq!(v["meta"]["comment"]["hidden"], true);
    let ops: Vec<String> = m.sb.ops().iter().map(|o| o.what.clone()).collect();
    assert_eq!(ops, ["reply:Đã inbox ạ", "like", "hide"]);

    // A second comment, 7 days + 1 s later: too late for a private reply.
    let (_, _) =
        m.sb.customer_comment(PAGE, PSID, "111_556", "còn không?")
            .await
            .unwrap();
    m.advance(7 * DAY + SEC);
    let second = m
        .thread(&conv)
        .await
        .into_iter()
        .rev()
        .find(|x| x["kind"] == "comment" && x["direction"] == "inbound")
        .unwrap();
    let (s, v) = m
        .app
        .post(
            &format!(
                "/api/v1/messages/{}/comment-actions",
                second["id"].as_str().unwrap()
            ),
            &m.agent,
            json!({"action": "private_reply", "text": "late"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("private_reply_expired")
        )
    );
    assert_eq!(m.run().await, RunReport::default());
}

/// #22 defect: a private reply to a customer who had written to the Page before merged the
/// comment the agent holds into the customer's other, unassigned conversation — back to the pool,
/// the agent's reply left "waiting to send". Now the held conversation goes on, the other one's
/// messages join it, the history says so, and the agents' lists are told at once.
#[tokio::test]
async fn a_private_reply_to_a_known_customer_keeps_the_holder_and_the_conversation() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "chào shop")
        .await
        .unwrap();
    m.sb.customer_comment(PAGE, PSID, "111_555", "giá bao nhiêu?")
        .await
        .unwrap();
    let list = m
        .app
        .conversations(&m.agent, &format!("?inbox_id={}", m.inbox))
        .await;
    assert_eq!(
        list.len(),
        2,
        "a DM and a comment, not linked yet: {list:?}"
    );
    let mut comment_conv = String::new();
    let mut dm_conv = String::new();
    for c in &list {
        let id = c["id"].as_str().unwrap().to_owned();
        if m.thread(&id).await[0]["kind"] == "comment" {
            comment_conv = id;
        } else {
            dm_conv = id;
        }
    }
    m.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{comment_conv}/claim"),
            &m.agent,
            None,
        )
        .await;
    let mut ws = m.app.ws(&format!("/api/v1/ws?token={}", m.agent)).await;
    let comment = m.thread(&comment_conv).await[0].clone();
    let (s, v) = m
        .app
        .post(
            &format!(
                "/api/v1/messages/{}/comment-actions",
                comment["id"].as_str().unwrap()
            ),
            &m.agent,
            json!({"action": "private_reply", "text": "Em inbox anh giá nhé"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The Send API answers with the PSID, which belongs to the customer's DM contact: a merge.
    let r = m.run().await;
    assert_eq!(r.sent, 1, "{r:?}");

    let c = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{comment_conv}"),
            &m.agent,
            None,
        )
        .await;
    assert_eq!(
        (c["status"].as_str(), c["assignee_id"].as_str()),
        (Some("open"), Some(m.agent_id.as_str())),
        "the agent still holds the conversation: {c}"
    );
    let (s, _) = m
        .app
        .get(&format!("/api/v1/conversations/{dm_conv}"), &m.agent)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the DM conversation was absorbed");
    let list = m
        .app
        .conversations(&m.agent, &format!("?inbox_id={}", m.inbox))
        .await;
    assert_eq!(list.len(), 1, "{list:?}");
    let thread = m.thread(&comment_conv).await;
    let texts: Vec<&str> = thread.iter().map(|x| x["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["chào shop", "giá bao nhiêu?", "Em inbox anh giá nhé"],
        "one thread, in time order"
    );
    assert_eq!(
        thread[2]["delivery_status"], "sent",
        "the reply is not left waiting"
    );
    let merged: Vec<Value> = m
        .app
        .history(&comment_conv)
        .await
        .into_iter()
        .filter(|a| a["kind"] == "merged")
        .collect();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0]["detail"]["reason"], "private_reply");
    assert_eq!(
        merged[0]["detail"]["absorbed_conversation_id"],
        dm_conv.as_str()
    );
    // Pushed live: the agents' lists learn which conversation went away.
    let e = loop {
        let e = ws.next().await;
        if e["merged_conversation_id"] == dm_conv.as_str() {
            break e;
        }
    };
    assert_eq!(e["conversation_id"], comment_conv.as_str());
}

#[tokio::test]
async fn manual_merge_is_undoable() {
    let m = Meta::start().await;
    // Another person DMs; someone comments without ever being linked.
    m.sb.customer_message(PAGE, PSID, "hello").await.unwrap();
    m.sb.add_user(
        PAGE,
        UserSpec {
            id: "777".into(),
            first_name: "Lan".into(),
            commenter_id: Some("8888".into()),
            ..UserSpec::default()
        },
    );
    m.sb.customer_comment(PAGE, "777", "111_1", "hi")
        .await
        .unwrap();
    let list = m.app.conversations(&m.agent, "").await;
    assert_eq!(list.len(), 2);
    let (a, b) = (
        list[0]["contact_id"].as_str().unwrap(),
        list[1]["contact_id"].as_str().unwrap(),
    );
    let (s, merge) = m
        .app
        .post(
            &format!("/api/v1/contacts/{a}/merge"),
            &m.agent,
            json!({"into_contact_id": b}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{merge}");
    let list = m.app.conversations(&m.agent, "").await;
    assert_eq!(list.len(), 1);
    let conv = list[0]["id"].as_str().unwrap();
    assert_eq!(m.thread(conv).await.len(), 2);
    let undo = format!(
        "/api/v1/contact-merges/{}/undo",
        merge["id"].as_str().unwrap()
    );
    assert_eq!(
        m.app.post(&undo, &m.agent, json!({})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        m.app.post(&undo, &m.agent, json!({})).await.0,
        StatusCode::CONFLICT
    );
    let list = m.app.conversations(&m.agent, "").await;
    assert_eq!(list.len(), 2);
    for c in &list {
        assert_eq!(m.thread(c["id"].as_str().unwrap()).await.len(), 1);
    }
}

#[tokio::test]
async fn profile_sync_and_instagram() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    assert_eq!(m.run().await.profiles, 1);
    let list = m.app.conversations(&m.agent, "").await;
    assert_eq!(list[0]["contact_name"], "Hà Nguyễn");
    let contact = list[0]["contact_id"].as_str().unwrap();
    let c = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{contact}"),
            &m.agent,
            None,
        )
        .await;
    // The picture is our copy (Meta's CDN URLs expire).
    assert_eq!(
        c["avatar_url"]
            .as_str()
            .map(|u| u.starts_with(&format!("/api/v1/contacts/{contact}/avatar?v="))),
        Some(true),
        "{c}"
    );
    // Secrets never come back from the API, not even to admins.
    let inbox = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{}", m.inbox),
            &m.app.admin,
            None,
        )
        .await;
    assert!(
        inbox["settings"].get("page_access_token").is_none(),
        "{inbox}"
    );
    assert_eq!(
        inbox["settings"]["secrets_set"],
        json!(["page_access_token", "app_secret", "verify_token"])
    );

    // Instagram: routed by the IG account id; HUMAN_AGENT after 24 h; comments by IGSID.
    let ig = create_page(&m.app, &m.sb, "17841", "instagram", &[&m.agent_id]).await;
    m.sb.add_user(
        "17841",
        UserSpec {
            id: "IGSID1".into(),
            first_name: "jo".into(),
            ..UserSpec::default()
        },
    );
    m.sb.customer_comment("17841", "IGSID1", "M1", "price?")
        .await
        .unwrap();
    m.sb.customer_message("17841", "IGSID1", "hi")
        .await
        .unwrap();
    let list = m
        .app
        .conversations(&m.agent, &format!("?inbox_id={ig}"))
        .await;
    assert_eq!(list.len(), 1, "an IG comment and DM share the IGSID");
    let conv = list[0]["id"].as_str().unwrap().to_owned();
    m.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim"),
            &m.agent,
            None,
        )
        .await;
    m.advance(DAY + SEC);
    let (s, v) = m
        .reply(
            &conv,
            json!({"text": "x", "policy": {"tag": "ACCOUNT_UPDATE", "content": "account_alert"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tag_not_allowed"))
    );
    let (s, _) = m
        .reply(
            &conv,
            json!({"text": "Dạ", "policy": {"human_agent_confirmed": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    m.run().await;
    let last = m.sb.sent().pop().unwrap();
    assert_eq!(
        (last.page_id.as_str(), last.tag.as_deref()),
        ("17841", Some("HUMAN_AGENT"))
    );
}

#[tokio::test]
async fn the_production_worker_sends_on_its_own() {
    let m = Meta::start_with(|c| c.outbox.worker = true).await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    let mut ws = m.app.ws(&format!("/api/v1/ws?token={}", m.agent)).await;
    ws.next_of("hello").await;
    let (_, v) = m.reply(&conv, json!({"text": "Dạ"})).await;
    let upd = next_status(&mut ws, "sent").await;
    assert_eq!(upd["message"]["id"], v["id"]);
    assert_eq!(m.sb.sent().len(), 1);
}

#[tokio::test]
async fn two_workers_never_send_a_row_twice() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    for i in 0..10 {
        let (s, _) = m.reply(&conv, json!({"text": format!("reply {i}")})).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let st = &m.app.state;
    let now = switchboard_server::clock::Clock::now(&m.app.clock);
    let (a, b) = tokio::join!(st.outbox.run_due(now), st.outbox.run_due(now));
    assert_eq!(a.sent + b.sent, 10);
    let mut texts: Vec<String> = m.sb.sent().into_iter().map(|s| s.text).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 10, "each row exactly once");
    assert_eq!(m.sb.sent().len(), 10);
}

#[tokio::test]
async fn a_message_that_waited_past_the_window_fails_with_metas_window_error() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    // Queued inside the window (23:59:59), but the provider is down until after it closes.
    m.advance(DAY - SEC);
    m.sb.push_fault(PAGE, Fault::ServerError);
    let (s, _) = m.reply(&conv, json!({"text": "Dạ"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(m.run().await.retried, 1);
    m.advance(HOUR);
    let r = m.run().await;
    assert_eq!((r.sent, r.failed), (0, 1));
    let msg = m.thread(&conv).await.pop().unwrap();
    // The sandbox answered 10/2018278, as Meta does.
    assert_eq!(
        (
            msg["delivery_status"].as_str(),
            msg["failure_reason"].as_str()
        ),
        (Some("failed"), Some("window_closed"))
    );
    assert!(m.sb.sent().is_empty());
}

#[tokio::test]
async fn the_outbox_gives_up_after_its_horizon() {
    let m = Meta::start_with(|c| c.outbox.give_up_after_secs = 60).await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    for _ in 0..20 {
        m.sb.push_fault(PAGE, Fault::ServerError);
    }
    m.reply(&conv, json!({"text": "Dạ"})).await;
    let mut failed = 0;
    for _ in 0..20 {
        let r = m.run().await;
        failed += r.failed;
        if failed > 0 {
            break;
        }
        m.advance(10 * SEC);
    }
    assert_eq!(failed, 1);
    let msg = m.thread(&conv).await.pop().unwrap();
    assert_eq!(
        (
            msg["delivery_status"].as_str(),
            msg["failure_reason"].as_str()
        ),
        (Some("failed"), Some("provider_unavailable"))
    );
    assert!(switchboard_server::clock::Clock::now(&m.app.clock).millis() - T0.millis() <= 70 * SEC);
}

#[tokio::test]
async fn a_phone_or_email_shared_by_quick_reply_fills_the_profile_once() {
    let m = Meta::start().await;
    let now = m.app.clock.now_ts().millis();
    let shared = |mid: &str, payload: &str, ts: i64| {
        json!({"object": "page", "entry": [{"id": PAGE, "time": ts, "messaging": [{
            "sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": ts,
            "message": {"mid": mid, "text": payload, "quick_reply": {"payload": payload}}}]}]})
        .to_string()
    };
    for (mid, payload, dt) in [
        ("m_p", "+84 912 345 678", 0),
        ("m_e", "Ha@Shop.vn", 1),
        ("m_p2", "0900000000", 2),
    ] {
        let body = shared(mid, payload, now + dt);
        let (s, _) = m
            .webhook(&body, Some(signature_header(SECRET, body.as_bytes())))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let list = m.app.conversations(&m.agent, "").await;
    let contact = list[0]["contact_id"].as_str().unwrap();
    let c = m
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{contact}"),
            &m.agent,
            None,
        )
        .await;
    // Normalised, and the first phone shared is kept: a later one does not overwrite it.
    assert_eq!(
        (c["phone"].as_str(), c["email"].as_str()),
        (Some("+84912345678"), Some("ha@shop.vn"))
    );
}

/// Hardening finding 2: on PostgreSQL a NUL in one customer's text failed every webhook in its
/// group-commit batch, and Meta redelivered it forever.
#[tokio::test]
async fn a_nul_in_a_customers_message_is_dropped_and_poisons_nothing() {
    let m = Meta::start().await;
    let hook = |i: usize, text: &str| {
        let body = json!({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
            dm(PAGE, PSID, &format!("m_nul_{i}"), T0.millis() + i as i64, text)]}]});
        meta_json(&body)
    };
    // Forty webhooks at once (so they share batches), every fourth with NULs and other controls,
    // in the text and in the extras.
    let bodies: Vec<String> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                hook(i, &format!("áo\u{0} số {i}\u{1}\u{7f}"))
            } else {
                hook(i, &format!("áo số {i}"))
            }
        })
        .collect();
    let mut sends = Vec::new();
    for body in &bodies {
        let sig = signature_header(SECRET, body.as_bytes());
        sends.push(m.webhook(body, Some(sig)));
    }
    for (status, body) in futures_util::future::join_all(sends).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let conv = m.claimed_conversation().await;
    let thread = m.thread(&conv).await;
    assert_eq!(thread.len(), 40);
    let texts: Vec<&str> = thread.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"áo số 0"), "{texts:?}");
    assert!(
        texts
            .iter()
            .all(|t| !t.contains(['\u{0}', '\u{1}', '\u{7f}']))
    );
    // A redelivery is a duplicate, not a failure.
    let sig = signature_header(SECRET, bodies[0].as_bytes());
    assert_eq!(m.webhook(&bodies[0], Some(sig)).await.0, StatusCode::OK);
    assert_eq!(m.thread(&conv).await.len(), 40);
}

/// The out-of-hours reply and the closing message reach a Messenger customer inside the window,
/// through the same send and policy as an agent's reply.
#[tokio::test]
async fn automatic_messages_reach_messenger_inside_the_window() {
    let m = Meta::start().await;
    m.app.with_automatic_messages(&m.inbox, 30).await;
    let (s, _) =
        m.sb.customer_message(PAGE, PSID, "shop còn mở không?")
            .await
            .unwrap();
    assert_eq!(s, 200);
    let conv = m.claimed_conversation().await;
    m.run().await;
    m.app.reply_then_silence(&m.agent, &conv, 30).await;
    m.run().await;
    let texts: Vec<String> = m.sb.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, [OUT_OF_HOURS, "Dạ shop đây ạ", CLOSING]);
    let sent = m.sb.sent();
    assert!(sent.iter().all(|s| s.recipient_id.as_deref() == Some(PSID)
        && s.messaging_type.as_deref() == Some("RESPONSE")));
    let auto = m.app.automatic_messages(&m.agent, &conv).await;
    assert_eq!(
        auto,
        [
            (OUT_OF_HOURS.to_owned(), "sent".to_owned(), None),
            (CLOSING.to_owned(), "sent".to_owned(), None)
        ]
    );
    assert_eq!(m.app.count_actions(&conv, "auto_replied").await, 1);
}

/// Past 24 hours only a person may still answer on Messenger (HUMAN_AGENT): the closing message is
/// refused, stored with `window_closed`, shown in the thread and the history, and never sent.
#[tokio::test]
async fn a_closing_message_past_24_hours_is_refused_visibly_and_never_sent() {
    let m = Meta::start().await;
    m.app.with_automatic_messages(&m.inbox, 25 * 60).await;
    m.sb.customer_message(PAGE, PSID, "áo này còn size M không?")
        .await
        .unwrap();
    let conv = m.claimed_conversation().await;
    m.run().await;
    let before = m.sb.sent().len();
    let mut ws = m.app.online(&m.agent).await;
    let (s, v) = m.reply(&conv, json!({"text": "Dạ còn ạ"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(m.run().await.sent, 1);
    m.app.advance_minutes(25 * 60);
    assert_eq!(m.app.tick().await.fired, 1);
    assert_eq!(m.app.conversation(&conv).await["status"], "resolved");
    assert_eq!(m.run().await, RunReport::default(), "nothing more goes out");
    assert_eq!(m.sb.sent().len(), before + 1);
    assert!(m.sb.sent().iter().all(|s| s.text != CLOSING));
    let auto = m.app.automatic_messages(&m.agent, &conv).await;
    assert_eq!(
        auto.last().unwrap(),
        &(
            CLOSING.to_owned(),
            "failed".to_owned(),
            Some("window_closed".to_owned())
        )
    );
    let refused: Vec<Value> = m
        .app
        .history(&conv)
        .await
        .into_iter()
        .filter(|h| h["kind"] == "automatic_message_refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (
            refused[0]["detail"]["purpose"].as_str(),
            refused[0]["detail"]["reason"].as_str()
        ),
        (Some("closing_message"), Some("window_closed"))
    );
    // The agents' screens hear of it like of any message.
    let created = ws
        .collect_until(|e| e["type"] == "message.created" && e["message"]["text"] == CLOSING)
        .await;
    let last = created.last().unwrap();
    assert_eq!(last["message"]["delivery_status"], "failed");
}

/// The reply deadline never takes back a conversation nobody could answer: a Messenger customer
/// silent for 8 days cannot be messaged (not even with `HUMAN_AGENT`), so the overdue deadline
/// lapses — the holder keeps the customer and the history says why. The customer's next message
/// starts a new deadline that works as usual.
#[tokio::test]
async fn an_overdue_reply_deadline_past_the_window_lapses_instead_of_taking_the_customer_back() {
    let m = Meta::start().await;
    m.app
        .set_routing(
            &m.inbox,
            json!({"strategy": "self_claim", "reply_sla_minutes": 5}),
        )
        .await;
    m.sb.customer_message(PAGE, PSID, "áo này còn không shop?")
        .await
        .unwrap();
    let conv = m.claimed_conversation().await;
    assert!(m.app.conversation(&conv).await["reply_due_at"].is_i64());
    // The timers stood still for 8 days (the service was down): now nobody could answer.
    m.advance(8 * DAY);
    assert_eq!(m.app.tick().await.fired, 1);
    let c = m.app.conversation(&conv).await;
    assert_eq!(
        (c["status"].as_str(), c["assignee_id"].as_str()),
        (Some("open"), Some(m.agent_id.as_str()))
    );
    assert!(c["reply_due_at"].is_null());
    assert_eq!(m.app.count_actions(&conv, "returned_to_pool").await, 0);
    let lapsed: Vec<Value> = m
        .app
        .history(&conv)
        .await
        .into_iter()
        .filter(|h| h["kind"] == "reply_deadline_lapsed")
        .collect();
    assert_eq!(lapsed.len(), 1);
    assert_eq!(
        (
            lapsed[0]["detail"]["reason"].as_str(),
            lapsed[0]["detail"]["agent_id"].as_str()
        ),
        (Some("customer_unreachable"), Some(m.agent_id.as_str()))
    );
    m.app.advance_minutes(60);
    assert_eq!(m.app.tick().await.fired, 0, "nothing left to fire");

    // The customer writes again: the window is open, the deadline runs and takes it back.
    m.sb.customer_message(PAGE, PSID, "alo shop?")
        .await
        .unwrap();
    m.app.advance_minutes(5);
    assert_eq!(m.app.tick().await.fired, 1);
    assert_eq!(m.app.conversation(&conv).await["assignee_id"], Value::Null);
    assert_eq!(m.app.count_actions(&conv, "returned_to_pool").await, 1);
}

/// A Page removed from Switchboard must not endanger the others: Meta retries a failed webhook
/// and in the end disables the app's webhook for every Page. Signed by our app: 200, and only the
/// entries of Pages we hold are stored. Not signed by any app of ours: 401.
#[tokio::test]
async fn a_webhook_for_a_page_we_do_not_hold_is_acknowledged_and_stores_nothing() {
    let m = Meta::start().await;
    let signed = |body: &Value| {
        let raw = meta_json(body);
        let sig = signature_header(SECRET, raw.as_bytes());
        (raw, sig)
    };
    let gone = json!({"object": "page", "entry": [{"id": "555", "time": 1, "messaging": [
        dm("555", PSID, "m_gone_1", T0.millis(), "trang cũ")]}]});
    let (raw, sig) = signed(&gone);
    assert_eq!(m.webhook(&raw, Some(sig)).await.0, StatusCode::OK);
    assert_eq!(m.app.count_messages().await, 0);
    // Signed by someone else's app: refused, as before.
    let forged = signature_header("not_our_secret", raw.as_bytes());
    assert_eq!(
        m.webhook(&raw, Some(forged)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // One webhook for a Page we hold and one we do not: the known Page's event only.
    let mixed = json!({"object": "page", "entry": [
        {"id": "555", "time": 1, "messaging": [dm("555", PSID, "m_gone_2", T0.millis(), "trang cũ")]},
        {"id": PAGE, "time": 1, "messaging": [dm(PAGE, PSID, "m_known_1", T0.millis(), "trang mới")]}]});
    let (raw, sig) = signed(&mixed);
    assert_eq!(m.webhook(&raw, Some(sig)).await.0, StatusCode::OK);
    let conv = m.claimed_conversation().await;
    let texts: Vec<String> = m
        .thread(&conv)
        .await
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["trang mới"]);
}

/// Hardening finding 3: an unsigned body naming 150,000 accounts cost two lookups per id before
/// the signature was checked. Now many ids mean "verify first": refused, nothing stored.
#[tokio::test]
async fn an_unsigned_body_naming_many_accounts_is_refused_before_any_lookup_per_account() {
    let m = Meta::start().await;
    let mut raw = String::from(r#"{"object":"page","entry":["#);
    for i in 0..150_000 {
        if i > 0 {
            raw.push(',');
        }
        raw.push_str(&format!(r#"{{"id":"{}","time":1}}"#, 10_000_000 + i));
    }
    raw.push_str("]}");
    assert!(raw.len() < 4 * 1024 * 1024);
    let forged = signature_header("not_our_secret", raw.as_bytes());
    let (s, body) = m.webhook(&raw, Some(forged)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    assert_eq!(m.app.count_messages().await, 0);
}

/// Hardening finding 5: a provider that accepted a send but answered after our timeout got the
/// message again. Without an echo to settle it, the send is never repeated: after a while it is
/// reported `delivery_unknown`, and the customer has it once.
#[tokio::test]
async fn a_send_whose_answer_was_lost_is_never_repeated() {
    let m = Meta::start_with(|c| c.outbox.http_timeout_ms = 300).await;
    // This Page's app is not subscribed to message echoes.
    m.page_without_echoes();
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    m.sb.push_fault(PAGE, Fault::TimeoutAfterAccept);
    let (_, v) = m.reply(&conv, json!({"text": "Dạ"})).await;
    assert_eq!(m.run().await.retried, 1, "held, waiting for an echo");
    assert_eq!(m.sb.sent().len(), 1, "Meta has it");
    // The retry backoff passes: still not sent again.
    m.advance(5 * 60 * SEC);
    assert_eq!(m.run().await, RunReport::default());
    // No echo, no status: the agent is told, the message is not sent again.
    m.advance(6 * 60 * SEC);
    assert_eq!(m.run().await.failed, 1);
    m.advance(DAY);
    assert_eq!(m.run().await, RunReport::default());
    assert_eq!(m.sb.sent().len(), 1, "the customer got it once");
    assert_eq!(
        m.status_of(&conv, &v).await,
        ("failed".to_owned(), Some("delivery_unknown".to_owned()))
    );
}

/// Crash soak (bench `soak`): the server was killed while a reply's request was out; after the
/// dead worker's lease ran out the next worker sent the row again and the customer got it twice.
/// A row taken over from a dead worker is reported `delivery_unknown` instead, never resent.
#[tokio::test]
async fn a_send_cut_off_by_a_crash_is_never_repeated() {
    let m = Meta::start_with(|c| c.outbox.http_timeout_ms = 120_000).await;
    // No echo to settle it (the server was down when it would have come).
    m.page_without_echoes();
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    // Meta accepts the send and the worker dies before the answer: its run is dropped mid-call.
    m.sb.push_fault(PAGE, Fault::TimeoutAfterAccept);
    let (_, v) = m.reply(&conv, json!({"text": "Dạ"})).await;
    let outbox = m.app.state.outbox.clone();
    let now = m.app.clock.now_ts();
    let worker = tokio::spawn(async move { outbox.run_due(now).await });
    for _ in 0..200 {
        if !m.sb.sent().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    worker.abort();
    let _ = worker.await;
    assert_eq!(m.sb.sent().len(), 1, "Meta has it");
    // Leased to the dead worker: nobody touches it meanwhile.
    m.advance(60 * SEC);
    let r = m.run().await;
    assert_eq!((r.sent, r.retried, r.failed), (0, 0, 0));
    // The lease runs out: the next worker takes it over and reports it, without sending.
    m.advance(5 * 60 * SEC);
    assert_eq!(m.run().await.failed, 1);
    m.advance(DAY);
    assert_eq!(m.run().await, RunReport::default());
    assert_eq!(m.sb.sent().len(), 1, "the customer got it once");
    assert_eq!(
        m.status_of(&conv, &v).await,
        ("failed".to_owned(), Some("delivery_unknown".to_owned()))
    );
}

/// Hardening finding 7: replies retried after faults reached the customer out of order. A
/// conversation's messages go out in the order they were written, whatever fails in between.
#[tokio::test]
async fn replies_reach_the_customer_in_order_through_retries() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let conv = m.claimed_conversation().await;
    // The first reply meets a 500; the next four are written before it is retried.
    m.sb.push_fault(PAGE, Fault::ServerError);
    m.reply(&conv, json!({"text": "0"})).await;
    assert_eq!(m.run().await.retried, 1);
    for i in 1..5 {
        m.reply(&conv, json!({"text": i.to_string()})).await;
    }
    // Due now, but behind the one waiting for its retry: nothing overtakes it.
    let r = m.run().await;
    assert_eq!((r.sent, r.retried), (0, 4));
    assert!(m.sb.sent().is_empty());
    // Another 500 on the retry: the others keep waiting behind it.
    m.sb.push_fault(PAGE, Fault::ServerError);
    m.advance(10 * 60 * SEC);
    m.run().await;
    assert!(m.sb.sent().is_empty());
    m.advance(60 * 60 * SEC);
    while m.run().await != RunReport::default() {
        m.advance(60 * SEC);
    }
    let order: Vec<String> = m.sb.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(order, ["0", "1", "2", "3", "4"]);
}

/// Hardening finding 6: the outbox sent one message at a time, so a Page whose calls hang held up
/// every other inbox. Here one Page never answers while another's reply goes out.
#[tokio::test]
async fn a_hanging_page_does_not_hold_up_another_inbox() {
    let m = Meta::start_with(|c| c.outbox.http_timeout_ms = 120_000).await;
    let other = create_page(&m.app, &m.sb, "333", "messenger", &[&m.agent_id]).await;
    m.sb.add_user(
        "333",
        UserSpec {
            id: "444".into(),
            first_name: "Lan".into(),
            last_name: "Trần".into(),
            profile_pic: None,
            commenter_id: None,
        },
    );
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    m.sb.customer_message("333", "444", "chào").await.unwrap();
    let hanging = m.claimed_conversation().await;
    for _ in 0..3 {
        m.sb.push_fault(PAGE, Fault::Timeout);
    }
    m.reply(&hanging, json!({"text": "trang treo"})).await;
    let list = m
        .app
        .conversations(&m.agent, &format!("?inbox_id={other}"))
        .await;
    let conv = list[0]["id"].as_str().unwrap().to_owned();
    m.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim"),
            &m.agent,
            None,
        )
        .await;
    m.reply(&conv, json!({"text": "trang chạy"})).await;
    let st = m.app.state.clone();
    let now = m.app.clock.now_ts();
    let run = tokio::spawn(async move { st.outbox.run_due(now).await });
    // The other Page's reply arrives while the first Page's call is still hanging.
    let delivered = async {
        while !m.sb.sent().iter().any(|s| s.text == "trang chạy") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), delivered)
        .await
        .expect("the second Page's reply went out while the first hung");
    assert!(!run.is_finished(), "the first Page is still hanging");
    run.abort();
}

/// A bot's private reply goes through the same `send` and obeys the same rule as a person's:
/// refused 7 days + 1 s after the comment (nothing queued), accepted within, shown as the bot's.
#[tokio::test]
async fn an_automated_private_reply_obeys_the_private_reply_rule() {
    let m = Meta::start().await;
    let (_, first) =
        m.sb.customer_comment(PAGE, PSID, "111_555", "giá bao nhiêu?")
            .await
            .unwrap();
    m.sb.customer_comment(PAGE, PSID, "111_556", "còn không?")
        .await
        .unwrap();
    let conv = m.claimed_conversation().await;
    let comments: Vec<String> = m
        .thread(&conv)
        .await
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    let bot = |comment: &str, hours: i64| {
        let path = format!("/api/v1/messages/{comment}/comment-actions");
        let app = &m.app;
        let token = m.agent.clone();
        m.advance(hours * HOUR);
        async move {
            app.post(
                &path,
                &token,
                json!({"action": "private_reply", "text": "Em inbox ạ", "automated": true}),
            )
            .await
        }
    };
    let (s, v) = bot(&comments[0], 6 * 24).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["sender_kind"].as_str(), v["kind"].as_str()),
        (Some("bot"), Some("text"))
    );
    assert_eq!(v["meta"]["private_reply_to"]["comment_id"], first.as_str());
    assert_eq!(m.run().await.sent, 1);
    // The other comment, 7 days + 1 s after it was written: too late, for a bot too.
    m.advance(SEC);
    let (s, v) = bot(&comments[1], 24).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("private_reply_expired")
        )
    );
    assert_eq!(m.run().await, RunReport::default());
    assert_eq!(m.sb.sent().len(), 1);
}

fn quick(title: &str, payload: &str) -> QuickReply {
    QuickReply {
        title: title.into(),
        payload: payload.into(),
    }
}

/// Buttons on Messenger and Instagram go out as quick replies, and the customer's tap comes back
/// with its payload in the message's meta. Choices quick replies cannot carry go out as the
/// numbered list, saying why.
#[tokio::test]
async fn buttons_go_out_as_quick_replies_and_a_tap_comes_back_with_its_payload() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "còn size M không?")
        .await
        .unwrap();
    let conv = m.claimed_conversation().await;
    let (s, v) = m
        .reply(
            &conv,
            json!({"text": "Anh chọn size nào ạ?", "buttons": [
                {"id": "SIZE_M", "title": "Size M"}, {"id": "SIZE_L", "title": "Size L"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text"], "Anh chọn size nào ạ?");
    assert_eq!(v["meta"].get("sent_as"), None, "{v}");
    assert_eq!(
        v["meta"]["interactive"]["choices"]["buttons"][1]["id"],
        "SIZE_L"
    );
    assert_eq!(m.run().await.sent, 1);
    let sent = m.sb.sent().pop().unwrap();
    assert_eq!(sent.text, "Anh chọn size nào ạ?");
    assert_eq!(
        sent.quick_replies,
        [quick("Size M", "SIZE_M"), quick("Size L", "SIZE_L")]
    );
    m.sb.flush().await;
    // The customer taps "Size L": Meta posts its title as the text, its payload beside it.
    m.advance(SEC);
    let (s, _) =
        m.sb.customer_taps_quick_reply(PAGE, PSID, "Size L")
            .await
            .unwrap();
    assert_eq!(s, 200);
    let thread = m.thread(&conv).await;
    let tap = thread.last().unwrap();
    assert_eq!(
        (
            tap["direction"].as_str(),
            tap["text"].as_str(),
            tap["meta"]["quick_reply_payload"].as_str()
        ),
        (Some("inbound"), Some("Size L"), Some("SIZE_L"))
    );
    assert_eq!(thread.len(), 3, "the echo of our message is not a new one");

    // Fourteen choices, or a title over 20 characters: the numbered list, and why.
    let fourteen: Vec<Value> = (1..=14)
        .map(|i| json!({"id": format!("C{i}"), "title": format!("Màu {i}")}))
        .collect();
    let long = json!([{"id": "A", "title": "Giao hàng nhanh trong ngày"}, {"id": "B", "title": "Tự đến lấy"}]);
    for (buttons, because) in [
        (
            json!(fourteen),
            json!({"reason": "too_many_choices", "max": 13}),
        ),
        (long, json!({"reason": "choice_title_too_long", "max": 20})),
    ] {
        let (s, v) = m
            .reply(&conv, json!({"text": "Anh chọn ạ:", "buttons": buttons}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["meta"]["sent_as"], "numbered_list");
        assert_eq!(v["meta"]["numbered_because"], because);
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("Anh chọn ạ:\n\n1. ")
        );
        assert_eq!(m.run().await.sent, 1);
        let sent = m.sb.sent().pop().unwrap();
        assert_eq!(sent.text, v["text"].as_str().unwrap());
        assert!(sent.quick_replies.is_empty());
    }

    // Instagram: the same quick replies.
    let ig = create_page(&m.app, &m.sb, "17841", "instagram", &[&m.agent_id]).await;
    m.sb.customer_message("17841", "IGSID1", "hi")
        .await
        .unwrap();
    let list = m
        .app
        .conversations(&m.agent, &format!("?inbox_id={ig}"))
        .await;
    let conv = list[0]["id"].as_str().unwrap().to_owned();
    m.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/claim"),
            &m.agent,
            None,
        )
        .await;
    let (s, v) = m
        .reply(
            &conv,
            json!({"text": "Chị cần gì ạ?", "buttons": [{"id": "GIA", "title": "Hỏi giá"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    m.run().await;
    let sent = m.sb.sent().pop().unwrap();
    assert_eq!(
        (sent.page_id.as_str(), sent.quick_replies.clone()),
        ("17841", vec![quick("Hỏi giá", "GIA")])
    );
    m.sb.customer_taps_quick_reply("17841", "IGSID1", "Hỏi giá")
        .await
        .unwrap();
    let tap = m.thread(&conv).await.pop().unwrap();
    assert_eq!(tap["meta"]["quick_reply_payload"], "GIA");
}

/// The sandbox refuses quick replies as the Send API does (§1.5: at most 13, titles up to 20
/// characters), so a renderer that broke the limits would fail here.
#[tokio::test]
async fn the_sandbox_refuses_quick_replies_meta_refuses() {
    let m = Meta::start().await;
    m.sb.customer_message(PAGE, PSID, "hi").await.unwrap();
    let send = |quick_replies: Value| {
        let req = m
            .app
            .http
            .post(format!("{}/{PAGE}/messages", m.sb.base_url()))
            .bearer_auth(format!("token-{PAGE}"))
            .json(
                &json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                "message": {"text": "Chọn:", "quick_replies": quick_replies}}),
            );
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let qr = |title: &str| json!({"content_type": "text", "title": title, "payload": "P"});
    let (s, v) = send(json!(vec![qr("Có"); 14])).await;
    assert_eq!(
        (s, v["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(100)),
        "{v}"
    );
    let (s, v) = send(json!([qr(&"ă".repeat(21))])).await;
    assert_eq!(
        (s, v["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(100)),
        "{v}"
    );
    let (s, v) = send(json!([{"content_type": "text", "title": "Có"}])).await;
    assert_eq!(v["error"]["error_subcode"], 2_018_099, "{s} {v}");
    assert!(m.sb.sent().is_empty());
    let (s, v) = send(json!(vec![qr(&"ă".repeat(20)); 13])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(m.sb.sent()[0].quick_replies.len(), 13);
    // A customer can only tap what the latest message offers.
    assert!(
        m.sb.customer_taps_quick_reply(PAGE, PSID, "Không có")
            .await
            .is_err()
    );
}

/// Meta's dashboard test message writes `"timestamp":"1700000000"` (a string of seconds where
/// milliseconds are due): read as 1970 it closed the window. An implausible time is the time it
/// was received.
#[tokio::test]
async fn a_test_message_with_a_string_timestamp_opens_the_window_now() {
    let m = Meta::start().await;
    let body = json!({"object": "page", "entry": [{"id": PAGE, "time": "1700000000",
        "messaging": [{"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": "1700000000",
                       "message": {"mid": "m_dash", "text": "test message"}}]}]})
    .to_string();
    let sig = signature_header(SECRET, body.as_bytes());
    assert_eq!(m.webhook(&body, Some(sig)).await.0, StatusCode::OK);
    let conv = m.claimed_conversation().await;
    let p = m.policy(&conv).await;
    assert_eq!(p["mode"], "open", "{p}");
    assert_eq!(p["window_ends_at"], m.app.clock.now_ts().millis() + DAY);
    // An echo naming our Page's customer but sent by someone else is not ours: not stored.
    let fake = json!({"object": "page", "entry": [{"id": PAGE, "time": 1,
        "messaging": [{"sender": {"id": "333"}, "recipient": {"id": PSID}, "timestamp": T0.millis(),
                       "message": {"mid": "m_fake", "is_echo": true, "text": "not from the page"}}]}]})
    .to_string();
    let sig = signature_header(SECRET, fake.as_bytes());
    assert_eq!(m.webhook(&fake, Some(sig)).await.0, StatusCode::OK);
    assert_eq!(m.thread(&conv).await.len(), 1);
}
