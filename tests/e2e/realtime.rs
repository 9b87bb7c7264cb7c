//! The agent WebSocket: live events, visibility, catch-up with `since`, typing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn visitor_messages_reach_only_agents_of_that_inbox() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (other, other_t) = app.agent("other@shop.vn", "Other", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let other_inbox = app.inbox("Other", &[&other]).await;
    let mut lan_ws = app.ws(&format!("/api/v1/ws?token={lan_t}")).await;
    let mut other_ws = app.ws(&format!("/api/v1/ws?token={other_t}")).await;
    assert_eq!(lan_ws.next_of("hello").await["type"], "hello");
    assert_eq!(other_ws.next_of("hello").await["type"], "hello");

    let v = app.visitor(&inbox).await;
    app.visitor_says(&v, "Shop ơi").await;
    let created = lan_ws.next_of("conversation.created").await;
    assert_eq!(created["inbox_id"], inbox.as_str());
    let msg = lan_ws.next_of("message.created").await;
    assert_eq!(msg["message"]["text"], "Shop ơi");
    assert!(
        msg["cursor"].as_i64().unwrap() > created["cursor"].as_i64().unwrap(),
        "cursors increase"
    );

    // The other agent sees nothing of it: the first conversation event they get is their own inbox's.
    let v2 = app.visitor(&other_inbox).await;
    app.visitor_says(&v2, "marker").await;
    let seen = other_ws
        .collect_until(|e| e["type"] == "message.created")
        .await;
    for e in &seen {
        assert_ne!(e["inbox_id"], inbox.as_str(), "leaked: {e}");
    }
    assert_eq!(seen.last().unwrap()["message"]["text"], "marker");
}

#[tokio::test]
async fn reconnecting_with_since_loses_nothing() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let v = app.visitor(&inbox).await;

    let mut ws = app.ws(&format!("/api/v1/ws?token={lan_t}")).await;
    ws.next_of("hello").await;
    app.visitor_says(&v, "one").await;
    let first = ws.next_of("message.created").await;
    let cursor = first["cursor"].as_i64().unwrap();
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    ws.close().await;

    // While the agent is away: customer messages, a claim, a note.
    app.visitor_says(&v, "two").await;
    app.visitor_says(&v, "three").await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/claim"),
        &lan_t,
        None,
    )
    .await;
    app.ok(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/messages"),
        &lan_t,
        Some(json!({"text": "ghi chú", "kind": "note"})),
    )
    .await;

    let mut ws = app
        .ws(&format!("/api/v1/ws?token={lan_t}&since={cursor}"))
        .await;
    let missed = ws.collect_until(|e| e["type"] == "hello").await;
    let kinds: Vec<&str> = missed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message.created",
            "message.created",
            "conversation.assigned",
            "message.created",
            "hello"
        ]
    );
    let texts: Vec<&str> = missed
        .iter()
        .filter_map(|e| e["message"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["two", "three", "ghi chú"]);
    let (events, hello) = missed.split_at(missed.len() - 1);
    let cursors: Vec<i64> = events
        .iter()
        .map(|e| e["cursor"].as_i64().unwrap())
        .collect();
    assert!(
        cursors[0] > cursor && cursors.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing after {cursor}: {cursors:?}"
    );
    assert_eq!(
        hello[0]["cursor"],
        cursors[cursors.len() - 1],
        "hello carries the cursor to resume from"
    );

    // And it is live again, with no repeats.
    app.visitor_says(&v, "four").await;
    let next = ws.next_of("message.created").await;
    assert_eq!(next["message"]["text"], "four");
    assert!(next["cursor"].as_i64().unwrap() > *cursors.iter().max().unwrap());
}

#[tokio::test]
async fn typing_goes_both_ways() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let v = app.visitor(&inbox).await;
    let conv = app.visitor_says(&v, "hi").await["message"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut agent_ws = app.ws(&format!("/api/v1/ws?token={lan_t}")).await;
    agent_ws.next_of("hello").await;
    let mut visitor_ws = app.ws(&format!("/widget/v1/ws?token={v}")).await;

    // The agent types (over the socket); the visitor sees "typing" without agent details.
    agent_ws
        .send(json!({"type": "typing", "conversation_id": conv}))
        .await;
    let t = visitor_ws.next_of("typing").await;
    assert_eq!(t, json!({"type": "typing", "actor": "agent"}));

    visitor_ws.send(json!({"type": "typing"})).await;
    let t = agent_ws
        .collect_until(|e| e["type"] == "typing" && e["actor"] == "customer")
        .await;
    assert_eq!(t.last().unwrap()["conversation_id"], conv.as_str());
}

#[tokio::test]
async fn websocket_refuses_bad_tokens() {
    let app = TestApp::start().await;
    for path in [
        "/api/v1/ws?token=nope",
        "/api/v1/ws",
        "/widget/v1/ws?token=forged.x",
    ] {
        let url = format!("{}{path}", app.base.replace("http", "ws"));
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}")
            }
            other => panic!("{path}: expected a refused handshake, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn signing_out_or_deactivation_closes_open_sockets() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let (_minh, minh_t) = app.agent("minh@shop.vn", "Minh", "agent").await;
    let second_lan_t = app.login("lan@shop.vn").await;
    let mut ws = app.ws(&format!("/api/v1/ws?token={lan_t}")).await;
    ws.next_of("hello").await;
    let mut other_session = app.ws(&format!("/api/v1/ws?token={second_lan_t}")).await;
    other_session.next_of("hello").await;
    let mut minh_ws = app.ws(&format!("/api/v1/ws?token={minh_t}")).await;
    minh_ws.next_of("hello").await;

    app.ok(Method::POST, "/api/v1/auth/logout", &lan_t, None)
        .await;
    assert_eq!(ws.next_of("session.ended").await["type"], "session.ended");
    // Only that session ended; the same agent's other sign-in keeps its socket.
    app.visitor(&app.inbox("Web", &[&lan]).await).await;
    app.ok(
        Method::PATCH,
        &format!("/api/v1/agents/{lan}"),
        &app.admin,
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(
        other_session.next_of("session.ended").await["type"],
        "session.ended"
    );
    // Minh is untouched: his socket still delivers events.
    let inbox = app.inbox("Minh's", &[&_minh]).await;
    let v = app.visitor(&inbox).await;
    app.visitor_says(&v, "still here?").await;
    assert_eq!(
        minh_ws.next_of("message.created").await["message"]["text"],
        "still here?"
    );
}
