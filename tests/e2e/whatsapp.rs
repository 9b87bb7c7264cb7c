//! WhatsApp against the in-process channel sandbox: the handshake and signatures (channels.md's
//! 414-byte vector), every inbound message type, business-scoped user ids, dedupe, statuses (out
//! of order, failed after delivered, 131047), the 24 h window at 23:59:59 / 24:00:01 with a
//! template instead, templates (sync with paging, list, parameter checks, status webhooks), and
//! cost metering with the usage report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_channels::whatsapp::signature_header;
use switchboard_core::Timestamp;
use switchboard_sandbox::channels::{ChannelFault, ChannelSandbox, WaNumberSpec};
use switchboard_sandbox::meta::meta_json;
use switchboard_server::clock::Clock;
use switchboard_server::outbox::RunReport;

const SECRET: &str = "app_secret_test";
const PNID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const TOKEN: &str = "EAAG-sandbox-token";
const CUSTOMER: &str = "84901234567";
const SEC: i64 = 1_000;
const HOUR: i64 = 3_600 * SEC;
const DAY: i64 = 24 * HOUR;

pub struct Wa {
    pub app: TestApp,
    pub sb: ChannelSandbox,
    pub agent: String,
    pub inbox: String,
}

fn templates() -> Vec<Value> {
    vec![
        json!({"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}]}),
        json!({"name": "order_update", "language": "vi", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Chào {{1}}, đơn {{2}} đã được gửi."}]}),
        json!({"name": "summer_sale", "language": "vi", "status": "APPROVED", "category": "MARKETING",
            "components": [{"type": "HEADER", "format": "TEXT", "text": "Sale {{1}}"},
                           {"type": "BODY", "text": "Giảm giá {{1}} cho {{2}}!"},
                           {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Xem", "url": "https://shop.vn/s/{{1}}"}]}]}),
        json!({"name": "login_code", "language": "en_US", "status": "APPROVED", "category": "AUTHENTICATION",
            "components": [{"type": "BODY", "text": "{{1}} is your code."}]}),
        json!({"name": "old_promo", "language": "vi", "status": "PAUSED", "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Khuyến mãi!"}]}),
    ]
}

impl Wa {
    pub async fn start() -> Self {
        Self::start_with(|_| {}, false).await
    }

    pub async fn start_with(
        change: impl FnOnce(&mut switchboard_server::config::Config),
        auto_delivery: bool,
    ) -> Self {
        let app = TestApp::start_configured(change).await;
        let sb = ChannelSandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        sb.add_whatsapp_number(WaNumberSpec {
            phone_number_id: PNID.into(),
            waba_id: WABA.into(),
            display_phone_number: "15550783881".into(),
            token: TOKEN.into(),
            app_secret: SECRET.into(),
            webhook_url: app.url("/webhooks/whatsapp"),
            auto_delivery,
            sync_window_errors: false,
        });
        for t in templates() {
            sb.add_whatsapp_template(WABA, t);
        }
        let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
        let v = app
            .ok(
                Method::POST,
                "/api/v1/inboxes",
                &app.admin,
                Some(json!({"name": "WhatsApp shop", "channel": "whatsapp", "settings": {
                    "phone_number_id": PNID, "waba_id": WABA, "access_token": TOKEN,
                    "app_secret": SECRET, "verify_token": "tok", "api_base_url": sb.whatsapp_base_url()}})),
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
        Self {
            app,
            sb,
            agent,
            inbox,
        }
    }

    pub async fn run(&self) -> RunReport {
        let st = &self.app.state;
        st.outbox.run_due(self.app.clock.now()).await
    }

    pub fn advance(&self, ms: i64) {
        self.app.clock.advance_millis(ms);
    }

    pub async fn says(&self, message: Value) -> String {
        let (s, id) = self
            .sb
            .whatsapp_customer(PNID, Some(CUSTOMER), None, "Hà", message)
            .await
            .unwrap();
        assert_eq!(s, 200);
        id
    }

    pub async fn text(&self, body: &str) -> String {
        self.says(json!({"type": "text", "text": {"body": body}}))
            .await
    }

    /// The single conversation of the inbox, claimed by the agent.
    pub async fn claimed(&self) -> String {
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

    pub async fn reply(&self, conv: &str, text: &str) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &self.agent,
                json!({"text": text}),
            )
            .await
    }

    pub async fn rich(&self, conv: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/conversations/{conv}/whatsapp-messages"),
                &self.agent,
                body,
            )
            .await
    }

    pub async fn thread(&self, conv: &str) -> Vec<Value> {
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

    pub async fn policy(&self, conv: &str) -> Value {
        self.app.policy(&self.agent, conv).await
    }

    async fn webhook(&self, body: &str, signature: Option<String>) -> StatusCode {
        let mut req = self
            .app
            .http
            .post(self.app.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        req.send().await.unwrap().status()
    }
}

#[tokio::test]
async fn handshake_signatures_vector_and_dedupe() {
    let w = Wa::start().await;
    let app = &w.app;
    let get = |q: &str| {
        let url = app.url(&format!("/webhooks/whatsapp?{q}"));
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
    // The 414-byte vector with its published signature.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.AAA","timestamp":"1700000000","type":"text","text":{"body":"hello"}}]},"field":"messages"}]}]}"#;
    let sig = "sha256=e08c5c160fa94f9118fe08bc48feeb2a6217e98be59499c7b60edc2e6e2574bb";
    // Refused first: no signature, another app's secret, one changed byte.
    assert_eq!(w.webhook(body, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.webhook(body, Some(signature_header("other", body.as_bytes())))
            .await,
        StatusCode::UNAUTHORIZED
    );
    let flipped = body.replace("hello", "hellp");
    assert_eq!(
        w.webhook(&flipped, Some(sig.into())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count_messages().await,
        0,
        "refused bodies store nothing"
    );
    assert_eq!(w.webhook(body, Some(sig.into())).await, StatusCode::OK);
    // Meta delivers again: stored once.
    assert_eq!(w.webhook(body, Some(sig.into())).await, StatusCode::OK);
    assert_eq!(app.count_messages().await, 1);
    let list = app.conversations(&w.agent, "").await;
    assert_eq!(list[0]["contact_name"], "Sheena");
    assert_eq!(list[0]["channel"], "whatsapp");
    assert_eq!(list[0]["last_customer_message_at"], 1_700_000_000_000_i64);

    // Non-ASCII arrives escaped; the signature is over those bytes, not a re-serialisation.
    let msg = json!({"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"field":"messages","value":{
        "metadata":{"phone_number_id":PNID},"contacts":[{"profile":{"name":"Hà"},"wa_id":CUSTOMER}],
        "messages":[{"from":CUSTOMER,"id":"wamid.VI","timestamp":"1700000001","type":"text","text":{"body":"Chào shop, áo còn không?"}}]}}]}]});
    let raw = meta_json(&msg);
    let good = signature_header(SECRET, raw.as_bytes());
    assert_eq!(
        w.webhook(&msg.to_string(), Some(good.clone())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.webhook(&raw, Some(good)).await, StatusCode::OK);
    assert_eq!(app.count_messages().await, 2);

    // Secrets are never shown, not even to the admin.
    let inbox = app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{}", w.inbox),
            &app.admin,
            None,
        )
        .await;
    assert!(inbox["settings"].get("access_token").is_none());
    assert!(inbox["settings"].get("app_secret").is_none());
    assert_eq!(inbox["settings"]["phone_number_id"], PNID);
    assert_eq!(
        inbox["settings"]["secrets_set"],
        json!(["access_token", "app_secret", "verify_token"])
    );
}

#[tokio::test]
async fn every_inbound_message_type_is_stored() {
    let w = Wa::start().await;
    let msgs = [
        json!({"type": "text", "text": {"body": "còn size M không?"}}),
        json!({"type": "image", "image": {"id": "M1", "mime_type": "image/jpeg", "sha256": "x", "caption": "mẫu này"}}),
        json!({"type": "video", "video": {"id": "M2", "mime_type": "video/mp4"}}),
        json!({"type": "audio", "audio": {"id": "M3", "mime_type": "audio/ogg", "voice": true}}),
        json!({"type": "document", "document": {"id": "M4", "mime_type": "application/pdf", "filename": "don.pdf"}}),
        json!({"type": "sticker", "sticker": {"id": "M5", "mime_type": "image/webp", "animated": false}}),
        json!({"type": "location", "location": {"latitude": 10.77, "longitude": 106.7, "name": "Shop", "address": "Q1"}}),
        json!({"type": "contacts", "contacts": [{"name": {"formatted_name": "Bảo Lê"}, "phones": [{"phone": "+84 90 000"}]}]}),
        json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Đồng ý"}}}),
        json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "m", "title": "Size M", "description": "60-65kg"}}}),
        json!({"type": "button", "button": {"payload": "TRACK", "text": "Theo dõi đơn"}}),
        json!({"type": "order", "order": {"catalog_id": "C", "product_items": [{"product_retailer_id": "sku1", "quantity": 1}]}}),
        json!({"type": "request_welcome"}),
        json!({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}),
    ];
    let mut ids = Vec::new();
    for m in &msgs {
        ids.push(w.says(m.clone()).await);
        w.advance(SEC);
    }
    // A system message is not the customer writing: not stored.
    w.says(json!({"type": "system", "system": {"body": "Hà changed their number", "type": "user_changed_number"}}))
        .await;
    // A reaction to the customer's first message, then its removal.
    w.says(json!({"type": "reaction", "reaction": {"message_id": ids[0], "emoji": "❤️"}}))
        .await;
    let conv = w.claimed().await;
    let thread = w.thread(&conv).await;
    let texts: Vec<&str> = thread.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "còn size M không?",
            "[image] mẫu này",
            "[video]",
            "[audio]",
            "[document]",
            "[sticker]",
            "[location] Shop, Q1 (10.77, 106.7)",
            "[contact] Bảo Lê",
            "Đồng ý",
            "Size M",
            "Theo dõi đơn",
            "[order] 1 item(s)",
            "[opened the chat]",
            "[unsupported message]",
        ]
    );
    assert_eq!(thread[1]["kind"], "media");
    assert_eq!(thread[1]["meta"]["attachments"][0]["media_id"], "M1");
    assert_eq!(thread[4]["meta"]["attachments"][0]["filename"], "don.pdf");
    assert_eq!(thread[6]["meta"]["location"]["latitude"], 10.77);
    assert_eq!(thread[8]["meta"]["interactive"]["id"], "yes");
    assert_eq!(thread[10]["meta"]["button"]["payload"], "TRACK");
    assert_eq!(thread[0]["meta"]["reactions"]["customer"]["emoji"], "❤️");
    w.says(json!({"type": "reaction", "reaction": {"message_id": ids[0], "emoji": ""}}))
        .await;
    let thread = w.thread(&conv).await;
    assert!(thread[0]["meta"]["reactions"].get("customer").is_none());
    // The same message delivered again is stored once.
    let dup = json!({"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"field":"messages","value":{
        "metadata":{"phone_number_id":PNID},"contacts":[{"profile":{"name":"Hà"},"wa_id":CUSTOMER}],
        "messages":[{"from":CUSTOMER,"id":ids[0],"timestamp":"1","type":"text","text":{"body":"còn size M không?"}}]}}]}]});
    assert_eq!(
        w.sb.whatsapp_post(PNID, meta_json(&dup)).await.unwrap(),
        200
    );
    assert_eq!(w.thread(&conv).await.len(), msgs.len());
}

#[tokio::test]
async fn a_customer_without_wa_id_is_keyed_by_the_business_scoped_id() {
    let w = Wa::start().await;
    let bsuid = "VN.13491208655302741918";
    let (s, _) =
        w.sb.whatsapp_customer(
            PNID,
            None,
            Some(bsuid),
            "Kim",
            json!({"type": "text", "text": {"body": "hi"}}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    let conv = w.claimed().await;
    let c = w.app.conversation(&conv).await;
    let contact = w
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{}", c["contact_id"].as_str().unwrap()),
            &w.agent,
            None,
        )
        .await;
    assert_eq!(contact["name"], "Kim");
    assert_eq!(contact["identities"][0]["external_id"], bsuid);
    // Replies go to `recipient` (the business-scoped id), not `to`.
    let (s, v) = w.reply(&conv, "Dạ chào Kim").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(w.run().await.sent, 1);
    let sent = w.sb.whatsapp_sent();
    assert_eq!(sent[0].body["recipient"], bsuid);
    assert!(sent[0].body.get("to").is_none());
    // Both ids in one message: the contact gets both, and is found again by either.
    let (_, _) =
        w.sb.whatsapp_customer(
            PNID,
            Some(CUSTOMER),
            Some("VN.555"),
            "Hà",
            json!({"type": "text", "text": {"body": "hello"}}),
        )
        .await
        .unwrap();
    w.sb.whatsapp_customer(
        PNID,
        None,
        Some("VN.555"),
        "Hà",
        json!({"type": "text", "text": {"body": "again, by username"}}),
    )
    .await
    .unwrap();
    let list = w
        .app
        .conversations(&w.app.admin, &format!("?inbox_id={}", w.inbox))
        .await;
    assert_eq!(list.len(), 2, "one conversation per person: {list:?}");
}

#[tokio::test]
async fn window_free_form_at_23_59_59_template_required_at_24_00_01_then_a_template() {
    let w = Wa::start().await;
    w.text("shop ơi").await;
    let conv = w.claimed().await;
    let p = w.policy(&conv).await;
    assert_eq!(p["mode"], "open");
    assert_eq!(p["window_ends_at"], T0.millis() + DAY);
    assert_eq!(p["templates"]["approved"], 4);

    w.advance(DAY - SEC); // 23:59:59
    let (s, v) = w.reply(&conv, "Dạ còn ạ").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["messaging_type"], "free_form");
    assert_eq!(w.run().await.sent, 1);
    assert_eq!(w.sb.whatsapp_sent().len(), 1);
    assert_eq!(w.sb.whatsapp_sent()[0].body["text"]["body"], "Dạ còn ạ");

    w.advance(2 * SEC); // 24:00:01
    let before = w.thread(&conv).await.len();
    let (s, v) = w.reply(&conv, "Anh còn cần không ạ?").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "template_required");
    assert_eq!(v["error"]["reason"], "template_required");
    assert!(
        v["error"]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("send_template"))
    );
    // Interactive messages are free-form too.
    let (s, v) = w
        .rich(&conv, json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Còn cần không?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Có"}}]}}}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("template_required"))
    );
    assert_eq!(w.thread(&conv).await.len(), before, "nothing stored");
    assert_eq!(w.run().await, RunReport::default(), "nothing queued");
    let p = w.policy(&conv).await;
    assert_eq!(
        (p["mode"].as_str(), p["reason"].as_str()),
        (Some("template_only"), Some("template_required"))
    );
    assert_eq!(p["allowed"][0]["messaging_type"], "template");

    // Wrong parameters are refused before WhatsApp is called.
    let (s, v) = w
        .rich(
            &conv,
            json!({"type": "template", "template": {"name": "order_update", "language": "vi",
            "parameters": {"body": ["Hà"]}}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("template_parameters_invalid")
        )
    );
    assert_eq!(v["error"]["expects"]["body"], json!(["1", "2"]));
    let (s, v) = w
        .rich(
            &conv,
            json!({"type": "template", "template": {"name": "nope", "language": "vi"}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("template_not_found"))
    );
    let (s, _) = w
        .rich(
            &conv,
            json!({"type": "template", "template": {"name": "old_promo", "language": "vi"}}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a paused template is refused"
    );
    assert_eq!(w.sb.whatsapp_sent().len(), 1);
    assert_eq!(w.thread(&conv).await.len(), before);

    // The template goes.
    let (s, v) = w
        .rich(
            &conv,
            json!({"type": "template", "template": {"name": "order_update", "language": "vi",
            "parameters": {"body": ["Hà", "#123"]}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text"], "Chào Hà, đơn #123 đã được gửi.");
    assert_eq!(v["messaging_type"], "template");
    assert_eq!(v["meta"]["template"]["category"], "utility");
    assert_eq!(w.run().await.sent, 1);
    let sent = w.sb.whatsapp_sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].kind, "template");
    assert_eq!(
        sent[1].body["template"]["components"],
        json!([{"type": "body", "parameters": [{"type": "text", "text": "Hà"}, {"type": "text", "text": "#123"}]}])
    );
    w.sb.flush().await;
    let last = w.thread(&conv).await.pop().unwrap();
    assert_eq!(last["delivery_status"], "sent");

    // A header, a URL button: all parameters filled.
    let (s, v) = w
        .rich(&conv, json!({"type": "template", "template": {"name": "summer_sale", "language": "vi",
            "parameters": {"header": ["hè"], "body": ["30%", "áo"], "buttons": [{"index": 0, "parameters": ["he2026"]}]}}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text"], "Sale hè\nGiảm giá 30% cho áo!");
    assert_eq!(w.run().await.sent, 1);

    // The customer writes again: free-form again.
    w.text("có ạ").await;
    assert_eq!(w.policy(&conv).await["mode"], "open");
    let (s, _) = w.reply(&conv, "Dạ").await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn statuses_move_forward_only_and_a_failure_after_delivery_is_recorded() {
    let w = Wa::start().await;
    w.text("hi").await;
    let conv = w.claimed().await;
    let mut ws = w.app.ws(&format!("/api/v1/ws?token={}", w.agent)).await;
    ws.next_of("hello").await;
    let (_, v) = w.reply(&conv, "Dạ").await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(w.run().await.sent, 1);
    w.sb.flush().await; // the `sent` status
    let wamid = w.sb.whatsapp_sent()[0].wamid.clone();
    let find = |t: Vec<Value>| t.into_iter().find(|m| m["id"] == id.as_str()).unwrap();
    let stored = w
        .app
        .state
        .store
        .message(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.provider_message_id.as_deref(), Some(wamid.as_str()));
    assert_eq!(find(w.thread(&conv).await)["delivery_status"], "sent");
    // `read` before `delivered`: the final state is `read`.
    w.sb.whatsapp_status(PNID, &wamid, "read").await.unwrap();
    w.sb.whatsapp_status(PNID, &wamid, "delivered")
        .await
        .unwrap();
    w.sb.whatsapp_status(PNID, &wamid, "read").await.unwrap();
    assert_eq!(find(w.thread(&conv).await)["delivery_status"], "read");
    loop {
        let e = ws.next_of("message.updated").await;
        if e["message"]["delivery_status"] == "read" {
            break;
        }
    }
    // A `failed` status after delivery is recorded, not ignored.
    let failed = json!({"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"field":"messages","value":{
        "metadata":{"phone_number_id":PNID},"statuses":[{"id":wamid,"status":"failed","timestamp":"1790000100","recipient_id":CUSTOMER,
        "errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"x"}}]}]}}]}]});
    assert_eq!(
        w.sb.whatsapp_post(PNID, meta_json(&failed)).await.unwrap(),
        200
    );
    let m = find(w.thread(&conv).await);
    assert_eq!(
        (m["delivery_status"].as_str(), m["failure_reason"].as_str()),
        (Some("failed"), Some("undeliverable"))
    );
    assert_eq!(m["meta"]["provider_error"]["code"], 131_026);
}

#[tokio::test]
async fn a_131047_failure_status_marks_the_message_failed_with_that_reason() {
    let w = Wa::start().await;
    w.text("hi").await;
    let conv = w.claimed().await;
    // Queued inside the window, but WhatsApp is down until after it closes.
    w.advance(DAY - SEC);
    w.sb.push_fault(PNID, ChannelFault::server_error());
    let (s, v) = w.reply(&conv, "Dạ, shop đây").await;
    assert_eq!(s, StatusCode::CREATED);
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(w.run().await.retried, 1);
    w.advance(HOUR);
    // WhatsApp accepts the request (HTTP 200 only means accepted) ...
    assert_eq!(w.run().await.sent, 1);
    // ... and then reports it failed: 131047 re-engagement.
    w.sb.flush().await;
    let m = w
        .thread(&conv)
        .await
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        (m["delivery_status"].as_str(), m["failure_reason"].as_str()),
        (Some("failed"), Some("reengagement_required"))
    );
    assert_eq!(m["meta"]["provider_error"]["code"], 131_047);
    assert_eq!(
        m["meta"]["provider_error"]["title"],
        "Re-engagement message"
    );
    // Failed is final: not sent again.
    w.advance(DAY);
    assert_eq!(w.run().await, RunReport::default());
    assert_eq!(w.sb.whatsapp_sent().len(), 1);

    // Configured for synchronous errors, WhatsApp answers 400 131047 at once: the same reason.
    let w2 = Wa::start().await;
    w2.sb.add_whatsapp_number(WaNumberSpec {
        phone_number_id: PNID.into(),
        waba_id: WABA.into(),
        display_phone_number: "1".into(),
        token: TOKEN.into(),
        app_secret: SECRET.into(),
        webhook_url: w2.app.url("/webhooks/whatsapp"),
        auto_delivery: false,
        sync_window_errors: true,
    });
    w2.text("hi").await;
    let conv = w2.claimed().await;
    w2.advance(DAY - SEC);
    w2.sb.push_fault(PNID, ChannelFault::server_error());
    w2.reply(&conv, "Dạ").await;
    assert_eq!(w2.run().await.retried, 1);
    w2.advance(HOUR);
    assert_eq!(w2.run().await.failed, 1);
    let m = w2.thread(&conv).await.pop().unwrap();
    assert_eq!(m["failure_reason"], "reengagement_required");
}

#[tokio::test]
async fn rate_limits_retry_and_an_expired_token_fails() {
    let w = Wa::start().await;
    w.text("hi").await;
    let conv = w.claimed().await;
    w.sb.push_fault(
        PNID,
        ChannelFault::Http {
            status: 429,
            body: json!({"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429}}),
            retry_after: Some(20),
        },
    );
    w.reply(&conv, "một").await;
    assert_eq!(w.run().await.retried, 1);
    w.advance(19 * SEC);
    assert_eq!(w.run().await, RunReport::default());
    w.advance(SEC);
    assert_eq!(w.run().await.sent, 1);
    assert_eq!(w.sb.whatsapp_sent().len(), 1);
    w.sb.push_fault(
        PNID,
        ChannelFault::whatsapp(401, 190, "Error validating access token"),
    );
    w.reply(&conv, "hai").await;
    assert_eq!(w.run().await.failed, 1);
    let m = w.thread(&conv).await.pop().unwrap();
    assert_eq!(m["failure_reason"], "token_expired");
}

#[tokio::test]
async fn templates_sync_with_paging_list_and_follow_status_webhooks() {
    let w = Wa::start().await;
    let path = format!("/api/v1/inboxes/{}/templates", w.inbox);
    // Synced when the inbox was created, across two pages (the sandbox gives 3 per page).
    let list = w.app.ok(Method::GET, &path, &w.agent, None).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let names: Vec<(String, String)> = items
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["language"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(names[0], ("login_code".into(), "en_US".into()));
    let sale = items.iter().find(|t| t["name"] == "summer_sale").unwrap();
    assert_eq!(sale["category"], "marketing");
    assert_eq!(sale["status"], "APPROVED");
    assert_eq!(sale["parameters"]["header_text"], json!(["1"]));
    assert_eq!(sale["parameters"]["body"], json!(["1", "2"]));
    assert_eq!(sale["parameters"]["buttons"], json!([[0, ["1"]]]));
    assert_eq!(sale["body"], "Giảm giá {{1}} cho {{2}}!");
    // Agents list; only admins sync.
    let (s, _) = w
        .app
        .post(&format!("{path}/sync"), &w.agent, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    w.sb.add_whatsapp_template(
        WABA,
        json!({"name": "new_one", "language": "vi", "status": "PENDING", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "x"}]}),
    );
    let synced = w
        .app
        .ok(
            Method::POST,
            &format!("{path}/sync"),
            &w.app.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(synced["items"].as_array().unwrap().len(), 6);
    // Meta pauses a template and re-categorises another (webhooks on the business account).
    let id = items.iter().find(|t| t["name"] == "login_code").unwrap()["template_id"].clone();
    let hook = json!({"object":"whatsapp_business_account","entry":[{"id":WABA,"time":1,"changes":[
        {"field":"message_template_status_update","value":{"event":"PAUSED","message_template_id":id,"message_template_name":"login_code","message_template_language":"en_US","reason":"LOW_QUALITY"}},
        {"field":"template_category_update","value":{"message_template_name":"order_update","message_template_language":"vi","previous_category":"UTILITY","new_category":"MARKETING"}}]}]});
    assert_eq!(
        w.sb.whatsapp_post(PNID, meta_json(&hook)).await.unwrap(),
        200
    );
    let list = w.app.ok(Method::GET, &path, &w.agent, None).await;
    let find = |n: &str, l: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n && t["language"] == l)
            .unwrap()
            .clone()
    };
    assert_eq!(find("login_code", "en_US")["status"], "PAUSED");
    assert_eq!(find("order_update", "vi")["category"], "marketing");
    assert_eq!(find("order_update", "en_US")["category"], "utility");
    // A Messenger or live-chat inbox has no templates.
    let lc = w.app.inbox("Web", &[]).await;
    let (s, v) = w
        .app
        .get(&format!("/api/v1/inboxes/{lc}/templates"), &w.app.admin)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_supported"))
    );
}

/// August 2025 is per-message; prices are configuration.
fn priced(c: &mut switchboard_server::config::Config) {
    use switchboard_server::config::RateConfig;
    let rate = |category: &str, price: f64| RateConfig {
        market: "VN".into(),
        category: category.into(),
        model: Some("per_message".into()),
        from: None,
        price,
    };
    c.billing.rates = vec![
        rate("marketing", 0.0114),
        rate("utility", 0.0014),
        rate("authentication", 0.0014),
    ];
}

#[tokio::test]
async fn every_event_is_metered_and_the_month_report_applies_the_free_rules() {
    let w = Wa::start_with(priced, false).await;
    let aug = Timestamp(1_754_006_400_000); // 2025-08-01T00:00:00Z
    w.app.clock.set(aug);
    w.text("hi").await;
    let conv = w.claimed().await;
    let tpl = |name: &str, body: Vec<&str>| json!({"type": "template", "template": {"name": name, "language": if name == "order_update" { "vi" } else { "en_US" }, "parameters": {"body": body}}});
    // In the window: a free-form reply (free), a utility template (free in the window), an
    // authentication template (charged); delivered a moment later.
    let mut ids = Vec::new();
    ids.push(w.reply(&conv, "Dạ").await.1["id"].clone());
    ids.push(w.rich(&conv, tpl("order_update", vec!["Hà", "#1"])).await.1["id"].clone());
    ids.push(w.rich(&conv, tpl("login_code", vec!["123456"])).await.1["id"].clone());
    assert_eq!(w.run().await.sent, 3);
    w.sb.flush().await;
    w.advance(5 * SEC);
    let sent = w.sb.whatsapp_sent();
    for s in &sent {
        w.sb.whatsapp_status(PNID, &s.wamid, "delivered")
            .await
            .unwrap();
    }
    // Delivered again, and read: metered once.
    w.sb.whatsapp_status(PNID, &sent[0].wamid, "delivered")
        .await
        .unwrap();
    w.sb.whatsapp_status(PNID, &sent[1].wamid, "read")
        .await
        .unwrap();
    // 25 h later: a utility template outside the window (charged), read before delivered.
    w.advance(25 * HOUR);
    ids.push(w.rich(&conv, tpl("order_update", vec!["Hà", "#2"])).await.1["id"].clone());
    assert_eq!(w.run().await.sent, 1);
    w.sb.flush().await;
    let last = w.sb.whatsapp_sent().pop().unwrap();
    w.sb.whatsapp_status(PNID, &last.wamid, "read")
        .await
        .unwrap();
    w.sb.whatsapp_status(PNID, &last.wamid, "delivered")
        .await
        .unwrap();
    let thread = w.thread(&conv).await;
    let billing: Vec<Value> = ids
        .iter()
        .map(|id| thread.iter().find(|m| &m["id"] == id).unwrap()["meta"]["billing"].clone())
        .collect();
    assert_eq!(billing[0]["free_reason"], "free_customer_service");
    assert_eq!(billing[1]["free_reason"], "utility_in_window");
    assert_eq!(
        (
            billing[2]["category"].as_str(),
            billing[2]["cost_micros"].as_i64()
        ),
        (Some("authentication"), Some(1_400))
    );
    assert_eq!(
        (
            billing[3]["billable"].as_bool(),
            billing[3]["cost_micros"].as_i64()
        ),
        (Some(true), Some(1_400))
    );

    let report = |month: &str, token: &str| {
        let path = format!("/api/v1/reports/whatsapp-usage?month={month}");
        let app = &w.app;
        let token = token.to_owned();
        async move { app.get(&path, &token).await }
    };
    let (s, r) = report("2025-08", &w.app.admin).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["models"], json!(["per_message"]));
    assert_eq!(r["windows_opened"], 1);
    let cat = |c: &str| {
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["category"] == c)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            cat("service")["messages"].as_u64(),
            cat("service")["free"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let u = cat("utility");
    assert_eq!(
        (
            u["messages"].as_u64(),
            u["free"].as_u64(),
            u["billable"].as_u64(),
            u["cost"].as_str()
        ),
        (Some(2), Some(1), Some(1), Some("0.001400"))
    );
    assert_eq!(u["free_by_reason"]["utility_in_window"], 1);
    assert_eq!(cat("authentication")["cost_micros"], 1_400);
    assert_eq!(cat("marketing")["messages"], 0);
    assert_eq!(r["total_cost"], "0.002800");
    // Another month is empty; agents do not see reports.
    assert_eq!(
        report("2025-09", &w.app.admin).await.1["total_cost"],
        "0.000000"
    );
    assert_eq!(report("2025-08", &w.agent).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        report("2025-8", &w.app.admin).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// The usage report narrows to one WhatsApp inbox the caller can see; any other id is refused as
/// everywhere (400 malformed, 404 unseen or not WhatsApp), and a supervisor outside every WhatsApp
/// inbox gets an empty report, not the workspace's.
#[tokio::test]
async fn usage_report_narrows_to_an_inbox_the_caller_sees() {
    let w = Wa::start().await;
    let report = |query: String, token: String| {
        let app = &w.app;
        async move {
            app.get(&format!("/api/v1/reports/whatsapp-usage?{query}"), &token)
                .await
        }
    };
    let admin = w.app.admin.clone();
    let (s, r) = report(format!("month=2025-08&inbox_id={}", w.inbox), admin.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["inbox_ids"], json!([w.inbox]));
    assert_eq!(r["total_cost"], "0.000000");
    let (s, r) = report("inbox_id=nope".into(), admin.clone()).await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_query"))
    );
    let web = w.app.inbox("Web", &[]).await;
    let (s, _) = report(format!("inbox_id={web}"), admin.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, sup) = w.app.agent("minh@shop.vn", "Minh", "supervisor").await;
    let (s, _) = report(format!("inbox_id={}", w.inbox), sup.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, r) = report("month=2025-08".into(), sup).await;
    assert_eq!((s, r["inbox_ids"].clone()), (StatusCode::OK, json!([])));
}

/// The out-of-hours reply and the closing message reach a WhatsApp customer inside 24 hours, as
/// free-form text through the outbox.
#[tokio::test]
async fn automatic_messages_reach_whatsapp_inside_24_hours() {
    let w = Wa::start().await;
    w.app.with_automatic_messages(&w.inbox, 60).await;
    w.text("shop ơi, còn hàng không?").await;
    let conv = w.claimed().await;
    w.run().await;
    w.app.reply_then_silence(&w.agent, &conv, 60).await;
    w.run().await;
    let texts: Vec<String> =
        w.sb.whatsapp_sent()
            .iter()
            .map(|s| {
                s.body["text"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
    assert_eq!(texts, [OUT_OF_HOURS, "Dạ shop đây ạ", CLOSING]);
    assert!(
        w.sb.whatsapp_sent()
            .iter()
            .all(|s| s.to == CUSTOMER && s.delivered)
    );
    let auto = w.app.automatic_messages(&w.agent, &conv).await;
    assert!(
        auto.iter()
            .all(|(_, status, reason)| status != "failed" && reason.is_none()),
        "{auto:?}"
    );
    assert_eq!(auto.len(), 2);
}

/// A number removed from Switchboard does not endanger the others: a webhook signed by our app
/// for it is acknowledged and stores nothing; one naming 150,000 numbers without a valid
/// signature is refused after one look at our apps, not a lookup per number (hardening finding 3).
#[tokio::test]
async fn unknown_numbers_are_acknowledged_and_floods_of_ids_refused_first() {
    let w = Wa::start().await;
    let gone = json!({"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"field":"messages","value":{
        "metadata":{"phone_number_id":"999999999999999"},"contacts":[{"profile":{"name":"Hà"},"wa_id":CUSTOMER}],
        "messages":[{"from":CUSTOMER,"id":"wamid.GONE","timestamp":"1700000001","type":"text","text":{"body":"số cũ"}}]}}]}]});
    let raw = meta_json(&gone);
    assert_eq!(
        w.webhook(&raw, Some(signature_header(SECRET, raw.as_bytes())))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        w.webhook(&raw, Some(signature_header("not_ours", raw.as_bytes())))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.app.count_messages().await, 0);

    let mut flood =
        String::from(r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":["#);
    for i in 0..60_000 {
        if i > 0 {
            flood.push(',');
        }
        flood.push_str(&format!(
            r#"{{"value":{{"metadata":{{"phone_number_id":"{}"}}}}}}"#,
            10_000_000 + i
        ));
    }
    flood.push_str("]}]}");
    assert!(flood.len() < 4 * 1024 * 1024, "{}", flood.len());
    assert_eq!(
        w.webhook(&flood, Some(signature_header("not_ours", flood.as_bytes())))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.app.count_messages().await, 0);
}

/// Buttons through the one reply endpoint reach WhatsApp as an interactive message (up to 3);
/// after 24 h a bot's template goes out while the bot's text is refused and nothing is stored.
#[tokio::test]
async fn buttons_and_a_bots_template_after_24_hours_go_through_one_send() {
    let w = Wa::start().await;
    w.text("shop ơi, còn hàng không?").await;
    let conv = w.claimed().await;
    let buttons = |n: usize| {
        let b: Vec<Value> = (1..=n)
            .map(|i| json!({"id": format!("b{i}"), "title": format!("Lựa chọn {i}")}))
            .collect();
        json!({"text": "Anh cần gì ạ?", "buttons": b})
    };
    let post = |body: Value| {
        let path = format!("/api/v1/conversations/{conv}/messages");
        let app = &w.app;
        let token = w.agent.clone();
        async move { app.post(&path, &token, body).await }
    };
    let (s, v) = post(buttons(4)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["max"].as_u64()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("too_many_choices"),
            Some(3)
        )
    );
    let (s, v) =
        post(json!({"text": "?", "buttons": [{"id": "a", "title": "Một lựa chọn rất dài ạ"}]}))
            .await;
    assert_eq!(
        (s, v["error"]["field"].as_str(), v["error"]["max"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("buttons"), Some(20))
    );
    let (s, v) = post(buttons(2)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text"], "Anh cần gì ạ?");
    assert_eq!(w.run().await.sent, 1);
    let sent = w.sb.whatsapp_sent();
    assert_eq!(sent[0].kind, "interactive");
    assert_eq!(
        sent[0].body["interactive"]["action"]["buttons"][1],
        json!({"type": "reply", "reply": {"id": "b2", "title": "Lựa chọn 2"}})
    );

    w.advance(DAY + SEC);
    let before = w.thread(&conv).await.len();
    let (s, v) = post(json!({"text": "Anh còn cần không?", "automated": true})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("template_required"))
    );
    assert_eq!(w.thread(&conv).await.len(), before, "nothing stored");
    let (s, v) = w
        .rich(
            &conv,
            json!({"type": "template", "automated": true, "template": {"name": "order_update",
                "language": "vi", "parameters": {"body": ["Hà", "#7"]}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["sender_kind"].as_str(), v["messaging_type"].as_str()),
        (Some("bot"), Some("template"))
    );
    assert_eq!(w.run().await.sent, 1);
    let sent = w.sb.whatsapp_sent();
    assert_eq!((sent.len(), sent[1].kind.as_str()), (2, "template"));
}

/// Switchboard's own closing message after 24 h is text: refused, stored `failed` with
/// `template_required`, logged in the history, and nothing reaches WhatsApp.
#[tokio::test]
async fn an_automatic_message_after_24_hours_is_stored_refused_on_whatsapp() {
    let w = Wa::start().await;
    w.app.with_automatic_messages(&w.inbox, 25 * 60).await;
    w.text("shop ơi").await;
    let conv = w.claimed().await;
    w.run().await;
    w.app.reply_then_silence(&w.agent, &conv, 25 * 60).await;
    assert_eq!(
        w.run().await.sent,
        1,
        "the agent's reply, not the closing message"
    );
    assert_eq!(w.run().await, RunReport::default());
    let auto = w.app.automatic_messages(&w.agent, &conv).await;
    assert_eq!(auto.len(), 2, "{auto:?}");
    assert_eq!(
        (auto[1].0.as_str(), auto[1].1.as_str(), auto[1].2.as_deref()),
        (CLOSING, "failed", Some("template_required"))
    );
    assert_eq!(
        w.app
            .count_actions(&conv, "automatic_message_refused")
            .await,
        1
    );
    let texts: Vec<Value> =
        w.sb.whatsapp_sent()
            .iter()
            .map(|s| s.body["text"]["body"].clone())
            .collect();
    assert_eq!(texts, [json!(OUT_OF_HOURS), json!("Dạ shop đây ạ")]);
}

/// The inbox's first conversation's unread count, and how many conversations it has.
async fn summary(w: &Wa) -> (Value, usize) {
    let list = w
        .app
        .conversations(&w.agent, &format!("?inbox_id={}", w.inbox))
        .await;
    (list[0]["unread_count"].clone(), list.len())
}

/// A WhatsApp edit or delete (`type: edit` / `revoke`) changes the original message, live, and
/// is never a new "[unsupported message]": no unread, no window moved. One for a message we do not
/// have is acknowledged and stores nothing.
#[tokio::test]
async fn an_edit_or_a_delete_changes_the_original_never_a_new_message() {
    let w = Wa::start().await;
    let text = w.text("còn size M không?").await;
    w.advance(SEC);
    let photo = w
        .says(json!({"type": "image", "image": {"id": "M1", "mime_type": "image/jpeg", "sha256": "x", "caption": "mẫu này"}}))
        .await;
    let conv = w.claimed().await;
    let before = summary(&w).await;
    assert!(before.0.is_number(), "{before:?}");
    let window = w.policy(&conv).await["window_ends_at"].clone();
    let mut ws = w.app.online(&w.agent).await;
    w.advance(HOUR);
    w.says(json!({"type": "edit", "edit": {"original_message_id": photo,
        "message": {"type": "image", "image": {"id": "M1", "mime_type": "image/jpeg", "caption": "mẫu này, màu đỏ"}}}}))
        .await;
    let live = ws.next_of("message.updated").await;
    assert_eq!(live["message"]["text"], "[image] mẫu này, màu đỏ");
    assert_eq!(live["message"]["meta"]["edited"], 1);
    w.says(json!({"type": "revoke", "revoke": {"original_message_id": text}}))
        .await;
    let live = ws.next_of("message.updated").await;
    assert_eq!(
        (
            &live["message"]["text"],
            &live["message"]["meta"]["deleted"]
        ),
        (&json!(""), &json!(true))
    );
    w.says(
        json!({"type": "edit", "edit": {"original_message_id": "wamid.unknown",
        "message": {"type": "text", "text": {"body": "?"}}}}),
    )
    .await;
    let thread = w.thread(&conv).await;
    let texts: Vec<&str> = thread.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["", "[image] mẫu này, màu đỏ"]);
    assert_eq!(thread[0]["meta"]["deleted"], true);
    assert_eq!(thread[1]["meta"]["edited"], 1);
    assert_eq!(summary(&w).await, before, "no unread, no new conversation");
    assert_eq!(w.policy(&conv).await["window_ends_at"], window);
}

#[tokio::test]
async fn an_image_a_video_and_a_pdf_go_by_signed_link_with_their_captions() {
    use crate::media_out::{MB, mp4, pdf, png, refused, sent};
    let wa = Wa::start_with(|c| c.limits.max_upload_bytes = 30 * MB, false).await;
    wa.text("cho xem mẫu").await;
    let conv = wa.claimed().await;
    let (app, agent) = (&wa.app, wa.agent.as_str());
    sent(app, agent, &conv, "ao.png", png(5 * MB), Some("Mẫu mới")).await;
    sent(app, agent, &conv, "clip.mp4", mp4(16 * MB), None).await;
    sent(
        app,
        agent,
        &conv,
        "bang-gia.pdf",
        pdf(2000),
        Some("Bảng giá"),
    )
    .await;
    assert_eq!(wa.run().await.sent, 3);
    let got: Vec<_> = wa
        .sb
        .whatsapp_sent()
        .into_iter()
        .map(|s| {
            let f = s.file.unwrap();
            let o = &s.body[s.kind.as_str()];
            assert!(
                o["link"]
                    .as_str()
                    .unwrap()
                    .starts_with(&app.url("/media/s/"))
            );
            (
                s.kind.clone(),
                f.content_type,
                f.size,
                o["caption"].clone(),
                o["filename"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "image".into(),
                "image/png".into(),
                5 * MB,
                json!("Mẫu mới"),
                Value::Null
            ),
            (
                "video".into(),
                "video/mp4".into(),
                16 * MB,
                Value::Null,
                Value::Null
            ),
            (
                "document".into(),
                "application/pdf".into(),
                2000,
                json!("Bảng giá"),
                json!("bang-gia.pdf")
            ),
        ]
    );
    refused(
        app,
        agent,
        &conv,
        "ao.png",
        png(5 * MB + 1),
        "file_too_large",
        "at most 5 MB for image files on whatsapp",
    )
    .await;
    refused(
        app,
        agent,
        &conv,
        "clip.mp4",
        mp4(16 * MB + 1),
        "file_too_large",
        "at most 16 MB for video files on whatsapp",
    )
    .await;
    refused(
        app,
        agent,
        &conv,
        "clip.webm",
        b"\x1a\x45\xdf\xa3....".to_vec(),
        "file_type_not_supported",
        "video/mp4",
    )
    .await;
    let (s, v) = crate::media_out::upload(
        app,
        agent,
        &conv,
        "ao.png",
        png(10),
        Some(&"a".repeat(1025)),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "caption_too_long");
    assert_eq!(v["error"]["field"], "caption");
    // Outside the 24 hours only templates go: a file is refused as a text is.
    wa.advance(25 * HOUR);
    refused(
        app,
        agent,
        &conv,
        "ao.png",
        png(100),
        "template_required",
        "only an approved template",
    )
    .await;
}
