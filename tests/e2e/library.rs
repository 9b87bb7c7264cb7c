//! The saved-media library: supervisors keep it, every agent finds and sends from it; a quick
//! reply carries library files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn the_library_is_kept_by_supervisors_and_sent_from_by_agents() {
    let app = TestApp::start().await;
    let (lan, lan_t) = app.agent("lan@shop.vn", "Lan", "agent").await;
    let inbox = app.inbox("Web", &[&lan]).await;
    let (visitor, conv) = app
        .claimed_visitor_conversation(&inbox, &lan_t, "cho xin bảng giá")
        .await;
    let add = |token: &str, query: &str, body: Vec<u8>| {
        app.http
            .post(app.url(&format!("/api/v1/library?{query}")))
            .bearer_auth(token)
            .body(body)
            .send()
    };
    let price = b"\x89PNG\r\n\x1a\n bang gia thang 12".to_vec();
    // An agent reads the library but does not change it.
    let r = add(&lan_t, "filename=gia.png", price.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = add(
        &app.admin,
        "filename=gia.png&name=B%E1%BA%A3ng%20gi%C3%A1&tags=T%E1%BA%BFt,gi%C3%A1",
        price.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let item: Value = r.json().await.unwrap();
    assert_eq!(
        (&item["name"], &item["tags"], &item["content_type"]),
        (
            &json!("Bảng giá"),
            &json!(["tết", "giá"]),
            &json!("image/png")
        )
    );
    let id = item["id"].as_str().unwrap().to_owned();
    let r = add(
        &app.admin,
        "filename=size.pdf&name=B%E1%BA%A3ng%20size",
        b"%PDF-1.4 size".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // A name that is only spaces is refused beside its field.
    let r = add(&app.admin, "filename=x.png&name=%20", price.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "name");

    // Search without diacritics, every word.
    let names = |v: Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let all = app.ok(Method::GET, "/api/v1/library", &lan_t, None).await;
    assert_eq!(names(all), vec!["Bảng size", "Bảng giá"]);
    let found = app
        .ok(Method::GET, "/api/v1/library?q=bang%20GIA", &lan_t, None)
        .await;
    assert_eq!(names(found), vec!["Bảng giá"]);
    let found = app
        .ok(Method::GET, "/api/v1/library?q=tet", &lan_t, None)
        .await;
    assert_eq!(names(found), vec!["Bảng giá"]);

    // The agent sends it: a message with its own copy of the file, seen by the visitor.
    let sent = app
        .ok(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/attachments/library"),
            &lan_t,
            Some(json!({"library_id": id, "caption": "Dạ bảng giá ạ"})),
        )
        .await;
    let att = sent["attachments"][0].clone();
    assert_eq!(att["filename"], "gia.png");
    assert_ne!(att["id"], json!(id));
    let thread = app
        .call(Method::GET, "/widget/v1/messages", Some(&visitor), None)
        .await
        .1;
    let seen = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == sent["id"])
        .unwrap()
        .clone();
    let vurl = seen["attachments"][0]["url"].as_str().unwrap().to_owned();
    let bytes = |url: String, token: String| {
        let req = app.http.get(app.url(&url)).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.bytes().await.unwrap().to_vec())
        }
    };
    assert_eq!(
        bytes(vurl.clone(), visitor.clone()).await,
        (StatusCode::OK, price.clone())
    );

    // Renamed and retagged by a supervisor; removed: what was sent stays, the library file goes.
    let changed = app
        .ok(
            Method::PATCH,
            &format!("/api/v1/library/{id}"),
            &app.admin,
            Some(json!({"name": "Giá tháng 12", "tags": ["giá"]})),
        )
        .await;
    assert_eq!(changed["name"], "Giá tháng 12");
    app.ok(
        Method::DELETE,
        &format!("/api/v1/library/{id}"),
        &app.admin,
        None,
    )
    .await;
    assert_eq!(bytes(vurl, visitor.clone()).await, (StatusCode::OK, price));
    let (gone, _) = bytes(format!("/api/v1/library/{id}/file"), lan_t.clone()).await;
    assert_eq!(gone, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(
            &format!("/api/v1/conversations/{conv}/attachments/library"),
            &lan_t,
            json!({"library_id": id}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_quick_reply_carries_library_files() {
    let app = TestApp::start().await;
    let r = app
        .http
        .post(app.url("/api/v1/library?filename=gia.jpg&name=Gi%C3%A1"))
        .bearer_auth(&app.admin)
        .body(b"\xff\xd8\xff\xe0 jpeg".to_vec())
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].clone();
    let qr = app
        .ok(
            Method::POST,
            "/api/v1/quick-replies",
            &app.admin,
            Some(json!({"code": "banggia", "text": "Dạ bảng giá ạ", "media": [id, id]})),
        )
        .await;
    assert_eq!(qr["media"], json!([id]), "each file once");
    let listed = app
        .ok(
            Method::GET,
            "/api/v1/quick-replies?prefix=bang",
            &app.admin,
            None,
        )
        .await;
    assert_eq!(listed["items"][0]["media"], json!([id]));
    // A file that is not in the library is refused beside the field.
    let (s, v) = app
        .post(
            "/api/v1/quick-replies",
            &app.admin,
            json!({"code": "x", "text": "x", "media": [uuid::Uuid::now_v7()]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "media");
    // Taking the files off again.
    let qid = qr["id"].as_str().unwrap();
    let qr = app
        .ok(
            Method::PATCH,
            &format!("/api/v1/quick-replies/{qid}"),
            &app.admin,
            Some(json!({"media": []})),
        )
        .await;
    assert_eq!(qr["media"], json!([]));
}
