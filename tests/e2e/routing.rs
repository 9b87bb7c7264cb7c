//! Routing rules, claims and timers against the real server: round-robin, least-busy with
//! capacity, sticky, presence, backlog draining, reply SLA ("chống giành khách"), auto-close,
//! business hours, and timers that survive a restart and fire once. Time is a manual clock; the
//! timer runner is ticked by hand (`TestApp::tick`), except in the one test of the background loop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_core::business_hours::{Date, timestamp_at};
use switchboard_server::clock::Clock;

/// Agents sorted by id: the order the rotation visits them in.
async fn agents(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(
            app.agent(&format!("a{i}@shop.vn"), &format!("Agent {i}"), "agent")
                .await,
        );
    }
    v.sort();
    v
}

fn ids(agents: &[(String, String)]) -> Vec<&str> {
    agents.iter().map(|(id, _)| id.as_str()).collect()
}

async fn assignee(app: &TestApp, conv: &str) -> Value {
    app.conversation(conv).await["assignee_id"].clone()
}

/// Waits for `agent`'s presence to be reported as `status` on this socket.
async fn wait_presence(ws: &mut Ws, agent: &str, status: &str) {
    loop {
        let p = ws.next_of("presence").await;
        if p["agent_id"] == agent && p["status"] == status {
            return;
        }
    }
}

async fn set_capacity(app: &TestApp, agent: &str, capacity: u32) {
    app.ok(
        Method::PATCH,
        &format!("/api/v1/agents/{agent}"),
        &app.admin,
        Some(json!({"capacity": capacity})),
    )
    .await;
}

#[tokio::test]
async fn routing_rules_are_read_by_members_written_by_admins_and_validated() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (_, out_t) = app.agent("out@shop.vn", "Outsider", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let path = format!("/api/v1/inboxes/{inbox}/routing");

    // A new inbox starts as self-claim with everything else off.
    let rules = app.ok(Method::GET, &path, &lan_t, None).await;
    assert_eq!(
        rules,
        json!({
            "strategy": "self_claim", "include_offline": false, "sticky": false, "agent_ids": [],
            "default_capacity": null, "reply_sla_minutes": null,
            "auto_close": {"customer_silence_minutes": null, "agent_silence_minutes": null, "closing_message": null},
            "offline_release_minutes": null, "business_hours": null
        })
    );
    let (s, _) = app.get(&path, &out_t).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "outsiders do not learn it exists");
    let (s, b) = app
        .call(Method::PUT, &path, Some(&lan_t), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, _) = app
        .call(Method::PUT, &path, Some(&out_t), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let wanted = json!({
        "strategy": "round_robin", "include_offline": true, "sticky": true, "agent_ids": [lan],
        "default_capacity": 3, "reply_sla_minutes": 5,
        "auto_close": {"customer_silence_minutes": 60, "agent_silence_minutes": null, "closing_message": "Cảm ơn anh/chị!"},
        "offline_release_minutes": 10,
        "business_hours": {
            "utc_offset_minutes": 420,
            "days": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}],
                     "tue": [], "wed": [], "thu": [], "fri": [], "sat": [], "sun": []},
            "holidays": ["2026-09-02"], "pause_routing": true, "auto_reply": "Ngoài giờ làm việc"
        }
    });
    assert_eq!(app.set_routing(&inbox, wanted.clone()).await, wanted);
    assert_eq!(app.ok(Method::GET, &path, &lan_t, None).await, wanted);

    let bad = [
        (json!({"strategy": "random"}), "strategy"),
        (json!({"reply_sla_minutes": 0}), "reply_sla_minutes"),
        (json!({"sticky": "yes"}), "sticky"),
        (json!({"agent_ids": ["not-an-id"]}), "agent_ids"),
        (
            json!({"business_hours": {"days": {"mon": [{"start": "12:00", "end": "08:00"}]}}}),
            "business_hours.days.mon",
        ),
        (
            json!({"business_hours": {"holidays": ["2026-02-30"]}}),
            "business_hours.holidays",
        ),
        (json!({"round_robin": true}), "round_robin"),
    ];
    for (body, field) in bad {
        let (s, b) = app
            .call(Method::PUT, &path, Some(&app.admin), Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["error"]["code"], "invalid_input", "{b}");
        assert_eq!(b["error"]["field"], field, "{b}");
    }
    // Eligible agents must be members of the inbox.
    let (outsider, _) = app.agent("out2@shop.vn", "Out", "agent").await;
    let (s, b) = app
        .call(
            Method::PUT,
            &path,
            Some(&app.admin),
            Some(json!({"agent_ids": [outsider]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["field"], "agent_ids");
    assert_eq!(
        app.ok(Method::GET, &path, &lan_t, None).await,
        wanted,
        "refused writes change nothing"
    );

    let (s, b) = app
        .call(
            Method::PUT,
            "/api/v1/me/presence",
            Some(&lan_t),
            Some(json!({"status": "busy"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["field"], "status");
}

#[tokio::test]
async fn round_robin_splits_concurrent_arrivals_evenly_and_logs_each_assignment() {
    let app = TestApp::start().await;
    let team = agents(&app, 3).await;
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(&inbox, json!({"strategy": "round_robin"}))
        .await;
    let mut sockets = Vec::new();
    for (_, t) in &team {
        sockets.push(app.online(t).await);
    }

    // The first arrival goes to the first agent in rotation, and they hear about it.
    let (_, first) = app.new_customer(&inbox, "xin chào").await;
    assert_eq!(assignee(&app, &first).await, team[0].0.as_str());
    let ev = sockets[0].next_of("conversation.assigned").await;
    assert_eq!(ev["conversation_id"], first.as_str());
    assert_eq!(ev["conversation"]["assignee_id"], team[0].0.as_str());
    assert_eq!(ev["reason"], "round_robin");
    let log = app.history(&first).await;
    let auto = log.iter().find(|h| h["kind"] == "auto_assigned").unwrap();
    assert_eq!(auto["detail"]["to"], team[0].0.as_str());
    assert_eq!(auto["detail"]["trigger"], "arrival");
    assert_eq!(auto["actor_id"], Value::Null);

    // 29 more customers write at the same moment, from many tasks: the rotation pointer is
    // compare-and-set, so the split stays exact.
    let mut tasks = Vec::new();
    for i in 0..29 {
        let (http, base, inbox) = (app.http.clone(), app.base.clone(), inbox.clone());
        tasks.push(tokio::spawn(async move {
            let v: Value = http
                .post(format!("{base}/widget/v1/sessions"))
                .json(&json!({"inbox_id": inbox}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = v["token"].as_str().unwrap().to_owned();
            let s = http
                .post(format!("{base}/widget/v1/messages"))
                .bearer_auth(token)
                .json(&json!({"text": format!("khách {i}")}))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(s, StatusCode::CREATED);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Anything a busy moment left waiting is assigned by the runner's backlog sweep.
    app.tick().await;
    let all = app.conversations(&app.admin, "?limit=100").await;
    assert_eq!(all.len(), 30);
    for (id, _) in &team {
        let n = all
            .iter()
            .filter(|c| c["assignee_id"] == id.as_str())
            .count();
        assert_eq!(n, 10, "{id}: {all:?}");
    }
}

#[tokio::test]
async fn offline_agents_get_nothing_unless_included_and_the_backlog_drains_when_they_connect() {
    let app = TestApp::start().await;
    let team = agents(&app, 2).await;
    let (a, b) = (&team[0], &team[1]);
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(&inbox, json!({"strategy": "round_robin"}))
        .await;
    set_capacity(&app, &a.0, 1).await;

    // Nobody online: nobody is eligible, the conversations wait in the pool.
    let (_, c1) = app.new_customer(&inbox, "one").await;
    app.advance_minutes(1);
    let (_, c2) = app.new_customer(&inbox, "two").await;
    for c in [&c1, &c2] {
        let conv = app.conversation(c).await;
        assert_eq!(
            (conv["status"].as_str(), &conv["assignee_id"]),
            (Some("pending"), &Value::Null)
        );
    }
    assert_eq!(app.tick().await.assigned, 0, "still nobody");

    // A comes online with room for one: the longest-waiting conversation goes to them.
    let _a_ws = app.online(&a.1).await;
    assert_eq!(assignee(&app, &c1).await, a.0.as_str());
    assert_eq!(assignee(&app, &c2).await, Value::Null, "A is at capacity");
    let drained = app.history(&c1).await;
    let auto = drained
        .iter()
        .find(|h| h["kind"] == "auto_assigned")
        .unwrap();
    assert_eq!(auto["detail"]["trigger"], "backlog");
    // B comes online: the next one is theirs.
    let _b_ws = app.online(&b.1).await;
    assert_eq!(assignee(&app, &c2).await, b.0.as_str());

    // A separate inbox that routes to offline agents too: assigned with nobody connected.
    let (c, c_t) = app.agent("c@shop.vn", "Chi", "agent").await;
    let offline_inbox = app.inbox("Night", &[&c]).await;
    app.set_routing(
        &offline_inbox,
        json!({"strategy": "round_robin", "include_offline": false}),
    )
    .await;
    let (_, night) = app.new_customer(&offline_inbox, "đêm khuya").await;
    assert_eq!(assignee(&app, &night).await, Value::Null);
    // Switching it on drains the pool at once.
    app.set_routing(
        &offline_inbox,
        json!({"strategy": "round_robin", "include_offline": true}),
    )
    .await;
    assert_eq!(assignee(&app, &night).await, c.as_str());
    let (_, later) = app.new_customer(&offline_inbox, "còn ai không").await;
    assert_eq!(assignee(&app, &later).await, c.as_str());
    let (s, me) = app.get("/api/v1/me/presence", &c_t).await;
    assert_eq!(
        (s, me["status"].as_str()),
        (StatusCode::OK, Some("offline"))
    );
}

#[tokio::test]
async fn least_busy_respects_capacity_and_resolving_drains_the_backlog_in_waiting_order() {
    let app = TestApp::start().await;
    let team = agents(&app, 2).await;
    let (a, b) = (&team[0], &team[1]);
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(&inbox, json!({"strategy": "least_busy"}))
        .await;
    set_capacity(&app, &a.0, 1).await;
    set_capacity(&app, &b.0, 2).await;
    let _ws = (app.online(&a.1).await, app.online(&b.1).await);

    let mut convs = Vec::new();
    for i in 0..5 {
        convs.push(app.new_customer(&inbox, &format!("khách {i}")).await.1);
        app.advance_minutes(1);
    }
    // Both free: tie → rotation (A); A full → B; B has 1 < 2 → B; then everyone is full.
    let holders = [
        assignee(&app, &convs[0]).await,
        assignee(&app, &convs[1]).await,
        assignee(&app, &convs[2]).await,
        assignee(&app, &convs[3]).await,
        assignee(&app, &convs[4]).await,
    ];
    assert_eq!(
        holders,
        [json!(a.0), json!(b.0), json!(b.0), Value::Null, Value::Null]
    );
    let agents_list = app
        .ok(Method::GET, "/api/v1/agents", &app.admin, None)
        .await;
    let a_row = agents_list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == a.0.as_str())
        .unwrap()
        .clone();
    assert_eq!(a_row["capacity"], 1);
    assert_eq!(a_row["presence"], "online");

    // A resolves: the longest-waiting conversation (#3, not #4) goes to A before the call returns.
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{}/resolve", convs[0]),
        &a.1,
        None,
    )
    .await;
    assert_eq!(assignee(&app, &convs[3]).await, a.0.as_str());
    assert_eq!(assignee(&app, &convs[4]).await, Value::Null);
    // B resolves one: the last waiting one goes to B.
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{}/resolve", convs[1]),
        &b.1,
        None,
    )
    .await;
    assert_eq!(assignee(&app, &convs[4]).await, b.0.as_str());
    let auto = app.history(&convs[4]).await;
    let auto = auto.iter().find(|h| h["kind"] == "auto_assigned").unwrap();
    assert_eq!(
        (&auto["detail"]["trigger"], &auto["detail"]["reason"]),
        (&json!("backlog"), &json!("least_busy"))
    );
}

#[tokio::test]
async fn sticky_sends_a_returning_customer_back_to_their_agent_if_they_are_eligible() {
    let app = TestApp::start().await;
    let team = agents(&app, 2).await;
    let (a, b) = (&team[0], &team[1]);
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(&inbox, json!({"strategy": "round_robin", "sticky": true}))
        .await;
    let mut a_ws = app.online(&a.1).await;
    let b_ws = app.online(&b.1).await;

    let (v1, c1) = app.new_customer(&inbox, "một").await;
    let (v2, c2) = app.new_customer(&inbox, "hai").await;
    assert_eq!(assignee(&app, &c1).await, a.0.as_str());
    assert_eq!(assignee(&app, &c2).await, b.0.as_str());
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{c1}/resolve"),
        &a.1,
        None,
    )
    .await;
    let (_, c3) = app.new_customer(&inbox, "ba").await;
    assert_eq!(assignee(&app, &c3).await, a.0.as_str(), "rotation: A");

    // The rotation says B next, but the returning customer goes back to A.
    app.visitor_says(&v1, "em quay lại nè").await;
    let conv = app.conversation(&c1).await;
    assert_eq!(
        (conv["status"].as_str(), &conv["assignee_id"]),
        (Some("open"), &json!(a.0))
    );
    let auto: Vec<Value> = app
        .history(&c1)
        .await
        .into_iter()
        .filter(|h| h["kind"] == "auto_assigned")
        .collect();
    assert_eq!(auto.last().unwrap()["detail"]["reason"], "sticky");

    // Their agent is gone (offline): the returning customer is routed normally instead.
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{c2}/resolve"),
        &b.1,
        None,
    )
    .await;
    b_ws.close().await;
    wait_presence(&mut a_ws, &b.0, "offline").await;
    app.visitor_says(&v2, "shop ơi").await;
    let conv = app.conversation(&c2).await;
    assert_eq!(conv["last_assignee_id"], a.0.as_str());
    assert_eq!(conv["assignee_id"], a.0.as_str(), "B is offline: rotation");
    let auto: Vec<Value> = app
        .history(&c2)
        .await
        .into_iter()
        .filter(|h| h["kind"] == "auto_assigned")
        .collect();
    assert_eq!(auto.last().unwrap()["detail"]["reason"], "round_robin");
}

#[tokio::test]
async fn reply_sla_returns_to_the_pool_on_every_miss_but_not_after_a_real_reply() {
    let app = TestApp::start().await;
    let (a, a_t) = app.agent("a@shop.vn", "An", "agent").await;
    let inbox = app.inbox("Web", &[&a]).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "self_claim", "reply_sla_minutes": 5}),
    )
    .await;
    let mut a_ws = app.online(&a_t).await;
    let (v, conv) = app.new_customer(&inbox, "còn hàng không?").await;
    let claim = format!("/api/v1/conversations/{conv}/claim");
    app.ok(Method::POST, &claim, &a_t, None).await;
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/timers"),
            &a_t,
            None,
        )
        .await;
    assert_eq!(timers["items"][0]["kind"], "reply_sla");
    assert_eq!(
        timers["items"][0]["due_at"].as_i64(),
        Some(T0.plus_minutes(5).millis())
    );

    // One second short of the SLA: nothing happens.
    app.clock.advance_millis(5 * 60_000 - 1_000);
    assert_eq!(app.tick().await.fired, 0);
    assert_eq!(assignee(&app, &conv).await, a.as_str());
    // At the SLA: back to the pool, logged, and An hears they lost it.
    app.clock.advance_millis(1_000);
    assert_eq!(app.tick().await.fired, 1);
    let c = app.conversation(&conv).await;
    assert_eq!(
        (c["status"].as_str(), &c["assignee_id"]),
        (Some("pending"), &Value::Null)
    );
    let ev = a_ws.next_of("conversation.returned").await;
    assert_eq!(ev["previous_assignee_id"], a.as_str());
    assert_eq!(ev["reason"], "reply_sla");
    assert_eq!(ev["conversation"]["assignee_id"], Value::Null);
    let log = app.history(&conv).await;
    let ret = log
        .iter()
        .find(|h| h["kind"] == "returned_to_pool")
        .unwrap();
    assert_eq!(
        (&ret["detail"]["from"], &ret["detail"]["reason"]),
        (&json!(a), &json!("reply_sla"))
    );
    // Self-claim: it stays in the pool; the runner does not hand it out.
    app.tick().await;
    assert_eq!(assignee(&app, &conv).await, Value::Null);

    // Claimed again, and a note is written: a note is not a reply, so it misses again.
    app.ok(Method::POST, &claim, &a_t, None).await;
    app.advance_minutes(1);
    app.write(&a_t, &conv, "note", "khách này hỏi giá sỉ").await;
    app.advance_minutes(4);
    assert_eq!(app.tick().await.fired, 1, "second miss fires again");
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 2);
    assert_eq!(
        a_ws.next_of("conversation.returned").await["reason"],
        "reply_sla"
    );

    // Claimed again and answered for real: the SLA is cancelled.
    app.ok(Method::POST, &claim, &a_t, None).await;
    app.advance_minutes(2);
    app.write(&a_t, &conv, "reply", "Dạ còn ạ").await;
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/timers"),
            &a_t,
            None,
        )
        .await;
    assert_eq!(timers["items"], json!([]));
    app.advance_minutes(30);
    assert_eq!(app.tick().await.fired, 0);
    assert_eq!(assignee(&app, &conv).await, a.as_str());
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 2);

    // The customer writes again: a new turn, a new deadline, and a third miss fires too.
    app.visitor_says(&v, "giao hàng khi nào?").await;
    app.advance_minutes(5);
    assert_eq!(app.tick().await.fired, 1);
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 3);
}

#[tokio::test]
async fn reply_sla_in_a_round_robin_inbox_moves_it_to_the_next_agent() {
    let app = TestApp::start().await;
    let team = agents(&app, 3).await;
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "round_robin", "reply_sla_minutes": 5}),
    )
    .await;
    let mut ws = Vec::new();
    for (_, t) in &team {
        ws.push(app.online(t).await);
    }
    let (_, conv) = app.new_customer(&inbox, "alo").await;
    assert_eq!(assignee(&app, &conv).await, team[0].0.as_str());

    app.advance_minutes(5);
    assert_eq!(app.tick().await.fired, 1);
    // The one who missed it is excluded: it goes to the next in rotation, with a fresh 5 minutes.
    assert_eq!(assignee(&app, &conv).await, team[1].0.as_str());
    let lost = ws[0].next_of("conversation.returned").await;
    assert_eq!(lost["previous_assignee_id"], team[0].0.as_str());
    assert_eq!(lost["conversation"]["assignee_id"], team[1].0.as_str());
    // B saw the first assignment (to A) too; the one that matters names B.
    let got = loop {
        let e = ws[1].next_of("conversation.assigned").await;
        if e["conversation"]["assignee_id"] == team[1].0.as_str() {
            break e;
        }
    };
    assert_eq!(got["conversation_id"], conv.as_str());
    assert_eq!(got["previous_assignee_id"], team[0].0.as_str());
    let log = app.history(&conv).await;
    let ret = log
        .iter()
        .find(|h| h["kind"] == "returned_to_pool")
        .unwrap();
    assert_eq!(ret["detail"]["to"], team[1].0.as_str());

    app.advance_minutes(4);
    assert_eq!(
        app.tick().await.fired,
        0,
        "the new holder has their own 5 minutes"
    );
    app.advance_minutes(1);
    assert_eq!(app.tick().await.fired, 1);
    assert_eq!(assignee(&app, &conv).await, team[2].0.as_str());
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 2);
}

/// The reply deadline switched on mid-shift watches only customer messages from then on: the
/// conversations already waiting keep their agent at the next ticks, each row shows its own
/// deadline (`reply_due_at`) once one runs, and changing the minutes later keeps that start.
#[tokio::test]
async fn switching_the_reply_deadline_on_mid_shift_leaves_the_waiting_conversations_alone() {
    let app = TestApp::start().await;
    let (a, a_t) = app.agent("a@shop.vn", "An", "agent").await;
    let inbox = app.inbox("Web", &[&a]).await;
    app.set_routing(&inbox, json!({"strategy": "self_claim"}))
        .await;
    let _a_ws = app.online(&a_t).await;
    let mut held = Vec::new();
    for i in 0..4 {
        let (v, conv) = app.new_customer(&inbox, &format!("khách {i} hỏi")).await;
        let claim = format!("/api/v1/conversations/{conv}/claim");
        app.ok(Method::POST, &claim, &a_t, None).await;
        held.push((v, conv));
    }
    app.advance_minutes(10);
    app.set_routing(
        &inbox,
        json!({"strategy": "self_claim", "reply_sla_minutes": 5}),
    )
    .await;
    let rows = app.conversations(&a_t, "?assignee=me").await;
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r["reply_due_at"].is_null()),
        "no deadline for messages from before: {rows:?}"
    );
    for _ in 0..3 {
        app.advance_minutes(5);
        assert_eq!(app.tick().await.fired, 0);
    }
    for (_, conv) in &held {
        assert_eq!(assignee(&app, conv).await, a.as_str());
    }
    assert_eq!(app.count_actions(&held[0].1, "returned_to_pool").await, 0);

    // Changing the minutes keeps the time it was switched on: still nothing for the old ones.
    app.set_routing(
        &inbox,
        json!({"strategy": "self_claim", "reply_sla_minutes": 3}),
    )
    .await;
    app.advance_minutes(3);
    assert_eq!(app.tick().await.fired, 0);

    // One of them writes again: that message is watched; its row shows the deadline.
    let now = app.clock.now();
    app.visitor_says(&held[1].0, "sao chưa ai trả lời?").await;
    let due = now.plus_minutes(3).millis();
    let rows = app.conversations(&a_t, "?assignee=me").await;
    for r in &rows {
        let want = (r["id"] == held[1].1.as_str()).then_some(due);
        assert_eq!(r["reply_due_at"].as_i64(), want, "{r}");
    }
    assert_eq!(
        app.conversation(&held[1].1).await["reply_due_at"].as_i64(),
        Some(due),
        "the conversation's own summary too"
    );
    app.advance_minutes(3);
    assert_eq!(app.tick().await.fired, 1);
    assert_eq!(assignee(&app, &held[1].1).await, Value::Null);
    for i in [0, 2, 3] {
        assert_eq!(assignee(&app, &held[i].1).await, a.as_str());
    }

    // A new customer after it was switched on is watched from their first message.
    let (_, fresh) = app.new_customer(&inbox, "alo").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{fresh}/claim"),
        &a_t,
        None,
    )
    .await;
    assert!(app.conversation(&fresh).await["reply_due_at"].is_i64());
    app.advance_minutes(3);
    assert_eq!(app.tick().await.fired, 1);
    assert_eq!(assignee(&app, &fresh).await, Value::Null);
}

/// An agent who hands a customer to a colleague never gets it back from routing when the
/// colleague misses the reply deadline: it waits for someone else (and the backlog does not give
/// it to them either).
#[tokio::test]
async fn a_missed_deadline_never_hands_a_conversation_back_to_the_agent_who_transferred_it() {
    let app = TestApp::start().await;
    let team = agents(&app, 3).await;
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "round_robin", "reply_sla_minutes": 5}),
    )
    .await;
    // Only the first two are at work.
    let _a_ws = app.online(&team[0].1).await;
    let _b_ws = app.online(&team[1].1).await;
    let (a, a_t) = (&team[0].0, &team[0].1);
    let b = &team[1].0;
    let (_, conv) = app.new_customer(&inbox, "đổi size giúp em").await;
    assert_eq!(assignee(&app, &conv).await, a.as_str());
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/transfer"),
        a_t,
        Some(json!({"agent_id": b, "message": "Chị xử lý giúp em"})),
    )
    .await;
    assert_eq!(assignee(&app, &conv).await, b.as_str());

    // B misses it: the rotation would pick A next, but A handed it over — it waits in the pool.
    app.advance_minutes(5);
    assert_eq!(app.tick().await.fired, 1);
    let c = app.conversation(&conv).await;
    assert_eq!(
        (c["status"].as_str(), &c["assignee_id"]),
        (Some("pending"), &Value::Null)
    );
    let log = app.history(&conv).await;
    let ret = log
        .iter()
        .find(|h| h["kind"] == "returned_to_pool")
        .unwrap();
    assert_eq!(
        (&ret["detail"]["from"], &ret["detail"]["to"]),
        (&json!(b), &Value::Null)
    );
    for _ in 0..3 {
        app.advance_minutes(1);
        app.tick().await;
        assert_eq!(assignee(&app, &conv).await, Value::Null, "not to A");
    }
    // C comes to work: the backlog goes to C.
    let _c_ws = app.online(&team[2].1).await;
    app.tick().await;
    assert_eq!(assignee(&app, &conv).await, team[2].0.as_str());
}

#[tokio::test]
async fn auto_close_for_silence_and_a_new_message_reopens_and_routes_sticky() {
    let app = TestApp::start().await;
    let team = agents(&app, 2).await;
    let (a, b) = (&team[0], &team[1]);
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "round_robin", "sticky": true,
               "auto_close": {"customer_silence_minutes": 30, "agent_silence_minutes": 120,
                              "closing_message": "Cảm ơn anh/chị đã liên hệ!"}}),
    )
    .await;
    let _ws = (app.online(&a.1).await, app.online(&b.1).await);

    // Customer silence: A answered, the customer went quiet for 30 minutes.
    let (v1, c1) = app.new_customer(&inbox, "giá bao nhiêu?").await;
    assert_eq!(assignee(&app, &c1).await, a.0.as_str());
    app.write(&a.1, &c1, "reply", "Dạ 200k ạ").await;
    app.advance_minutes(29);
    assert_eq!(app.tick().await.fired, 0);
    app.advance_minutes(1);
    assert_eq!(app.tick().await.fired, 1);
    let c = app.conversation(&c1).await;
    assert_eq!(c["status"], "resolved");
    let log = app.history(&c1).await;
    let closed = log.iter().find(|h| h["kind"] == "auto_resolved").unwrap();
    assert_eq!(closed["detail"]["reason"], "customer_silence");
    assert_eq!(closed["detail"]["previous_assignee"], a.0.as_str());
    // The live-chat customer gets the closing message.
    let (_, thread) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v1), None)
        .await;
    let last = thread["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["text"].as_str(), last["sender_kind"].as_str()),
        (Some("Cảm ơn anh/chị đã liên hệ!"), Some("system"))
    );

    // Agent silence: nobody answered for 120 minutes → resolved, no closing message.
    let (v2, c2) = app.new_customer(&inbox, "có ai không?").await;
    assert_eq!(assignee(&app, &c2).await, b.0.as_str());
    app.advance_minutes(119);
    assert_eq!(app.tick().await.fired, 0);
    app.advance_minutes(1);
    assert_eq!(app.tick().await.fired, 1);
    assert_eq!(app.conversation(&c2).await["status"], "resolved");
    let log = app.history(&c2).await;
    let closed = log.iter().find(|h| h["kind"] == "auto_resolved").unwrap();
    assert_eq!(closed["detail"]["reason"], "agent_silence");
    let (_, thread) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v2), None)
        .await;
    assert_eq!(thread["items"].as_array().unwrap().len(), 1);

    // The first customer writes again: reopened, routed again, and sticky brings back A.
    app.visitor_says(&v1, "cho em đặt 2 cái").await;
    let c = app.conversation(&c1).await;
    assert_eq!(
        (c["status"].as_str(), &c["assignee_id"]),
        (Some("open"), &json!(a.0))
    );
    let kinds: Vec<String> = app
        .history(&c1)
        .await
        .iter()
        .map(|h| h["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "auto_assigned",
            "auto_resolved",
            "reopened",
            "auto_assigned"
        ]
    );
    let log = app.history(&c1).await;
    assert_eq!(log.last().unwrap()["detail"]["reason"], "sticky");
    // Timers follow: the customer has the last word now, so only agent silence is pending.
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{c1}/timers"),
            &a.1,
            None,
        )
        .await;
    let kinds: Vec<&str> = timers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["agent_silence"]);
}

#[tokio::test]
async fn timers_survive_a_restart_and_fire_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = switchboard_server::clock::ManualClock::new(T0);
    let app = TestApp::start_in(dir.path(), clock, true).await;
    let (a, a_t) = app.agent("a@shop.vn", "An", "agent").await;
    let inbox = app.inbox("Web", &[&a]).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "self_claim", "reply_sla_minutes": 5}),
    )
    .await;
    let (_, conv) = app.new_customer(&inbox, "alo").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &a_t,
        None,
    )
    .await;
    app.stop().await;

    // A new process on the same data, ten minutes later: the timer is still there and overdue.
    let clock = switchboard_server::clock::ManualClock::new(T0.plus_minutes(10));
    let app = TestApp::start_in(dir.path(), clock, false).await;
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/timers"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(timers["items"][0]["kind"], "reply_sla");
    // Four runners tick at once (as four nodes would): exactly one fires it.
    let r = &app.state.routing;
    let now = app.clock.now();
    let (t1, t2, t3, t4) = tokio::join!(
        r.run_due_timers(now),
        r.run_due_timers(now),
        r.run_due_timers(now),
        r.run_due_timers(now)
    );
    let fired: usize = [t1, t2, t3, t4].into_iter().map(|t| t.unwrap().fired).sum();
    assert_eq!(fired, 1);
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 1);
    app.advance_minutes(60);
    assert_eq!(app.tick().await.fired, 0, "never twice");
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 1);
    assert_eq!(app.conversation(&conv).await["status"], "pending");
    app.stop().await;
}

/// A local time in Vietnam (UTC+7). 2026-09-28 is a Monday, a week after the tests' `T0`.
fn vn(date: &str, hh: u16, mm: u16) -> switchboard_core::Timestamp {
    timestamp_at(Date::parse(date).unwrap(), hh * 60 + mm, 420)
}

#[tokio::test]
async fn business_hours_with_two_ranges_and_a_holiday_pause_routing_and_auto_reply() {
    let app = TestApp::start().await;
    let (a, a_t) = app.agent("a@shop.vn", "An", "agent").await;
    let inbox = app.inbox("Web", &[&a]).await;
    let weekday = json!([{"start": "08:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]);
    app.set_routing(
        &inbox,
        json!({"strategy": "round_robin", "business_hours": {
            "utc_offset_minutes": 420,
            "days": {"mon": weekday, "tue": weekday, "wed": weekday, "thu": weekday, "fri": weekday},
            "holidays": ["2026-09-29"],
            "pause_routing": true,
            "auto_reply": "Shop đang nghỉ, sẽ trả lời anh/chị sớm nhất!"
        }}),
    )
    .await;
    let _ws = app.online(&a_t).await;
    let auto_reply = |thread: &Value| {
        thread["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["sender_kind"] == "system")
            .count()
    };

    // Monday morning: open, routed at once, no automatic reply.
    app.clock.set(vn("2026-09-28", 9, 0));
    let (v1, c1) = app.new_customer(&inbox, "sáng").await;
    assert_eq!(assignee(&app, &c1).await, a.as_str());
    let (_, t) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v1), None)
        .await;
    assert_eq!(auto_reply(&t), 0);

    // Lunch (between the two ranges): waits in the pool and gets the automatic reply.
    app.clock.set(vn("2026-09-28", 12, 30));
    let (v2, c2) = app.new_customer(&inbox, "trưa").await;
    assert_eq!(assignee(&app, &c2).await, Value::Null);
    let (_, t) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v2), None)
        .await;
    assert_eq!(auto_reply(&t), 1);
    assert_eq!(app.count_actions(&c2, "auto_replied").await, 1);
    assert_eq!(app.tick().await.assigned, 0, "still lunch");

    // 13:30: the afternoon range opens and the runner routes what waited.
    app.clock.set(vn("2026-09-28", 13, 30));
    assert_eq!(app.tick().await.assigned, 1);
    assert_eq!(assignee(&app, &c2).await, a.as_str());
    let (_, c3) = app.new_customer(&inbox, "chiều").await;
    assert_eq!(assignee(&app, &c3).await, a.as_str());

    // Tuesday is a holiday: a weekday range would be open, but the inbox is closed all day.
    app.clock.set(vn("2026-09-29", 10, 0));
    let (v4, c4) = app.new_customer(&inbox, "ngày lễ").await;
    assert_eq!(assignee(&app, &c4).await, Value::Null);
    let (_, t) = app
        .call(Method::GET, "/widget/v1/messages", Some(&v4), None)
        .await;
    assert_eq!(auto_reply(&t), 1);
    app.tick().await;
    assert_eq!(assignee(&app, &c4).await, Value::Null);

    // Wednesday 08:00: open again, the holiday's customer is routed.
    app.clock.set(vn("2026-09-30", 8, 0));
    assert_eq!(app.tick().await.assigned, 1);
    assert_eq!(assignee(&app, &c4).await, a.as_str());
}

#[tokio::test]
async fn presence_is_online_away_by_choice_or_idle_and_feeds_routing() {
    let app = TestApp::start_configured(|c| c.routing.idle_away_minutes = 15).await;
    let team = agents(&app, 2).await;
    let (a, b) = (&team[0], &team[1]);
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(&inbox, json!({"strategy": "round_robin"}))
        .await;
    let mut a_ws = app.online(&a.1).await;
    let mut b_ws = app.online(&b.1).await;

    // A steps away: colleagues see it, and new conversations skip A.
    let (s, me) = app
        .call(
            Method::PUT,
            "/api/v1/me/presence",
            Some(&a.1),
            Some(json!({"status": "away"})),
        )
        .await;
    assert_eq!((s, me["status"].as_str()), (StatusCode::OK, Some("away")));
    wait_presence(&mut b_ws, &a.0, "away").await;
    let list = app.ok(Method::GET, "/api/v1/agents", &b.1, None).await;
    let a_row = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == a.0.as_str())
        .unwrap()
        .clone();
    assert_eq!(a_row["presence"], "away");
    let (_, c1) = app.new_customer(&inbox, "một").await;
    assert_eq!(assignee(&app, &c1).await, b.0.as_str(), "A is away");

    // Back online.
    let me = app
        .ok(
            Method::PUT,
            "/api/v1/me/presence",
            &a.1,
            Some(json!({"status": "online"})),
        )
        .await;
    assert_eq!(me["status"], "online");
    wait_presence(&mut b_ws, &a.0, "online").await;

    // Idle: 15 minutes without activity from A's app → away. B stays active (a typing frame is
    // activity; its echo on B's own socket shows the server has seen it).
    app.advance_minutes(14);
    b_ws.send(json!({"type": "typing", "conversation_id": c1}))
        .await;
    b_ws.next_of("typing").await;
    app.advance_minutes(1);
    app.tick().await;
    wait_presence(&mut b_ws, &a.0, "away").await;
    let (_, c2) = app.new_customer(&inbox, "hai").await;
    assert_eq!(
        assignee(&app, &c2).await,
        b.0.as_str(),
        "idle A gets nothing"
    );

    // Any frame from A's app is activity: A is online again.
    a_ws.send(json!({"type": "activity"})).await;
    wait_presence(&mut b_ws, &a.0, "online").await;
    let (s, me) = app.get("/api/v1/me/presence", &a.1).await;
    assert_eq!((s, me["status"].as_str()), (StatusCode::OK, Some("online")));
}

#[tokio::test]
async fn an_agent_offline_past_the_grace_period_releases_unanswered_conversations() {
    let app = TestApp::start().await;
    let team = agents(&app, 2).await;
    let (a, b) = (&team[0], &team[1]);
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "round_robin", "offline_release_minutes": 10}),
    )
    .await;
    let a_ws = app.online(&a.1).await;
    let mut b_ws = app.online(&b.1).await;
    let (_, waiting) = app.new_customer(&inbox, "chờ").await;
    let (_, b_first) = app.new_customer(&inbox, "hai").await;
    let (_, answered_a) = app.new_customer(&inbox, "ba").await;
    assert_eq!(assignee(&app, &waiting).await, a.0.as_str());
    assert_eq!(assignee(&app, &answered_a).await, a.0.as_str());
    assert_eq!(assignee(&app, &b_first).await, b.0.as_str());
    app.write(&a.1, &answered_a, "reply", "Dạ em nghe").await;

    a_ws.close().await;
    wait_presence(&mut b_ws, &a.0, "offline").await;
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{waiting}/timers"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(timers["items"][0]["kind"], "offline_release");
    app.advance_minutes(9);
    assert_eq!(app.tick().await.fired, 0, "grace period");
    app.advance_minutes(1);
    assert_eq!(app.tick().await.fired, 1);
    // The unanswered one moves on to B; the answered one stays with A.
    assert_eq!(assignee(&app, &waiting).await, b.0.as_str());
    assert_eq!(assignee(&app, &answered_a).await, a.0.as_str());
    let log = app.history(&waiting).await;
    let ret = log
        .iter()
        .find(|h| h["kind"] == "returned_to_pool")
        .unwrap();
    assert_eq!(ret["detail"]["reason"], "offline_release");

    // Coming back within the grace period cancels the release. (The admin's socket watches.)
    let mut admin_ws = app.online(&app.admin).await;
    b_ws.close().await;
    wait_presence(&mut admin_ws, &b.0, "offline").await;
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{b_first}/timers"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(timers["items"][0]["kind"], "offline_release", "scheduled");
    app.advance_minutes(5);
    let _b_ws = app.online(&b.1).await;
    app.advance_minutes(30);
    assert_eq!(app.tick().await.fired, 0);
    assert_eq!(assignee(&app, &waiting).await, b.0.as_str());
    assert_eq!(assignee(&app, &b_first).await, b.0.as_str());
    let timers = app
        .ok(
            Method::GET,
            &format!("/api/v1/conversations/{b_first}/timers"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(timers["items"], json!([]), "cancelled on return");
}

#[tokio::test]
async fn the_background_runner_fires_due_timers_without_a_manual_tick() {
    let app = TestApp::start_configured(|c| c.routing.timer_poll_ms = 20).await;
    let (a, a_t) = app.agent("a@shop.vn", "An", "agent").await;
    let inbox = app.inbox("Web", &[&a]).await;
    app.set_routing(
        &inbox,
        json!({"strategy": "self_claim", "reply_sla_minutes": 1}),
    )
    .await;
    let mut a_ws = app.online(&a_t).await;
    let (_, conv) = app.new_customer(&inbox, "alo").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &a_t,
        None,
    )
    .await;
    // Only the clock moves; the runner notices on its own and An is told.
    app.advance_minutes(1);
    let ev = a_ws.next_of("conversation.returned").await;
    assert_eq!(ev["conversation_id"], conv.as_str());
    assert_eq!(ev["reason"], "reply_sla");
    assert_eq!(app.count_actions(&conv, "returned_to_pool").await, 1);
}

#[tokio::test]
async fn claims_racing_with_routing_have_exactly_one_winner() {
    let app = TestApp::start().await;
    let team = agents(&app, 6).await;
    let inbox = app.inbox("Web", &ids(&team)).await;
    app.set_routing(&inbox, json!({"strategy": "round_robin"}))
        .await;
    // Nobody online: it waits. Then six claims, a backlog sweep and an agent coming online, at once.
    let (_, conv) = app.new_customer(&inbox, "ai nhận em?").await;
    let mut tasks = Vec::new();
    for (_, token) in &team {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!("/api/v1/conversations/{conv}/claim")),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth(token).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap())
        }));
    }
    let routing = app.state.routing.clone();
    let now = app.clock.now();
    let sweep = tokio::spawn(async move { routing.run_due_timers(now).await.unwrap() });
    let ws = app.online(&team[0].1).await;
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    sweep.await.unwrap();
    let holder = assignee(&app, &conv).await;
    let wins: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    // Exactly one of: a claim, or routing.
    let claimed = app.count_actions(&conv, "claimed").await;
    let routed = app.count_actions(&conv, "auto_assigned").await;
    assert_eq!(claimed + routed, 1, "{results:?}");
    // A 200 goes only to the holder: the claim that won, or (when routing got there first) the
    // routed agent's own claim, which is a no-op for the one who already holds it.
    assert!(wins.len() <= 1, "{results:?}");
    assert!(wins.len() >= claimed);
    for (_, b) in &wins {
        assert_eq!(b["assignee_id"], holder, "{b}");
    }
    for (s, b) in &results {
        if *s != StatusCode::OK {
            assert_eq!(*s, StatusCode::CONFLICT);
            assert_eq!(b["error"]["code"], "conversation_claimed");
            assert_eq!(b["error"]["holder_id"], holder);
            assert!(b["error"]["holder_name"].is_string(), "{b}");
        }
    }
    drop(ws);
}
