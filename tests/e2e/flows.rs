//! Automation end to end: flows started by Messenger customers through the Meta sandbox, the FAQ
//! bot and handoff to round-robin routing, questions that save contact fields, HTTP steps against
//! a local endpoint, take-over and the auto-reply switch, scheduled flows inside and outside the
//! window, and the loop guard. Time is the manual clock; the outbox and the runners are driven by
//! hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_sandbox::meta::{Sandbox, UserSpec};

const PAGE: &str = "5151";
const PSID: &str = "7001";
const PSID2: &str = "7002";
const HOUR_MIN: i64 = 60;

struct Shop {
    app: TestApp,
    sb: Sandbox,
    lan: String,
    lan_id: String,
    minh: String,
    minh_id: String,
    inbox: String,
}

impl Shop {
    async fn open() -> Self {
        let app = TestApp::start().await;
        let sb = Sandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (lan_id, lan) = app.agent("lan@shop.vn", "Lan", "agent").await;
        let (minh_id, minh) = app.agent("minh@shop.vn", "Minh", "agent").await;
        let inbox = create_page(&app, &sb, PAGE, "messenger", &[&lan_id, &minh_id]).await;
        for (id, name) in [(PSID, "Hà"), (PSID2, "Tú")] {
            sb.add_user(
                PAGE,
                UserSpec {
                    id: id.into(),
                    first_name: name.into(),
                    last_name: "Nguyễn".into(),
                    profile_pic: None,
                    commenter_id: None,
                },
            );
        }
        app.set_routing(
            &inbox,
            json!({"strategy": "round_robin", "include_offline": true}),
        )
        .await;
        Self {
            app,
            sb,
            lan,
            lan_id,
            minh,
            minh_id,
            inbox,
        }
    }

    /// Creates an active flow; returns its id.
    async fn flow(&self, flow: Value) -> String {
        let (s, v) = self
            .app
            .post("/api/v1/flows", &self.app.admin, json!({"flow": flow}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn says(&self, psid: &str, text: &str) {
        let (s, _) = self.sb.customer_message(PAGE, psid, text).await.unwrap();
        assert_eq!(s, 200);
        self.deliver().await;
    }

    /// Automation has taken every customer message, then the outbox sends what is queued.
    async fn deliver(&self) {
        self.app.state.automation.idle().await;
        self.app
            .state
            .outbox
            .run_due(switchboard_server::clock::Clock::now(&self.app.clock))
            .await;
    }

    fn sent(&self) -> Vec<String> {
        self.sb.sent().into_iter().map(|s| s.text).collect()
    }

    async fn conversation_of(&self, nth: usize) -> Value {
        let list = self
            .app
            .conversations(&self.app.admin, &format!("?inbox_id={}", self.inbox))
            .await;
        let mut list = list;
        list.sort_by_key(|c| c["created_at"].as_i64());
        list[nth].clone()
    }

    async fn automation(&self, conv: &str) -> Value {
        self.app
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/automation"),
                &self.app.admin,
                None,
            )
            .await
    }

    async fn thread(&self, conv: &str) -> Vec<(String, String, String)> {
        let v = self
            .app
            .ok(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/messages?limit=200"),
                &self.app.admin,
                None,
            )
            .await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["sender_kind"].as_str().unwrap().to_owned(),
                    m["text"].as_str().unwrap().to_owned(),
                    m["delivery_status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn faq_bot_flow() -> Value {
    json!({
        "name": "Hỏi đáp", "version": 1,
        "triggers": [{"type": "new_conversation"}],
        "start": "faq",
        "steps": [{"id": "faq", "do": {"type": "faq_bot",
            "fallback": "Dạ câu này shop chưa rõ, anh/chị hỏi cách khác giúp shop nhé.", "max_misses": 3}}]
    })
}

/// A Messenger customer asks the price and gets the FAQ's answer from the bot; asking for a
/// person hands the conversation to routing (round-robin), and the agent sees what the bot said.
#[tokio::test]
async fn the_bot_answers_from_the_faq_and_hands_over_when_asked() {
    let shop = Shop::open().await;
    let (s, _) = shop
        .app
        .call(
            Method::PUT,
            "/api/v1/faq",
            Some(&shop.app.admin),
            Some(json!({"entries": [
                {"phrasings": ["giá bao nhiêu", "bao nhiêu tiền"], "answer": "Dạ áo thun 199.000đ ạ"},
                {"phrasings": ["ship mấy ngày", "giao hàng bao lâu"], "answer": "Dạ 2–3 ngày ạ"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    shop.flow(faq_bot_flow()).await;

    shop.says(PSID, "Cho em hỏi giá bao nhiêu vậy shop?").await;
    let conv = shop.conversation_of(0).await;
    let id = conv["id"].as_str().unwrap();
    assert_eq!(conv["status"], "bot", "the bot holds it, out of the pool");
    assert!(conv["assignee_id"].is_null());
    assert_eq!(shop.sent(), ["Dạ áo thun 199.000đ ạ"]);
    assert!(
        shop.sb
            .sent()
            .iter()
            .all(|s| s.messaging_type.as_deref() == Some("RESPONSE")),
        "the bot answers inside the window, never as HUMAN_AGENT"
    );

    shop.says(PSID, "vậy em muốn gặp nhân viên").await;
    let conv = shop.app.conversation(id).await;
    assert_eq!(conv["status"], "open", "{conv}");
    assert_eq!(
        conv["assignee_id"],
        json!(shop.lan_id),
        "round-robin's first"
    );
    let history = shop.app.history(id).await;
    let handed = history.iter().find(|h| h["kind"] == "handed_off").unwrap();
    assert_eq!(handed["detail"]["reason"], "asked_for_human");
    // The agent sees the bot's transcript in the thread.
    let thread = shop.thread(id).await;
    assert_eq!(
        thread
            .iter()
            .map(|(k, t, _)| (k.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
        [
            ("customer", "Cho em hỏi giá bao nhiêu vậy shop?"),
            ("bot", "Dạ áo thun 199.000đ ạ"),
            ("customer", "vậy em muốn gặp nhân viên"),
        ]
    );
    // The next customer is greeted by the bot too, and goes to the next agent when handed off.
    shop.app.advance_minutes(1);
    shop.says(PSID2, "ship mấy ngày vậy").await;
    assert_eq!(shop.sent().last().unwrap(), "Dạ 2–3 ngày ạ");
    shop.says(PSID2, "cho gặp tư vấn viên").await;
    let second = shop.conversation_of(1).await;
    assert_eq!(second["assignee_id"], json!(shop.minh_id));
    let _ = (&shop.lan, &shop.minh);
}

/// A flow asks for a phone number: a wrong answer is asked again, a Vietnamese number is saved
/// on the contact as E.164 and used in the next message.
#[tokio::test]
async fn a_question_is_asked_again_until_the_answer_is_a_phone_number() {
    let shop = Shop::open().await;
    shop.flow(json!({
        "name": "Lấy số", "version": 1,
        "triggers": [{"type": "new_conversation"}],
        "start": "ask",
        "steps": [
            {"id": "ask", "do": {"type": "ask", "question": {"text": "Anh/chị cho shop xin số điện thoại nhé?"},
                "answer": {"type": "phone"}, "save_to": "phone", "retries": 2,
                "retry_text": "Số chưa đúng ạ, ví dụ 0912 345 678", "next": "thanks"}},
            {"id": "thanks", "do": {"type": "send_message",
                "variants": [{"text": "Cảm ơn ạ, shop sẽ gọi {{contact.phone}}"}]}}
        ]
    }))
    .await;
    shop.says(PSID, "alo shop").await;
    shop.says(PSID, "abc").await;
    shop.says(PSID, "0912 345 678").await;
    assert_eq!(
        shop.sent(),
        [
            "Anh/chị cho shop xin số điện thoại nhé?",
            "Số chưa đúng ạ, ví dụ 0912 345 678",
            "Cảm ơn ạ, shop sẽ gọi +84912345678",
        ]
    );
    let conv = shop.conversation_of(0).await;
    let contact = shop
        .app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{}", conv["contact_id"].as_str().unwrap()),
            &shop.app.admin,
            None,
        )
        .await;
    assert_eq!(contact["phone"], "+84912345678", "{contact}");
    // The flow completed: the conversation went to the pool and was routed.
    assert_eq!(conv["status"], "open");
    let history = shop.app.history(conv["id"].as_str().unwrap()).await;
    let ended = history.iter().find(|h| h["kind"] == "flow_ended").unwrap();
    assert_eq!(ended["detail"]["reason"], "completed");
}

/// An agent who takes over stops the flow (the customer's answer reaches no bot), and a
/// conversation whose auto-reply is off starts no flow.
#[tokio::test]
async fn taking_over_stops_the_flow_and_auto_reply_off_keeps_the_bot_silent() {
    let shop = Shop::open().await;
    shop.flow(json!({
        "name": "Hỏi size", "version": 1,
        "triggers": [{"type": "new_conversation"}, {"type": "keyword", "match": "whole_word", "keywords": ["size"]}],
        "start": "ask",
        "steps": [
            {"id": "ask", "do": {"type": "ask", "question": {"text": "Anh/chị mặc size nào ạ?"},
                "answer": {"type": "text"}, "save_to": "size", "next": "ok"}},
            {"id": "ok", "do": {"type": "send_message", "variants": [{"text": "Dạ size {{contact.size}} ạ"}]}}
        ]
    }))
    .await;
    shop.says(PSID, "chào shop").await;
    let conv = shop.conversation_of(0).await;
    let id = conv["id"].as_str().unwrap().to_owned();
    assert_eq!(conv["status"], "bot");
    // Claiming is not taking over: the bot holds it.
    let (s, v) = shop
        .app
        .post(
            &format!("/api/v1/conversations/{id}/claim"),
            &shop.lan,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "bot_active");
    let state = shop
        .app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{id}/take-over"),
            &shop.lan,
            None,
        )
        .await;
    assert!(state["running"].is_null(), "{state}");
    let conv = shop.app.conversation(&id).await;
    assert_eq!(
        (conv["status"].as_str(), conv["assignee_id"].as_str()),
        (Some("open"), Some(shop.lan_id.as_str()))
    );
    shop.says(PSID, "size M").await;
    assert_eq!(
        shop.sent(),
        ["Anh/chị mặc size nào ạ?"],
        "nothing more from the bot"
    );
    let history = shop.app.history(&id).await;
    assert!(history.iter().any(|h| h["kind"] == "taken_over"));
    assert!(
        history
            .iter()
            .any(|h| h["kind"] == "flow_ended" && h["detail"]["reason"] == "taken_over")
    );

    // A second customer: the flow starts; the agent switches auto-reply off → the flow stops and
    // the customer goes to humans; later keywords start nothing.
    shop.app.advance_minutes(1);
    shop.says(PSID2, "hello").await;
    let second = shop.conversation_of(1).await;
    let sid = second["id"].as_str().unwrap().to_owned();
    assert_eq!(second["status"], "bot");
    let state = shop
        .app
        .ok(
            Method::PUT,
            &format!("/api/v1/conversations/{sid}/auto-reply"),
            &shop.minh,
            Some(json!({"on": false})),
        )
        .await;
    assert_eq!(state["auto_reply"], false);
    assert!(state["running"].is_null());
    let second = shop.app.conversation(&sid).await;
    assert_eq!(second["status"], "open", "routed to a person: {second}");
    let before = shop.sent().len();
    // Resolve, then the customer writes the keyword again: reopened, no flow.
    let holder = if second["assignee_id"] == json!(shop.lan_id) {
        &shop.lan
    } else {
        &shop.minh
    };
    shop.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{sid}/resolve"),
            holder,
            None,
        )
        .await;
    shop.says(PSID2, "size L còn không").await;
    assert_eq!(shop.sent().len(), before, "the bot stays silent");
    assert_ne!(shop.app.conversation(&sid).await["status"], "bot");
}

/// A flow that starts itself stops at its step limit and the history says so.
#[tokio::test]
async fn a_flow_that_starts_itself_stops_at_the_limit() {
    let shop = Shop::open().await;
    let id = shop
        .flow(json!({
            "name": "Vòng lặp", "version": 1,
            "triggers": [{"type": "keyword", "match": "exact", "keywords": ["lặp"]}],
            "start": "hi",
            "steps": [{"id": "hi", "do": {"type": "send_message", "variants": [{"text": "vòng"}]}}],
            "guards": {"max_steps": 6}
        }))
        .await;
    let looping = json!({
        "name": "Vòng lặp", "version": 1,
        "start": "hi",
        "steps": [
            {"id": "hi", "do": {"type": "send_message", "variants": [{"text": "vòng"}], "next": "again"}},
            {"id": "again", "do": {"type": "start_flow", "flow": id}}
        ],
        "triggers": [{"type": "keyword", "match": "exact", "keywords": ["lặp"]}, {"type": "started_by_flow"}],
        "guards": {"max_steps": 6}
    });
    let saved = shop
        .app
        .ok(
            Method::PUT,
            &format!("/api/v1/flows/{id}"),
            &shop.app.admin,
            Some(json!({"flow": looping, "version": 1})),
        )
        .await;
    assert_eq!(saved["version"], 2);
    // Saving on top of an old version is refused.
    let (s, v) = shop
        .app
        .call(
            Method::PUT,
            &format!("/api/v1/flows/{id}"),
            Some(&shop.app.admin),
            Some(json!({"flow": looping, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    shop.says(PSID, "Lặp").await;
    let sent = shop.sent();
    assert_eq!(
        sent.len(),
        3,
        "{sent:?}: 6 steps are 3 messages and 3 restarts"
    );
    let conv = shop.conversation_of(0).await;
    let history = shop.app.history(conv["id"].as_str().unwrap()).await;
    let limit = history
        .iter()
        .find(|h| h["kind"] == "flow_ended" && h["detail"]["reason"] == "step_limit")
        .unwrap_or_else(|| panic!("{history:?}"));
    assert_eq!(limit["detail"]["flow"], "Vòng lặp");
    assert_eq!(conv["status"], "open", "handed to people after the loop");
}

/// A flow's HTTP step calls the shop's own endpoint, signed; the answer is used in the next
/// message.
#[tokio::test]
async fn an_http_steps_answer_is_used_in_the_next_message() {
    use axum::http::HeaderMap;
    let shop = Shop::open().await;
    let secret = shop
        .app
        .ok(
            Method::GET,
            "/api/v1/automation/signing-secret",
            &shop.app.admin,
            None,
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let endpoint = axum::Router::new().route(
        "/orders/{phone}",
        axum::routing::post(
            move |axum::extract::Path(phone): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: String| {
                let tx = tx.clone();
                async move {
                    let sig = headers["switchboard-signature"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    tx.send((sig, body)).unwrap();
                    axum::Json(json!({"data": {"status": format!("đang giao ({phone})")}}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, endpoint).await.unwrap() });
    shop.flow(json!({
        "name": "Tra đơn", "version": 1,
        "triggers": [{"type": "has_phone"}],
        "start": "save",
        "steps": [
            {"id": "save", "do": {"type": "set_field", "field": "order_phone", "value": "0912345678", "next": "call"}},
            {"id": "call", "do": {"type": "http", "method": "POST", "url": format!("{url}/orders/{{{{contact.order_phone}}}}"),
                "body": {"phone": "{{contact.order_phone}}"},
                "save": [{"path": "data.status", "field": "order_status"}], "next": "tell", "on_failure": "sorry"}},
            {"id": "tell", "do": {"type": "send_message", "variants": [{"text": "Đơn của anh/chị: {{contact.order_status}}"}]}},
            {"id": "sorry", "do": {"type": "handoff", "note": "không tra được đơn"}}
        ]
    }))
    .await;
    shop.says(PSID, "đơn của em số 0912345678").await;
    let (sig, body) = rx.recv().await.unwrap();
    assert_eq!(body, r#"{"phone":"0912345678"}"#);
    // t=<seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
    let (t, v1) = sig.trim_start_matches("t=").split_once(",v1=").unwrap();
    let want = switchboard_channels::signing::hmac_sha256_hex(
        secret.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    );
    assert_eq!(v1, want);
    // The answer is fed to the run off the webhook's path: wait for the message it leads to.
    let conv = shop.conversation_of(0).await;
    let id = conv["id"].as_str().unwrap().to_owned();
    let want = "Đơn của anh/chị: đang giao (0912345678)";
    for _ in 0..200 {
        if shop.thread(&id).await.iter().any(|(_, t, _)| t == want) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    shop.deliver().await;
    assert_eq!(shop.sent(), [want]);
    let fields = shop.automation(&id).await["fields"].clone();
    assert_eq!(fields["order_status"], "đang giao (0912345678)");
}

/// Scheduled flows: sent at their time inside the window, "send now", cancelled, blocked past
/// Messenger's 24 hours (nothing reaches the provider), and still there after a restart.
#[tokio::test]
async fn scheduled_flows_obey_the_window_at_their_time() {
    let shop = Shop::open().await;
    let remind = shop
        .flow(json!({
            "name": "Nhắc đơn", "version": 1,
            "triggers": [{"type": "scheduled_due"}],
            "start": "hi",
            "steps": [{"id": "hi", "do": {"type": "send_message", "variants": [{"text": "Shop nhắc anh/chị đơn hàng ạ"}]}}]
        }))
        .await;
    shop.says(PSID, "em đặt áo nhé").await;
    let conv = shop.conversation_of(0).await;
    let contact = conv["contact_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contacts/{contact}/scheduled-flows");
    let attach = |delay_secs: i64| {
        let app = &shop.app;
        let path = path.clone();
        let remind = remind.clone();
        async move {
            let (s, v) = app
                .post(
                    &path,
                    &app.admin,
                    json!({"flow_id": remind, "delay_secs": delay_secs}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v
        }
    };
    let in_an_hour = attach(3600).await;
    assert_eq!(in_an_hour["status"], "scheduled");
    assert_eq!(in_an_hour["window"]["allowed"], "open", "{in_an_hour}");
    let later = attach(2 * 3600).await;
    let now = attach(5 * 3600).await;
    // The forecast warns before saving: 30 hours on, the bot may not write on Messenger.
    let (_, dry) = shop
        .app
        .post(
            &path,
            &shop.app.admin,
            json!({"flow_id": remind, "delay_secs": 30 * 3600, "dry_run": true}),
        )
        .await;
    assert_eq!(
        (dry["window"]["allowed"].as_str(), dry["saved"].as_bool()),
        (Some("not_allowed"), Some(false))
    );

    // "Send now".
    let sent_now = shop
        .app
        .ok(
            Method::POST,
            &format!(
                "/api/v1/scheduled-flows/{}/send-now",
                now["id"].as_str().unwrap()
            ),
            &shop.app.admin,
            None,
        )
        .await;
    assert_eq!(sent_now["status"], "sent");
    shop.deliver().await;
    assert_eq!(shop.sent(), ["Shop nhắc anh/chị đơn hàng ạ"]);
    // Cancel one.
    let cancelled = shop
        .app
        .ok(
            Method::POST,
            &format!(
                "/api/v1/scheduled-flows/{}/cancel",
                later["id"].as_str().unwrap()
            ),
            &shop.app.admin,
            None,
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    // Its time: the one in an hour goes, the cancelled one does not.
    shop.app.advance_minutes(HOUR_MIN);
    let tick = shop.app.flows_tick().await;
    assert_eq!(tick.scheduled_sent, 1);
    shop.app.advance_minutes(2 * HOUR_MIN);
    assert_eq!(shop.app.flows_tick().await.scheduled_sent, 0);
    shop.deliver().await;
    assert_eq!(shop.sent().len(), 2);

    // Past the window: blocked, visible with its reason, nothing sent.
    let late = attach(30 * 3600).await;
    assert_eq!(late["window"]["allowed"], "not_allowed");
    shop.app.advance_minutes(30 * HOUR_MIN);
    let tick = shop.app.flows_tick().await;
    assert_eq!(tick.scheduled_blocked, 1);
    shop.deliver().await;
    assert_eq!(shop.sent().len(), 2, "nothing reached Messenger");
    let list = shop.app.ok(Method::GET, &path, &shop.app.admin, None).await;
    let row = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == late["id"])
        .unwrap()
        .clone();
    assert_eq!(
        (row["status"].as_str(), row["reason"].as_str()),
        (Some("blocked_by_window"), Some("window_closed"))
    );
    assert_eq!(row["flow_name"], "Nhắc đơn");
    let history = shop.app.history(conv["id"].as_str().unwrap()).await;
    assert!(
        history
            .iter()
            .any(|h| h["detail"]["event"] == "scheduled.blocked_by_window")
    );
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "sent").count(), 2);
}

/// A scheduled flow survives a restart and fires once.
#[tokio::test]
async fn a_scheduled_flow_survives_a_restart() {
    let shop = Shop::open().await;
    let remind = shop
        .flow(json!({
            "name": "Nhắc", "version": 1, "triggers": [{"type": "scheduled_due"}], "start": "hi",
            "steps": [{"id": "hi", "do": {"type": "send_message", "variants": [{"text": "Nhắc lịch ạ"}]}}]
        }))
        .await;
    shop.says(PSID, "đặt lịch giúp em").await;
    let conv = shop.conversation_of(0).await;
    let contact = conv["contact_id"].as_str().unwrap().to_owned();
    let (s, _) = shop
        .app
        .post(
            &format!("/api/v1/contacts/{contact}/scheduled-flows"),
            &shop.app.admin,
            json!({"flow_id": remind, "delay_secs": 600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let Shop { app, sb, .. } = shop;
    let clock = app.clock.clone();
    let dir = app.stop().await.unwrap();
    clock.advance_millis(11 * 60_000);
    let app = TestApp::start_in(dir.path(), clock, false).await;
    let tick = app.flows_tick().await;
    assert_eq!(tick.scheduled_sent, 1);
    assert_eq!(app.flows_tick().await.scheduled_sent, 0, "once");
    app.state
        .outbox
        .run_due(switchboard_server::clock::Clock::now(&app.clock))
        .await;
    assert_eq!(
        sb.sent().into_iter().map(|s| s.text).collect::<Vec<_>>(),
        ["Nhắc lịch ạ"]
    );
    drop(dir);
}

/// Flows start when an agent tags or resolves a conversation, or starts one from it (only flows
/// made for that); the conversation goes back to where it was when the flow ends.
#[tokio::test]
async fn flows_start_on_tags_resolving_and_from_an_agent() {
    let shop = Shop::open().await;
    let send = |name: &str, trigger: Value, text: &str| {
        json!({"name": name, "version": 1, "triggers": [trigger], "start": "s",
            "steps": [{"id": "s", "do": {"type": "send_message", "variants": [{"text": text}]}}]})
    };
    shop.flow(send(
        "VIP",
        json!({"type": "tag_added", "tags": ["vip"]}),
        "Chào khách VIP ạ",
    ))
    .await;
    shop.flow(send(
        "Khảo sát",
        json!({"type": "resolved"}),
        "Anh/chị chấm điểm shop 1–5 nhé?",
    ))
    .await;
    let hello = shop
        .flow(send(
            "Chào",
            json!({"type": "agent_start"}),
            "Bot chào anh/chị ạ",
        ))
        .await;
    let other_tag = shop
        .flow(send(
            "Sỉ",
            json!({"type": "tag_added", "tags": ["khách sỉ"]}),
            "x",
        ))
        .await;
    shop.says(PSID, "alo").await;
    let conv = shop.conversation_of(0).await;
    let id = conv["id"].as_str().unwrap().to_owned();
    assert_eq!(
        conv["assignee_id"],
        json!(shop.lan_id),
        "no flow for a plain message"
    );
    shop.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{id}/tags"),
            &shop.lan,
            Some(json!({"name": "vip"})),
        )
        .await;
    shop.deliver().await;
    assert_eq!(shop.sent(), ["Chào khách VIP ạ"]);
    let conv = shop.app.conversation(&id).await;
    assert_eq!(
        (conv["status"].as_str(), conv["assignee_id"].as_str()),
        (Some("open"), Some(shop.lan_id.as_str())),
        "back to Lan"
    );
    // Only a flow made to be started by an agent can be.
    let (s, v) = shop
        .app
        .post(
            &format!("/api/v1/conversations/{id}/flows"),
            &shop.lan,
            json!({"flow_id": other_tag}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("flow_not_startable"))
    );
    shop.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{id}/flows"),
            &shop.lan,
            Some(json!({"flow_id": hello})),
        )
        .await;
    shop.deliver().await;
    assert_eq!(shop.sent().last().unwrap(), "Bot chào anh/chị ạ");
    // Minh does not hold it: he may not hand Lan's customer to a flow.
    let (s, _) = shop
        .app
        .post(
            &format!("/api/v1/conversations/{id}/flows"),
            &shop.minh,
            json!({"flow_id": hello}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    shop.app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{id}/resolve"),
            &shop.lan,
            None,
        )
        .await;
    shop.deliver().await;
    assert_eq!(
        shop.sent().last().unwrap(),
        "Anh/chị chấm điểm shop 1–5 nhé?"
    );
    assert_eq!(
        shop.app.conversation(&id).await["status"],
        "resolved",
        "the survey leaves it resolved"
    );
    let kinds: Vec<String> = shop
        .app
        .history(&id)
        .await
        .iter()
        .map(|h| h["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "flow_started").count(),
        3,
        "{kinds:?}"
    );
}

/// The simulator shows each channel's rendering and the window's answer, and follows answers;
/// the dry run finds which recent conversations a flow would have started. Neither sends.
#[tokio::test]
async fn the_simulator_and_the_dry_run_try_a_flow_without_sending() {
    let shop = Shop::open().await;
    let flow = json!({
        "name": "Size", "version": 1,
        "triggers": [{"type": "keyword", "match": "whole_word", "keywords": ["giá"]}],
        "start": "ask",
        "steps": [
            {"id": "ask", "do": {"type": "ask", "question": {"text": "Anh/chị mặc size nào?"},
                "answer": {"type": "choice", "choices": [{"title": "Size S", "value": "S"}, {"title": "Size M", "value": "M"}]},
                "save_to": "size", "next": "phone"}},
            {"id": "phone", "do": {"type": "ask", "question": {"text": "Số điện thoại ạ?"}, "answer": {"type": "phone"},
                "save_to": "phone", "next": "bye"}},
            {"id": "bye", "do": {"type": "send_message", "variants": [{"text": "Dạ size {{contact.size}}, shop gọi {{contact.phone}} ạ"}]}}
        ]
    });
    let sim = |channel: &str, hours: u32, inputs: Value| {
        let app = &shop.app;
        let body = json!({"flow": flow, "channel": channel, "hours_since_customer": hours, "inputs": inputs});
        async move {
            app.ok(
                Method::POST,
                "/api/v1/flows/simulate",
                &app.admin,
                Some(body),
            )
            .await
        }
    };
    let wa = sim("whatsapp", 0, json!([{"type": "tap", "payload": "M"}, {"type": "message", "text": "abc"}, {"type": "message", "text": "0912.345.678"}])).await;
    let bots: Vec<&Value> = wa["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["from"] == "bot")
        .collect();
    assert_eq!(bots[0]["rendering"]["form"], "buttons", "{wa}");
    assert_eq!(bots[0]["rendering"]["buttons"], json!(["Size S", "Size M"]));
    assert_eq!(
        bots.last().unwrap()["text"],
        "Dạ size M, shop gọi +84912345678 ạ"
    );
    assert_eq!(wa["fields"]["phone"], "+84912345678");
    let zalo = sim("zalo", 0, json!([])).await;
    let first = &zalo["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == "bot")
        .unwrap()["rendering"];
    assert_eq!(first["form"], "numbered_list", "{zalo}");
    assert!(first["text"].as_str().unwrap().contains("1. Size S"));
    let late = sim("messenger", 30, json!([])).await;
    let first = late["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == "bot")
        .unwrap()
        .clone();
    assert_eq!(
        first["window"],
        json!({"allowed": false, "reason": "window_closed"})
    );
    let (s, v) = shop
        .app
        .post("/api/v1/flows/simulate", &shop.lan, json!({"flow": flow}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // Two customers wrote before the flow existed: one would have started it.
    shop.says(PSID, "Cho hỏi giá áo này").await;
    shop.app.advance_minutes(1);
    shop.says(PSID2, "shop ơi").await;
    let id = shop.flow(flow.clone()).await;
    let dry = shop
        .app
        .ok(
            Method::POST,
            &format!("/api/v1/flows/{id}/dry-run"),
            &shop.app.admin,
            Some(json!({"days": 7})),
        )
        .await;
    assert_eq!(
        (dry["scanned"].as_u64(), dry["matched"].as_u64()),
        (Some(2), Some(1)),
        "{dry}"
    );
    let item = &dry["items"][0];
    assert_eq!(item["first_message"], "Cho hỏi giá áo này");
    assert_eq!(item["would_send"][0]["text"], "Anh/chị mặc size nào?");
    assert!(shop.sent().is_empty(), "nothing reached Messenger");
}

/// A flow's buttons go out as quick replies on Messenger, an inline keyboard on Telegram and a
/// numbered list on live chat; a tap (or the number typed) answers the question.
#[tokio::test]
async fn a_flows_buttons_are_native_where_the_channel_has_them() {
    use switchboard_sandbox::channels::ChannelSandbox;
    let shop = Shop::open().await;
    shop.flow(json!({
        "name": "Size", "version": 1,
        "triggers": [{"type": "new_conversation"}],
        "start": "ask",
        "steps": [
            {"id": "ask", "do": {"type": "ask", "question": {"text": "Anh/chị mặc size nào?"},
                "answer": {"type": "choice", "choices": [{"title": "Size S", "value": "S"}, {"title": "Size M", "value": "M"}]},
                "save_to": "size", "next": "ok"}},
            {"id": "ok", "do": {"type": "send_message", "variants": [{"text": "Dạ size {{contact.size}} ạ"}]}}
        ]
    }))
    .await;
    // Messenger: quick replies; the tap answers.
    shop.says(PSID, "shop ơi").await;
    let first = shop.sb.sent().remove(0);
    let titles: Vec<&str> = first
        .quick_replies
        .iter()
        .map(|q| q.title.as_str())
        .collect();
    assert_eq!(
        (first.text.as_str(), titles),
        ("Anh/chị mặc size nào?", vec!["Size S", "Size M"])
    );
    let (s, _) = shop
        .sb
        .customer_taps_quick_reply(PAGE, PSID, "Size M")
        .await
        .unwrap();
    assert_eq!(s, 200);
    shop.deliver().await;
    assert_eq!(shop.sent().last().unwrap(), "Dạ size M ạ");

    // Telegram: an inline keyboard.
    const BOT: &str = "123456789:AAE-flows_bot_token";
    let tg = ChannelSandbox::start(
        Arc::new(shop.app.clock.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    tg.add_telegram_bot(BOT);
    shop.app
        .ok(
            Method::POST,
            "/api/v1/inboxes",
            &shop.app.admin,
            Some(json!({"name": "Bot", "channel": "telegram", "settings": {"bot_token": BOT, "api_base_url": tg.base_url()}})),
        )
        .await;
    tg.telegram_user_text(BOT, 2_222_222, "An", "hello")
        .await
        .unwrap();
    shop.deliver().await;
    let sent = tg.telegram_sent();
    let keyboard: Vec<&str> = sent[0]
        .inline_keyboard
        .iter()
        .flatten()
        .map(|b| b.text.as_str())
        .collect();
    assert_eq!(keyboard, ["Size S", "Size M"]);

    // Live chat: a numbered list; typing the number answers.
    let web = shop.app.inbox("Web", &[]).await;
    let (visitor, conv) = shop.app.new_customer(&web, "chào shop").await;
    shop.app.state.automation.idle().await;
    shop.app.visitor_says(&visitor, "2").await;
    shop.app.state.automation.idle().await;
    let texts: Vec<String> = shop
        .thread(&conv)
        .await
        .into_iter()
        .filter(|(k, _, _)| k == "bot")
        .map(|(_, t, _)| t)
        .collect();
    assert_eq!(
        texts,
        [
            "Anh/chị mặc size nào?\n\n1. Size S\n2. Size M",
            "Dạ size M ạ"
        ]
    );
}
