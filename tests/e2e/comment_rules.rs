//! Comment rules through the Meta sandbox: a phone comment hidden with its reason, the phone on
//! the profile, one private reply, public replies rotating their wording, a post's own rules
//! winning over the Page's, the default outside active hours, Instagram (no like; hide and reply),
//! and a burst of 2,000 comments with Meta's 429s and a restart in the middle: every action once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_sandbox::meta::{PageSpec, Sandbox, UserSpec};

const PAGE: &str = "111";
const IG: &str = "17841400000000001";
const PSID: &str = "222";
const COMMENTER: &str = "9001";
const HOUR: i64 = 3_600_000;

/// The Page's rules: a phone hides, answers privately and publicly (two wordings); in the day a
/// greeting; outside active hours (T0 is 21:13 in Vietnam) the default.
fn page_rules() -> Value {
    json!({
        "rules": [
            {"name": "Có số điện thoại", "when": [{"type": "has_phone"}],
             "do": [{"type": "hide_comment"},
                    {"type": "private_reply", "text": "Shop đã inbox {{name}} ạ"},
                    {"type": "reply_comment", "variants": ["Shop inbox {{name}} rồi nhé", "{{name}} ơi, xem tin nhắn nhé"]},
                    {"type": "add_tag", "tag": "để lại sđt"}]},
            {"name": "Ban ngày", "when": [{"type": "active_hours", "from": "08:00", "to": "21:00"}],
             "do": [{"type": "reply_comment", "variants": ["Shop trả lời ngay ạ"]}]}
        ],
        "default": [{"type": "reply_comment", "variants": ["Shop sẽ trả lời sáng mai ạ"]}]
    })
}

async fn settle(app: &TestApp) {
    let st = &app.state;
    st.comment_rules.idle().await;
    st.comment_rules.run_due(app.clock.now_ts()).await.unwrap();
    st.outbox.run_due(app.clock.now_ts()).await;
}

trait NowTs {
    fn now_ts(&self) -> switchboard_core::Timestamp;
}
impl NowTs for switchboard_server::clock::ManualClock {
    fn now_ts(&self) -> switchboard_core::Timestamp {
        switchboard_server::clock::Clock::now(self)
    }
}

async fn sandbox(app: &TestApp) -> Sandbox {
    Sandbox::start(Arc::new(app.clock.clone()), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn comments_of(app: &TestApp, token: &str, conv: &str) -> Vec<Value> {
    let v = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/messages?limit=200"),
            token,
            None,
        )
        .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "comment" && m["direction"] == "inbound")
        .cloned()
        .collect()
}

fn replies(sb: &Sandbox) -> Vec<String> {
    sb.ops()
        .iter()
        .filter_map(|o| o.what.strip_prefix("reply:").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_phone_comment_is_hidden_with_its_reason_answered_once_privately_and_in_rotation() {
    let app = TestApp::start().await;
    let sb = sandbox(&app).await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = create_page(&app, &sb, PAGE, "messenger", &[&agent_id]).await;
    sb.add_user(
        PAGE,
        UserSpec {
            id: PSID.into(),
            first_name: "Hà".into(),
            last_name: "Nguyễn".into(),
            profile_pic: None,
            commenter_id: Some(COMMENTER.into()),
        },
    );
    // An agent may read rules, not change them; a bad rule is refused with its path.
    let path = format!("/api/v1/inboxes/{inbox}/comment-rules");
    let (s, _) = app
        .call(
            Method::PUT,
            &path,
            Some(&agent),
            Some(json!({"rules": page_rules()})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .call(
            Method::PUT,
            &path,
            Some(&app.admin),
            Some(json!({"rules": {"rules": [{"name": "x", "when": [{"type": "keywords", "match": "regex", "keywords": ["(a"]}], "do": [{"type": "hide_comment"}]}]}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "invalid_rules");
    let saved = app
        .ok(
            Method::PUT,
            &path,
            &app.admin,
            Some(json!({"rules": page_rules()})),
        )
        .await;
    assert_eq!(saved["version"], 1);
    // A stale editor is refused.
    let (s, v) = app
        .call(
            Method::PUT,
            &path,
            Some(&app.admin),
            Some(json!({"rules": page_rules(), "version": 0})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("rules_changed"))
    );

    // 21:13 in Vietnam: the phone rule, then the default (outside active hours).
    let (s, c1) = sb
        .customer_comment(PAGE, PSID, "111_555", "0912.345.678 tư vấn em")
        .await
        .unwrap();
    assert_eq!(s, 200);
    settle(&app).await;
    let ops: Vec<String> = sb
        .ops()
        .iter()
        .map(|o| format!("{}:{}", o.object_id, o.what))
        .collect();
    assert_eq!(ops[0], format!("{c1}:hide"), "{ops:?}");
    assert_eq!(replies(&sb), ["Shop inbox Hà Nguyễn rồi nhé"]);
    let private: Vec<_> = sb
        .sent()
        .into_iter()
        .filter(|s| s.comment_id.is_some())
        .collect();
    assert_eq!(private.len(), 1);
    assert_eq!(private[0].comment_id.as_deref(), Some(c1.as_str()));
    assert_eq!(private[0].text, "Shop đã inbox Hà Nguyễn ạ");

    let list = app.conversations(&agent, "").await;
    assert_eq!(list.len(), 1);
    let conv = list[0]["id"].as_str().unwrap().to_owned();
    // The card: hidden, with the reason; the thread still shows it.
    let comments = comments_of(&app, &agent, &conv).await;
    let card = &comments[0]["meta"]["comment"];
    assert_eq!(card["hidden"], true, "{card}");
    assert_eq!(card["auto"]["hide"]["because"], json!(["has_phone"]));
    assert_eq!(card["auto"]["hide"]["rule"], "Có số điện thoại");
    // The phone is on the profile.
    let contact = list[0]["contact_id"].as_str().unwrap();
    let c = app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{contact}"),
            &agent,
            None,
        )
        .await;
    assert_eq!(c["phone"], "+84912345678", "{c}");
    // Every action is in the history.
    let h = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/history"),
            &agent,
            None,
        )
        .await;
    let rule_lines: Vec<&str> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "comment_rule")
        .map(|e| e["detail"]["action"].as_str().unwrap())
        .collect();
    for a in ["hide", "private_reply", "reply", "tag"] {
        assert!(rule_lines.contains(&a), "{a}: {rule_lines:?}");
    }
    // What rules did to the comment, for the card.
    let acts = app
        .ok(
            Method::GET,
            &format!(
                "/api/v1/messages/{}/rule-actions",
                comments[0]["id"].as_str().unwrap()
            ),
            &agent,
            None,
        )
        .await;
    assert_eq!(acts["actions"].as_array().unwrap().len(), 4, "{acts}");

    // A second identical comment: hidden too, another wording; its own private reply.
    let (_, c2) = sb
        .customer_comment(PAGE, PSID, "111_555", "0912.345.678 tư vấn em")
        .await
        .unwrap();
    settle(&app).await;
    assert_eq!(
        replies(&sb),
        [
            "Shop inbox Hà Nguyễn rồi nhé",
            "Hà Nguyễn ơi, xem tin nhắn nhé"
        ]
    );
    assert!(
        sb.ops()
            .iter()
            .any(|o| o.object_id == c2 && o.what == "hide")
    );
    // Decided again (Meta redelivers, a restart): nothing more happens.
    settle(&app).await;
    assert_eq!(sb.ops().iter().filter(|o| o.what == "hide").count(), 2);
    assert_eq!(
        sb.sent().iter().filter(|s| s.comment_id.is_some()).count(),
        2
    );

    // No phone, 21:13: the default; 12 hours later (09:13): the day rule.
    sb.customer_comment(PAGE, PSID, "111_555", "còn hàng không shop")
        .await
        .unwrap();
    settle(&app).await;
    assert_eq!(replies(&sb).last().unwrap(), "Shop sẽ trả lời sáng mai ạ");
    app.clock.advance_millis(12 * HOUR);
    sb.customer_comment(PAGE, PSID, "111_555", "còn hàng không shop")
        .await
        .unwrap();
    settle(&app).await;
    assert_eq!(replies(&sb).last().unwrap(), "Shop trả lời ngay ạ");

    // A post's own rules replace the Page's there: a phone is only liked on 111_777.
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/posts/111_777/comment-rules"),
        &app.admin,
        Some(json!({"rules": {"mode": "replace", "rules": [
            {"name": "Livestream", "when": [{"type": "any"}], "do": [{"type": "like_comment"}]}]}})),
    )
    .await;
    let hides = sb.ops().iter().filter(|o| o.what == "hide").count();
    let (_, c3) = sb
        .customer_comment(PAGE, PSID, "111_777", "0987 654 321 chốt")
        .await
        .unwrap();
    settle(&app).await;
    assert_eq!(sb.ops().iter().filter(|o| o.what == "hide").count(), hides);
    assert!(
        sb.ops()
            .iter()
            .any(|o| o.object_id == c3 && o.what == "like")
    );
    // Another number than the profile's: offered, not written over.
    let c = app
        .ok(
            Method::GET,
            &format!("/api/v1/contacts/{contact}"),
            &agent,
            None,
        )
        .await;
    assert_eq!(c["phone"], "+84912345678");

    // The posts view: counters and the override.
    let posts = app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{inbox}/posts"),
            &agent,
            None,
        )
        .await;
    let by_id: HashMap<&str, &Value> = posts["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["post_id"].as_str().unwrap(), p))
        .collect();
    let p = by_id["111_555"];
    assert_eq!(
        (
            &p["comments"],
            &p["hidden"],
            &p["replied"],
            &p["private_replied"]
        ),
        (&json!(4), &json!(2), &json!(4), &json!(2)),
        "{p}"
    );
    assert_eq!(by_id["111_777"]["override"]["mode"], "replace");
    assert_eq!(by_id["111_777"]["liked"], 1);

    // An agent of another inbox sees none of it.
    let (_, other) = app.agent("minh@shop.vn", "Minh", "agent").await;
    let (s, _) = app
        .get(&format!("/api/v1/inboxes/{inbox}/posts"), &other)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get(&path, &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn on_instagram_like_is_never_attempted_while_hide_and_reply_are() {
    let app = TestApp::start().await;
    let sb = sandbox(&app).await;
    let (agent_id, _agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = create_page(&app, &sb, IG, "instagram", &[&agent_id]).await;
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/comment-rules"),
        &app.admin,
        Some(json!({"rules": {"rules": [{"name": "all", "when": [{"type": "has_phone"}],
            "do": [{"type": "like_comment"}, {"type": "hide_comment"}, {"type": "reply_comment", "variants": ["Check DM nhé"]}]}]}})),
    )
    .await;
    let (_, c) = sb
        .customer_comment(IG, "igsid-1", "media-1", "sđt 0912 345 678")
        .await
        .unwrap();
    settle(&app).await;
    let ops: Vec<(String, String)> = sb
        .ops()
        .iter()
        .map(|o| (o.object_id.clone(), o.what.clone()))
        .collect();
    assert_eq!(
        ops,
        [
            (c.clone(), "hide".to_owned()),
            (c.clone(), "reply:Check DM nhé".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_burst_of_2000_comments_with_429s_and_a_restart_gets_every_action_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = switchboard_server::clock::ManualClock::new(T0);
    let app = TestApp::start_in(dir.path(), clock.clone(), true).await;
    let sb = sandbox(&app).await;
    let inbox = create_page(&app, &sb, PAGE, "messenger", &[]).await;
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/comment-rules"),
        &app.admin,
        Some(json!({"rules": {"rules": [
            {"name": "phone", "when": [{"type": "has_phone"}], "do": [{"type": "hide_comment"}]},
            {"name": "price", "when": [{"type": "keywords", "keywords": ["giá"]}],
             "do": [{"type": "reply_comment", "variants": ["Giá trong tin nhắn ạ", "Shop inbox giá nhé", "Bạn xem inbox ạ"]}]}
        ]}})),
    )
    .await;
    const N: usize = 2000;
    // Meta's limit for the Page: 150 comment operations a second.
    sb.set_comment_rate_limit(PAGE, 150, 1_000);
    let burst: Vec<(String, String)> = (0..N)
        .map(|i| {
            let user = format!("u{}", i % 400);
            let text = if i % 2 == 0 {
                format!("09{:08} chốt đơn", 12_000_000 + i)
            } else {
                format!("giá bao nhiêu ạ #{i}")
            };
            (user, text)
        })
        .collect();
    // The first half, then the node stops in the middle of carrying the actions out.
    let (first, statuses) = sb
        .comment_burst(PAGE, "111_900", &burst[..N / 2], 25, 7)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| *s == 200));
    app.state.comment_rules.idle().await;
    app.state
        .comment_rules
        .run_due(clock.now_ts())
        .await
        .unwrap();
    app.stop().await;

    let app = TestApp::start_in(dir.path(), clock.clone(), false).await;
    // Meta calls the node at its new address.
    sb.add_page(PageSpec {
        id: PAGE.into(),
        object: switchboard_channels::meta::Object::Page,
        token: format!("token-{PAGE}"),
        app_secret: META_APP_SECRET.into(),
        webhook_url: app.url("/webhooks/meta"),
        echoes: true,
        private_reply_recipient_id: true,
        auto_delivery: false,
    });
    let (second, statuses) = sb
        .comment_burst(PAGE, "111_900", &burst[N / 2..], 25, 7)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| *s == 200));
    app.state.comment_rules.idle().await;
    // Leases of the stopped node run out; 429s are waited out on the clock, until nothing is
    // left to do in the comment outbox or the message outbox.
    let store = app.state.store.clone();
    for _ in 0..500 {
        clock.advance_millis(61_000);
        app.state
            .comment_rules
            .run_due(clock.now_ts())
            .await
            .unwrap();
        app.state.outbox.run_due(clock.now_ts()).await;
        let pending = store.next_comment_action_due().await.unwrap();
        let queued = store.next_due().await.unwrap();
        if pending.is_none() && queued.is_none() {
            break;
        }
    }
    let ids: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(ids.len(), 2000);
    let mut hides: HashMap<String, usize> = HashMap::new();
    let mut replied: HashMap<String, usize> = HashMap::new();
    for o in sb.ops() {
        if o.what == "hide" {
            *hides.entry(o.object_id).or_default() += 1;
        } else if o.what.starts_with("reply:") {
            *replied.entry(o.object_id).or_default() += 1;
        }
    }
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(hides.get(id), Some(&1), "comment {i} hidden once");
            assert_eq!(replied.get(id), None);
        } else {
            assert_eq!(replied.get(id), Some(&1), "comment {i} answered once");
            assert_eq!(hides.get(id), None);
        }
    }
    // Wordings rotate: each of the three is used, about a third of the time each.
    let texts: Vec<String> = replies(&sb);
    assert_eq!(texts.len(), 1000);
    for w in [
        "Giá trong tin nhắn ạ",
        "Shop inbox giá nhé",
        "Bạn xem inbox ạ",
    ] {
        let n = texts.iter().filter(|t| *t == w).count();
        assert!((300..=400).contains(&n), "{w}: {n}");
    }
    let posts = app
        .ok(
            Method::GET,
            &format!("/api/v1/inboxes/{inbox}/posts"),
            &app.admin,
            None,
        )
        .await;
    let p = &posts["posts"][0];
    assert_eq!(
        (&p["comments"], &p["hidden"], &p["replied"]),
        (&json!(2000), &json!(1000), &json!(1000)),
        "{p}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_customer_answering_a_private_reply_starts_the_rules_flow() {
    let app = TestApp::start().await;
    let sb = sandbox(&app).await;
    let (agent_id, agent) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = create_page(&app, &sb, PAGE, "messenger", &[&agent_id]).await;
    sb.add_user(
        PAGE,
        UserSpec {
            id: PSID.into(),
            first_name: "Hà".into(),
            last_name: "Nguyễn".into(),
            profile_pic: None,
            commenter_id: Some(COMMENTER.into()),
        },
    );
    let flow = app
        .ok(
            Method::POST,
            "/api/v1/flows",
            &app.admin,
            Some(json!({"flow": {"name": "Tư vấn size", "version": 1, "triggers": [{"type": "agent_start"}],
                "start": "ask", "steps": [{"id": "ask", "do": {"type": "send_message", "variants": [{"text": "Anh/chị mặc size nào ạ?"}]}}]}})),
        )
        .await;
    let flow_id = flow["id"].as_str().unwrap();
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/comment-rules"),
        &app.admin,
        Some(
            json!({"rules": {"rules": [{"name": "sđt", "when": [{"type": "has_phone"}],
            "do": [{"type": "private_reply", "text": "Shop inbox ạ", "then_flow": flow_id}]}]}}),
        ),
    )
    .await;
    sb.customer_comment(PAGE, PSID, "111_555", "0912 345 678")
        .await
        .unwrap();
    settle(&app).await;
    sb.flush().await;
    assert_eq!(
        sb.sent()
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>(),
        ["Shop inbox ạ"]
    );
    // The customer answers in Messenger: the flow starts there (once).
    sb.customer_message(PAGE, PSID, "dạ em cần tư vấn")
        .await
        .unwrap();
    app.state.automation.idle().await;
    app.state.outbox.run_due(app.clock.now_ts()).await;
    sb.customer_message(PAGE, PSID, "size M").await.unwrap();
    app.state.automation.idle().await;
    app.state.outbox.run_due(app.clock.now_ts()).await;
    let texts: Vec<String> = sb.sent().iter().map(|s| s.text.clone()).collect();
    assert_eq!(texts, ["Shop inbox ạ", "Anh/chị mặc size nào ạ?"]);
    let list = app.conversations(&agent, "").await;
    assert_eq!(list.len(), 1);
}

/// Meta takes 750 private replies an hour from a Page: the 751st waits for the hour (counted
/// ahead, never sent to be refused), visible with its reason, and goes out when the hour frees a
/// place; each comment still gets exactly one.
#[tokio::test]
async fn private_replies_past_the_hourly_budget_wait_for_the_hour() {
    let app = TestApp::start().await;
    let sb = sandbox(&app).await;
    let inbox = create_page(&app, &sb, PAGE, "messenger", &[]).await;
    app.ok(
        Method::PUT,
        &format!("/api/v1/inboxes/{inbox}/comment-rules"),
        &app.admin,
        Some(json!({"rules": {"rules": [
            {"name": "inbox", "when": [{"type": "any"}], "do": [{"type": "private_reply", "text": "Shop đã inbox ạ"}]}
        ]}})),
    )
    .await;
    const N: usize = 760;
    let burst: Vec<(String, String)> = (0..N)
        .map(|i| (format!("u{i}"), format!("còn hàng không #{i}")))
        .collect();
    let (ids, statuses) = sb
        .comment_burst(PAGE, "111_760", &burst, 40, 0)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| *s == 200));
    app.state.comment_rules.idle().await;
    let private_sent = |sb: &Sandbox| {
        sb.sent()
            .into_iter()
            .filter(|s| s.comment_id.is_some())
            .count()
    };
    let drain = |app: &TestApp| {
        let (rules, outbox, clock) = (
            app.state.comment_rules.clone(),
            app.state.outbox.clone(),
            app.clock.clone(),
        );
        async move {
            let mut deferred = 0;
            loop {
                let t = rules.run_due(clock.now_ts()).await.unwrap();
                deferred += t.deferred;
                outbox.run_due(clock.now_ts()).await;
                if t.done + t.retried + t.failed == 0 {
                    return deferred;
                }
            }
        }
    };
    let deferred = drain(&app).await;
    assert_eq!(private_sent(&sb), 750, "the hour's budget, no more");
    assert_eq!(deferred, N - 750);
    // The ones that wait say why.
    let store = app.state.store.clone();
    let inbox_id = serde_json::from_value(json!(inbox)).unwrap();
    let mut waiting = Vec::new();
    for id in &ids {
        let m = store
            .message_by_provider_id(inbox_id, &format!("comment:{id}"))
            .await
            .unwrap()
            .expect("every comment is stored");
        waiting.extend(
            store
                .comment_actions_of(m.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|a| a.status == switchboard_store::CommentActionStatus::Pending),
        );
    }
    assert_eq!(waiting.len(), N - 750);
    assert!(
        waiting
            .iter()
            .all(|a| a.result.as_deref() == Some("hourly_limit") && a.attempts == 0),
        "{:?}",
        waiting[0]
    );
    // Within the hour nothing more goes; once the first replies leave it, the rest go.
    app.clock.advance_millis(30 * 60_000);
    drain(&app).await;
    assert_eq!(private_sent(&sb), 750);
    app.clock.advance_millis(31 * 60_000);
    drain(&app).await;
    assert_eq!(private_sent(&sb), N);
    let mut per_comment: HashMap<String, usize> = HashMap::new();
    for s in sb.sent() {
        if let Some(c) = s.comment_id {
            *per_comment.entry(c).or_default() += 1;
        }
    }
    assert_eq!(per_comment.len(), N);
    assert!(per_comment.values().all(|n| *n == 1));
}
